/**
 * Each tool's storage on a filesystem of its own, new for every cold build: a sparse image file
 * made with `mkfs.ext4` and loop-mounted where the tool keeps its storage. On this host (ext4
 * without a journal, see trash.ts) a tool that removes many files (buildah removes each build's
 * working containers) slowed the next tool's file creation for a minute: imgbuild's cold files-10k
 * build took 1.03 s first, 2.45 s right after buildah's, 1.05 s 70 s later; the trash alone could
 * not help, as the removals are the tools' own. On its own filesystem a tool pays only for what it
 * removes itself, as it would on a machine of its own. The image is made like the host's
 * filesystem (no journal if the host's has none), and dropping it is one unlink on the host.
 * The loop device does direct I/O where it can: buffered, every write is cached twice (in the
 * volume and in the image file on the host), and what one build left dirty in the host's cache
 * slowed the next build's writes however much `sync` ran between them (imgbuild's bytes-2G cold
 * build took 11.0-13.6 s buffered against 3.7-4.1 s with direct I/O, in alternating runs).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statfsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { removeTree, run } from './measure.js';

/** What a tool's `renew` asks for: `path` afterwards is absent or an empty directory on storage no earlier build used. */
export interface Storage {
  clear(path: string): void;
}

export class Volumes implements Storage {
  private readonly images = new Map<string, string>();
  private n = 0;
  /** Whether the loop devices do direct I/O (`losetup --direct-io`), found on the first volume. */
  private directIo = true;
  about = '';

  private constructor(
    private readonly dir: string,
    private readonly mkfsFlags: string[],
  ) {}

  /** Volumes with their images under `dir`, or a string saying why loop mounts cannot be made here. */
  static open(dir: string): Volumes | string {
    if (process.getuid?.() !== 0) return 'not root';
    if (spawnSync('mkfs.ext4', ['-V'], { stdio: 'ignore' }).status !== 0) return 'mkfs.ext4 not installed (Debian: e2fsprogs)';
    mkdirSync(dir, { recursive: true });
    const host = hostFilesystem(dir);
    const noJournal = host.ext4 && !host.journal;
    const flags = ['-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0', ...(noJournal ? ['-O', '^has_journal'] : [])];
    const v = new Volumes(dir, flags);
    const probe = join(dir, 'probe');
    try {
      v.clear(probe);
      v.drop(probe);
    } catch (e) {
      v.close();
      return (e as Error).message;
    }
    const how = [...(noJournal ? ['no journal, like the host\'s'] : []), v.directIo ? 'direct I/O' : 'buffered: no direct I/O for loop devices here'];
    v.about = `each tool's storage on its own new ext4 (a loop-mounted sparse image, ${how.join(', ')}) for every cold build`;
    return v;
  }

  clear(path: string): void {
    this.drop(path);
    mkdirSync(path, { recursive: true });
    const image = join(this.dir, `${this.n++}.img`);
    // Sparse and as large as the host's free space: blocks are taken only as they are written.
    const s = statfsSync(this.dir);
    run(['truncate', '-s', String(Math.max(s.bavail * s.bsize, 4 << 30)), image]);
    run(['mkfs.ext4', ...this.mkfsFlags, image]);
    run(['mount', '-o', 'loop', image, path]);
    this.images.set(path, image);
    if (this.directIo) {
      const dev = spawnSync('findmnt', ['-n', '-o', 'SOURCE', path], { encoding: 'utf8' }).stdout.trim();
      this.directIo = dev.startsWith('/dev/loop') && spawnSync('losetup', ['--direct-io=on', dev], { stdio: 'ignore' }).status === 0;
    }
  }

  /** Unmounts the volume at `path` (and whatever a tool left mounted in it) and removes its image. */
  private drop(path: string): void {
    if (existsSync(path)) removeTree(path);
    const image = this.images.get(path);
    if (image) rmSync(image, { force: true });
    this.images.delete(path);
  }

  close(): void {
    for (const path of [...this.images.keys()]) {
      try {
        this.drop(path);
      } catch {
        // A mount still busy: removeTree of the bench's work dir says so.
      }
    }
  }
}

/** The filesystem `dir` is on: whether it is ext4, and whether that has a journal (jbd2 lists the journaled devices). */
function hostFilesystem(dir: string): { ext4: boolean; journal: boolean } {
  let best: { point: string; type: string; source: string } | undefined;
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const point = f[4]?.replace(/\\040/g, ' ');
    const dash = f.indexOf('-');
    if (!point || dash < 0) continue;
    if ((dir === point || dir.startsWith(point === '/' ? '/' : `${point}/`)) && (!best || point.length >= best.point.length)) {
      best = { point, type: f[dash + 1] ?? '', source: f[dash + 2] ?? '' };
    }
  }
  if (best?.type !== 'ext4') return { ext4: false, journal: true };
  let journaled: string[] = [];
  try {
    journaled = readdirSync('/proc/fs/jbd2');
  } catch {
    // No jbd2 at all: no ext4 here has a journal.
  }
  const dev = basename(best.source);
  return { ext4: true, journal: journaled.some((d) => d.startsWith(`${dev}-`)) };
}
