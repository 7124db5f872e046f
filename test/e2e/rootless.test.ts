/**
 * imgbuild as an unprivileged user (`imgbuild-ci`, see test/helpers/rootless.ts): the store lands
 * in the user's $XDG_DATA_HOME, image commands work there, and what needs privileges it does not
 * have fails with one line naming the problem. Each test checks that the user has no process and
 * nothing mounted left.
 */
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readdir, stat } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { expectOneLineError } from '../helpers/cli.js';
import { ensureTestUser, makeUserEnv, type TestUser, type UserEnv } from '../helpers/rootless.js';

let user: TestUser;
let env: UserEnv;

beforeAll(() => {
  user = ensureTestUser();
});
beforeEach(async () => {
  env = await makeUserEnv(user);
});
afterEach(async () => {
  await env.cleanup();
});

describe('rootless', () => {
  it('the test user is unprivileged and has subordinate id ranges', () => {
    expect(user.uid).toBeGreaterThan(0);
    const sub = (f: string) => spawnSync('grep', ['-c', `^${user.name}:`, f], { encoding: 'utf8' }).stdout.trim();
    expect(sub('/etc/subuid')).toBe('1');
    expect(sub('/etc/subgid')).toBe('1');
  });

  it('import, images, save and info work, with the store under $XDG_DATA_HOME owned by the user', async () => {
    await env.importBusybox();
    const images = await env.cli(['images', '--format', '{{.Repository}}:{{.Tag}}']);
    expect(images.stderr).toBe('');
    expect(images.stdout.trim()).toBe('busybox:latest');
    // Every file of the store belongs to the user: nothing a later command could not rewrite.
    const walk = async (d: string): Promise<string[]> => {
      const out: string[] = [];
      for (const e of await readdir(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        out.push(p);
        if (e.isDirectory()) out.push(...(await walk(p)));
      }
      return out;
    };
    const files = await walk(env.root);
    expect(files.length).toBeGreaterThan(3);
    for (const f of files) expect({ f, uid: (await stat(f)).uid }).toEqual({ f, uid: user.uid });

    const out = join(env.dir, 'busybox-saved.tar');
    const saved = await env.cli(['save', '-o', out, 'busybox:latest']);
    expect(saved.stderr).toBe('');
    expect(saved.code).toBe(0);
    const list = spawnSync('tar', ['-tf', out], { encoding: 'utf8' });
    expect(list.stdout).toContain('index.json');
    expect((await stat(out)).uid).toBe(user.uid);

    const info = await env.cli(['info', '--format', '{{.Rootless}} {{.RootDir}}']);
    expect(info.stdout.trim()).toBe(`true ${env.root}`);
  });

  it('a command this user cannot do yet fails with one line, without a stack trace, and leaves nothing', async () => {
    await env.importBusybox();
    const r = await env.cli(['run', '--rm', 'busybox', 'true']);
    expect(r.code).toBe(125);
    expectOneLineError(r, /^imgbuild: [A-Z_]+: /);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
