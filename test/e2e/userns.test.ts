/**
 * `--userns=auto` as root (podman's): each container, and a build's RUN steps, in a user namespace
 * with a range of ids of its own from the subordinate ranges of user `containers`, read here from
 * fixture files (IMGBUILD_SUBUID_FILE / IMGBUILD_SUBGID_FILE), never from /etc/subuid.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setupEnv, leftovers, NOTHING, waitFor, type Env } from './containers-env.js';
import { expectOneLineError, CLI_EXE, REPO_ROOT, okOut } from '../helpers/cli.js';
import { onPty } from './pty.js';

// Room for exactly two ranges of the default size: a third container must wait for one to go.
const START = 400_000_000;
const SIZE = 131_072;
let env: Env;
let ids: NodeJS.ProcessEnv;

beforeAll(async () => {
  env = await setupEnv();
  writeFileSync(join(env.dir, 'subuid'), `someone:100000:65536\ncontainers:${START}:${SIZE}\n`);
  writeFileSync(join(env.dir, 'subgid'), `containers:${START}:${SIZE}\n`);
  ids = { IMGBUILD_SUBUID_FILE: join(env.dir, 'subuid'), IMGBUILD_SUBGID_FILE: join(env.dir, 'subgid') };
});
afterAll(async () => {
  await env?.cleanup();
});

const cli = (args: string[]): ReturnType<Env['cli']> => env.cli(args, { env: ids });
const held = (): string[] => (existsSync(join(env.root, 'userns')) ? readdirSync(join(env.root, 'userns')).filter((n) => n.endsWith('.json')) : []);
interface Inspected {
  HostConfig: { UsernsMode: string; IDMappings?: { UidMap: string[]; GidMap: string[] } };
  GraphDriver: { Data: { UpperDir: string } };
}
const inspect = async (id: string): Promise<Inspected> => (JSON.parse(okOut(await cli(['inspect', id]))) as Inspected[])[0]!;

describe('run --userns=auto', () => {
  it('container root is not host root: the uid map shows the range, and the image\'s files are root\'s inside', async () => {
    const r = await cli(['run', '--rm', '--userns=auto', 'busybox', 'sh', '-c', 'cat /proc/self/uid_map /proc/self/gid_map; id -u; stat -c "%u:%g" /bin/busybox /etc /; touch /new && stat -c "%u" /new']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]!.trim().split(/\s+/)).toEqual(['0', String(START), '65536']);
    expect(lines[1]!.trim().split(/\s+/)).toEqual(['0', String(START), '65536']);
    expect(lines.slice(2)).toEqual(['0', '0:0', '0:0', '0:0', '0']);
    // The host's own namespace is not the container's.
    expect((await cli(['run', '--rm', 'busybox', 'cat', '/proc/self/uid_map'])).stdout.trim().split(/\s+/)).toEqual(['0', '0', '4294967295']);
    expect(held()).toEqual([]); // --rm gave the range back
  });

  it('auto:size=N maps N ids; a new volume belongs to the container\'s root', async () => {
    const r = await cli(['run', '--rm', '--userns=auto:size=1000', '-v', 'uvol:/vol', 'busybox', 'sh', '-c', 'cat /proc/self/uid_map; stat -c "%u:%g" /vol; echo x > /vol/f']);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]!.trim().split(/\s+/)).toEqual(['0', String(START), '1000']);
    expect(r.stdout.split('\n')[1]).toBe('0:0');
    const data = JSON.parse((await cli(['volume', 'inspect', 'uvol'])).stdout)[0].Mountpoint as string;
    expect(statSync(join(data, 'f'))).toMatchObject({ uid: START, gid: START });
    expect((await cli(['volume', 'rm', 'uvol'])).code).toBe(0);
  });

  it('a bind shows host owners as they are (unmapped: 65534); with podman\'s :idmap, through the mapping', async () => {
    const host = join(env.dir, 'bind');
    mkdirSync(host, { recursive: true });
    writeFileSync(join(host, 'f'), 'x');
    const plain = await cli(['run', '--rm', '--userns=auto', '-v', `${host}:/h`, 'busybox', 'stat', '-c', '%u:%g', '/h/f']);
    expect(plain.stdout).toBe('65534:65534\n');
    const idmapped = await cli(['run', '--rm', '--userns=auto', '-v', `${host}:/h:idmap`, 'busybox', 'sh', '-c', 'stat -c %u:%g /h/f && touch /h/made']);
    expect(idmapped.stdout).toBe('0:0\n');
    expect(statSync(join(host, 'made'))).toMatchObject({ uid: 0, gid: 0 });
    expectOneLineError(await cli(['run', '--rm', '-v', `${host}:/h:idmap`, 'busybox', 'true']), /^imgbuild: INVALID_ARGUMENT: the idmap volume option needs --userns=auto/);
  });

  it('concurrent containers get disjoint ranges; exec, commit, stop and rm work; rm frees the range for another', async () => {
    const a = (await cli(['run', '-d', '--userns=auto', 'busybox', 'sh', '-c', 'echo hi > /written; mkdir /d; chown 5:6 /d; sleep 300'])).stdout.trim();
    const b = (await cli(['run', '-d', '--userns=auto', 'busybox', 'sleep', '300'])).stdout.trim();
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(b).toMatch(/^[0-9a-f]{64}$/);
    const [ia, ib] = await Promise.all([inspect(a), inspect(b)]);
    expect(ia.HostConfig.UsernsMode).toBe('auto');
    const startOf = (i: Inspected): number => Number(i.HostConfig.IDMappings!.UidMap[0]!.split(':')[1]);
    expect(ia.HostConfig.IDMappings!.UidMap[0]).toMatch(/^0:\d+:65536$/);
    expect(new Set([startOf(ia), startOf(ib)])).toEqual(new Set([START, START + 65536]));
    expect(ia.HostConfig.IDMappings!.GidMap[0]).toBe(`0:${startOf(ia)}:65536`);

    // The file the container wrote is owned on the host by its range's first id.
    const written = join(ia.GraphDriver.Data.UpperDir, 'written');
    await waitFor(() => { try { return statSync(join(ia.GraphDriver.Data.UpperDir, 'd')).uid === startOf(ia) + 5 || undefined; } catch { return undefined; } });
    expect(statSync(written)).toMatchObject({ uid: startOf(ia), gid: startOf(ia) });

    // exec enters the user namespace: the same map, the file is root's inside.
    const e = await cli(['exec', a, 'sh', '-c', 'cat /proc/self/uid_map; stat -c "%u:%g" /written /d; id -u']);
    expect(e.code).toBe(0);
    expect(e.stdout.trim().split('\n').map((l) => l.trim().split(/\s+/).join(' '))).toEqual([`0 ${startOf(ia)} 65536`, '0:0', '5:6', '0']);

    // A terminal made by exec belongs to the container's root.
    expect(await onPty(['--root', env.root, 'exec', '-t', a, 'sh', '-c', 'stat -c %u "$(tty)"; id -u'])).toBe('0\n0\nEXIT 0');

    // cp and export carry the ids the container sees; cp into it gives its root's.
    const tarOf = (args: string): string =>
      spawnSync('sh', ['-c', `${CLI_EXE} --root ${env.root} ${args} | tar -tvf - | awk '{print $2, $6}'`], { encoding: 'utf8' }).stdout;
    expect(tarOf(`cp ${a}:/d -`)).toBe('5/6 d/\n');
    expect(tarOf(`export ${a}`).split('\n').filter((l) => / (written|d\/|bin\/busybox)$/.test(l)).sort()).toEqual(['0/0 bin/busybox', '0/0 written', '5/6 d/']);
    writeFileSync(join(env.dir, 'hostfile'), 'x');
    expect((await cli(['cp', join(env.dir, 'hostfile'), `${a}:/copied`])).code).toBe(0);
    expect((await cli(['exec', a, 'stat', '-c', '%u:%g', '/copied'])).stdout).toBe('0:0\n');
    expect(statSync(join(ia.GraphDriver.Data.UpperDir, 'copied'))).toMatchObject({ uid: startOf(ia), gid: startOf(ia) });

    // No range is left: a third container is refused, in one line.
    const c = await cli(['run', '--rm', '--userns=auto', 'busybox', 'true']);
    expectOneLineError(c, /^imgbuild: UNAVAILABLE: --userns=auto: no free range of 65536 uids left for user containers in .*subuid/);
    expect(c.code).toBe(125);

    // commit records the ids the container saw, not the range's.
    expect((await cli(['commit', a, 'userns-committed'])).code).toBe(0);
    const fromImage = await cli(['run', '--rm', 'userns-committed', 'stat', '-c', '%n %u:%g', '/written', '/d']);
    expect(fromImage.stdout).toBe('/written 0:0\n/d 5:6\n');

    // Stopped and started again, it keeps its range and its files' owners.
    expect((await cli(['stop', '-t', '1', a])).code).toBe(0);
    expect((await cli(['start', a])).code).toBe(0);
    expect((await cli(['exec', a, 'sh', '-c', 'cat /proc/self/uid_map; stat -c %u /written'])).stdout.split('\n').map((l) => l.trim().split(/\s+/).join(' '))).toEqual([`0 ${startOf(ia)} 65536`, '0', '']);
    expect((await cli(['stop', '-t', '1', a])).code).toBe(0);
    expect((await cli(['rm', a])).code).toBe(0);
    expect(leftovers(a, undefined)).toEqual(NOTHING);
    const again = await cli(['run', '--rm', '--userns=auto', 'busybox', 'cat', '/proc/self/uid_map']);
    expect(again.code).toBe(0);
    expect(again.stdout.trim().split(/\s+/)[1]).toBe(String(startOf(ia)));
    expect((await cli(['rm', '-f', b])).code).toBe(0);
    expect(held()).toEqual([]);
    expect((await cli(['rmi', 'userns-committed'])).code).toBe(0);
  });

  it('a killed run --rm gives its range back with its container', async () => {
    const child = spawn(CLI_EXE, ['--root', env.root, 'run', '--rm', '--userns=auto', 'busybox', 'sleep', '300'], { cwd: REPO_ROOT, env: { ...process.env, ...ids }, stdio: 'ignore' });
    await waitFor(() => (held().length === 1 ? true : undefined));
    await waitFor(async () => ((await cli(['ps', '-q'])).stdout.trim() !== '' || undefined));
    const id = (await cli(['ps', '-q', '--no-trunc'])).stdout.trim();
    child.kill('SIGKILL');
    await new Promise((r) => child.once('close', r));
    // Its container ends with it; the next command that lists containers finishes its removal
    // (list.ts), and its range goes with it.
    await waitFor(async () => ((await cli(['ps', '-aq'])).stdout === '' || undefined));
    expect(held()).toEqual([]);
    expect(leftovers(id)).toEqual(NOTHING);
  });

  it('host is the default; errors are one line', async () => {
    const h = (await cli(['create', '--userns=host', 'busybox', 'true'])).stdout.trim();
    const d = (await cli(['create', 'busybox', 'true'])).stdout.trim();
    expect((await inspect(h)).HostConfig).toMatchObject({ UsernsMode: 'host' });
    expect((await inspect(d)).HostConfig.UsernsMode).toBe('');
    expect((await inspect(d)).HostConfig.IDMappings).toBeUndefined();
    expect((await cli(['rm', h, d])).code).toBe(0);

    const bad = await cli(['run', '--rm', '--userns=sideways', 'busybox', 'true']);
    expectOneLineError(bad, /^imgbuild: INVALID_ARGUMENT: invalid --userns "sideways"/);
    expect(bad.code).toBe(125);
    expectOneLineError(await cli(['run', '--rm', '--userns=auto', '--pid', 'host', 'busybox', 'true']), /^imgbuild: INVALID_ARGUMENT: --pid host cannot be used with --userns=auto/);
    const fuse = await env.cli(['run', '--rm', '--userns=auto', 'busybox', 'true'], { env: { ...ids, IMGBUILD_STORAGE_DRIVER: 'fuse-overlayfs' } });
    expectOneLineError(fuse, /^imgbuild: NOT_IMPLEMENTED: --userns=auto needs the overlay storage driver/);
    writeFileSync(join(env.dir, 'nosub'), 'someone:100000:65536\n');
    const none = await env.cli(['run', '--rm', '--userns=auto', 'busybox', 'true'], { env: { ...ids, IMGBUILD_SUBUID_FILE: join(env.dir, 'nosub') } });
    expectOneLineError(none, /^imgbuild: FAILED_PRECONDITION: --userns=auto: no subordinate uid range for user containers in .*nosub: add one with usermod --add-subuids 2147483647-4294967294 containers/);
    expect(none.code).toBe(125);
    expect(held()).toEqual([]);
  });
});

describe('build --userns=auto', () => {
  it('RUN sees a mapped uid_map; the layers record in-container owners; the range is given back', async () => {
    const ctx = join(env.dir, 'ctx');
    mkdirSync(ctx, { recursive: true });
    writeFileSync(join(ctx, 'ctxfile'), 'from the context\n');
    writeFileSync(join(ctx, 'Dockerfile'), [
      'FROM busybox',
      'WORKDIR /w',
      'RUN cat /proc/self/uid_map > /w/map && stat -c "%u:%g" / /bin/busybox > /w/owners && echo made > /w/f && mkdir /d && chown 7:8 /d',
      'RUN --mount=type=bind,source=ctxfile,target=/m/ctxfile --mount=type=cache,target=/cache stat -c "%u" /m/ctxfile /w/f > /w/seen && touch /cache/c',
      '',
    ].join('\n'));
    const r = await cli(['build', '--progress', 'plain', '--userns=auto', '-t', 'userns-built', ctx]);
    expect(r.code, r.stderr).toBe(0);
    expect(held()).toEqual([]);
    const out = await cli(['run', '--rm', 'userns-built', 'sh', '-c', 'cat /w/map /w/owners /w/seen; stat -c "%n %u:%g" /w /w/f /d']);
    const lines = out.stdout.trim().split('\n').map((l) => l.trim().split(/\s+/).join(' '));
    expect(lines).toEqual([`0 ${START} 65536`, '0:0', '0:0', '0', '0', '/w 0:0', '/w/f 0:0', '/d 7:8']);
    expect((await cli(['rmi', 'userns-built'])).code).toBe(0);
  });
});

describe('a killed build', () => {
  it('keeps its range only until prune finds its process gone; no file of the range is left', async () => {
    const ctx = join(env.dir, 'kctx');
    mkdirSync(ctx, { recursive: true });
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM busybox\nRUN touch /x && sleep 120\n');
    const rangeOwned = (): string => spawnSync('find', [env.root, '-uid', `+${START - 1}`], { encoding: 'utf8' }).stdout;
    const child = spawn(CLI_EXE, ['--root', env.root, 'build', '--no-cache', '--userns=auto', '--progress', 'plain', ctx], { cwd: REPO_ROOT, env: { ...process.env, ...ids }, stdio: 'ignore' });
    // Killed while its RUN runs: the step's upper dir (and /x) belong to the range then.
    await waitFor(() => (held().some((n) => n.startsWith('build-')) && rangeOwned().includes('/x') ? true : undefined), 60_000);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('close', r));
    expect(held()).toHaveLength(1);
    expect((await cli(['prune', '-f'])).code).toBe(0);
    expect(held()).toEqual([]);
    expect(rangeOwned()).toBe('');
  });
});

describe('nothing left', () => {
  it('no range records, no containers, no mounts under the store', async () => {
    expect(held()).toEqual([]);
    expect((await cli(['ps', '-aq'])).stdout).toBe('');
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(env.dir));
    expect(mounts).toEqual([]);
  });
});
