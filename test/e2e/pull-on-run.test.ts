/**
 * Against a real registry: `run` pulls an image that is not in the store (`--pull missing`, the
 * default), with pull's lines on stderr after Docker's "Unable to find image"; `--pull never`
 * fails in one line with 125; `--pull always` pulls first. RepoDigests and `images --digests`
 * show the digest the registry serves after push and after pull, and pulling by it works.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { request } from 'undici';
import { makeTmp } from '../helpers/tmp.js';
import { expectOneLineError, runCli } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { ensureBusybox } from '../helpers/base-image.js';

const tmp = await makeTmp('imgbuild-e2e-pullrun-');
let reg: TestRegistry;
const src = join(tmp.dir, 'src');
const dst = join(tmp.dir, 'dst');
let pushedDigest = '';

beforeAll(async () => {
  reg = await startRegistry({ mode: 'none' });
  await ensureBusybox(src);
});
afterAll(async () => {
  await reg?.stop();
  await tmp.cleanup();
});

/** The digest the registry serves for a tag (Docker-Content-Digest of a HEAD). */
async function servedDigest(repo: string, tag: string): Promise<string> {
  const res = await request(`${reg.url}/v2/${repo}/manifests/${tag}`, {
    method: 'HEAD',
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json' },
  });
  await res.body.dump();
  return String(res.headers['docker-content-digest']);
}

const inspect = async (root: string, name: string): Promise<Record<string, unknown>> => {
  const r = await runCli(['inspect', name], { root });
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as Record<string, unknown>[])[0]!;
};

describe('repository digests', () => {
  it('records the digest the registry serves after push, and pulling by it works', async () => {
    const before = await inspect(src, 'busybox');
    expect(before.RepoDigests).toEqual([]);
    const p = await runCli(['push', '-q', 'busybox:latest', `${reg.host}/t/bb:1`], { root: src });
    expect(p.code, p.stderr).toBe(0);
    pushedDigest = await servedDigest('t/bb', '1');
    expect(pushedDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const after = await inspect(src, 'busybox');
    expect(after.RepoDigests).toEqual([`${reg.host}/t/bb@${pushedDigest}`]);
    // The local manifest is uncompressed; what was pushed is not: the digest is the registry's.
    expect((after.Descriptor as { digest: string }).digest).not.toBe(pushedDigest);

    const d = await runCli(['images', '--digests'], { root: src });
    const rows = d.stdout.trim().split('\n');
    expect(rows.find((l) => l.startsWith(`${reg.host}/t/bb `)) ?? rows.find((l) => l.startsWith('busybox '))).toBeDefined();
    expect(rows.find((l) => l.startsWith('busybox '))).toMatch(/^busybox\s+latest\s+<none>\s+[0-9a-f]{12}/);

    // Addressable locally by that digest, and pullable by it elsewhere.
    const local = await inspect(src, `${reg.host}/t/bb@${pushedDigest}`);
    expect(local.Id).toBe(after.Id);
    const pulled = await runCli(['pull', `${reg.host}/t/bb@${pushedDigest}`], { root: dst });
    expect(pulled.code, pulled.stderr).toBe(0);
    const there = await inspect(dst, `${reg.host}/t/bb@${pushedDigest}`);
    expect(there.Id).toBe(after.Id);
    expect(there.RepoDigests).toEqual([`${reg.host}/t/bb@${pushedDigest}`]);

    // Both recorded their events.
    const ev = async (root: string): Promise<string[]> =>
      (await runCli(['events', '--since', '0', '--until', String(Date.now() / 1000 + 1), '--filter', 'type=image', '--format', '{{.Action}} {{.Actor.ID}}'], { root })).stdout.trim().split('\n');
    expect(await ev(src)).toContain(`push ${reg.host}/t/bb:1`);
    expect(await ev(dst)).toContain(`pull ${reg.host}/t/bb@${pushedDigest}`);
  });

  it('records it after a pull by tag; images --digests shows it', async () => {
    const r = await runCli(['pull', '-q', `${reg.host}/t/bb:1`], { root: dst });
    expect(r.code, r.stderr).toBe(0);
    const i = await inspect(dst, `${reg.host}/t/bb:1`);
    expect(i.RepoDigests).toEqual([`${reg.host}/t/bb@${pushedDigest}`]);
    const d = await runCli(['images', '--digests', `${reg.host}/t/bb`], { root: dst });
    expect(d.stdout).toMatch(new RegExp(`t/bb\\s+1\\s+${pushedDigest}\\s+[0-9a-f]{12}`));
  });
});

describe('run pulls what is missing', () => {
  it('--pull never: one line, 125', async () => {
    const root = join(tmp.dir, 'never');
    const r = await runCli(['run', '--rm', '--pull', 'never', `${reg.host}/t/bb:1`, 'true'], { root });
    expect(r.code).toBe(125);
    expectOneLineError(r, /^imgbuild: NOT_FOUND: .*t\/bb:1/);
  });

  it('missing (default): says so and pulls on stderr; stdout is the container\'s alone', async () => {
    const root = join(tmp.dir, 'missing');
    const r = await runCli(['run', '--rm', `${reg.host}/t/bb:1`, 'echo', 'hello'], { root });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('hello\n');
    const lines = r.stderr.trim().split('\n');
    expect(lines[0]).toBe(`Unable to find image '${reg.host}/t/bb:1' locally`);
    expect(r.stderr).toMatch(/: Pull complete\n/);
    expect(r.stderr).toContain(`Status: Downloaded ${reg.host}/t/bb:1`);
    // A second run finds it: nothing is pulled.
    const again = await runCli(['run', '--rm', `${reg.host}/t/bb:1`, 'true'], { root });
    expect(again.code).toBe(0);
    expect(again.stderr).toBe('');
    // always: pulls even so (up to date).
    const always = await runCli(['run', '--rm', '--pull', 'always', `${reg.host}/t/bb:1`, 'true'], { root });
    expect(always.code, always.stderr).toBe(0);
    expect(always.stderr).toContain(`Status: Image is up to date for ${reg.host}/t/bb:1`);
    expect(always.stderr).not.toContain('Unable to find');
  });

  it('a bad policy and an image no registry has: one line, 125', async () => {
    const root = join(tmp.dir, 'bad');
    const bad = await runCli(['run', '--rm', '--pull', 'sometimes', 'busybox', 'true'], { root });
    expect(bad.code).toBe(125);
    expectOneLineError(bad, /INVALID_ARGUMENT: invalid --pull/);
    const none = await runCli(['run', '--rm', `${reg.host}/t/nothing:1`, 'true'], { root });
    expect(none.code).toBe(125);
    expect(none.stderr.split('\n')[0]).toBe(`Unable to find image '${reg.host}/t/nothing:1' locally`);
  });
});
