/** What the battery's HTTP server serves (path → body), for the ADD <url> cases. */
import { gzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';

/** A gzip'd tar holding `foo` = `content0` (made with a fixed header, so the bytes are known here). */
function fooTarGz(): Buffer {
  const header = Buffer.alloc(512);
  header.write('foo', 0);
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write('00000000010\0', 124);
  header.write('14525360000\0', 136);
  header.write('        ', 148);
  header.write('0', 156);
  header.write('ustar\0', 257);
  header.write('00', 263);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const body = Buffer.alloc(512);
  body.write('content0');
  return gzipSync(Buffer.concat([header, body, Buffer.alloc(1024)]));
}

export const HTTP_FILES: Record<string, string | Buffer> = {
  '/foo': 'content1',
  '/t.tar.gz': fooTarGz(),
};

export const FOO_SHA256 = `sha256:${createHash('sha256').update('content1').digest('hex')}`;
export const EMPTY_SHA256 = `sha256:${createHash('sha256').update('').digest('hex')}`;
