#!/usr/bin/env node
/**
 * What the `imgbuild` executable (bin/imgbuild) starts. It runs the CLI from one CommonJS bundle
 * (dist/cli/bundle.cjs, which scripts/build.mjs makes from main.ts with esbuild) through a V8 code
 * cache, rather than loading dist/cli/main.js as ES modules: start-up is most of a short command's
 * time, and Node's ES module loader, resolving and compiling each module file, is most of start-up
 * (docs/architecture.md, "CLI start-up"). Start-up is tuned here, in the build (scripts/build.mjs)
 * and in the command table (commands/table.ts loads only the command's own module); the library
 * code below imports statically.
 *
 * The code cache is one file per command, written when a command exits after finding none (or one
 * V8 refused, e.g. from another Node version), so it holds the functions that command compiled and
 * no others: a cache of the whole bundle compiled eagerly took longer to load than the functions it
 * saved compiling. The files live beside the bundle, as trusted as the code itself
 * (never in a shared temporary directory, where another user could plant one), or, for a user who
 * cannot write there, in that user's own cache directory (codeCacheDirs). V8 checks a cache
 * against the source's length only, so the file name carries the bundle's size and mtime, and the
 * build clears the directory.
 *
 * `node dist/cli/main.js` runs the same program without the bundle.
 */
