/** Progress events of pulls and pushes, one stream per blob, for the CLI or any caller to render. */
import type { Digest } from '../image/digest.js';

export type BlobKind = 'layer' | 'config' | 'manifest';

export type TransferEvent =
  /** The reference resolved to a manifest (after platform selection for an index). */
  | { type: 'resolved'; ref: string; digest: Digest; mediaType: string; blobs: number }
  | {
      type: 'blob';
      phase:
        | 'waiting' // queued
        | 'exists' // already present (in the store for pull, in the registry for push)
        | 'mounted' // cross-repository mount
        | 'compressing' // converting to the wanted compression before upload
        | 'compressed' // converted; the upload continues under the new digest (message names it)
        | 'transfer' // bytes moving (progress)
        | 'retry' // attempt failed, trying again (message says why)
        | 'verifying'
        | 'done';
      kind: BlobKind;
      digest: Digest;
      size: number;
      /** Bytes done so far (of `size`). */
      bytes: number;
      /** Average bytes per second of this blob's transfer so far. */
      rate?: number;
      message?: string;
    }
  | { type: 'manifest'; ref: string; digest: Digest; size: number }
  | { type: 'done'; ref: string; digest: Digest };

export type PullEvent = TransferEvent;
export type PushEvent = TransferEvent;

/** Rate-limits 'transfer' events of one blob to one per `interval` ms (the last one always passes). */
export class BlobMeter {
  private last = 0;
  private readonly started = Date.now();

  constructor(
    private readonly emit: ((e: TransferEvent) => void) | undefined,
    private readonly kind: BlobKind,
    private readonly digest: Digest,
    private readonly size: number,
    private readonly interval = 100,
  ) {}

  phase(phase: Exclude<Extract<TransferEvent, { type: 'blob' }>['phase'], 'transfer'>, bytes = 0, message?: string): void {
    this.emit?.({ type: 'blob', phase, kind: this.kind, digest: this.digest, size: this.size, bytes, ...(message ? { message } : {}) });
  }

  bytes(n: number, base = 0): void {
    if (!this.emit) return;
    const now = Date.now();
    if (n < this.size && now - this.last < this.interval) return;
    this.last = now;
    const secs = (now - this.started) / 1000;
    this.emit({ type: 'blob', phase: 'transfer', kind: this.kind, digest: this.digest, size: this.size, bytes: n, rate: secs > 0 ? (n - base) / secs : 0 });
  }
}
