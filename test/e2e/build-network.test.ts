/**
 * RUN's network and sandbox environment, for real: a namespace of its own on the bridge per RUN
 * that reaches the host at the gateway (an HTTP server of the test's) and resolves names through
 * the host's DNS (a DNS responder of the test's on the gateway, named by a resolv.conf of the
 * test's, loopback resolvers and systemd-resolved's stub included); `--network none|host`, the
 * entitlements, `--add-host`, `--ulimit`, `--shm-size`, the hostname, the proxy build args, the
 * hint of a RUN without a network, and what a failed or killed RUN leaves: nothing.
 * Traffic only goes to the bridge's gateway, an address of this host on a bridge the test holds.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { mkdir, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { makeTmp } from '../helpers/tmp.js';
import { writeContext } from '../helpers/context.js';
import { CLI_EXE, expectOneLineError, runCli, type CliResult } from '../helpers/cli.js';
import { ensureBusybox, BUSYBOX_REF } from '../helpers/base-image.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { build, type BuildOptions } from '../../src/builder/build.js';
import { StepNetworks } from '../../src/builder/dispatch/run-network.js';
import { setupNetwork, teardownNetwork, type NetworkState } from '../../src/host/network.js';
import { FALLBACK_NAMESERVERS } from '../../src/host/resolv-conf.js';
import { OciStore } from '../../src/store/store.js';
import { findImage } from '../../src/store/images.js';
import { openLayerTar } from '../../src/store/layers.js';
import { readTar } from '../../src/tar/reader.js';
import type { Descriptor } from '../../src/image/types.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;
/** A lease the test holds on the bridge, so that its gateway address is there for the servers. */
const holdId = randomBytes(12).toString('hex');
let hold: NetworkState;
let gateway: string;
let http: Server;
let port: number;
let dns: DnsServer;
const BODY = 'served-over-the-bridge\n';

beforeAll(async () => {
  tmp = await makeTmp('imgbuild-e2e-build-net-');
  root = join(tmp.dir, 'root');
  await ensureBusybox(root);
  hold = await setupNetwork(holdId, 'bridge');
  gateway = hold.gateway!;
  http = createServer((req, res) => {
    res.writeHead(req.url === '/file' ? 200 : 404, { 'content-type': 'text/plain' });
    res.end(req.url === '/file' ? BODY : 'not found\n');
  });
  await new Promise<void>((resolve) => http.listen(0, gateway, resolve));
  port = (http.address() as { port: number }).port;
  dns = await startDnsServer(gateway, { 'web.build.test': gateway });
}, 120_000);

afterAll(async () => {
  await dns?.close();
  await new Promise<void>((resolve) => (http ? http.close(() => resolve()) : resolve()));
  if (hold) await teardownNetwork(holdId, hold);
  await tmp?.cleanup();
});

const context = (name: string, files: Record<string, string>): Promise<string> => writeContext(tmp.dir, name, files);
const cli = (args: string[]): Promise<CliResult> => runCli(args, { root });

async function buildOk(args: string[]): Promise<{ id: string; stderr: string }> {
  const r = await cli(['build', '--progress=plain', ...args]);
  if (r.code !== 0) throw new Error(`build failed (${r.code}):\n${r.stderr}`);
  return { id: r.stdout.trim(), stderr: r.stderr };
}