import { access, closeSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { builtinModules, createRequire } from 'node:module';
import { dirname, isAbsolute, join } from 'node:path';
import { Script } from 'node:vm';

/**
 * bin/imgbuild moves NODE_EXTRA_CA_CERTS aside while Node starts (see there) and hands its value
 * over as IMGBUILD_DEFERRED_CA_CERTS. Put back, processes that imgbuild starts see the user's
 * environment; the hand-over variable stays, telling our TLS code that Node has not loaded them.
 */
export function restoreDeferredCaEnv(env: NodeJS.ProcessEnv): void {
  const deferred = env.IMGBUILD_DEFERRED_CA_CERTS;
  if (deferred !== undefined) env.NODE_EXTRA_CA_CERTS = deferred;
}

/** Global options that take a value (see index.ts): their value is not the command name. */
const VALUE_OPTIONS = new Set(['--root']);

/**
 * The commands of commands/table.ts and the groups of groups.ts (a test keeps the lists equal),
 * plus commander's `help`.
 * Listed here so that this file loads nothing else, and so a mistyped command shares one cache.
 */
export const COMMANDS: ReadonlySet<string> = new Set([
  'build', 'run', 'create', 'start', 'exec', 'ps', 'logs', 'stop', 'kill', 'restart', 'wait', 'pause', 'unpause',
  'rename', 'update', 'attach', 'rm', 'commit', 'cp', 'diff', 'export', 'top', 'stats', 'port', 'pull', 'push',
  'login', 'logout', 'images', 'inspect', 'history', 'analyze', 'tag', 'rmi', 'prune', 'volume', 'generate', 'import', 'save',
  'load', 'events', 'info', 'version', 'container', 'image', 'network', 'system', 'help',
]);

/** The commands that make HTTP requests (registries, ADD URLs). */
const HTTP_COMMANDS: ReadonlySet<string> = new Set(['pull', 'push', 'login', 'build']);

/**
 * The HTTP commands that often make no request at all (a build whose base image is in the store
 * and that adds no URL): their flags change at their first request, not at start. At start it
 * cost every build loading node:v8 and the Node modules of its last run (a cached rebuild after
 * a build that pulled loaded net, tls and http for nothing).
 */
const LATE_HTTP_COMMANDS: ReadonlySet<string> = new Set(['build']);

/**
 * Runs `then` once, when the process's first HTTP request is made through undici (the bundled
 * one or Node's fetch, which both publish `undici:request:create`), before its connection
 * compiles llhttp's WebAssembly.
 */
function onFirstRequest(then: () => void): void {
  const dc = require('node:diagnostics_channel') as typeof import('node:diagnostics_channel');
  const first = (): void => {
    dc.unsubscribe('undici:request:create', first);
    then();
  };
  dc.subscribe('undici:request:create', first);
}

/** The commands that are mostly a transfer: their JavaScript is a short, hot loop per chunk. */
const TRANSFER_COMMANDS: ReadonlySet<string> = new Set(['pull', 'push', 'login']);

/**
 * V8 optimises a function with TurboFan, on a background thread, once it has run enough bytecode
 * (the interrupt budget). During a transfer that compiling competes with the transfer itself for
 * functions that run only a few thousand times; eight times the budget leaves most of it out, and
 * a long transfer still gets its hot functions optimised, later. Not for build, whose long runs of
 * JavaScript (tar, context hashing) want TurboFan early. (docs/architecture.md, "Measurements")
 */
const TRANSFER_FLAGS = '--interrupt-budget=540672';

/**
 * libuv's thread pool (file system calls, zlib, DNS lookups) has 4 threads unless
 * UV_THREADPOOL_SIZE says otherwise, read once, when the first task is queued. A pull's tasks are
 * its downloads' writes and flushes; on a small machine four threads doing them preempt the main
 * thread, which parses, hashes and queues every chunk, so a pull runs with one thread per core,
 * 2 to 4 (docs/architecture.md, "Measurements"). A UV_THREADPOOL_SIZE of the user's wins, and
 * ours is gone from the environment again before anything could pass it on to a child process.
 *
 * `queueTask` must queue a thread-pool task: that starts the pool, with the size set just before.
 * `cores` is asked only for a pull, so other commands do not load node:os for it.
 */
export function sizeThreadPool(command: string, env: NodeJS.ProcessEnv, cores: () => number, queueTask: () => void): void {
  if (command !== 'pull' || env.UV_THREADPOOL_SIZE !== undefined) return;
  env.UV_THREADPOOL_SIZE = String(Math.min(4, Math.max(2, cores())));
  try {
    queueTask();
  } finally {
    delete env.UV_THREADPOOL_SIZE;
  }
}

/**
 * The directories a command's code cache is written to, in order (and read from in reverse, a
 * user's own first). Beside the bundle first: whoever installed imgbuild writes there. A user who
 * cannot (every rootless user of an installation root owns, including a rootless CLI re-run inside
 * its user namespace, where that directory belongs to nobody) would compile its bundle from
 * source in each of its two Node starts (docs/architecture.md, "Measurements"); it keeps its own
 * under $XDG_CACHE_HOME (or ~/.cache)/imgbuild/code-cache, which only it and root can write. Root
 * uses the first directory alone.
 */
export function codeCacheDirs(bundleDir: string, env: NodeJS.ProcessEnv, uid: number): string[] {
  const shared = join(bundleDir, 'code-cache');
  if (uid === 0 && !env.IMGBUILD_ROOTLESS) return [shared];
  const base = env.XDG_CACHE_HOME && isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : env.HOME && isAbsolute(env.HOME) ? join(env.HOME, '.cache') : undefined;
  return base ? [shared, join(base, 'imgbuild', 'code-cache')] : [shared];
}

/**
 * The cache name of a command line: a non-root CLI that has not entered its user namespace yet
 * (src/host/userns.ts) mostly only starts its re-run, which uses `command`'s cache; trained on so
 * little, its own must not replace that one, so it is `user-<command>`.
 */
export function cacheName(command: string, env: NodeJS.ProcessEnv, uid: number): string {
  return uid !== 0 && !env.IMGBUILD_ROOTLESS ? `user-${command}` : command;
}

/** Writes the files into `dir` (each through a temporary file and a rename); false if it cannot. */
function writeCache(dir: string, files: [string, string | Buffer][]): boolean {
  for (const [name, data] of files) {
    const file = join(dir, name);
    const tmp = `${file}.${process.pid}.tmp`;
    try {
      // Level by level, not `recursive`: Node's recursive mkdir spins for ever where mkdir fails
      // with ENOENT under an existing parent (a cache directory set below /proc, say).
      for (const d of [dirname(dirname(dir)), dirname(dir), dir]) {
        try {
          mkdirSync(d);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        }
      }
      writeFileSync(tmp, data);
      renameSync(tmp, file);
    } catch {
      // A read-only directory: the next one, or no cache.
      try {
        unlinkSync(tmp);
      } catch {
        // nothing was written
      }
      return false;
    }
  }
  return true;
}

/**
 * A user's cache directory keeps one version of each cache (the build clears the shared one):
 * writing `name-<key>` drops the other `name-*` files.
 */
function pruneCache(dir: string, name: string, key: string): void {
  try {
    for (const f of readdirSync(dir)) {
      if (f.startsWith(`${name}-v`) && !f.startsWith(`${name}${key}.`)) unlinkSync(join(dir, f));
    }
  } catch {
    // another process pruned it meanwhile
  }
}

/** Which code cache a command line uses: its command's, `none` without one, `other` for the rest. */
export function commandName(args: readonly string[]): string {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (VALUE_OPTIONS.has(a)) i++;
    else if (!a.startsWith('-')) return COMMANDS.has(a) ? a : 'other';
  }
  return 'none';
}

