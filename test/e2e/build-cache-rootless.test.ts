/**
 * The build cache from an unprivileged CLI (`imgbuild-ci`, test/helpers/rootless.ts), as a CI
 * container without root runs it: a rootless build exports its steps to a registry with token auth
 * (credentials from the user's own `login`) and to an OCI layout in its HOME; another user
 * environment, a second machine, builds from either with no RUN run, to the same layers.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { chown, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { makeUserEnv, useUserEnv, type TestUser, type UserEnv } from '../helpers/rootless.js';
import { layerSteps } from '../helpers/build-outcomes.js';

let reg: TestRegistry;
let user: TestUser;
let env: UserEnv;
useUserEnv((u, e) => {
  user = u;
  env = e;
});
beforeAll(async () => {
  reg = await startRegistry({ mode: 'token' });
});
afterAll(async () => {
  await reg?.stop();
});

/** A context dir of the user's: the Dockerfile and one file. */
async function contextOf(e: UserEnv): Promise<string> {
  const dir = join(e.dir, 'ctx');
  await mkdir(dir);
  await chown(dir, e.user.uid, e.user.gid);
  await e.file('ctx/Dockerfile', DOCKERFILE);
  await e.file('ctx/f', 'file\n');
  return dir;
}

const DOCKERFILE = 'FROM busybox\nCOPY f /f\nRUN head -c 64 /dev/urandom > /r && chown 1000:1000 /f\nRUN head -c 64 /dev/urandom > /r2\n';

it('a rootless build exports to a registry and a local layout; another rootless store builds from each with no RUN run', async () => {
  await env.importBusybox();
  const ctx = await contextOf(env);
  const login = await env.cli(['login', '-u', 'alice', '--password-stdin', reg.host], { input: 'wonderland\n' });
  expect(login.code, login.stderr).toBe(0);
  const ref = `${reg.host}/rootless/app:cache`;
  const local = join(env.dir, 'cache-dir');
  // dest= relative to the working directory (the user's HOME), as the user typed it.
  const first = await env.cli(['build', '-q', '-t', 'app:1', '--cache-to', `type=registry,ref=${ref}`, '--cache-to', 'type=local,dest=cache-dir', ctx], { cwd: env.dir });
  expect(first.code, first.stderr).toBe(0);
  const firstLayers = await env.cli(['inspect', '-f', '{{json .RootFS.Layers}}', 'app:1']);
  expect(JSON.parse(firstLayers.stdout)).toHaveLength(4);

  // Other machines: user environments of their own (stores, HOMEs, docker configs).
  for (const from of [ref, `type=local,src=${local}`]) {
    const other = await makeUserEnv(user);
    try {
      await other.importBusybox();
      if (from === ref) {
        const l = await other.cli(['login', '-u', 'alice', '--password-stdin', reg.host], { input: 'wonderland\n' });
        expect(l.code, l.stderr).toBe(0);
      }
      const b = await other.cli(['build', '--progress=plain', '-t', 'app:1', '--cache-from', from, await contextOf(other)]);
      expect(b.code, b.stderr).toBe(0);
      expect(layerSteps(b.stderr).map(([, s]) => s), b.stderr).toEqual(['CACHED', 'CACHED', 'CACHED']);
      // The layers are the first machine's (the base image's config differs: each store imported it at its own time).
      const layers = await other.cli(['inspect', '-f', '{{json .RootFS.Layers}}', 'app:1']);
      expect(layers.stdout).toBe(firstLayers.stdout);
    } finally {
      await other.cleanup();
    }
  }
}, 90_000);
