/**
 * Cache mounts in a build cache from an unprivileged CLI (`imgbuild-ci`, test/helpers/rootless.ts),
 * as a CI container without root runs it: a rootless build fills a RUN cache mount (a file owned
 * by an id of its subordinate range among it) and exports it with `cache-mounts=true` to an OCI
 * layout; another user environment, a second machine, whose RUN misses finds the mount restored
 * with the same owners as the first saw them.
 */
import { expect, it } from 'vitest';
import { chown, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { makeUserEnv, useUserEnv, type TestUser, type UserEnv } from '../helpers/rootless.js';

let user: TestUser;
let env: UserEnv;
useUserEnv((u, e) => {
  user = u;
  env = e;
});

const DOCKERFILE = [
  'FROM busybox',
  'COPY f /f',
  "RUN --mount=type=cache,target=/cache sh -c 'if test -f /cache/x; then echo restored > /result; else echo built > /cache/x; chown 1234:1234 /cache/x; echo cold > /result; fi; stat -c %u:%g /cache/x >> /result'",
  '',
].join('\n');

async function contextOf(e: UserEnv, f: string): Promise<string> {
  const dir = join(e.dir, 'ctx');
  await mkdir(dir, { recursive: true });
  await chown(dir, e.user.uid, e.user.gid);
  await e.file('ctx/Dockerfile', DOCKERFILE);
  await e.file('ctx/f', f);
  return dir;
}

async function result(e: UserEnv): Promise<string> {
  const r = await e.cli(['run', '--rm', '--network', 'none', 'app', 'cat', '/result']);
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}

it('a rootless build exports its cache mount; another rootless store whose RUN misses finds it restored, owners kept', async () => {
  await env.importBusybox();
  const layout = join(env.dir, 'cache-dir');
  const first = await env.cli(['build', '-q', '-t', 'app', '--cache-to', `type=local,dest=${layout},cache-mounts=true`, await contextOf(env, 'one\n')]);
  expect(first.code, first.stderr).toBe(0);
  expect(await result(env)).toBe('cold\n1234:1234\n');

  const other = await makeUserEnv(user);
  try {
    await other.importBusybox();
    const b = await other.cli(['build', '--progress=plain', '-t', 'app', '--cache-from', `type=local,src=${layout}`, await contextOf(other, 'two\n')]);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stderr).toMatch(/cache mount \/cache: restored/);
    expect(await result(other)).toBe('restored\n1234:1234\n');
  } finally {
    await other.cleanup();
  }
}, 90_000);