/**
 * The public Node modules this process has loaded (from process.moduleLoadList, whose entries read
 * "NativeModule net", "NativeModule internal/…", "Internal Binding …"), in the order they were
 * loaded: what an HTTP command's next run loads before it changes V8's flags (see start()).
 */
export function loadedBuiltins(moduleLoadList: readonly string[]): string[] {
  const pub = new Set(builtinModules);
  return moduleLoadList
    .filter((e) => e.startsWith('NativeModule '))
    .map((e) => e.slice('NativeModule '.length))
    // `_tls_wrap`, `_http_agent`...: the legacy names of modules that their public ones load, and
    // not loadable first (`_tls_wrap` before `tls` sees a half-made `tls`).
    .filter((m) => pub.has(m) && !m.startsWith('_'));
}

/**
 * The command whose own bundle (dist/cli/bundle-NAME.cjs, made by scripts/build.mjs) can run this
 * command line: one that loads that command's module alone (src/cli/index.ts, commandsFor), which
 * is a table command after nothing but `--root`. Help, `--version`, groups and anything unusual
 * take the whole bundle.
 */
export function ownBundle(args: readonly string[]): string | undefined {
  let i = 0;
  for (;;) {
    const a = args[i];
    if (a === '--root') i += 2;
    else if (a !== undefined && a.startsWith('--root=')) i++;
    else break;
  }
  const name = args[i];
  return name !== undefined && COMMANDS.has(name) && !GROUPS.has(name) && name !== 'help' ? name : undefined;
}

/** The management groups of groups.ts (a test keeps the list equal): they run from the whole bundle. */
const GROUPS: ReadonlySet<string> = new Set(['container', 'image', 'network', 'system']);

/** The command's own bundle when there is one, else the whole one. */
function openBundle(args: readonly string[]): { bundle: string; fd: number } {
  const own = ownBundle(args);
  if (own !== undefined) {
    const bundle = join(__dirname, `bundle-${own}.cjs`);
    try {
      return { bundle, fd: openSync(bundle, 'r') };
    } catch {
      // a build without command bundles: the whole bundle runs every command
    }
  }
  const bundle = join(__dirname, 'bundle.cjs');
  return { bundle, fd: openSync(bundle, 'r') };
}

