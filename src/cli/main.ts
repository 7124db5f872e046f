#!/usr/bin/env node
/**
 * The CLI entry point and the only place that formats errors and exits. Every error is one line,
 * `imgbuild: CODE: message` (an INTERNAL one, a bug, is followed by its stack).
 * Exit codes: the command's own status via ExitError; 1 for imgbuild errors; 125 for usage errors
 * (every command) and for `run` and `exec` failures of imgbuild itself (their other statuses are
 * the program's), as Docker does.
 */
import { ExitError, fromSystemError, isImgbuildError, type ImgbuildError } from '../errors.js';
import type { CliContext } from './context.js';

/** What to do about some codes, said at the end of the error's line. */
const HINTS: Partial<Record<ImgbuildError['code'], string>> = {
  PERMISSION_DENIED: 'run as root, or set up a user namespace (subuid/subgid) for rootless use',
  UNAUTHORIZED: 'log in with `imgbuild login <registry>`',
};

/** An error's own hint, or one of an error it wraps (its causes), else its code's. */
function hintOf(e: ImgbuildError): string | undefined {
  let c: unknown = e;
  for (let depth = 0; c instanceof Error && depth < 8; depth++, c = c.cause) {
    const own = (c as { hint?: unknown }).hint;
    if (typeof own === 'string') return own;
  }
  return HINTS[e.code];
}

function describe(e: ImgbuildError): string {
  const extra = (e as unknown as { location?: string }).location;
  const hint = hintOf(e);
  return `${e.code}: ${e.message}${extra ? ` (${extra})` : ''}${hint ? ` (hint: ${hint})` : ''}`;
}

/** Writes one error (its line; an INTERNAL one's stack after it) and returns the exit status. */
function report(e: unknown): number {
  const err = isImgbuildError(e) ? e : fromSystemError(e);
  if (!err) {
    const stack = (e as Error | undefined)?.stack;
    process.stderr.write(`imgbuild: INTERNAL: ${(e as Error | undefined)?.message ?? String(e)}\n${stack ?? ''}\nThis is a bug in imgbuild; please report it with the output above.\n`);
    return 1;
  }
  process.stderr.write(`imgbuild: ${describe(err)}\n`);
  if (err.code === 'INTERNAL') process.stderr.write(`${err.stack ?? ''}\nThis is a bug in imgbuild; please report it with the output above.\n`);
  return (err as unknown as { exitCode?: number }).exitCode ?? (e as { exitCode?: number }).exitCode ?? 1;
}

/**
 * What a rootless user runs as itself: these write no file of a snapshot, and the ones that reach
 * a running container (exec, signals) must start from the host, the owner of every container's
 * user namespace, to enter it.
 */
// `cp` starts outside too: a running container's files are reached only from its own user
// namespace, which the command learns once it has found the container (UserNamespaceNeeded).
// `top` and `stats` read the container's processes in /proc, whose namespace links only the user
// itself may read (host/proc-group.ts).
const OUTSIDE_NAMESPACE: ReadonlySet<string> = new Set(['', 'version', 'help', 'login', 'logout', 'images', 'analyze', 'exec', 'stop', 'kill', 'logs', 'ps', 'wait', 'inspect', 'cp', 'top', 'stats']);

/** The command word of a command line (after global options; `--root` takes a value). */
function commandOf(args: string[]): string {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--root' || args[i] === '--storage-driver') i++;
    else if (!args[i]!.startsWith('-')) return args[i]!;
  }
  return '';
}

