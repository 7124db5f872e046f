/**
 * Making a step's writes durable before its snapshot is committed: one syncfs(2) of the file
 * system that holds the upper dir, as containerd syncs once per layer rather than once per file.
 * Node has no call for syncfs, so coreutils' `sync -f` makes it. A mount's umount makes the same
 * flush (an overlay syncs its upper file system as it goes), so steps that unmounted their rootfs
 * need none of their own, unless it was mounted `volatile` (a RUN's, run.ts): then this flush runs
 * beside the layer's hashing instead of before it.
 */
import { spawn } from 'node:child_process';
import { ImgbuildError, throwIfAborted } from '../errors.js';

export function syncFilesystem(path: string, o: { signal?: AbortSignal } = {}): Promise<void> {
  throwIfAborted(o.signal);
  return new Promise((done, fail) => {
    const child = spawn('sync', ['-f', path], { stdio: ['ignore', 'ignore', 'pipe'], ...(o.signal ? { signal: o.signal } : {}) });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s: string) => {
      if (stderr.length < 4096) stderr += s;
    });
    child.on('error', (e) => {
      if (o.signal?.aborted) {
        try {
          throwIfAborted(o.signal);
        } catch (a) {
          fail(a);
        }
        return;
      }
      fail(new ImgbuildError('UNAVAILABLE', `cannot flush the file system of ${path}: ${e.message}`, { cause: e }));
    });
    child.on('close', (status) => {
      if (status === 0) done();
      else fail(new ImgbuildError('UNAVAILABLE', `cannot flush the file system of ${path}: sync -f exited ${status}: ${stderr.trim().split('\n').pop() ?? ''}`));
    });
  });
}
