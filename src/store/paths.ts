/**
 * Where the store lives. Kept apart from store.ts, which pulls in hashing and locking, so the CLI
 * can resolve its root without loading them.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';

/** Resolves the store root: IMGBUILD_ROOT, then /var/lib/imgbuild for root, then the XDG data dir. */
export function defaultRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.IMGBUILD_ROOT) return env.IMGBUILD_ROOT;
  if (process.getuid?.() === 0) return '/var/lib/imgbuild';
  const xdg = env.XDG_DATA_HOME || join(env.HOME || homedir(), '.local', 'share');
  return join(xdg, 'imgbuild');
}
