/**
 * Pulling with the progress lines `pull` prints, for `pull` itself (on stdout) and for `run` and
 * `create` when the image is not in the store (on stderr, after Docker's
 * `Unable to find image 'x' locally`, so that the container's own output stays alone on stdout).
 */
import type { Writable } from 'node:stream';
import type { CliContext } from './context.js';
import { InvalidArgumentError } from '../errors.js';
import { ImageNotFoundError } from '../store/errors.js';

export interface PullReportOptions {
  platform?: string;
  insecure?: boolean;
  quiet?: boolean;
  out: Writable;
  isTTY: boolean;
}

/** Pulls `ref` into the store, printing Docker's lines to `o.out`; returns the manifest digest. */
export async function pullReporting(ctx: CliContext, ref: string, o: PullReportOptions): Promise<string> {
  // The store opens (and a new root is laid out) while the manifest is fetched: pullImage takes
  // the opening store, starts the downloads once its directories exist and waits for the rest
  // only to place what it fetched.
  const opening = ctx.opening();
  opening.catch(() => {}); // awaited below; a failure surfaces there, never as unhandled
  // The registry client loads here, not with a command module: `--help` loads every command
  // module, and evaluating the client (undici) there cost ~10 ms (docs/architecture.md, Measurements).
  const [{ pullImage }, { parsePlatform }, { createTransferRenderer }, { parseReference, formatReference }] = await Promise.all([
    import('../registry/pull.js'),
    import('../image/platform.js'),
    import('./transfer-progress.js'),
    import('../image/reference.js'),
  ]);
  const full = formatReference(parseReference(ref));
  const quiet = Boolean(o.quiet);
  const before = quiet ? undefined : opening.then((op) => op.store).then((s) => s.resolve(full));
  before?.catch(() => {});
  if (!quiet) o.out.write(`Pulling ${full}\n`);
  const r = createTransferRenderer({ out: o.out, isTTY: o.isTTY, quiet, direction: 'pull' });
  let desc;
  try {
    desc = await pullImage(await opening, ref, {
      platform: parsePlatform(o.platform ?? 'linux/amd64'),
      ...(o.insecure ? { insecure: true } : {}),
      signal: ctx.signal,
      env: ctx.env,
      onProgress: (e) => r.onEvent(e),
    });
  } finally {
    r.close();
  }
  if (quiet) {
    o.out.write(`${full}\n`);
    return desc.digest;
  }
  const status = (await before)?.digest === desc.digest ? `Image is up to date for ${full}` : `Downloaded ${full}`;
  o.out.write(`Digest: ${desc.digest}\nStatus: ${status}\n${full}\n`);
  return desc.digest;
}

export type PullPolicy = 'missing' | 'always' | 'never';

export function parsePullPolicy(v: string | undefined): PullPolicy {
  const p = v ?? 'missing';
  if (p !== 'missing' && p !== 'always' && p !== 'never') throw new InvalidArgumentError(`invalid --pull ${JSON.stringify(p)}: use missing, always or never`);
  return p;
}

/**
 * Runs `use` (which creates a container from `image`) under a pull policy: `always` pulls first;
 * `missing` pulls when `use` finds no such image, then tries again; `never` leaves the error to
 * the caller. The common case (the image is there) costs nothing more than `use` itself.
 */
export async function withPullPolicy<T>(ctx: CliContext, image: string, policy: PullPolicy, use: () => Promise<T>): Promise<T> {
  const pull = (): Promise<string> => pullReporting(ctx, image, { out: ctx.stderr, isTTY: Boolean((ctx.stderr as { isTTY?: boolean }).isTTY) });
  if (policy === 'always') {
    await pull();
    return use();
  }
  try {
    return await use();
  } catch (e) {
    if (policy === 'never' || !(e instanceof ImageNotFoundError) || e.reference !== image || looksLikeId(image)) throw e;
  }
  const { familiarReference, parseReference } = await import('../image/reference.js');
  ctx.stderr.write(`Unable to find image '${familiarReference(parseReference(image))}' locally\n`);
  await pull();
  return use();
}

/** A full image id is never pulled (it names no repository). */
function looksLikeId(s: string): boolean {
  return /^(?:sha256:)?[0-9a-f]{64}$/.test(s);
}
