/**
 * BuildKit as Docker users meet it: a private dockerd (Debian's docker.io) on its own data root,
 * socket and exec root, overlay2, no bridge and no iptables, and `DOCKER_BUILDKIT=1 docker build
 * --network host`. The busybox base goes in with `docker load` of a docker-archive made locally,
 * so nothing comes from Docker Hub. `close()` stops the daemon (which stops its containerd),
 * unmounts what is left under its directories and removes the cgroups it made.
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cgroupDirs, hasCommand, mountsUnder, removeTree, run, tail, timed, type Timing } from './measure.js';
import type { Builder } from './tools.js';
import type { Storage } from './volume.js';

const DEBIAN_CLIENT = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';
const sleep = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    // A zombie child of ours counts as gone.
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

export class BuildKit implements Builder {
  readonly name = 'BuildKit';
  about = '';
  private readonly dir: string;
  private readonly sock: string;
  private client = '';
  private daemonPid: number | undefined;
  private baseId = '';
  private baseArchive = '';
  private readonly newCgroups: string[];

  private constructor(work: string) {
    this.dir = join(work, 'docker');
    this.sock = join(this.dir, 'sock');
    // dockerd makes docker/ and docker/buildkit/ in every hierarchy; those that were not here before go at the end.
    this.newCgroups = ['docker/buildkit', 'docker'].flatMap((rel) => cgroupDirs(rel)).filter((d) => !existsSync(d));
  }

  /** Starts the daemon and loads the base; a string says why BuildKit cannot run here. */
  static start(work: string, baseArchive: string): BuildKit | string {
    if (!hasCommand('dockerd') || !hasCommand(DEBIAN_CLIENT)) return 'dockerd or docker not installed (Debian: apt-get install docker.io)';
    const bk = new BuildKit(work);
    try {
      bk.baseArchive = baseArchive;
      bk.startWithBase();
      bk.pickClient();
      const server = run([...bk.docker(), 'version', '-f', '{{.Server.Version}}'], bk.env()).trim();
      bk.about = `BuildKit in dockerd ${server} (private daemon, overlay2, cgroupfs): \`DOCKER_BUILDKIT=1 ${bk.client} build --network host\``;
      return bk;
    } catch (e) {
      bk.close();
      return (e as Error).message;
    }
  }

  private startWithBase(): void {
    this.startDaemon();
    run([...this.docker(), 'load', '-q', '-i', this.baseArchive], this.env());
    this.baseId = run([...this.docker(), 'image', 'inspect', '-f', '{{.Id}}', 'busybox:latest'], this.env()).trim();
  }

  private docker(client = this.client || DEBIAN_CLIENT): string[] {
    return [client, '-H', `unix://${this.sock}`];
  }

  private env(): NodeJS.ProcessEnv {
    return { ...process.env, DOCKER_BUILDKIT: '1', DOCKER_CONFIG: join(this.dir, 'client-config') };
  }

  private startDaemon(): void {
    mkdirSync(this.dir, { recursive: true });
    // Its own (empty) daemon.json: a host's /etc/docker/daemon.json would clash with these flags.
    writeFileSync(join(this.dir, 'daemon.json'), '{}\n');
    const log = openSync(join(this.dir, 'dockerd.log'), 'a');
    const child = spawn('dockerd', [
      '--config-file', join(this.dir, 'daemon.json'), '--data-root', join(this.dir, 'data'), '--exec-root', join(this.dir, 'exec'),
      '--pidfile', join(this.dir, 'dockerd.pid'), '-H', `unix://${this.sock}`, '--storage-driver', 'overlay2',
      '--bridge=none', '--iptables=false', '--ip-masq=false', '--ip-forward=false',
    ], { stdio: ['ignore', log, log] });
    closeSync(log);
    // In the bench's process group: a Ctrl-C that kills the bench before its clean-up stops dockerd too.
    child.unref();
    this.daemonPid = child.pid;
    for (let i = 0; i < 120; i++) {
      if (!this.daemonPid || !alive(this.daemonPid)) break;
      if (existsSync(this.sock) && spawnSync(this.docker()[0]!, [...this.docker().slice(1), 'version'], { stdio: 'ignore', env: this.env() }).status === 0) return;
      sleep(500);
    }
    const why = this.daemonPid && alive(this.daemonPid) ? 'did not answer within 60 s' : 'exited';
    throw new Error(`dockerd ${why}: ${tail(readFileSync(join(this.dir, 'dockerd.log'), 'utf8'))}`);
  }

  /**
   * Debian's client (/usr/bin/docker, 20.10) builds with BuildKit itself; a newer one on PATH needs
   * the buildx plugin for that. The first client that builds a one-line Dockerfile is the one used.
   */
  private pickClient(): void {
    const probe = join(this.dir, 'probe');
    mkdirSync(probe, { recursive: true });
    writeFileSync(join(probe, 'Dockerfile'), 'FROM busybox\nRUN true\n');
    let why = '';
    for (const client of new Set([DEBIAN_CLIENT, 'docker'])) {
      const r = spawnSync(this.docker(client)[0]!, [...this.docker(client).slice(1), 'build', '-q', '--network', 'host', '-t', 'bench-probe', probe], { encoding: 'utf8', env: this.env() });
      if (r.status === 0) {
        this.client = client;
        this.reset();
        return;
      }
      why = tail(r.stderr);
    }
    throw new Error(`no docker client builds with BuildKit here: ${why}`);
  }

  reset(): void {
    const ids = run([...this.docker(), 'images', '-aq', '--no-trunc'], this.env()).split('\n').filter((id) => id && id !== this.baseId);
    if (ids.length > 0) run([...this.docker(), 'image', 'rm', '-f', ...new Set(ids)], this.env());
    run([...this.docker(), 'builder', 'prune', '-af'], this.env());
  }

  /** A new daemon on a new data root with the base loaded; the old daemon stopped and its directory cleared by `storage`. */
  renew(storage: Storage): void {
    this.stopDaemon();
    storage.clear(this.dir);
    this.startWithBase();
  }

  build(ctx: string): Timing {
    return this.buildWith(ctx, []);
  }

  /** `build` with more flags (the cache bench's inline cache and `--cache-from`), tagged `tag`. */
  buildWith(ctx: string, flags: string[], tag = 'bench'): Timing {
    return timed([...this.docker(), 'build', '-q', '--network', 'host', ...flags, '-t', tag, ctx], { env: this.env() });
  }

  /** A docker command against the private daemon (`push`, `tag`); its stdout. */
  cli(args: string[]): string {
    return run([...this.docker(), ...args], this.env());
  }

  close(): void {
    this.stopDaemon();
    for (const d of this.newCgroups) {
      try {
        rmdirSync(d);
      } catch {
        // Not made by this run's daemon after all, or still in use: left as found.
      }
    }
    if (existsSync(this.dir)) removeTree(this.dir);
  }

  /** Stops dockerd (and its containerd) and unmounts what is left under its directory. */
  private stopDaemon(): void {
    const pid = this.daemonPid;
    this.daemonPid = undefined;
    if (pid && alive(pid)) {
      process.kill(pid, 'SIGTERM');
      for (let i = 0; i < 120 && alive(pid); i++) sleep(250);
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
    // dockerd stops its containerd on the way out; one that outlived it (ours: it names our exec root) is stopped by its pid.
    for (const p of readdirPids()) {
      const cmd = readCmdline(p);
      if (cmd.includes(join(this.dir, 'exec'))) process.kill(p, 'SIGKILL');
    }
    for (const m of mountsUnder(this.dir)) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
  }
}

function readdirPids(): number[] {
  return readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number);
}

function readCmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}