/** The files of every layer of an image, merged (later layers win). */
async function files(ref: string): Promise<Map<string, string>> {
  const store = await OciStore.open(root);
  const img = await findImage(store, ref);
  const manifest = JSON.parse((await store.read(img.descriptor)).toString('utf8')) as { layers: Descriptor[] };
  const out = new Map<string, string>();
  for (const l of manifest.layers) {
    for await (const e of readTar(await openLayerTar(store, l))) {
      const chunks: Buffer[] = [];
      if (e.body) for await (const c of e.body) chunks.push(c as Buffer);
      if (e.header.type === 'file') out.set(e.header.name.replace(/^\.?\//, ''), Buffer.concat(chunks).toString('utf8'));
    }
  }
  return out;
}

async function libBuild(name: string, dockerfile: string, o: Partial<BuildOptions> = {}): Promise<Map<string, string>> {
  const ctx = await context(name, { Dockerfile: dockerfile });
  await build({ root, contextDir: ctx, tags: [name], noCache: true, buildArgs: { GW: gateway, PORT: String(port) }, ...o });
  return files(name);
}

async function hostFile(name: string, text: string): Promise<string> {
  const p = join(tmp.dir, 'dns', name);
  await mkdir(join(tmp.dir, 'dns'), { recursive: true });
  await writeFile(p, text);
  return p;
}

/** Inodes of the named network namespaces on the host. */
function netnsInodes(): Set<number> {
  return new Set(readdirSync('/run/netns').map((n) => statSync(join('/run/netns', n)).ino));
}
function linkIndexes(): Set<number> {
  return new Set(readdirSync('/sys/class/net').map((n) => Number(readFileSync(`/sys/class/net/${n}/ifindex`, 'utf8'))));
}
/** Host pids whose network namespace is `ino`. */
function pidsInNetns(ino: number): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (statSync(`/proc/${p}/ns/net`).ino === ino) out.push(Number(p));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}
function mountsUnderRoot(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4]?.startsWith(root));
}
/** `net:[inode]` and the eth0 peer's ifindex a RUN printed (`ns=... link=...`). */
function printed(stderr: string): { ino: number; link: number }[] {
  return [...stderr.matchAll(/ns=net:\[(\d+)\] link=(\d+)/g)].map((m) => ({ ino: Number(m[1]), link: Number(m[2]) }));
}
const PRINT_NET = 'echo "ns=$(readlink /proc/self/ns/net) link=$(cat /sys/class/net/eth0/iflink)"';

describe('the default network', () => {
  it('gives each RUN a namespace of its own on the bridge that reaches the host and resolves names through its DNS', async () => {
    const resolvConf = await hostFile('mixed', `nameserver 127.0.0.1\nnameserver ${gateway}\n`);
    const before = dns.questions.length;
    const f = await libBuild('default-net', [
      'FROM busybox',
      'ARG GW',
      'ARG PORT',
      'RUN readlink /proc/self/ns/net > /ns1 && ip -4 route > /route && cat /etc/resolv.conf > /resolv && ' +
        'wget -q -O /by-ip "http://$GW:$PORT/file" && wget -q -O /by-name "http://web.build.test:$PORT/file"',
      'RUN readlink /proc/self/ns/net > /ns2',
    ].join('\n'), { dns: { resolvConf } });
    expect(f.get('by-ip')).toBe(BODY);
    expect(f.get('by-name')).toBe(BODY);
    expect(dns.questions.slice(before)).toContain('web.build.test A');
    expect(f.get('route')).toContain(`default via ${gateway} dev eth0`);
    // The loopback resolver is unreachable from the namespace: only the other one is kept.
    expect(f.get('resolv')).toBe(`nameserver ${gateway}\n`);
    const hostNs = `${await readlink('/proc/self/ns/net')}\n`;
    expect(new Set([f.get('ns1'), f.get('ns2'), hostNs]).size).toBe(3);
    // Both namespaces are gone with the build.
    const left = netnsInodes();
    for (const ns of [f.get('ns1'), f.get('ns2')]) expect(left.has(Number(/\[(\d+)\]/.exec(ns!)![1]))).toBe(false);
  });

  it("reads systemd-resolved's upstream list behind 127.0.0.53, falls back to Docker's nameservers, and keeps the file as it is on the host's network", async () => {
    const stub = await hostFile('stub', 'nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n');
    const upstream = await hostFile('upstream', `# systemd-resolved's own\nnameserver ${gateway}\nsearch build.test\n`);
    const dockerfile = 'FROM busybox\nARG PORT\nRUN cat /etc/resolv.conf > /resolv && wget -q -O /short "http://web:$PORT/file"\n';
    const a = await libBuild('resolved', dockerfile, { dns: { resolvConf: stub, systemdResolvConf: upstream } });
    expect(a.get('resolv')).toBe(`nameserver ${gateway}\nsearch build.test\n`);
    // `web` found through the search domain of the upstream list.
    expect(a.get('short')).toBe(BODY);
    expect(dns.questions).toContain('web.build.test A');

    // Only loopback resolvers: the fallbacks (the file is read, never used: no lookup is made).
    const lo = await hostFile('lo', 'nameserver 127.0.0.1\noptions ndots:1\n');
    const b = await libBuild('fallback', 'FROM busybox\nRUN cat /etc/resolv.conf > /resolv\n', { dns: { resolvConf: lo } });
    expect(b.get('resolv')).toBe(`${FALLBACK_NAMESERVERS.map((n) => `nameserver ${n}`).join('\n')}\noptions ndots:1\n`);
    const c = await libBuild('on-host', 'FROM busybox\nRUN cat /etc/resolv.conf > /resolv\n', { dns: { resolvConf: lo }, network: 'host' });
    expect(c.get('resolv')).toBe('nameserver 127.0.0.1\noptions ndots:1\n');
    const d = await libBuild('none', 'FROM busybox\nRUN ls /sys/class/net > /ifaces && cat /etc/resolv.conf > /resolv\n', { dns: { resolvConf: stub, systemdResolvConf: upstream }, network: 'none' });
    expect(d.get('ifaces')).toBe('lo\n');
    expect(d.get('resolv')).toBe(`nameserver ${gateway}\nsearch build.test\n`);
  });

  it('build --network bridge is the default network; other modes are refused', async () => {
    const ctx = await context('bridge-alias', { Dockerfile: 'FROM busybox\nRUN ls /sys/class/net | sort > /ifaces\n' });
    await buildOk(['-t', 'bridge-alias', '--network', 'bridge', ctx]);
    expect((await files('bridge-alias')).get('ifaces')).toBe('eth0\nlo\n');
    expectOneLineError(await cli(['build', '-q', '--network', 'container:x', ctx]), /INVALID_ARGUMENT: --network must be default, none or host, not container:x$/);
  });
});