function start(): void {
  restoreDeferredCaEnv(process.env);
  const args = process.argv.slice(2);
  const command = commandName(args);
  const { bundle, fd } = openBundle(args);
  const cores = (): number => (require('node:os') as typeof import('node:os')).availableParallelism();
  sizeThreadPool(command, process.env, cores, () => access(bundle, () => {}));
  const st = fstatSync(fd);
  const source = readFileSync(fd, 'latin1'); // ASCII only (scripts/build.mjs)
  closeSync(fd);
  const uid = process.getuid?.() ?? 0;
  const cacheDirs = codeCacheDirs(__dirname, process.env, uid);
  const name = cacheName(command, process.env, uid);
  const cacheKey = `-${process.version}-${process.arch}-${st.size}-${Math.trunc(st.mtimeMs)}`;
  /** `file` from the user's own cache directory, else from the shared one. */
  const readCache = (file: string): Buffer | undefined => {
    for (const dir of [...cacheDirs].reverse()) {
      try {
        return readFileSync(join(dir, file));
      } catch {
        // not made yet, or not there
      }
    }
    return undefined;
  };
  const http = HTTP_COMMANDS.has(command);
  /** Sets the flags of an HTTP command, after loading the Node modules its last run loaded. */
  const httpFlags = (): void => {
    // undici parses HTTP with llhttp compiled to WebAssembly, whose huge state-machine function V8
    // soon tiers up to TurboFan on background threads, competing with the transfer on a small
    // machine; Liftoff's baseline code is fast enough (body bytes pass llhttp as spans). Only for
    // the commands that speak HTTP (node:v8 is not free to load), and before the bundle is
    // compiled, as V8 keys code caches to its flags (LATE_HTTP_COMMANDS: before its first request).
    //
    // Node's own modules have code caches built under the default flags, so a module first loaded
    // after the change is compiled from source: the modules this command loaded on its last run
    // (listed beside its code cache) are loaded first.
    const preload = readCache(`${name}${cacheKey}.builtins`)?.toString('utf8').split('\n').filter(Boolean) ?? [];
    for (const m of preload) {
      try {
        require(`node:${m}`);
      } catch {
        // a stale list naming a module this Node lacks: the command loads what it needs itself
      }
    }
    const v8 = require('node:v8') as typeof import('node:v8');
    v8.setFlagsFromString('--liftoff-only');
    if (TRANSFER_COMMANDS.has(command)) v8.setFlagsFromString(TRANSFER_FLAGS);
  };
  const late = http && LATE_HTTP_COMMANDS.has(command);
  if (http && !late) httpFlags();
  const cachedData = readCache(`${name}${cacheKey}.bin`);
  // The same wrapper Node gives a CommonJS module, so the bundle sees require, module, __filename.
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: bundle,
    ...(cachedData ? { cachedData } : {}),
  });
  const writing = cachedData === undefined || script.cachedDataRejected;
  /** The code cache as it was before a late flag change: one made after it is refused under the default flags. */
  let beforeFlags: Buffer | undefined;
  if (late) {
    onFirstRequest(() => {
      if (writing) beforeFlags = script.createCachedData();
      httpFlags();
    });
  }
  if (writing) {
    process.once('exit', () => {
      const files: [string, string | Buffer][] = [[`${name}${cacheKey}.bin`, beforeFlags ?? script.createCachedData()]];
      if (http) files.push([`${name}${cacheKey}.builtins`, `${loadedBuiltins((process as unknown as { moduleLoadList: string[] }).moduleLoadList).join('\n')}\n`]);
      for (const dir of cacheDirs) {
        if (writeCache(dir, files)) {
          if (dir !== cacheDirs[0]) pruneCache(dir, name, cacheKey);
          break;
        }
      }
    });
  }
  const wrapper = script.runInThisContext() as (
    exports: object,
    require: NodeJS.Require,
    module: { exports: object },
    filename: string,
    dirname: string,
  ) => void;
  const mod = { exports: {} };
  wrapper.call(mod.exports, mod.exports, createRequire(bundle), mod, bundle, __dirname);
}

if (require.main === module) start();