async function main(argv: string[]): Promise<number> {
  const controller = new AbortController();
  // The first SIGINT/SIGTERM aborts the command so it can clean up (unmount, remove cgroups);
  // a second one leaves at once with the conventional 128+n status. `on`, not `once`: with no
  // listener left, a lock library's signal hook would re-raise the signal and kill us mid-cleanup.
  const onSignal = (sig: NodeJS.Signals): void => {
    if (controller.signal.aborted) {
      process.removeListener(sig, onSignal);
      process.kill(process.pid, sig);
      return;
    }
    controller.abort(new Error(`received ${sig}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // A reader that goes away (`imgbuild images | head -1`) is not a crash: stop writing quietly.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') throw e;
    });
  }

  // Re-executed inside the user's namespace: say so to the parent, which explains a failure of
  // unshare only when it came before this.
  if (process.env.IMGBUILD_USERNS_STARTED_FD) (await import('../host/userns.js')).announceStarted(process.env);
  // Not root: the commands that touch the store's snapshots or containers run again inside the
  // user's namespace (src/host/userns.ts); root never gets here past one getuid().
  if (process.getuid?.() !== 0 && !process.env.IMGBUILD_ROOTLESS) {
    if (!OUTSIDE_NAMESPACE.has(commandOf(argv.slice(2)))) {
      const { reexecInUserNamespace } = await import('../host/userns.js');
      const { defaultRoot } = await import('../store/paths.js');
      return reexecInUserNamespace([process.execPath, ...process.execArgv, argv[1]!, ...argv.slice(2)], process.env, defaultRoot(process.env), process.stderr);
    }
    // The areas below ask this variable whether they run rootless (claims dir, network default).
    process.env.IMGBUILD_ROOTLESS = `${process.getuid?.()}:${process.getgid?.()}`;
  }

  let root: string | undefined;
  let storageDriver: string | undefined;
  let opening: Promise<import('../store/store.js').StoreOpening> | undefined;
  const { defaultRoot } = await import('../store/paths.js');
  const ctx: CliContext = {
    root: () => root ?? defaultRoot(process.env),
    storageDriver: () => storageDriver ?? (process.env.IMGBUILD_STORAGE_DRIVER || undefined),
    opening: () => {
      opening ??= import('../store/store.js').then((m) => m.OciStore.begin(ctx.root()));
      return opening;
    },
    store: () => ctx.opening().then((o) => o.store),
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    signal: controller.signal,
    isTTY: Boolean(process.stdout.isTTY),
  };
  const { buildProgram, CommanderError } = await import('./index.js');
  const program = buildProgram(ctx, (g) => {
    root = g.root;
    storageDriver = g.storageDriver;
  });
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof ExitError) return e.exitCode;
    const { UserNamespaceNeeded, reexecInUserNamespace } = await import('../host/userns.js');
    if (e instanceof UserNamespaceNeeded) {
      const again = [process.execPath, ...process.execArgv, argv[1]!, ...argv.slice(2)];
      return reexecInUserNamespace(again, process.env, ctx.root(), process.stderr, e.pid !== undefined ? { enter: e.pid } : {});
    }
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      if (e.exitCode === 0) return 0;
      // A usage error, on one line like every other error (commander prints nothing itself).
      const { usageText } = await import('./usage.js');
      process.stderr.write(`imgbuild: INVALID_ARGUMENT: ${usageText(program, argv.slice(2), e.message)}\n`);
      return 125;
    }
    // A command that went through several operands (rm, stop, kill) reports each failure.
    let status = 1;
    for (const one of e instanceof AggregateError ? e.errors : [e]) status = report(one);
    return status;
  } finally {
    if (opening) await opening.then((o) => o.store).then((s) => s.release()).catch(() => {});
  }
}

// A command whose promise never settles (nothing left to wait on) must not pass for a success.
let settled = false;
process.on('exit', () => {
  if (settled) return;
  process.stderr.write('imgbuild: INTERNAL: the command stopped before finishing; this is a bug in imgbuild, please report it\n');
  process.exitCode = 70;
});

main(process.argv)
  .catch((e: unknown) => {
    process.stderr.write(`imgbuild: INTERNAL: ${String(e)}\n`);
    return 1;
  })
  .then((code) => {
    settled = true;
    // Leave once output is flushed; a lingering handle (a lock refresher, a socket) must not keep
    // us alive. An empty write's callback runs after everything queued before it, or with an error
    // when the reader has gone away (EPIPE) — either way the status is kept.
    let left = 2;
    const flushed = (): void => {
      if (--left === 0) process.exit(code);
    };
    for (const stream of [process.stdout, process.stderr]) {
      if (stream.destroyed || !stream.writable) flushed();
      else stream.write('', () => flushed());
    }
  });
