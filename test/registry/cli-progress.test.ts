/** The pull/push progress view: plain lines for logs, live per-layer lines on a terminal. */
import { describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { createTransferRenderer } from '../../src/cli/transfer-progress.js';
import type { TransferEvent } from '../../src/registry/progress.js';
import type { Digest } from '../../src/image/digest.js';

const A = `sha256:${'a'.repeat(64)}` as Digest;
const B = `sha256:${'b'.repeat(64)}` as Digest;

function collect(): { out: PassThrough; text: () => string } {
  const out = new PassThrough();
  let s = '';
  out.on('data', (d: Buffer) => (s += d.toString()));
  return { out, text: () => s };
}

const blob = (digest: Digest, phase: Extract<TransferEvent, { type: 'blob' }>['phase'], bytes = 0, message?: string): TransferEvent => ({
  type: 'blob', phase, kind: 'layer', digest, size: 2_000_000, bytes, ...(message ? { message } : {}),
});

describe('transfer progress', () => {
  it('plain: one line per state change, no per-chunk noise', () => {
    const { out, text } = collect();
    const r = createTransferRenderer({ out, isTTY: false, quiet: false, direction: 'pull' });
    for (const e of [blob(A, 'exists', 2_000_000), blob(B, 'waiting'), blob(B, 'transfer', 1000), blob(B, 'transfer', 500_000), blob(B, 'retry', 500_000, 'connection broke'), blob(B, 'transfer', 2_000_000), blob(B, 'done', 2_000_000)]) r.onEvent(e);
    r.close();
    expect(text()).toBe(
      ['aaaaaaaaaaaa: Already exists', 'bbbbbbbbbbbb: Downloading (2MB)', 'bbbbbbbbbbbb: Retrying: connection broke', 'bbbbbbbbbbbb: Pull complete', ''].join('\n'),
    );
  });

  it('plain push wording, conversion lines', () => {
    const { out, text } = collect();
    const r = createTransferRenderer({ out, isTTY: false, quiet: false, direction: 'push' });
    r.onEvent(blob(A, 'compressing', 0, 'none → gzip'));
    r.onEvent(blob(A, 'compressed', 0, `gzip ${B}`));
    r.onEvent(blob(B, 'mounted', 2_000_000));
    r.close();
    expect(text()).toBe('aaaaaaaaaaaa: Compressing (none → gzip)\naaaaaaaaaaaa: Compressed (gzip bbbbbbbbbbbb)\nbbbbbbbbbbbb: Mounted from other repository\n');
  });

  it('quiet prints nothing', () => {
    const { out, text } = collect();
    const r = createTransferRenderer({ out, isTTY: false, quiet: true, direction: 'pull' });
    r.onEvent(blob(A, 'done'));
    r.close();
    expect(text()).toBe('');
  });

  it('tty: live lines with bytes, percentage and rate, ending in a final line', () => {
    const { out, text } = collect();
    const r = createTransferRenderer({ out, isTTY: true, quiet: false, direction: 'pull' });
    r.onEvent(blob(A, 'waiting'));
    r.onEvent({ ...blob(A, 'transfer', 1_000_000), rate: 5_000_000 } as TransferEvent);
    r.onEvent(blob(A, 'done', 2_000_000));
    r.close();
    const t = text();
    expect(t).toContain('layer aaaaaaaaaaaa 2MB 1MB/2MB 50% 5MB/s');
    expect(t).toMatch(/=> Pull complete layer aaaaaaaaaaaa 2MB \d+\.\ds\n$/);
    expect(t).toContain('\x1b[1A'); // redrawn in place
  });
});
