/**
 * Renders pull/push TransferEvents. On a terminal every blob is a live line (bytes, total, rate)
 * through the shared progress view; otherwise one plain line per state change, Docker style
 * (`a1b2c3d4e5f6: Pull complete`), with no per-chunk noise in logs.
 */
import type { Writable } from 'node:stream';
import type { TransferEvent } from '../registry/progress.js';
import { createProgress, type ProgressTask } from './progress.js';
import { formatSize, shortId } from './format.js';

export interface TransferRenderer {
  onEvent(e: TransferEvent): void;
  close(): void;
}

const DONE_WORDS = {
  pull: { exists: 'Already exists', done: 'Pull complete', mounted: 'Mounted', transfer: 'Downloading' },
  push: { exists: 'Layer already exists', done: 'Pushed', mounted: 'Mounted from other repository', transfer: 'Pushing' },
} as const;

export function createTransferRenderer(o: { out: Writable; isTTY: boolean; quiet: boolean; direction: 'pull' | 'push' }): TransferRenderer {
  const words = DONE_WORDS[o.direction];
  if (o.quiet) return { onEvent() {}, close() {} };
  if (!o.isTTY) {
    const said = new Set<string>();
    return {
      onEvent(e) {
        if (e.type !== 'blob') return;
        const id = shortId(e.digest);
        const line = (s: string): void => {
          o.out.write(`${id}: ${s}\n`);
        };
        switch (e.phase) {
          case 'exists':
            line(words.exists);
            break;
          case 'mounted':
            line(words.mounted);
            break;
          case 'compressing':
            line(`Compressing${e.message ? ` (${e.message})` : ''}`);
            break;
          case 'compressed':
            line(`Compressed${e.message ? ` (${e.message.replace(/sha256:([0-9a-f]{12})[0-9a-f]*/, '$1')})` : ''}`);
            break;
          case 'retry':
            line(`Retrying: ${e.message ?? ''}`);
            break;
          case 'transfer':
            if (!said.has(e.digest)) {
              said.add(e.digest);
              line(`${words.transfer} (${formatSize(e.size)})`);
            }
            break;
          case 'done':
            line(words.done);
            break;
          default:
            break;
        }
      },
      close() {},
    };
  }
  const progress = createProgress({ mode: 'tty', out: o.out, isTTY: true });
  const tasks = new Map<string, ProgressTask>();
  const task = (e: Extract<TransferEvent, { type: 'blob' }>): ProgressTask => {
    let t = tasks.get(e.digest);
    if (!t) {
      t = progress.task(`${e.kind} ${shortId(e.digest)} ${formatSize(e.size)}`);
      tasks.set(e.digest, t);
    }
    return t;
  };
  return {
    onEvent(e) {
      if (e.type !== 'blob') return;
      const t = task(e);
      switch (e.phase) {
        case 'exists':
          t.done(words.exists);
          break;
        case 'mounted':
          t.done(words.mounted);
          break;
        case 'transfer': {
          const pct = e.size > 0 ? Math.floor((e.bytes / e.size) * 100) : 100;
          t.update(`${formatSize(e.bytes)}/${formatSize(e.size)} ${pct}%${e.rate ? ` ${formatSize(e.rate)}/s` : ''}`);
          break;
        }
        case 'compressing':
          t.update('compressing');
          break;
        case 'compressed':
          t.done('Compressed');
          break;
        case 'verifying':
          t.update('verifying');
          break;
        case 'retry':
          t.log(`${shortId(e.digest)}: retrying: ${e.message ?? ''}`);
          break;
        case 'done':
          t.done(words.done);
          break;
        default:
          t.update(e.phase);
      }
    },
    close() {
      for (const t of tasks.values()) t.fail();
      progress.close();
    },
  };
}
