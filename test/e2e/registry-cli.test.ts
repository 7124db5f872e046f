/**
 * The registry commands as a user runs them (built CLI, real registry with htpasswd auth):
 * login (checked against the registry, saved in $DOCKER_CONFIG/config.json or a credential
 * helper), push, pull, errors with their registry codes, logout.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { makeTmp } from '../helpers/tmp.js';
import { runCli } from '../helpers/cli.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { ensureBusybox } from '../helpers/base-image.js';
import { OciStore } from '../../src/store/store.js';
import { loadImage } from '../../src/store/images.js';
import { MediaTypes } from '../../src/image/media-types.js';

const tmp = await makeTmp('imgbuild-e2e-regcli-');
let reg: TestRegistry;
const srcRoot = join(tmp.dir, 'src');
const dockerDir = join(tmp.dir, 'docker');
const env = { DOCKER_CONFIG: dockerDir };

beforeAll(async () => {
  reg = await startRegistry({ mode: 'basic' });
  await ensureBusybox(srcRoot);
});
afterAll(async () => {
  await reg?.stop();
  await tmp.cleanup();
});

describe('login, push, pull, logout', () => {
  it('login with a wrong password fails with 401 and the realm, and saves nothing', async () => {
    const r = await runCli(['login', '-u', 'alice', '--password-stdin', reg.host], { root: srcRoot, env, input: 'wrong\n' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/UNAUTHORIZED/);
    expect(r.stderr).toMatch(/imgbuild-test-realm/);
    await expect(readFile(join(dockerDir, 'config.json'), 'utf8')).rejects.toThrow();
  });

  it('push without credentials is refused', async () => {
    const r = await runCli(['push', 'busybox', `${reg.host}/cli/bb:1`], { root: srcRoot, env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/UNAUTHORIZED/);
  });

  it('login saves base64 credentials in config.json', async () => {
    const r = await runCli(['login', '-u', 'alice', '--password-stdin', reg.host], { root: srcRoot, env, input: 'wonderland\n' });
    expect(r.stderr).toBe(`credentials saved in ${join(dockerDir, 'config.json')}\n`);
    expect(r.stdout).toBe('Login Succeeded\n');
    expect(r.code).toBe(0);
    const cfg = JSON.parse(await readFile(join(dockerDir, 'config.json'), 'utf8')) as { auths: Record<string, { auth: string }> };
    expect(Buffer.from(cfg.auths[reg.host]!.auth, 'base64').toString()).toBe('alice:wonderland');
  });

  it('push prints per-layer lines and the digest', async () => {
    const r = await runCli(['push', 'busybox', `${reg.host}/cli/bb:1`], { root: srcRoot, env });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe(`Pushing ${reg.host}/cli/bb:1`);
    expect(lines).toContain(lines.find((l) => /^[0-9a-f]{12}: Pushed$/.test(l)));
    expect(lines.at(-1)).toMatch(/^1: digest: sha256:[0-9a-f]{64} size: \d+$/);
    const again = await runCli(['push', '-q', 'busybox', `${reg.host}/cli/bb:1`], { root: srcRoot, env });
    expect(again.code).toBe(0);
    expect(again.stdout).toBe(`${/digest: (sha256:[0-9a-f]{64})/.exec(r.stdout)![1]}\n`);
  });

  it('push --compression zstd, then pull it back', async () => {
    const r = await runCli(['push', '-q', '--compression', 'zstd', 'busybox', `${reg.host}/cli/bb:zstd`], { root: srcRoot, env });
    expect(r.code).toBe(0);
    const root = join(tmp.dir, 'dst');
    const p = await runCli(['pull', '-q', `${reg.host}/cli/bb:zstd`], { root, env });
    expect(p.stderr).toBe('');
    expect(p.stdout).toBe(`${reg.host}/cli/bb:zstd\n`);
    const store = await OciStore.open(root);
    const d = (await store.resolve(`${reg.host}/cli/bb:zstd`))!;
    expect(d.digest).toBe(r.stdout.trim());
    expect((await loadImage(store, d)).manifest.layers[0]!.mediaType).toBe(MediaTypes.OCI_LAYER_ZSTD);
  });

  it('pull prints progress lines, the digest and the reference', async () => {
    const root = join(tmp.dir, 'dst2');
    const p = await runCli(['pull', `${reg.host}/cli/bb:1`], { root, env });
    expect(p.code).toBe(0);
    const lines = p.stdout.trim().split('\n');
    expect(lines[0]).toBe(`Pulling ${reg.host}/cli/bb:1`);
    expect(lines.some((l) => /^[0-9a-f]{12}: Pull complete$/.test(l))).toBe(true);
    expect(lines.at(-3)).toMatch(/^Digest: sha256:[0-9a-f]{64}$/);
    expect(lines.at(-1)).toBe(`${reg.host}/cli/bb:1`);
    const second = await runCli(['pull', `${reg.host}/cli/bb:1`], { root, env });
    expect(second.stdout).toMatch(/Already exists/);
    expect(second.stdout).toContain(`Status: Image is up to date for ${reg.host}/cli/bb:1`);
  });

  it('pull of a missing tag names MANIFEST_UNKNOWN', async () => {
    const p = await runCli(['pull', `${reg.host}/cli/bb:nope`], { root: join(tmp.dir, 'dst3'), env });
    expect(p.code).toBe(1);
    expect(p.stderr).toMatch(/NOT_FOUND: GET manifest .*HTTP 404: MANIFEST_UNKNOWN/);
  });

  it('bad flags are usage errors', async () => {
    const p = await runCli(['push', '--compression', 'lz4', 'busybox', `${reg.host}/cli/bb:1`], { root: srcRoot, env });
    expect(p.code).toBe(1);
    expect(p.stderr).toMatch(/--compression must be gzip, zstd or none/);
    const q = await runCli(['pull', '--platform', 'nonsense/a/b/c', `${reg.host}/cli/bb:1`], { root: srcRoot, env });
    expect(q.code).toBe(1);
    expect(q.stderr).toMatch(/invalid platform/);
  });

  it('logout removes the credentials; later pulls are refused', async () => {
    const r = await runCli(['logout', reg.host], { root: srcRoot, env });
    expect(r.stdout).toBe(`Removing login credentials for ${reg.host}\n`);
    const cfg = JSON.parse(await readFile(join(dockerDir, 'config.json'), 'utf8')) as { auths: Record<string, unknown> };
    expect(cfg.auths[reg.host]).toBeUndefined();
    const again = await runCli(['logout', reg.host], { root: srcRoot, env });
    expect(again.stdout).toBe(`Not logged in to ${reg.host}\n`);
    const p = await runCli(['pull', `${reg.host}/cli/bb:1`], { root: join(tmp.dir, 'dst4'), env });
    expect(p.code).toBe(1);
    expect(p.stderr).toMatch(/UNAUTHORIZED/);
  });
});

describe('credential helpers', () => {
  it('login stores through credsStore, pulls read it back, logout erases it', async () => {
    const bin = join(tmp.dir, 'bin');
    const helperDir = join(tmp.dir, 'helper-docker');
    const credFile = join(tmp.dir, 'helper-creds.json');
    await mkdir(bin, { recursive: true });
    await mkdir(helperDir, { recursive: true });
    const script = join(bin, 'docker-credential-imgtest');
    await writeFile(
      script,
      `#!/bin/sh
f="${credFile}"
case "$1" in
  store) cat > "$f" ;;
  get) read url; if [ -f "$f" ] && [ "$(jq -r .ServerURL "$f")" = "$url" ]; then cat "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  erase) read url; if [ -f "$f" ]; then rm -f "$f"; else echo "credentials not found in native keychain"; exit 1; fi ;;
esac
`,
    );
    await chmod(script, 0o755);
    await writeFile(join(helperDir, 'config.json'), JSON.stringify({ credsStore: 'imgtest' }));
    const henv = { DOCKER_CONFIG: helperDir, PATH: `${bin}:${process.env.PATH}` };
    const l = await runCli(['login', '-u', 'bob', '-p', 'builder', reg.host], { root: srcRoot, env: henv });
    expect(l.code).toBe(0);
    expect(l.stderr).toBe('credentials saved in docker-credential-imgtest\n');
    expect(JSON.parse(await readFile(credFile, 'utf8'))).toEqual({ ServerURL: reg.host, Username: 'bob', Secret: 'builder' });
    const cfg = JSON.parse(await readFile(join(helperDir, 'config.json'), 'utf8')) as { auths: Record<string, { auth?: string }> };
    expect(cfg.auths[reg.host]?.auth).toBeUndefined();
    const p = await runCli(['pull', '-q', `${reg.host}/cli/bb:1`], { root: join(tmp.dir, 'dst5'), env: henv });
    expect(p.stderr).toBe('');
    expect(p.code).toBe(0);
    const o = await runCli(['logout', reg.host], { root: srcRoot, env: henv });
    expect(o.stdout).toBe(`Removing login credentials for ${reg.host}\n`);
    await expect(readFile(credFile)).rejects.toThrow();
  });
});
