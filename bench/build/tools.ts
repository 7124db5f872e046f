/**
 * The builders the build bench runs side by side, behind one shape: imgbuild here, BuildKit in
 * `buildkit.ts`, buildah in `buildah.ts`. Each holds the local busybox base and nothing else after
 * `renew()` (or `reset()`), so the next build is cold.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CLI_EXE } from '../../test/helpers/cli.js';
import { removeTree, run, timed, type Timing } from './measure.js';
import type { Storage } from './volume.js';

export interface Builder {
  readonly name: string;
  /** One line naming the tool's version and configuration, for the report's header. */
  readonly about: string;
  /** Drops everything built and every cache, keeping the base image: the next build is cold. */
  reset(): void;
  /**
   * Like `reset`, but on new storage holding only the base: `storage` moves the old away (a
   * trash) or gives a new filesystem (volume.ts); neither deletes files while builds are timed.
   */
  renew(storage: Storage): void;
  /** `FROM busybox` builds of the context's Dockerfile, tagged `bench`. */
  build(ctx: string): Timing;
  /** Stops what the tool runs and removes its storage. Safe to call twice. */
  close(): void;
}

/** imgbuild through its executable (Node's start-up included), on a store copied from `base`. */
export class Imgbuild implements Builder {
  readonly name = 'imgbuild';
  readonly about: string;
  private readonly root: string;

  constructor(private readonly work: string, private readonly base: string) {
    this.root = join(work, 'imgbuild-root');
    const rev = spawnSync('git', ['-C', join(import.meta.dirname, '..', '..'), 'describe', '--always', '--dirty'], { encoding: 'utf8' }).stdout.trim();
    this.about = `imgbuild ${rev || '(no git)'}: \`imgbuild build --network host\` (overlay snapshots, uncompressed layers)`;
  }

  reset(): void {
    removeTree(this.root);
    this.copyBase();
  }

  renew(storage: Storage): void {
    storage.clear(this.root);
    this.copyBase();
  }

  /** A fresh store holding only the base (snapshots, layers, build cache all empty) at the root, which may be an empty mount point. */
  private copyBase(): void {
    mkdirSync(this.root, { recursive: true });
    run(['cp', '-a', `${this.base}/.`, this.root]);
  }

  build(ctx: string): Timing {
    return timed([CLI_EXE, '--root', this.root, 'build', '-q', '--network', 'host', '-t', 'bench', ctx], { rss: { file: join(this.work, 'imgbuild.rss') } });
  }

  close(): void {
    removeTree(this.root);
  }
}
