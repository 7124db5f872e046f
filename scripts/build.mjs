// Builds what `npm ci` must leave ready: the TypeScript output in dist/, the CLI bundle that the
// `imgbuild` executable (bin/imgbuild → dist/cli/bin.cjs) runs, and the native sandbox helper in
// native/build/.
// Fails with one line naming what is missing.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * The packages left outside the bundle (native addons, and fzstd, a fallback zstd decoder), with
 * the names imgbuild imports from each. Loading one costs several milliseconds (a native addon's
 * platform loader, or compiling a package without a code cache), which every command initialising
 * an importer would pay whether or not it uses the package.
 */
const LAZY_EXTERNALS = {
  '@napi-rs/blake-hash': ['Blake3Hasher', 'blake3'],
  '@mongodb-js/zstd': ['compress'],
  'fs-xattr': ['getAttributeSync', 'listAttributesSync', 'setAttributeSync'],
  fzstd: ['Decompress'],
};

/**
 * Node modules that imgbuild's own code (src/) imports, required on first use instead, with the
 * names imported from each (`default`: the module object). Loading node:zlib took ~1.4 ms and
 * node:child_process ~0.9 ms of every build, which a cached rebuild never uses (no process, no
 * compression). Packages in the bundle that require them are left as they are.
 */
const LAZY_BUILTINS = {
  'node:zlib': ['default', 'createGunzip'],
  'node:child_process': ['execFile', 'spawn', 'spawnSync'],
};

/**
 * napi-rs packages whose platform binding is loaded straight from its package on glibc Linux: their
 * own loader tells glibc from musl with process.report.getReport(), about 5 of the 7 ms that
 * loading @napi-rs/blake-hash took, which every build pays for its cache keys. Elsewhere, or when
 * the binding is not where its package would look, the package's own loader runs.
 */
const NAPI_GNU_BINDINGS = new Set(['@napi-rs/blake-hash']);

function run(cmd, args, what) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.error && r.error.code === 'ENOENT') {
    console.error(`imgbuild build: '${cmd}' not found; ${what}`);
    process.exit(1);
  }
  if (r.status !== 0) {
    console.error(`imgbuild build: ${cmd} ${args.join(' ')} failed (exit ${r.status})`);
    process.exit(r.status ?? 1);
  }
}

const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
if (!existsSync(tsc)) {
  console.error('imgbuild build: the typescript package is missing; run `npm ci` (dev dependencies are needed to build)');
  process.exit(1);
}
run(process.execPath, [tsc, '-p', 'tsconfig.json'], 'Node.js is required');
await bundleCli();
if (existsSync(join(root, 'native', 'Makefile'))) {
  run('make', ['-s', '-C', 'native'], 'install make and a C compiler (Debian: apt-get install build-essential)');
}

/**
 * dist/cli/bundle.cjs: main.ts and everything it imports as one CommonJS file (see src/cli/bin.cts
 * for why). Every package is inside, so that its code is in the code cache too, except those of
 * LAZY_EXTERNALS. import.meta.url becomes the bundle's own URL: the modules that use it find files
 * one level below dist/ (or src/), as the bundle is.
 *
 * How the bundle stays lazy: esbuild turns every module into an initialiser that runs its top
 * level once, when the first importer initialises (a static import) or when an `import()` of it
 * runs, which esbuild compiles to a call of that initialiser, not to a loader. The CLI's one such
 * `import()` per command (src/cli/commands/table.ts) is what keeps a command from initialising the
 * others' modules; below it, modules import each other statically. A module's own top level is
 * cheap; what costs is the Node modules and packages it requires, so packages outside the bundle
 * are required on first use (lazyExternals).
 *
 * Beside it, each command of the table gets a bundle of its own, dist/cli/bundle-NAME.cjs, which
 * holds only what that command reaches: the whole bundle's size was paid by every command (read,
 * its top level compiled, its code cache deserialised and collected), ~6 ms of `run --rm`'s
 * time at 1.85 MB (docs/architecture.md, "Module loading").
 */