describe('the sandbox of RUN', () => {
  it('--add-host, --ulimit, --shm-size and BUILDKIT_SANDBOX_HOSTNAME reach RUN; the extra hosts\' addresses stay out of the cache key', async () => {
    const ctx = await context('sandbox', {
      Dockerfile: [
        'FROM busybox',
        'RUN cat /etc/hosts > /hosts && hostname > /hostname && echo "$HOSTNAME" > /env-hostname && cat /etc/hostname > /etc-hostname && ' +
          "ulimit -n > /nofile && ulimit -Hn > /nofile-hard && mount | grep ' /dev/shm ' > /shm",
      ].join('\n'),
    });
    const flags = ['--ulimit', 'nofile=1062:2048', '--shm-size', '96m', '--build-arg', 'BUILDKIT_SANDBOX_HOSTNAME=sandbox-x', '--add-host', 'gw:host-gateway', '--add-host', 'v6=[2001:db8::7]'];
    const first = await buildOk(['-t', 'sandbox', ...flags, '--add-host', 'db:10.1.2.3', ctx]);
    const f = await files('sandbox');
    expect(f.get('hosts')).toBe(`127.0.0.1\tlocalhost sandbox-x\n::1\tlocalhost ip6-localhost ip6-loopback\n${gateway}\tgw\n2001:db8::7\tv6\n10.1.2.3\tdb\n`);
    for (const k of ['hostname', 'env-hostname', 'etc-hostname']) expect(f.get(k), k).toBe('sandbox-x\n');
    expect(f.get('nofile')).toBe('1062\n');
    expect(f.get('nofile-hard')).toBe('2048\n');
    expect(f.get('shm')).toMatch(/^shm on \/dev\/shm type tmpfs \(rw,nosuid,nodev,noexec,relatime,size=98304k/);
    // Another address for the same name: the step is cached (BuildKit keys the names only).
    const moved = await buildOk(['-t', 'sandbox', ...flags, '--add-host', 'db:10.9.9.9', ctx]);
    expect(moved.id).toBe(first.id);
    expect(moved.stderr).toMatch(/RUN cat \/etc\/hosts[^\n]*\n#\d+ CACHED/);
    // Another limit is another step.
    const other = await buildOk(['-t', 'sandbox', ...flags.map((x) => (x === 'nofile=1062:2048' ? 'nofile=1000:2048' : x)), '--add-host', 'db:10.1.2.3', ctx]);
    expect(other.id).not.toBe(first.id);

    // Without the flags: BuildKit's hosts file and hostname.
    await buildOk(['-t', 'sandbox-default', ctx]);
    const d = await files('sandbox-default');
    expect(d.get('hosts')).toBe('127.0.0.1\tlocalhost buildkitsandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n');
    expect(d.get('hostname')).toBe('buildkitsandbox\n');
    expect(d.get('shm')).toContain('size=65536k');

    expectOneLineError(await cli(['build', '-q', '--add-host', 'db', ctx]), /INVALID_ARGUMENT: bad format for add-host: "db"$/);
    expectOneLineError(await cli(['build', '-q', '--ulimit', 'nofile=2:1', ctx]), /INVALID_ARGUMENT: invalid --ulimit "nofile=2:1": soft limit above hard limit/);
    expectOneLineError(await cli(['build', '-q', '--shm-size', 'lots', ctx]), /INVALID_ARGUMENT: invalid --shm-size "lots"/);
  });

  it('RUN --network=host and --security=insecure need --allow, refused before any step runs', async () => {
    const ctx = await context('entitled', {
      Dockerfile: [
        'FROM busybox',
        'RUN echo first > /first',
        'RUN --network=host readlink /proc/self/ns/net > /host-ns',
        'RUN --security=insecure grep CapEff /proc/self/status > /insecure-caps',
        'RUN grep CapEff /proc/self/status > /default-caps',
      ].join('\n'),
    });
    const df = join(ctx, 'Dockerfile');
    expectOneLineError(await cli(['build', '-q', ctx]), new RegExp(`^imgbuild: FAILED_PRECONDITION: ${df}:3:1: network\\.host is not allowed \\(hint: grant it with build --allow network\\.host\\)$`));
    const plain = await cli(['build', '--progress=plain', ctx]);
    expect(plain.code).toBe(1);
    expect(plain.stderr).not.toContain('RUN echo first');
    expectOneLineError(await cli(['build', '-q', '--allow', 'network.host', ctx]), new RegExp(`${df}:4:1: security\\.insecure is not allowed \\(hint: grant it with build --allow security\\.insecure\\)$`));
    // build --network host grants network.host itself (as Docker's build does).
    expectOneLineError(await cli(['build', '-q', '--network', 'host', ctx]), /security\.insecure is not allowed/);

    await buildOk(['-t', 'entitled', '--allow', 'network.host', '--allow', 'security.insecure', ctx]);
    const f = await files('entitled');
    expect(f.get('host-ns')).toBe(`${await readlink('/proc/self/ns/net')}\n`);
    const bounding = /CapBnd:\s*([0-9a-f]+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1];
    expect(f.get('insecure-caps')).toBe(`CapEff:\t${bounding}\n`);
    // Docker's default set otherwise.
    expect(f.get('default-caps')).toBe('CapEff:\t00000000a80425fb\n');
    expectOneLineError(await cli(['build', '-q', '--allow', 'network.everything', ctx]), /INVALID_ARGUMENT: --allow: unknown entitlement network\.everything/);
  });

  it('proxy build args reach RUN under both spellings, outside the cache key and the history', async () => {
    const ctx = await context('proxy', { Dockerfile: 'FROM busybox\nRUN env | grep -i _proxy | sort > /proxy-env\n' });
    const args = (host: string): string[] => ['--build-arg', `HTTP_PROXY=http://${host}.invalid:3128`, '--build-arg', 'no_proxy=internal.example'];
    const a = await buildOk(['-t', 'proxy', ...args('proxy-a'), ctx]);
    expect((await files('proxy')).get('proxy-env')).toBe(
      'HTTP_PROXY=http://proxy-a.invalid:3128\nNO_PROXY=internal.example\nhttp_proxy=http://proxy-a.invalid:3128\nno_proxy=internal.example\n',
    );
    const history = await cli(['history', '--no-trunc', 'proxy']);
    expect(history.stdout).toContain('RUN /bin/sh -c env');
    expect(history.stdout).not.toMatch(/proxy-a|internal\.example/);
    // Another proxy: the same step, from the cache.
    const b = await buildOk(['-t', 'proxy', ...args('proxy-b'), ctx]);
    expect(b.id).toBe(a.id);
    expect(b.stderr).toMatch(/RUN env[^\n]*\n#\d+ CACHED/);
    // Nothing of the values in the store but the file the RUN wrote: no config, history or cache key.
    const layer = (await findImage(await OciStore.open(root), 'proxy')).manifest.layers.at(-1)!.digest.slice('sha256:'.length);
    for (const dir of [join(root, 'blobs', 'sha256'), join(root, 'cache', 'build', 'steps')]) {
      for (const n of await readdir(dir)) {
        if (n === layer) continue;
        const text = await readFile(join(dir, n)).catch(() => Buffer.alloc(0));
        expect(text.includes('proxy-a.invalid'), `${dir}/${n}`).toBe(false);
      }
    }
  });
});

describe('without a network', () => {
  it('a RUN that fails to resolve a name says that it has no network', async () => {
    const ctx = await context('no-net', { Dockerfile: 'FROM busybox\nRUN wget -q -O /x http://files.build.invalid/x\n' });
    expectOneLineError(
      await cli(['build', '-q', '--network', 'none', ctx]),
      /did not complete successfully: exit code: 1 \(hint: RUN steps have no network \(build --network none\) and a host name could not be resolved; use --network default for a network\)$/,
    );
    const own = await context('no-net-run', { Dockerfile: 'FROM busybox\nRUN --network=none wget -q -O /x http://files.build.invalid/x\n' });
    expectOneLineError(await cli(['build', '-q', own]), /exit code: 1 \(hint: this RUN has no network \(RUN --network=none\) and a host name could not be resolved; use --network default for a network\)$/);
    // Any other failure has no hint.
    const other = await context('no-net-other', { Dockerfile: 'FROM busybox\nRUN echo failing; exit 3\n' });
    expectOneLineError(await cli(['build', '-q', '--network', 'none', other]), /did not complete successfully: exit code: 3$/);
  });
});

describe('nothing left behind', () => {
  it('a failed RUN and concurrent stages leave no namespace, veth, mount or process', async () => {
    const ctx = await context('fails', {
      Dockerfile: [
        'FROM busybox AS a',
        `RUN ${PRINT_NET} && sleep 0.3`,
        'FROM busybox AS b',
        `RUN ${PRINT_NET} && sleep 0.3`,
        'FROM busybox',
        'COPY --from=a /etc/passwd /a',
        'COPY --from=b /etc/passwd /b',
        `RUN ${PRINT_NET}; exit 7`,
      ].join('\n'),
    });
    const r = await cli(['build', '--progress=plain', ctx]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('exit code: 7');
    const seen = printed(r.stderr);
    expect(seen).toHaveLength(3);
    const [inodes, links] = [netnsInodes(), linkIndexes()];
    for (const s of seen) {
      expect(inodes.has(s.ino)).toBe(false);
      expect(links.has(s.link)).toBe(false);
      expect(pidsInNetns(s.ino)).toEqual([]);
    }
    expect(mountsUnderRoot()).toEqual([]);
    expect(await readdir(join(root, 'cache', 'build', 'tmp'))).toEqual([]);
  });

  it('a killed build\'s step network is removed by the next build or prune', async () => {
    const ctx = await context('killed', { Dockerfile: `FROM busybox\nRUN ${PRINT_NET} && sleep 60\n` });
    const child = spawn(CLI_EXE, ['--root', root, 'build', '--progress=plain', ctx], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    const seen = await new Promise<{ ino: number; link: number }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no network printed:\n${err}`)), 60_000);
      child.stderr!.on('data', (b: Buffer) => {
        err += b.toString();
        const p = printed(err)[0];
        if (p) {
          clearTimeout(timer);
          resolve(p);
        }
      });
    });
    child.kill('SIGKILL');
    await new Promise((resolve) => child.on('close', resolve));
    // The namespace outlived the build (what is checked below is really there to remove), and
    // its id is recorded in the dead build's scratch dir with the spare made for a next step.
    expect(netnsInodes().has(seen.ino)).toBe(true);
    const tmpBase = join(root, 'cache', 'build', 'tmp');
    const recorded = (await readdir(tmpBase)).flatMap((d) => (existsSync(join(tmpBase, d, 'netns')) ? readdirSync(join(tmpBase, d, 'netns')) : []));
    expect(recorded.length).toBeGreaterThanOrEqual(1);
    // A spare whose making the kill cut short is recorded without a namespace file: not this one.
    expect(recorded.some((id) => statSync(`/run/netns/imgbuild-${id}`, { throwIfNoEntry: false })?.ino === seen.ino)).toBe(true);
    const pruned = await cli(['prune']);
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(netnsInodes().has(seen.ino)).toBe(false);
    for (const id of recorded) expect(existsSync(`/run/netns/imgbuild-${id}`)).toBe(false);
    expect(linkIndexes().has(seen.link)).toBe(false);
    // The step's processes died with the helper (its parent-death signal ends the pid namespace).
    expect(pidsInNetns(seen.ino)).toEqual([]);
    expect(mountsUnderRoot()).toEqual([]);
    expect(await readdir(join(root, 'cache', 'build', 'tmp'))).toEqual([]);
  });

  it('StepNetworks: concurrent steps get distinct namespaces, one spare at most, and close leaves none', async () => {
    const buildTmp = join(tmp.dir, 'step-networks');
    await mkdir(buildTmp);
    const nets = new StepNetworks(buildTmp);
    const got = await Promise.all([1, 2, 3, 4].map(() => nets.acquire('bridge')));
    const paths = got.map((n) => n.netnsPath!);
    expect(new Set(paths).size).toBe(4);
    for (const p of paths) expect(existsSync(p)).toBe(true);
    expect(got.every((n) => n.gateway === gateway)).toBe(true);
    // Four in use and one spare, recorded in the scratch dir.
    expect((await readdir(join(buildTmp, 'netns'))).length).toBeLessThanOrEqual(5);
    for (const n of got) n.release();
    await nets.close();
    for (const p of paths) expect(existsSync(p)).toBe(false);
    expect(await readdir(join(buildTmp, 'netns'))).toEqual([]);
    await expect(nets.acquire('bridge')).rejects.toThrow(/ended/);
    expect((await nets.acquire('none')).netnsPath).toBeUndefined();
  });

  it('StepNetworks: a network that cannot be made fails with a hint and leaves no namespace or record', async () => {
    const buildTmp = join(tmp.dir, 'step-networks-fail');
    await mkdir(buildTmp);
    // A bridge and lease table of its own whose only subnet is the host's own route: no subnet to take.
    const hostNet = JSON.parse(spawnSync('ip', ['-4', '-j', 'route', 'show'], { encoding: 'utf8' }).stdout) as { dst: string }[];
    const taken = hostNet.find((r) => r.dst !== 'default' && r.dst.includes('/'))?.dst ?? '127.0.0.0/8';
    const network = { stateDir: join(tmp.dir, 'leases'), bridge: `ibf${process.pid}`.slice(0, 15), subnets: [taken] };
    const nets = new StepNetworks(buildTmp, { network });
    await expect(nets.acquire('bridge')).rejects.toThrow(
      expect.objectContaining({
        message: expect.stringMatching(/^RUN's network: every candidate bridge subnet .* overlaps a host route$/),
        hint: 'build --network none runs RUN without a network',
      }),
    );
    await nets.close();
    // The namespace made before the subnet was looked for went with its record.
    expect(await readdir(join(buildTmp, 'netns'))).toEqual([]);
    expect(existsSync(`/sys/class/net/${network.bridge}`)).toBe(false);
  });
});

describe('against buildah', () => {
  // (buildah 1.28 writes no /etc/hosts without a network, so --add-host is checked against BuildKit's format above.)
  it('--network none, --ulimit and --shm-size give RUN what they give in buildah', async () => {
    const bRoot = join(tmp.dir, 'buildah-root');
    const bRun = join(tmp.dir, 'buildah-run');
    const copy = spawnSync('skopeo', ['copy', '-q', `oci:${root}:${BUSYBOX_REF}`, `containers-storage:[vfs@${bRoot}+${bRun}]${BUSYBOX_REF}`], { encoding: 'utf8' });
    expect(copy.status, copy.stderr).toBe(0);
    const script = "ls /sys/class/net; ulimit -n; ulimit -Hn; mount | grep ' /dev/shm ' | sed 's/relatime,//'";
    const ctx = await context('vs-buildah', { Dockerfile: `FROM busybox\nRUN echo BEGIN; ${script}; echo END\n` });
    const flags = ['--network', 'none', '--ulimit', 'nofile=1062:2048', '--shm-size', '128m'];
    const theirs = spawnSync('buildah', ['--storage-driver', 'vfs', '--root', bRoot, '--runroot', bRun, 'bud', '--isolation', 'oci', '--pull=never', ...flags, ctx], { encoding: 'utf8' });
    try {
      expect(theirs.status, theirs.stderr).toBe(0);
      const ours = await buildOk(['--no-cache', ...flags, ctx]);
      const between = (text: string): string => /BEGIN\n([\s\S]*?)\nEND/.exec(text)?.[1] ?? `(no output in ${text})`;
      // Our progress puts `#<step> <seconds>` before each line of the step's output.
      const oursOut = between(ours.stderr.replace(/^#\d+ [\d.]+s? /gm, ''));
      expect(oursOut).toBe(between(theirs.stdout));
      expect(oursOut).toBe('lo\n1062\n2048\nshm on /dev/shm type tmpfs (rw,nosuid,nodev,noexec,size=131072k)');
    } finally {
      spawnSync('buildah', ['--storage-driver', 'vfs', '--root', bRoot, '--runroot', bRun, 'rm', '--all']);
    }
  }, 120_000);
});
