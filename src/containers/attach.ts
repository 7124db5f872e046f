/**
 * `attach` to a running detached container: its output from now on (what its monitor appends to
 * the log; stdout and stderr as one stream), until it stops, and then its exit status; its stdin
 * through the FIFO its monitor reads when it was created with -i. There is no daemon to hold a
 * stream open, so the log is followed from its end.
 */
import { constants, createWriteStream, open as openFd } from 'node:fs';
import { open } from 'node:fs/promises';
import { Transform, type Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { ContainerStateError } from './errors.js';
import { emitContainerEvent } from './events.js';
import { pathOf, readRecord, type ContainerRecord } from './record.js';
import { getContainer, refreshState } from './state.js';
import type { LifecycleOptions } from './types.js';

async function writeOut(out: Writable, b: Buffer): Promise<void> {
  if (!out.write(b)) await new Promise<void>((r) => out.once('drain', () => r()));
}

/** The container to attach to, refused as Docker refuses a stopped or paused one. */
export async function attachable(root: string, nameOrId: string, o: LifecycleOptions = {}): Promise<ContainerRecord> {
  const rec = await getContainer(root, nameOrId, o);
  if (rec.state.status !== 'running') throw new ContainerStateError(rec.id, `you cannot attach to a stopped container ${rec.name}, start it first`);
  if (rec.state.paused) throw new ContainerStateError(rec.id, `you cannot attach to a paused container ${rec.name}, unpause it first`);
  return rec;
}

/**
 * Copies the container's output from now on to `out` until it stops (or `o.signal` aborts: a
 * detach); resolves with its final record (undefined when it was removed meanwhile).
 * `o.onFollowing` is called once the output is followed.
 */
export async function followOutput(
  root: string,
  rec: ContainerRecord,
  out: Writable,
  o: LifecycleOptions & { onFollowing?: () => void } = {},
): Promise<ContainerRecord | undefined> {
  await emitContainerEvent(root, rec, 'attach');
  const fh = await open(pathOf(root, rec.id, 'log'), 'r');
  try {
    let pos = (await fh.stat()).size;
    // From here on nothing it writes is missed: input may go in (its answers come after).
    o.onFollowing?.();
    const buf = Buffer.alloc(64 * 1024);
    const drain = async (): Promise<number> => {
      let total = 0;
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
        if (bytesRead === 0) return total;
        pos += bytesRead;
        total += bytesRead;
        await writeOut(out, Buffer.from(buf.subarray(0, bytesRead)));
      }
    };
    for (;;) {
      await drain();
      if (o.signal?.aborted) return await readRecord(root, rec.id);
      const cur = await readRecord(root, rec.id);
      const st = cur && (await refreshState(root, cur, o));
      if (!st || st.state.status !== 'running') {
        await drain(); // what it wrote just before it ended
        return st;
      }
      await sleep(50);
    }
  } finally {
    await fh.close();
  }
}

/**
 * The write end of a running `-i` container's stdin (the FIFO its monitor reads), or undefined
 * when it was not created with -i. Opened read-write, so that the open never blocks, whether or
 * not the monitor still reads it.
 */
export async function openStdin(root: string, rec: ContainerRecord): Promise<Writable | undefined> {
  if (!rec.hostConfig.interactive) return undefined;
  const fd = await new Promise<number | undefined>((res) => openFd(pathOf(root, rec.id, 'stdin'), constants.O_RDWR | constants.O_NOFOLLOW, (e, n) => res(e ? undefined : n)));
  return fd === undefined ? undefined : createWriteStream('', { fd });
}

/**
 * Docker's detach keys, ctrl-p ctrl-q: passes stdin through until the sequence, which calls
 * `onDetach` instead of reaching the container (a ctrl-p not followed by ctrl-q is passed on).
 */
export function detachKeys(onDetach: () => void): Transform {
  let held = false;
  let done = false;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (done) return cb();
      const out: number[] = [];
      for (const b of chunk) {
        if (held) {
          held = false;
          if (b === 0x11) {
            done = true;
            onDetach();
            break;
          }
          out.push(0x10);
        }
        if (b === 0x10) held = true;
        else out.push(b);
      }
      cb(null, Buffer.from(out));
    },
  });
}
