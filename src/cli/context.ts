/**
 * What every command receives: the resolved store root, output streams and the cancellation
 * signal wired to SIGINT/SIGTERM in main.ts. Commands never read globals or call process.exit.
 */
import type { Writable } from 'node:stream';
import type { OciStore, StoreOpening } from '../store/store.js';

export interface CliContext {
  /** The store root after `--root` / IMGBUILD_ROOT / default resolution. */
  root(): string;
  /** The global `--storage-driver`, else $IMGBUILD_STORAGE_DRIVER: what new containers and builds use (undefined: chosen by probe). */
  storageDriver(): string | undefined;
  /** Opens the image store lazily (creating it on first use). */
  store(): Promise<OciStore>;
  /** The same store's opening, for a command that can start before a new root is laid out. */
  opening(): Promise<StoreOpening>;
  readonly stdout: Writable;
  readonly stderr: Writable;
  readonly env: NodeJS.ProcessEnv;
  readonly signal: AbortSignal;
  /** Whether stdout is a terminal (progress style, table widths). */
  readonly isTTY: boolean;
}