async function bundleCli() {
  let esbuild;
  try {
    esbuild = await import('esbuild');
  } catch {
    console.error('imgbuild build: the esbuild package is missing; run `npm ci` (dev dependencies are needed to build)');
    process.exit(1);
  }
  const cli = join(root, 'dist', 'cli');
  // Bundles of an earlier build whose command is gone must not linger.
  for (const f of readdirSync(cli)) if (/^bundle[.-].*\.cjs(\.map)?$/.test(f)) rmSync(join(cli, f));
  const commands = tableCommands();
  await Promise.all([
    bundleOne(esbuild, join(cli, 'bundle.cjs'), []),
    ...commands.map((c) => bundleOne(esbuild, join(cli, `bundle-${c.name}.cjs`), [onlyCommand(c.file)])),
  ]);
  // A code cache is only valid for the bundle it was made from (see src/cli/bin.cts).
  rmSync(join(cli, 'code-cache'), { recursive: true, force: true });
  chmodSync(join(cli, 'bin.cjs'), 0o755);
}

/**
 * One CLI bundle at `outfile`: main.ts and what it reaches, with `extra` plugins (onlyCommand for
 * a command's own bundle).
 */
async function bundleOne(esbuild, outfile, extra) {
  const result = await esbuild.build({
    entryPoints: [join(root, 'src', 'cli', 'main.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    define: { 'import.meta.url': '__imgbuildBundleUrl' },
    banner: { js: 'const __imgbuildBundleUrl = require("node:url").pathToFileURL(__filename).href;' },
    // One map, of the whole bundle: a command's bundle is the same modules, in the same code.
    sourcemap: extra.length === 0 ? 'external' : false,
    metafile: true,
    plugins: [...extra, lazyExternals(LAZY_EXTERNALS), lazyBuiltins(LAZY_BUILTINS), lazyUndiciH2(), lazyCommanderChildProcess()],
    logLevel: 'error',
  });
  // The executable compiles this file itself (no shebang wanted: the line is blanked, so the source
  // map's line numbers still hold), and inside vm.Script an import() has no loader: every module
  // must be reached through require. (An import() of a bundled module is no loader call; only one
  // of a package outside the bundle would be.)
  const dynamic = Object.values(result.metafile.outputs)
    .flatMap((o) => o.imports)
    .filter((i) => i.kind === 'dynamic-import');
  if (dynamic.length > 0) {
    console.error(`imgbuild build: the CLI bundle still has a dynamic import of ${dynamic.map((i) => i.path).join(', ')}; import it statically`);
    process.exit(1);
  }
  // esbuild writes strings, templates and identifiers as ASCII but leaves comments and regular
  // expression literals as they are; \u escapes mean the same in both. An ASCII file can be read
  // as latin1, which is faster to decode than UTF-8.
  const code = readFileSync(outfile, 'utf8')
    .replace(/^#!.*\n/, '\n')
    .replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  writeFileSync(outfile, code);
}

/**
 * The command table's entries (src/cli/commands/table.ts), as `{ name, file }`. The build fails
 * when the table no longer reads as `['name', () => import('./file.js')]` lines, rather than
 * quietly making fewer bundles.
 */
function tableCommands() {
  const table = readFileSync(join(root, 'src', 'cli', 'commands', 'table.ts'), 'utf8');
  const entries = [...table.matchAll(/^\s*\['([a-z-]+)', \(\) => import\('\.\/([a-z-]+)\.js'\)\],$/gm)].map((m) => ({ name: m[1], file: m[2] }));
  const listed = (table.match(/^\s*\['/gm) ?? []).length;
  if (entries.length === 0 || entries.length !== listed || entries.some((e) => !existsSync(join(root, 'src', 'cli', 'commands', `${e.file}.ts`)))) {
    console.error('imgbuild build: src/cli/commands/table.ts no longer lists its commands as scripts/build.mjs (tableCommands) reads them');
    process.exit(1);
  }
  return entries;
}

/**
 * A command's own bundle (dist/cli/bundle-NAME.cjs, which the executable runs for `imgbuild NAME
 * ...`: src/cli/bin.cts): the table's and the groups' other command modules are left out, each an
 * `import()` of a module that says it is missing. That import never runs: the executable picks
 * such a bundle only for a command line that loads that command's module alone.
 */
function onlyCommand(file) {
  const namespace = 'not-in-bundle';
  const own = `./${file}.js`;
  return {
    name: 'only-command',
    setup(build) {
      build.onResolve({ filter: /^\.\/.*\.js$/ }, (args) => {
        if (args.kind !== 'dynamic-import' || args.path === own) return undefined;
        if (!/[\\/]cli[\\/](commands[\\/]table|groups)\.ts$/.test(args.importer)) return undefined;
        return { path: args.path, namespace };
      });
      build.onLoad({ filter: /.*/, namespace }, (args) => ({
        contents: `export default function () { throw new Error(${JSON.stringify(`${args.path} is not in this command's bundle`)}); }`,
        loader: 'js',
      }));
    },
  };
}

/**
 * Each package of `packages` becomes a module in the bundle whose exports require the real package
 * on first use (call, `new` or property) and then are replaced by the real ones; the package itself
 * stays outside the bundle, required from node_modules. An import of a name not listed fails the
 * build, as does a listed name the package lacks.
 */
function lazyExternals(packages) {
  const namespace = 'lazy-external';
  const escape = (p) => p.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  const nodeRequire = createRequire(import.meta.url);
  return {
    name: namespace,
    setup(build) {
      const filter = new RegExp(`^(${Object.keys(packages).map(escape).join('|')})$`);
      build.onResolve({ filter }, (args) => (args.namespace === namespace ? { path: args.path, external: true } : { path: args.path, namespace }));
      build.onLoad({ filter: /.*/, namespace }, (args) => {
        const names = packages[args.path];
        const real = nodeRequire(args.path);
        const missing = names.filter((n) => typeof real[n] !== 'function');
        if (names.length === 0 || missing.length > 0) {
          console.error(`imgbuild build: ${args.path} has no function ${missing.join(', ') || '(none listed)'} that scripts/build.mjs (LAZY_EXTERNALS) lists`);
          process.exit(1);
        }
        const gnu = NAPI_GNU_BINDINGS.has(args.path);
        const built = gnu ? builtGnuBinding(nodeRequire, args.path) : undefined;
        const lines = [
          'let pkg;',
          ...(gnu ? [
            'function gnuBinding() {',
            "  const { platform, arch } = process;",
            "  if (platform !== 'linux' || (arch !== 'x64' && arch !== 'arm64')) return undefined;",
            "  if (require('node:fs').existsSync(`/lib/ld-musl-${arch === 'x64' ? 'x86_64' : 'aarch64'}.so.1`)) return undefined;",
            // Where the build found it first: resolving the package (its package.json files read
            // on the way) took ~0.7 ms of every build's 1.8 ms load of the binding.
            ...(built ? [
              `  if (arch === ${JSON.stringify(built.arch)}) {`,
              '    try {',
              `      return require(require('node:path').join(__dirname, ${JSON.stringify(built.path)}));`,
              '    } catch {',
              '      // moved since the build: found through the package below',
              '    }',
              '  }',
            ] : []),
            '  try {',
            `    return require('node:module').createRequire(require.resolve(${JSON.stringify(args.path)}))(\`${args.path}-linux-\${arch}-gnu\`);`,
            '  } catch {',
            '    return undefined;',
            '  }',
            '}',
          ] : []),
          'function load() {',
          gnu ? `  pkg ??= gnuBinding() ?? require(${JSON.stringify(args.path)});` : `  pkg ??= require(${JSON.stringify(args.path)});`,
          ...names.map((n) => `  ${n} = pkg.${n};`),
          '  return pkg;',
          '}',
          ...names.map((n) => `export let ${n} = new Proxy(function () {}, { apply: (_, self, a) => Reflect.apply(load().${n}, self, a), construct: (_, a) => Reflect.construct(load().${n}, a), get: (_, p) => load().${n}[p] });`),
        ];
        return { contents: lines.join('\n'), loader: 'js', resolveDir: root };
      });
    },
  };
}

/**
 * Each Node module of `modules`, imported from src/, becomes a module in the bundle whose exports
 * require the real one on first use (call, `new` or property), as lazyExternals does for packages.
 * An import of a name not listed fails the build.
 */
function lazyBuiltins(modules) {
  const namespace = 'lazy-builtin';
  const nodeRequire = createRequire(import.meta.url);
  const filter = new RegExp(`^(${Object.keys(modules).join('|')})$`);
  const proxy = (get) => `new Proxy(function () {}, { apply: (_, self, a) => Reflect.apply(${get}, self, a), construct: (_, a) => Reflect.construct(${get}, a), get: (_, p) => ${get}[p] })`;
  return {
    name: namespace,
    setup(build) {
      build.onResolve({ filter }, (args) => {
        if (args.namespace === namespace || !/[\\/]src[\\/]/.test(args.importer)) return undefined;
        return { path: args.path, namespace };
      });
      build.onLoad({ filter: /.*/, namespace }, (args) => {
        const names = modules[args.path];
        const real = nodeRequire(args.path);
        const missing = names.filter((n) => n !== 'default' && typeof real[n] !== 'function');
        if (missing.length > 0) {
          console.error(`imgbuild build: ${args.path} has no function ${missing.join(', ')} that scripts/build.mjs (LAZY_BUILTINS) lists`);
          process.exit(1);
        }
        const lines = [
          'let mod;',
          `const load = () => (mod ??= require(${JSON.stringify(args.path)}));`,
          ...names.map((n) => (n === 'default' ? `export default ${proxy('load()')};` : `export const ${n} = ${proxy(`load().${n}`)};`)),
        ];
        return { contents: lines.join('\n'), loader: 'js', resolveDir: root };
      });
    },
  };
}

/**
 * The glibc binding file of napi-rs package `name` for this machine, relative to dist/cli (the
 * bundles' `__dirname`); undefined when there is none here.
 */
function builtGnuBinding(nodeRequire, name) {
  const { platform, arch } = process;
  if (platform !== 'linux' || (arch !== 'x64' && arch !== 'arm64')) return undefined;
  try {
    const file = createRequire(nodeRequire.resolve(name)).resolve(`${name}-linux-${arch}-gnu`);
    return { arch, path: relative(join(root, 'dist', 'cli'), file) };
  } catch {
    return undefined;
  }
}

/**
 * A dependency's module-level `require` made lazy: `line` in the file matching `file` becomes
 * `lazy`, which requires on first use. The build fails if the file no longer has `line` exactly
 * once, or if `unsafe` matches (a use the lazy form would not serve), so that an upgrade of the
 * dependency cannot quietly undo or break the rewrite.
 */
function lazyRequire(name, o) {
  return {
    name,
    setup(build) {
      build.onLoad({ filter: o.file }, (args) => {
        const src = readFileSync(args.path, 'utf8');
        if (src.split(o.line).length !== 2 || (o.unsafe && o.unsafe.test(src))) {
          console.error(`imgbuild build: ${args.path} no longer has "${o.line}" as ${name} in scripts/build.mjs expects`);
          process.exit(1);
        }
        return { contents: src.replace(o.line, o.lazy), loader: 'js' };
      });
    },
  };
}

/**
 * undici's client requires its HTTP/2 module at load, which loads node:http2 for every registry
 * command, although a connection uses it only when `allowH2` is set and ALPN picks h2, which
 * imgbuild never asks for.
 */
function lazyUndiciH2() {
  return lazyRequire('lazy-undici-h2', {
    file: /[\\/]undici[\\/]lib[\\/]dispatcher[\\/]client\.js$/,
    line: "const connectH2 = require('./client-h2.js')",
    lazy: "let h2Module\nfunction connectH2 (...args) {\n  h2Module ??= require('./client-h2.js')\n  return h2Module(...args)\n}",
  });
}

/**
 * commander requires node:child_process at load (with node:dgram, for every command) for
 * executable subcommands (git-style `program-sub` files), which imgbuild does not use. Only
 * `childProcess.spawn` is used, so a spawn that requires on first call stands in.
 */
function lazyCommanderChildProcess() {
  return lazyRequire('lazy-commander-child-process', {
    file: /[\\/]commander[\\/]lib[\\/]command\.js$/,
    line: "const childProcess = require('node:child_process');",
    lazy: "const childProcess = { spawn: (...args) => require('node:child_process').spawn(...args) };",
    unsafe: /childProcess\.(?!spawn\()/,
  });
}
