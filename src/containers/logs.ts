/** Container output: the `log` file a detached container writes (stdout and stderr interleaved). */
import { open } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { getContainer, refreshState } from './state.js';
import type { LifecycleOptions } from './types.js';
import { pathOf, readRecord } from './record.js';

async function writeOut(out: Writable, b: Buffer): Promise<void> {
  if (!out.write(b)) await new Promise<void>((r) => out.once('drain', () => r()));
}

/** Copies the log to `out`; with `follow`, keeps copying until the container stops (or `signal`). */
export async function streamLogs(
  root: string,
  nameOrId: string,
  out: Writable,
  o: LifecycleOptions & { follow?: boolean; tail?: number } = {},
): Promise<void> {
  const rec = await getContainer(root, nameOrId, o);
  let fh;
  try {
    fh = await open(pathOf(root, rec.id, 'log'), 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return; // a foreground container logs to the terminal
    throw e;
  }
  try {
    let pos = 0;
    if (o.tail !== undefined && o.tail >= 0) {
      const all = await fh.readFile();
      const lines = all.toString('utf8').split('\n');
      if (lines[lines.length - 1] === '') lines.pop();
      const keep = o.tail === 0 ? [] : lines.slice(-o.tail);
      if (keep.length > 0) await writeOut(out, Buffer.from(`${keep.join('\n')}\n`));
      pos = all.length;
    }
    const buf = Buffer.alloc(64 * 1024);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead > 0) {
        pos += bytesRead;
        await writeOut(out, Buffer.from(buf.subarray(0, bytesRead)));
        continue;
      }
      if (!o.follow || o.signal?.aborted) return;
      const cur = await readRecord(root, rec.id);
      if (!cur || (await refreshState(root, cur, o)).state.status !== 'running') {
        // One last read: output written just before the exit.
        const last = await fh.read(buf, 0, buf.length, pos);
        if (last.bytesRead > 0) {
          pos += last.bytesRead;
          await writeOut(out, Buffer.from(buf.subarray(0, last.bytesRead)));
          continue;
        }
        return;
      }
      await sleep(50);
    }
  } finally {
    await fh.close();
  }
}
