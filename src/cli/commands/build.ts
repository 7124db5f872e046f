import type { Command } from 'commander';
import { stat, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { subidFilesFromEnv } from '../../host/id-ranges.js';
import type { CliContext } from '../context.js';
import { InvalidArgumentError } from '../../errors.js';
import { createProgress } from '../progress.js';
import { parseCompressionLevel } from './push.js';
import { build } from '../../builder/build.js';
import { parseStorageDriver } from '../../builder/build-snapshotter.js';
import { ISOLATION_ENV, parseIsolation } from '../../sandbox/isolation.js';
import { ExitError } from '../../errors.js';
import { parseSecretFlag } from '../../builder/dispatch/mounts.js';
import { inputsFromArgs } from '../../builder/inputs/context-source.js';
import { parseSshFlag } from '../../builder/inputs/ssh-agent.js';
import { tracePush } from '../../builder/trace.js';
import { BuildTrace } from '../../phases.js';
import { parseCacheFrom, parseCacheTo } from '../../builder/remote-cache/options.js';

interface BuildFlags {
  storageDriver?: string;
  isolation?: string;
  file?: string;
  tag: string[];
  label: string[];
  buildArg: string[];
  target?: string;
  cache: boolean;
  writeLayers?: boolean;
  pull: boolean;
  progress: string;
  secret: string[];
  ssh: string[];
  buildContext: string[];
  network: string;
  userns?: string;
  allow: string[];
  addHost: string[];
  ulimit: string[];
  shmSize?: string;
  platform?: string;
  output?: string;
  compression: string;
  iidfile?: string;
  quiet?: boolean;
  format?: string;
  push?: boolean;
  insecure?: boolean;
  compressionLevel?: string;
  trace?: string;
  check?: boolean;
  call?: string;
  cacheFrom: string[];
  cacheTo: string[];
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

/** 9999-12-31T23:59:59Z, the last second an image's `created` can name. */
const MAX_EPOCH = 253402300799n;

function parseOutput(s: string): { type: 'oci' | 'docker'; dest: string } {
  const kv = new Map<string, string>();
  for (const part of s.split(',')) {
    const i = part.indexOf('=');
    if (i < 0) {
      kv.set('dest', part);
      continue;
    }
    kv.set(part.slice(0, i), part.slice(i + 1));
  }
  const type = kv.get('type') ?? 'oci';
  if (type !== 'oci' && type !== 'docker') throw new InvalidArgumentError(`--output: unsupported type ${JSON.stringify(type)} (oci or docker)`);
  const dest = kv.get('dest');
  if (!dest) throw new InvalidArgumentError('--output needs dest=');
  return { type, dest };
}

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('build')
    .description('build an image from a Dockerfile')
    .argument('<context>', 'build context: a directory, a tar archive, a git repository URL, an http(s) URL, or - for a tar archive or a Dockerfile on stdin')
    .option('-f, --file <path>', 'Dockerfile (default: <context>/Dockerfile; - for stdin; inside the context when it is not a directory)')
    .option('-t, --tag <name>', 'name the image (repeatable)', collect, [])
    .option('--label <key=value>', 'set a label on the image (repeatable)', collect, [])
    .option('--build-arg <key=value>', 'set a build-time variable (repeatable)', collect, [])
    .option('--target <stage>', 'build this stage (and what it needs) only')
    .option('--no-cache', 'do not use the build cache')
    .option('--write-layers', 'write each layer\'s blob as it is built (for tools that read the store root as an OCI layout); by default a blob is written when first needed: push, save, --output')
    .option('--pull', 'always pull base images', false)
    .option('--storage-driver <name>', 'snapshotter for the build: overlay, fuse-overlayfs or vfs (copies, needs no mount); default the global --storage-driver, else the first of them that works here')
    .option('--isolation <type>', `how RUN steps are isolated: oci (all namespaces, own /proc), chroot (what an unprivileged pod allows, then chroot), or auto, the strongest available (default: $${ISOLATION_ENV}, else auto)`)
    .option('--progress <mode>', 'progress output: auto, tty, plain or quiet', 'auto')
    .option('--secret <id=,src=>', 'a secret for RUN --mount=type=secret (repeatable)', collect, [])
    .option('--ssh <default|id[=socket|key[,key]]>', 'an ssh agent (socket, or key files) for RUN --mount=type=ssh and git over ssh (repeatable)', collect, [])
    .option('--build-context <name=value>', 'a named context for FROM, COPY --from and RUN --mount from=: a directory, docker-image://REF, oci-layout://PATH[:TAG], a git or http(s) URL (repeatable)', collect, [])
    .option('--network <mode>', 'RUN networking: default (a namespace of its own on a bridge, with outbound NAT), none or host', 'default')
    .option('--userns <mode>', 'RUN\'s user namespace: host (default) or auto[:size=N], a range of ids of its own from the subordinate ranges of user containers (as root)')
    .option('--allow <entitlement>', 'allow network.host (RUN --network=host) or security.insecure (RUN --security=insecure) (repeatable)', collect, [])
    .option('--add-host <host:ip>', 'add a line to RUN\'s /etc/hosts (ip may be host-gateway; repeatable)', collect, [])
    .option('--ulimit <name=soft[:hard]>', 'a resource limit for RUN (repeatable)', collect, [])
    .option('--shm-size <size>', 'size of RUN\'s /dev/shm (default 64m)')
    .option('--platform <os/arch>', 'target platform')
    .option('--output <type=oci|docker,dest=path>', 'also export the image: an OCI layout dir, or a tarball (dest ending in .tar, or type=docker)')
    .option('--compression <c>', 'layer compression: none (default), gzip or zstd', 'none')
    .option('--cache-from <src>', 'reuse the steps of a build cache: type=registry,ref=REF (or REF alone) or type=local,src=DIR[,tag=T|digest=D] (repeatable)', collect, [])
    .option('--cache-to <dest>', 'write the build\'s steps as a cache: type=registry,ref=REF or type=local,dest=DIR[,tag=T], with [,mode=min|max][,compression=gzip|zstd|uncompressed][,ignore-error=true][,cache-mounts=true: RUN --mount=type=cache contents too] (repeatable)', collect, [])
    .option('--iidfile <file>', 'write the image id to this file')
    .option('--format <f>', 'manifest format: oci (default) or docker')
    .option('-q, --quiet', 'print only the image id')
    .option('--push', 'push every -t tag to its registry after a successful build (layers go out compressed: --compression, or gzip)')
    .option('--insecure', 'with --push: allow plain http and unverified TLS')
    .option('--compression-level <n>', 'with --push: level of the compression done for the push (gzip 1-9, default 4; zstd 1-22, default 3)')
    .option('--trace <file>', 'write the build\'s timeline to this file as Chrome trace events (open it in Perfetto or chrome://tracing): a span per step and per phase, cache hits marked; written also when the build fails')
    .option('--check', 'run BuildKit\'s Dockerfile checks and build nothing (same as --call=check); exit status 1 when a check fails')
    .option('--call <method>', 'build (default) or check[,format=json]: what to do with the Dockerfile')
    .action(async (contextArg: string, f: BuildFlags) => {
      const call = parseCall(f);
      if (!['none', 'gzip', 'zstd'].includes(f.compression)) throw new InvalidArgumentError(`--compression must be none, gzip or zstd, not ${f.compression}`);
      // `bridge` is what the default network is, under the name `run` and the classic builder use.
      if (f.network === 'bridge') f.network = 'default';
      if (!['none', 'host', 'default'].includes(f.network)) throw new InvalidArgumentError(`--network must be default, none or host, not ${f.network}`);
      if (!['auto', 'tty', 'plain', 'quiet'].includes(f.progress)) throw new InvalidArgumentError(`--progress must be auto, tty, plain or quiet`);
      if (f.format && f.format !== 'oci' && f.format !== 'docker' && !(call.check && f.format === 'json')) throw new InvalidArgumentError('--format must be oci or docker');
      if (f.push && f.tag.length === 0) throw new InvalidArgumentError('--push needs at least one -t name to push to');
      if (f.insecure && !f.push) throw new InvalidArgumentError('--insecure only applies with --push');
      if (f.compressionLevel !== undefined && !f.push) throw new InvalidArgumentError('--compression-level only applies with --push');
      let level: number | undefined;
      if (f.compressionLevel !== undefined) {
        level = parseCompressionLevel(f.compressionLevel, f.compression === 'none' ? 'gzip' : f.compression);
      }
      const buildArgs: Record<string, string> = {};
      for (const a of f.buildArg) {
        const i = a.indexOf('=');
        if (i < 0) {
          // `--build-arg NAME` takes the value from the environment, like docker.
          const v = ctx.env[a];
          if (v !== undefined) buildArgs[a] = v;
        } else buildArgs[a.slice(0, i)] = a.slice(i + 1);
      }
      const cacheFrom = f.cacheFrom.flatMap(parseCacheFrom);
      const cacheTo = f.cacheTo.flatMap(parseCacheTo);
      // Said before the build rather than after it: the trace is written once it is over.
      if (f.trace !== undefined && !(await stat(dirname(resolve(f.trace))).then((st) => st.isDirectory(), () => false))) {
        throw new InvalidArgumentError(`--trace ${f.trace}: no directory ${dirname(resolve(f.trace))} to write it in`);
      }
      const inputs = await inputsFromArgs(contextArg, f.file, () => process.stdin, process.cwd());
      const epochText = ctx.env.SOURCE_DATE_EPOCH;
      let sourceDateEpoch: number | undefined;
      if (epochText !== undefined && epochText !== '') {
        if (!/^\d+$/.test(epochText)) throw new InvalidArgumentError(`SOURCE_DATE_EPOCH must be a number of seconds, not ${JSON.stringify(epochText)}`);
        // Image times are RFC 3339 with a four-digit year.
        if (BigInt(epochText) > MAX_EPOCH) throw new InvalidArgumentError(`SOURCE_DATE_EPOCH ${JSON.stringify(epochText)} is after the year 9999`);
        sourceDateEpoch = Number(epochText);
      }
      if (call.check) {
        await runCheck(ctx, inputs, buildArgs, f, call.json || f.format === 'json');
        return;
      }
      // Progress goes to stderr so stdout carries only the image id (scriptable, like docker -q).
      const errTTY = Boolean((ctx.stderr as { isTTY?: boolean }).isTTY);
      const progress = createProgress({ mode: f.quiet ? 'quiet' : (f.progress as 'auto'), out: ctx.stderr, isTTY: errTTY });
      const trace = f.trace !== undefined ? new BuildTrace({ name: 'imgbuild build', args: { context: contextArg, tags: f.tag } }) : undefined;
      // The moment of a Ctrl-C: what follows in the trace is the build winding down.
      if (trace) ctx.signal.addEventListener('abort', () => trace.instant('interrupted', { args: { reason: String((ctx.signal.reason as Error | undefined)?.message ?? ctx.signal.reason) } }), { once: true });
      try {
        const r = await build({
          root: ctx.root(),
          ...inputs,
          tags: f.tag,
          // `--label k` (no `=`) is an empty value, as docker's ConvertKVStringsToMap makes it.
          labels: Object.fromEntries(f.label.map((l) => (l.includes('=') ? [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] : [l, '']))),
          buildArgs,
          ...(f.target ? { target: f.target } : {}),
          noCache: !f.cache,
          ...(f.writeLayers ? { writeLayers: true } : {}),
          pull: f.pull,
          ...((f.storageDriver ?? ctx.storageDriver()) ? { storageDriver: parseStorageDriver((f.storageDriver ?? ctx.storageDriver())!) } : {}),
          isolation: parseIsolation(f.isolation ?? ctx.env[ISOLATION_ENV] ?? 'auto'),
          secrets: f.secret.map(parseSecretFlag),
          ssh: f.ssh.map(parseSshFlag),
          buildContexts: f.buildContext,
          network: f.network as 'default' | 'none' | 'host',
          allow: f.allow,
          ...(f.userns !== undefined ? { userns: f.userns, subidFiles: subidFilesFromEnv(ctx.env) } : {}),
          addHosts: f.addHost,
          ulimits: f.ulimit,
          ...(f.shmSize !== undefined ? { shmSize: f.shmSize } : {}),
          ...(f.platform ? { platform: f.platform } : {}),
          compression: f.compression as 'none' | 'gzip' | 'zstd',
          ...(f.format ? { format: f.format as 'oci' | 'docker' } : {}),
          ...(f.output ? { output: parseOutput(f.output) } : {}),
          ...(f.iidfile ? { iidfile: f.iidfile } : {}),
          ...(sourceDateEpoch !== undefined ? { sourceDateEpoch } : {}),
          cacheFrom,
          cacheTo,
          env: ctx.env,
          reporter: progress,
          ...(trace ? { trace } : {}),
          signal: ctx.signal,
        });
        progress.close();
        if (r.warnings.length > 0 && !f.quiet && f.progress !== 'quiet') ctx.stderr.write((await import('../../builder/lint/report.js')).buildSummary(r.warnings));
        if (f.push) await pushTags(ctx, r.tags, f, level, trace);
        if (trace) {
          trace.finish({ image: r.imageId });
          await writeFile(f.trace!, `${JSON.stringify(trace.toJSON())}\n`);
        }
        ctx.stdout.write(`${r.imageId}\n`);
      } catch (e) {
        progress.close();
        if (trace && !trace.finished) {
          // What happened, also in a failed or interrupted build, before its error line; the
          // build's own error is the one reported.
          trace.finish({ error: e instanceof Error ? e.message : String(e) });
          await writeFile(f.trace!, `${JSON.stringify(trace.toJSON())}\n`).catch(() => {});
        }
        throw e;
      }
    });
}

/** `--check` and `--call=check[,format=json]` (buildx's names); other buildx methods are refused. */
function parseCall(f: BuildFlags): { check: boolean; json: boolean } {
  if (f.call === undefined) return { check: Boolean(f.check), json: false };
  const [method, ...opts] = f.call.split(',');
  let json = false;
  for (const o of opts) {
    if (o === 'format=json') json = true;
    else if (o !== 'format=text' && o !== '') throw new InvalidArgumentError(`--call: unsupported option ${JSON.stringify(o)} (format=json or format=text)`);
  }
  if (method === 'check') return { check: true, json };
  if (method === 'build' && !f.check) return { check: false, json: false };
  if (method === 'build') throw new InvalidArgumentError('--check and --call=build contradict each other');
  throw new InvalidArgumentError(`--call: unsupported method ${JSON.stringify(method)} (build or check)`);
}

/**
 * Prints the check's report on stdout as buildx does (text, or BuildKit's JSON) and sets the exit
 * status: 0 when nothing was found, 1 when a check failed; a Dockerfile that cannot be built (or
 * `error=true` with findings) fails with its one-line error after the report.
 */
async function runCheck(ctx: CliContext, inputs: Awaited<ReturnType<typeof inputsFromArgs>>, buildArgs: Record<string, string>, f: BuildFlags, json: boolean): Promise<void> {
  const [{ checkDockerfile }, report, { violationOf }] = await Promise.all([
    import('../../builder/check.js'),
    import('../../builder/lint/report.js'),
    import('../../builder/lint/lint.js'),
  ]);
  const r = await checkDockerfile({
    root: ctx.root(),
    ...inputs,
    buildArgs,
    ...(f.target ? { target: f.target } : {}),
    ...(f.platform ? { platform: f.platform } : {}),
    signal: ctx.signal,
  });
  const error = r.error ?? violationOf(r);
  if (json) {
    ctx.stdout.write(report.checkJson(r.text, r.file, r.warnings, error));
    if (r.warnings.length > 0 || error) throw new ExitError(1);
    return;
  }
  if (r.warnings.length > 0 || !error) ctx.stdout.write(report.checkReport(r.text, r.file, r.warnings));
  if (error) throw error;
  if (r.warnings.length > 0) throw new ExitError(1);
}

/**
 * `build --push`: each tag goes to its registry in turn. Layers stored uncompressed (the build
 * default) are converted once by the push (ensureCompressed caches the result), so the second tag
 * finds the blobs there or mounts them. Progress goes to stderr like the build's, so stdout keeps
 * only the image id.
 */
async function pushTags(ctx: CliContext, tags: string[], f: BuildFlags, level: number | undefined, trace: BuildTrace | undefined): Promise<void> {
  // The registry client loads on use: `--help` loads every command module (docs/architecture.md, Measurements).
  const [{ pushImage }, { createTransferRenderer }] = await Promise.all([
    import('../../registry/push.js'),
    import('../transfer-progress.js'),
  ]);
  const store = await ctx.store();
  const quiet = Boolean(f.quiet) || f.progress === 'quiet';
  const errTTY = Boolean((ctx.stderr as { isTTY?: boolean }).isTTY);
  // The build's own --compression (how layers are stored) is also what is pushed; `none` there
  // means "stored uncompressed", which pushes as gzip, the registry default.
  const compression = f.compression === 'none' ? undefined : (f.compression as 'gzip' | 'zstd');
  for (const tag of tags) {
    if (!quiet) ctx.stderr.write(`Pushing ${tag}\n`);
    const r = createTransferRenderer({ out: ctx.stderr, isTTY: errTTY, quiet, direction: 'push' });
    const traced = trace ? tracePush(trace, tag) : undefined;
    try {
      const desc = await pushImage(store, tag, tag, {
        ...(compression ? { compression } : {}),
        ...(level !== undefined ? { compressionLevel: level } : {}),
        ...(f.insecure ? { insecure: true } : {}),
        signal: ctx.signal,
        env: ctx.env,
        onProgress: traced ? (e) => {
          traced.onEvent(e);
          r.onEvent(e);
        } : (e) => r.onEvent(e),
      });
      traced?.finish();
      r.close();
      if (!quiet) ctx.stderr.write(`${tag}: digest: ${desc.digest} size: ${desc.size}\n`);
    } catch (e) {
      traced?.finish(e instanceof Error ? e.message : String(e));
      r.close();
      throw e;
    }
  }
}
