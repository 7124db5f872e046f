/**
 * The run use-case through the library (privileged: real sandbox, cgroups, overlay): foreground
 * with its exit status and output, an abort passed on to pid 1 and then the group killed, a
 * detached run stopped and removed, and a creation that fails leaving nothing behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { tmpBusyboxStore } from '../helpers/base-image.js';
import { OciStore } from '../../src/store/store.js';
import { runContainer } from '../../src/containers/run.js';
import { listContainers } from '../../src/containers/list.js';
import { removeContainer } from '../../src/containers/remove.js';
import { stopContainer } from '../../src/containers/stop.js';

let tmp: Awaited<ReturnType<typeof tmpBusyboxStore>>['tmp'];
let root: string;
let store: OciStore;

beforeAll(async () => {
  ({ tmp, root } = await tmpBusyboxStore('imgbuild-run-'));
  store = await OciStore.open(root);
});
afterAll(async () => {
  for (const c of await listContainers(root).catch(() => [])) await removeContainer(root, c.id, { force: true }).catch(() => {});
  await store?.release();
  await tmp?.cleanup();
});

function collector(): { stream: Writable; text: () => string } {
  let out = '';
  return {
    stream: new Writable({
      write(chunk: Buffer, _enc, cb) {
        out += chunk.toString();
        cb();
      },
    }),
    text: () => out,
  };
}

describe('runContainer', () => {
  it('runs in the foreground: output, exit status, a kept container exited with it', async () => {
    const out = collector();
    const events: string[] = [];
    const r = await runContainer(store, {
      image: 'busybox',
      cmd: ['sh', '-c', 'echo out; exit 5'],
      io: { stdout: out.stream },
      onCreated: () => events.push('created'),
      onExit: () => events.push('exit'),
    });
    expect(r.status?.exitCode).toBe(5);
    expect(out.text()).toBe('out\n');
    expect(events).toEqual(['created', 'exit']);
    const [rec] = (await listContainers(root)).filter((c) => c.id === r.id);
    expect(rec?.state.status).toBe('exited');
    expect(rec?.state.exitCode).toBe(5);
    await removeContainer(root, r.id);
  });

  it('passes an abort on to pid 1, kills the group after the grace period and removes the container', async () => {
    const ac = new AbortController();
    let forwarded = 0;
    const r = runContainer(store, {
      image: 'busybox',
      // pid 1 without a handler ignores SIGTERM: only the group kill ends it
      cmd: ['sleep', '60'],
      autoRemove: true,
      signal: ac.signal,
      killGraceMs: 300,
      forward: () => {
        forwarded++;
        return 'SIGTERM';
      },
      io: { onStart: () => setTimeout(() => ac.abort(new Error('received SIGTERM')), 100) },
    });
    const { id, status } = await r;
    expect(forwarded).toBe(1);
    expect(status?.exitCode).toBe(137);
    expect(existsSync(join(root, 'containers', id))).toBe(false);
  });

  it('detaches: returns the id at once, the container runs until stopped', async () => {
    const r = await runContainer(store, { image: 'busybox', cmd: ['sleep', '60'], detach: true, name: 'detached-one' });
    expect(r.status).toBeUndefined();
    const [rec] = (await listContainers(root)).filter((c) => c.id === r.id);
    expect(rec?.state.status).toBe('running');
    expect(rec?.name).toBe('detached-one');
    const stopped = await stopContainer(root, r.id, { timeoutSec: 0 });
    expect(stopped.state.status).toBe('exited');
    await removeContainer(root, r.id);
  });

  it('a creation that fails (unknown image) leaves no container directory', async () => {
    const before = await readdir(join(root, 'containers')).catch(() => [] as string[]);
    const e = await runContainer(store, { image: 'no-such-image', cmd: ['true'] }).catch((x: unknown) => x);
    expect((e as { code?: string }).code).toBe('NOT_FOUND');
    expect(await readdir(join(root, 'containers')).catch(() => [] as string[])).toEqual(before);
  });

  it('refuses runtime combinations that cannot run before making anything', async () => {
    await expect(runContainer(store, { image: 'busybox', runtime: 'runc', detach: true })).rejects.toMatchObject({ code: 'NOT_IMPLEMENTED' });
    await expect(runContainer(store, { image: 'busybox', runtime: 'nope' as never })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
