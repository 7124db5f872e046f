/**
 * The sandbox's resolv.conf as Docker and BuildKit derive it from the host's (moby
 * libnetwork/internal/resolvconf TransformForLegacyNw, BuildKit executor/oci/resolvconf.go), read
 * from files of the test's own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTmp } from '../helpers/tmp.js';
import { containerResolvConf, FALLBACK_NAMESERVERS, formatResolvConf, isLoopbackAddress, parseResolvConf, sandboxResolvConf } from '../../src/host/resolv-conf.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
beforeAll(async () => {
  tmp = await makeTmp();
});
afterAll(async () => tmp.cleanup());

async function file(name: string, text: string): Promise<string> {
  const p = join(tmp.dir, name);
  await writeFile(p, text);
  return p;
}

const fallbacks = FALLBACK_NAMESERVERS.map((n) => `nameserver ${n}\n`).join('');

describe('parseResolvConf / formatResolvConf', () => {
  it('keeps nameservers, the last search, every option and unknown lines; drops comments and bad addresses', () => {
    const rc = parseResolvConf(
      '# generated\n; also a comment\nnameserver 10.1.1.1\nnameserver not-an-ip\nnameserver fe80::1%eth0\ndomain first.example\nsearch a.example b.example\noptions ndots:2\noptions timeout:1 rotate\nsortlist 10.0.0.0/8\n',
    );
    expect(rc).toEqual({
      nameservers: ['10.1.1.1', 'fe80::1%eth0'],
      search: ['a.example', 'b.example'],
      options: ['ndots:2', 'timeout:1', 'rotate'],
      other: ['sortlist 10.0.0.0/8'],
    });
    expect(formatResolvConf(rc)).toBe(
      'nameserver 10.1.1.1\nnameserver fe80::1%eth0\nsearch a.example b.example\noptions ndots:2 timeout:1 rotate\nsortlist 10.0.0.0/8\n',
    );
    expect(formatResolvConf(parseResolvConf(''))).toBe('');
  });

  it('knows loopback addresses in every spelling', () => {
    for (const a of ['127.0.0.1', '127.0.0.53', '127.255.0.9', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', '::ffff:7f00:1', '0:0:0:0:0:ffff:127.0.0.1', '::0001', '127.0.0.1%lo']) expect(isLoopbackAddress(a), a).toBe(true);
    for (const a of ['10.0.0.1', '128.0.0.1', '::2', 'fe80::1', '::ffff:10.0.0.1', 'nonsense', '1.127.0.0', '']) expect(isLoopbackAddress(a), a).toBe(false);
  });
});

describe('sandboxResolvConf', () => {
  it('a namespace of its own: loopback nameservers dropped, the rest kept as they were', async () => {
    const src = { resolvConf: await file('mixed', 'nameserver 127.0.0.1\nnameserver 10.9.9.9\nnameserver ::1\nnameserver 2001:db8::53\nsearch corp.example\noptions ndots:3\n') };
    expect(await sandboxResolvConf('private', src)).toBe('nameserver 10.9.9.9\nnameserver 2001:db8::53\nsearch corp.example\noptions ndots:3\n');
    // The host's network reaches its loopback resolver: the file is kept.
    expect(await sandboxResolvConf('host', src)).toBe('nameserver 127.0.0.1\nnameserver 10.9.9.9\nnameserver ::1\nnameserver 2001:db8::53\nsearch corp.example\noptions ndots:3\n');
  });

  it("systemd-resolved's stub alone: its upstream list is read instead", async () => {
    const src = {
      resolvConf: await file('stub', 'nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n'),
      systemdResolvConf: await file('upstream', '# This is /run/systemd/resolve/resolv.conf\nnameserver 10.20.0.1\nnameserver 10.20.0.2\nsearch lan\n'),
    };
    expect(await sandboxResolvConf('private', src)).toBe('nameserver 10.20.0.1\nnameserver 10.20.0.2\nsearch lan\n');
    expect(await sandboxResolvConf('host', src)).toBe('nameserver 127.0.0.53\nsearch .\noptions edns0 trust-ad\n');
    // The stub beside another nameserver is not systemd-resolved's file: only the stub goes.
    const two = { ...src, resolvConf: await file('stub2', 'nameserver 127.0.0.53\nnameserver 10.30.0.1\n') };
    expect(await sandboxResolvConf('private', two)).toBe('nameserver 10.30.0.1\n');
  });

  it("nothing usable left: Docker's fallback nameservers", async () => {
    const only = { resolvConf: await file('lo', 'nameserver 127.0.0.1\nsearch x.example\n') };
    expect(await sandboxResolvConf('private', only)).toBe(`${fallbacks}search x.example\n`);
    // The stub with no upstream file (systemd-resolved not running): the fallbacks too.
    const stub = { resolvConf: await file('stub3', 'nameserver 127.0.0.53\n'), systemdResolvConf: join(tmp.dir, 'missing') };
    expect(await sandboxResolvConf('private', stub)).toBe(fallbacks);
    // No host file at all, on any network.
    expect(await sandboxResolvConf('private', { resolvConf: join(tmp.dir, 'none') })).toBe(fallbacks);
    expect(await sandboxResolvConf('host', { resolvConf: join(tmp.dir, 'none') })).toBe(fallbacks);
  });
});

describe('containerResolvConf (run --dns, --dns-search, --dns-option)', () => {
  it('replaces each list that is given, keeps the host\'s others, and takes a given loopback resolver as it is', async () => {
    const src = { resolvConf: await file('run-host.conf', 'nameserver 127.0.0.53\nsearch corp.example\noptions edns0\n'), systemdResolvConf: await file('run-up.conf', 'nameserver 10.9.9.9\nsearch corp.example\noptions edns0\n') };
    expect(await containerResolvConf('private', {}, src)).toBe('nameserver 10.9.9.9\nsearch corp.example\noptions edns0\n');
    expect(await containerResolvConf('private', { nameservers: ['127.0.0.1'] }, src)).toBe('nameserver 127.0.0.1\nsearch corp.example\noptions edns0\n');
    expect(await containerResolvConf('private', { search: ['a.test', 'b.test'], options: ['ndots:3'] }, src)).toBe('nameserver 10.9.9.9\nsearch a.test b.test\noptions ndots:3\n');
    expect(await containerResolvConf('host', { search: ['.'] }, src)).toBe('nameserver 127.0.0.53\noptions edns0\n');
  });
});
