/**
 * buildah in its fast configuration: overlay storage (its own root and runroot, and its own
 * storage.conf so a host's options such as a fuse mount_program do not apply), RUN through runc
 * (`--isolation oci --runtime runc`), `--layers` so it caches steps like the others. The base is
 * pulled from the same local docker-archive BuildKit loads.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hasCommand, removeTree, run, timed, type Timing } from './measure.js';
import type { Builder } from './tools.js';
import type { Storage } from './volume.js';

export class Buildah implements Builder {
  readonly name = 'buildah';
  about = '';
  private readonly dir: string;
  private baseId = '';
  private closed = false;

  private constructor(private readonly work: string, private readonly baseArchive: string) {
    this.dir = join(work, 'buildah');
  }

  /** Sets up the store and loads the base; a string says why buildah cannot run here. */
  static start(work: string, baseArchive: string): Buildah | string {
    if (!hasCommand('buildah')) return 'buildah not installed (Debian: apt-get install buildah)';
    if (!hasCommand('runc')) return 'runc not installed (Debian: apt-get install runc)';
    const b = new Buildah(work, baseArchive);
    try {
      b.baseId = b.setUp();
      const version = run(['buildah', 'version', '--json'], b.env());
      const v = (JSON.parse(version) as { version?: string }).version ?? '?';
      b.about = `buildah ${v}: \`buildah bud --isolation oci --runtime runc --layers --network host\` on overlay storage`;
      return b;
    } catch (e) {
      b.close();
      return (e as Error).message;
    }
  }

  /** A new store holding the base; its image id. */
  private setUp(): string {
    mkdirSync(join(this.dir, 'tmp'), { recursive: true });
    writeFileSync(join(this.dir, 'storage.conf'), `[storage]\ndriver = "overlay"\nrunroot = "${join(this.dir, 'run')}"\ngraphroot = "${join(this.dir, 'root')}"\n`);
    const id = run([...this.cmd(), 'pull', '-q', `docker-archive:${this.baseArchive}`], this.env()).trim().split('\n').pop()!;
    run([...this.cmd(), 'tag', id, 'docker.io/library/busybox:latest'], this.env());
    return id;
  }

  private cmd(): string[] {
    return ['buildah', '--root', join(this.dir, 'root'), '--runroot', join(this.dir, 'run'), '--storage-driver', 'overlay'];
  }

  private env(): NodeJS.ProcessEnv {
    // TMPDIR: buildah unpacks archives under /var/tmp otherwise.
    return { ...process.env, CONTAINERS_STORAGE_CONF: join(this.dir, 'storage.conf'), TMPDIR: join(this.dir, 'tmp') };
  }

  reset(): void {
    run([...this.cmd(), 'rm', '--all'], this.env());
    const ids = run([...this.cmd(), 'images', '-aq', '--no-trunc'], this.env()).split('\n').map((s) => s.replace(/^sha256:/, '')).filter((id) => id && id !== this.baseId);
    if (ids.length > 0) run([...this.cmd(), 'rmi', '-f', ...new Set(ids)], this.env());
  }

  renew(storage: Storage): void {
    run([...this.cmd(), 'rm', '--all'], this.env());
    storage.clear(this.dir);
    this.baseId = this.setUp();
  }

  build(ctx: string): Timing {
    return timed([...this.cmd(), 'bud', '--isolation', 'oci', '--runtime', 'runc', '--layers', '--network', 'host', '--pull=never', '-q', '-t', 'bench', ctx], {
      env: this.env(),
      rss: { file: join(this.work, 'buildah.rss') },
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      run([...this.cmd(), 'rm', '--all'], this.env());
      run([...this.cmd(), 'rmi', '--all', '-f'], this.env());
    } catch {
      // Whatever it could not remove goes with the directory below, mounts first.
    }
    removeTree(this.dir);
  }
}
