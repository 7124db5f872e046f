/**
 * `import`: a one-layer image from a root filesystem, like `docker import`. The source is a
 * directory (packed deterministically) or a tar (plain, gzip or zstd, detected), from a file or a
 * stream; a source that is not a tar at all is refused before anything is stored.
 */
import { emitEvent } from '../store/events.js';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { decompress } from '../compress/compress.js';
import { InvalidArgumentError, NotFoundError } from '../errors.js';
import { applyConfigChanges } from '../image/changes.js';
import type { Digest } from '../image/digest.js';
import type { Compression } from '../image/media-types.js';
import { imageId } from '../image/model.js';
import { hostPlatform } from '../image/platform.js';
import { familiarReference, formatReference, parseReference } from '../image/reference.js';
import type { Descriptor, ImageConfig, Platform } from '../image/types.js';
import { loadImage, writeImage } from '../store/images.js';
import { writeLayerBlob } from '../store/layers.js';
import type { OciStore } from '../store/store.js';
import { packDir } from '../tar/pack.js';

/**
 * Passes a tar stream through, failing when it does not look like one: the first header block must
 * carry a valid checksum (or be the all-zero end-of-archive block) and the length must be a whole
 * number of 512-byte blocks. Cheap enough to run on every import, and it stops `import notes.txt`.
 */
export class TarCheck extends Transform {
  private head: Buffer[] = [];
  private headLen = 0;
  private checked = false;
  private n = 0;

  constructor(private readonly source: string) {
    super();
  }

  private check(block: Buffer): Error | undefined {
    if (block.every((b) => b === 0)) return undefined;
    const field = block.subarray(148, 156).toString('latin1').replace(/\0.*$/s, '').trim();
    const want = parseInt(field, 8);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : block[i]!;
    if (!/^[0-7]+$/.test(field) || want !== sum) return new InvalidArgumentError(`${this.source} is not a tar archive (bad header checksum in the first block)`);
    return undefined;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.n += chunk.length;
    if (!this.checked) {
      this.head.push(chunk);
      this.headLen += chunk.length;
      if (this.headLen < 512) {
        cb();
        return;
      }
      this.checked = true;
      const all = Buffer.concat(this.head);
      this.head = [];
      const err = this.check(all.subarray(0, 512));
      cb(err ?? null, err ? undefined : all);
      return;
    }
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    if (!this.checked) {
      cb(new InvalidArgumentError(`${this.source} is not a tar archive (${this.n} bytes)`));
      return;
    }
    if (this.n % 512 !== 0) {
      cb(new InvalidArgumentError(`${this.source} is not a tar archive (length ${this.n} is not a multiple of 512)`));
      return;
    }
    cb();
  }
}

export interface ImportOptions {
  /** The name[:tag] to give the image; without one it is kept untagged. */
  name?: string;
  /** Layer compression (default none). */
  compression?: Compression;
  /** Dockerfile instructions applied to the config (`--change`). */
  changes?: string[];
  /** The history entry's comment (default `imported from SOURCE`). */
  message?: string;
  /** The platform recorded in the config (default this machine's). */
  platform?: Platform;
  /** What a stream source is called in messages (default `stdin`). */
  sourceName?: string;
  signal?: AbortSignal;
}

/**
 * Makes the image from `source` (a directory or tar file path, or a tar stream) and returns its
 * manifest descriptor and image id. The name and changes are checked before the source is read.
 */
export async function importRootfs(store: OciStore, source: string | Readable, o: ImportOptions = {}): Promise<{ descriptor: Descriptor; imageId: Digest }> {
  const ref = o.name !== undefined ? parseReference(o.name) : undefined;
  if (ref?.digest) throw new InvalidArgumentError(`cannot import into a digest reference: ${o.name}`);
  const platform = o.platform ?? hostPlatform();
  const containerConfig = applyConfigChanges(undefined, o.changes ?? []);
  const sourceName = typeof source === 'string' ? source : (o.sourceName ?? 'stdin');
  let tar: Readable;
  let isDir = false;
  if (typeof source !== 'string') {
    tar = decompress(source, undefined, { signal: o.signal });
  } else {
    const st = await stat(source).catch(() => undefined);
    if (!st) throw new NotFoundError(`import source not found: ${source}`);
    isDir = st.isDirectory();
    tar = isDir ? packDir(source, { mode: 'plain', signal: o.signal }) : decompress(createReadStream(source), undefined, { signal: o.signal });
  }
  if (!isDir) {
    // pipeline() carries errors both ways and listens at once, so a bad header is never unhandled.
    const checked = new TarCheck(sourceName);
    pipeline(tar, checked).catch(() => {});
    tar = checked;
  }
  const layer = await writeLayerBlob(store, tar, { compression: o.compression ?? 'none', signal: o.signal });
  const created = new Date().toISOString();
  const config: ImageConfig = {
    created,
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: containerConfig,
    rootfs: { type: 'layers', diff_ids: [layer.diffId] },
    history: [{ created, created_by: '', comment: o.message ?? `imported from ${sourceName}` }],
  };
  const descriptor = await writeImage(store, config, [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size }]);
  if (ref) await store.tag(formatReference(ref), descriptor);
  else await store.keepUntagged(descriptor);
  const id = imageId(await loadImage(store, descriptor));
  await emitEvent(store.root, { type: 'image', action: 'import', id, attributes: { name: ref ? familiarReference(ref) : id } });
  return { descriptor, imageId: id };
}
