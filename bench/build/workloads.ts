/**
 * The build bench's workloads: each a context directory with a Dockerfile, its size in files and
 * bytes, and a way to change one file in it.
 *
 *  - doc: a large real tree (/usr/share/doc) copied in; a RUN copies it again and deletes part of
 *    both copies (whiteouts over the lower layer); a RUN writes a large file of its own;
 *  - node_modules: the project's own node_modules (a deep tree of real packages) copied in, and a
 *    RUN that walks it;
 *  - files-N: N tiny files (64 bytes, 100 per directory) copied in and copied again by a RUN;
 *  - bytes-N: one file of N MB of random bytes copied in and copied again by a RUN;
 *  - hello: the smallest build that does something, one small file copied in and read by a RUN,
 *    where a build's fixed cost (start-up, snapshots, sandbox, commit) is all there is.
 * The files-N and bytes-N series show how cost grows with the number of files and with size.
 */
import { randomFillSync } from 'node:crypto';
import { appendFileSync, closeSync, lstatSync, mkdirSync, openSync, readdirSync, realpathSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { run } from './measure.js';

export interface Workload {
  name: string;
  /** Which scaling table it belongs to, with its size there. */
  series?: { kind: 'files' | 'bytes'; size: number };
  files: number;
  bytes: number;
  dir: string;
  /** Rewrites one file of the context, so the COPY and the steps after it run again. */
  change(round: number): void;
}

export interface WorkloadSpec {
  name: string;
  make(dir: string): Omit<Workload, 'name' | 'dir'>;
}

const MB = 1_000_000;

/** Regular files and their bytes below dir (symbolic links counted as files, not followed). */
function measure(dir: string): { files: number; bytes: number; first?: string } {
  let files = 0;
  let bytes = 0;
  let first: string | undefined;
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p);
      else {
        files++;
        bytes += st.size;
        if (st.isFile() && first === undefined && p.split('/').length - dir.split('/').length >= 2) first = p;
      }
    }
  };
  walk(dir);
  return { files, bytes, ...(first ? { first } : {}) };
}

/**
 * Copies a real tree into dest/name. With `limitFiles`, only its first top-level entries (sorted)
 * up to about that many files: a smaller tree of the same kind, for a quick run.
 */
function copyReal(src: string, dest: string, limitFiles?: number): void {
  const real = realpathSync(src);
  if (limitFiles === undefined) {
    run(['cp', '-a', `${real}/.`, dest]);
    return;
  }
  mkdirSync(dest, { recursive: true });
  let count = 0;
  for (const name of readdirSync(real).sort()) {
    if (count >= limitFiles) break;
    run(['cp', '-a', join(real, name), join(dest, name)]);
    count += lstatSync(join(dest, name)).isDirectory() ? measure(join(dest, name)).files : 1;
  }
}

function changer(file: string): (round: number) => void {
  return (round) => appendFileSync(file, `changed ${round} ${process.hrtime.bigint()}\n`);
}

export function docTree(limitFiles: number | undefined, blobMB: number): WorkloadSpec {
  return {
    name: 'doc',
    make(dir) {
      copyReal('/usr/share/doc', join(dir, 'doc'), limitFiles);
      writeFileSync(join(dir, 'Dockerfile'), [
        'FROM busybox',
        'COPY doc /data',
        'RUN cp -a /data /data2 && rm -rf /data2/[a-f]* /data/[g-m]*',
        `RUN head -c ${blobMB * MB} /dev/urandom > /blob`,
        '',
      ].join('\n'));
      const m = measure(join(dir, 'doc'));
      return { files: m.files, bytes: m.bytes, change: changer(m.first!) };
    },
  };
}

export function nodeModules(repo: string, limitFiles: number | undefined): WorkloadSpec {
  return {
    name: 'node_modules',
    make(dir) {
      copyReal(join(repo, 'node_modules'), join(dir, 'node_modules'), limitFiles);
      writeFileSync(join(dir, 'Dockerfile'), [
        'FROM busybox',
        'WORKDIR /app',
        'COPY node_modules /app/node_modules',
        'RUN find node_modules -type f | wc -l > /app/files',
        '',
      ].join('\n'));
      const m = measure(join(dir, 'node_modules'));
      return { files: m.files, bytes: m.bytes, change: changer(m.first!) };
    },
  };
}

export function hello(): WorkloadSpec {
  return {
    name: 'hello',
    make(dir) {
      writeFileSync(join(dir, 'hello.txt'), 'hello\n');
      writeFileSync(join(dir, 'Dockerfile'), 'FROM busybox\nCOPY hello.txt /hello.txt\nRUN cat /hello.txt > /greeting\n');
      return { files: 1, bytes: 6, change: changer(join(dir, 'hello.txt')) };
    },
  };
}

export function tinyFiles(n: number): WorkloadSpec {
  return {
    name: `files-${n >= 1000 ? `${n / 1000}k` : n}`,
    make(dir) {
      for (let i = 0; i < n; i++) {
        const sub = join(dir, 'files', `d${Math.floor(i / 100)}`);
        if (i % 100 === 0) mkdirSync(sub, { recursive: true });
        writeFileSync(join(sub, `f${i}`), `file ${i} `.padEnd(63, 'x') + '\n');
      }
      writeFileSync(join(dir, 'Dockerfile'), 'FROM busybox\nCOPY files /files\nRUN cp -a /files /copy\n');
      return { series: { kind: 'files', size: n }, files: n, bytes: n * 64, change: changer(join(dir, 'files', 'd0', 'f0')) };
    },
  };
}

export function bigFile(mb: number): WorkloadSpec {
  return {
    name: `bytes-${mb >= 1000 ? `${mb / 1000}G` : `${mb}M`}`,
    make(dir) {
      const file = join(dir, 'big.bin');
      const chunk = Buffer.alloc(4 * 1024 * 1024);
      const fd = openSync(file, 'w');
      try {
        for (let left = mb * MB; left > 0; left -= chunk.length) {
          const n = Math.min(left, chunk.length);
          randomFillSync(chunk, 0, n);
          writeSync(fd, chunk, 0, n);
        }
      } finally {
        closeSync(fd);
      }
      writeFileSync(join(dir, 'Dockerfile'), 'FROM busybox\nCOPY big.bin /big.bin\nRUN cp /big.bin /copy.bin\n');
      return {
        series: { kind: 'bytes', size: mb },
        files: 1,
        bytes: mb * MB,
        // New bytes at the start, same size: every tool must notice a change of content, not of length.
        change: () => {
          const fd2 = openSync(file, 'r+');
          try {
            writeSync(fd2, randomFillSync(Buffer.alloc(4096)), 0, 4096, 0);
          } finally {
            closeSync(fd2);
          }
        },
      };
    },
  };
}
