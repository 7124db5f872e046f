/**
 * The typed Dockerfile instruction model (buildkit `frontend/dockerfile/instructions`).
 *
 * Instructions are plain JSON-serialisable data: parse.ts produces them, the cache key is computed
 * over their canonical JSON, and dispatch reads them. Nothing here is expanded: words that buildkit
 * expands at dispatch time keep their `$VAR` text (their values are known only then), and
 * `expandInstruction()` returns a copy with exactly the fields buildkit expands replaced.
 */

/** 1-based line and column (column counts UTF-16 code units, 1 = first character of the line). */
export interface SourcePosition {
  line: number;
  column: number;
}

/**
 * Where something sits in the Dockerfile. `start`/`end` are 1-based for people; `start0`/`end0`
 * are the same positions 0-based (LSP style).
 */
export interface SourceRange {
  file?: string;
  start: SourcePosition;
  end: SourcePosition;
  start0: SourcePosition;
  end0: SourcePosition;
}

/** A heredoc attached to an instruction (buildkit `parser.Heredoc`). */
export interface Heredoc {
  /** Delimiter word with quotes removed (`<<'EOF'` → `EOF`). */
  name: string;
  /** `3<<EOF` → 3; plain `<<EOF` → 0 (stdin). */
  fileDescriptor: number;
  /** False when any part of the delimiter was quoted: the content is taken literally. */
  expand: boolean;
  /** `<<-EOF`: leading tabs are stripped from every content line (already applied to `content`). */
  chomp: boolean;
  /** The body, each line ending in `\n` (empty string for an empty heredoc). */
  content: string;
}

/**
 * A command line of RUN / CMD / ENTRYPOINT / HEALTHCHECK: exec (JSON array) form is taken as is;
 * shell form is one string run by the stage's SHELL (buildkit `ShellDependantCmdLine`).
 */
export type CommandLine =
  | { form: 'exec'; args: string[] }
  | { form: 'shell'; command: string };

/** A finding of the line parser (empty continuation lines); src/builder/lint reports it as BuildKit's rule. */
export interface Warning {
  /** buildkit lint rule name, e.g. 'NoEmptyContinuation'. */
  rule?: string;
  message: string;
  range?: SourceRange;
}

interface Base {
  range: SourceRange;
  /** The logical line as buildkit keeps it: continuation lines joined, comments and heredoc bodies left out. */
  original: string;
  /** Comment lines directly above the instruction, without the leading `#` and one space. */
  comments: string[];
}

export interface From extends Base {
  kind: 'from';
  /** Image reference, stage name, or `scratch`, unexpanded (meta ARGs apply; see stages.ts). */
  image: string;
  /** `AS name`, lower-cased as buildkit does. */
  stageName?: string;
  /** `--platform=...`, unexpanded. */
  platform?: string;
}

export type CacheSharing = 'shared' | 'private' | 'locked';

interface MountBase {
  /** Target path in the container (unexpanded); relative to WORKDIR, '' meaning WORKDIR itself. */
  target: string;
  /** The `--mount` text when a variable in it leaves it to be parsed at dispatch (run-mount.ts). */
  spec?: string;
}
export interface CacheMount extends MountBase {
  type: 'cache';
  /** Cache id; buildkit defaults it to the target. */
  id?: string;
  from?: string;
  source?: string;
  readonly: boolean;
  sharing: CacheSharing;
  mode?: number;
  uid?: number;
  gid?: number;
}
export interface BindMount extends MountBase {
  type: 'bind';
  from?: string;
  source?: string;
  /** Bind mounts are read-only unless `rw`/`readwrite` is given (writes are discarded). */
  readonly: boolean;
}
export interface TmpfsMount extends MountBase {
  type: 'tmpfs';
  /** Bytes; undefined = kernel default. */
  size?: number;
}
export interface SecretMount {
  type: 'secret';
  spec?: string;
  id?: string;
  /** Defaults to /run/secrets/<id> when neither target nor env is given. */
  target?: string;
  env?: string;
  required: boolean;
  mode: number;
  uid: number;
  gid: number;
}
export interface SshMount {
  type: 'ssh';
  spec?: string;
  id?: string;
  target?: string;
  required: boolean;
  mode: number;
  uid: number;
  gid: number;
}
export type RunMount = CacheMount | BindMount | TmpfsMount | SecretMount | SshMount;

export type NetworkMode = 'default' | 'none' | 'host';
export type SecurityMode = 'sandbox' | 'insecure';

export interface Run extends Base {
  kind: 'run';
  command: CommandLine;
  /** Heredocs of the line; with `<<EOF` as the whole command, heredocs[0] is the script. */
  heredocs: Heredoc[];
  mounts: RunMount[];
  network?: NetworkMode;
  security?: SecurityMode;
}

interface CopyLike extends Base {
  /** Source words, unexpanded; a heredoc source appears here as its `<<NAME` word. */
  sources: string[];
  dest: string;
  /** Heredocs used as inline file sources, in order. */
  heredocs: Heredoc[];
  /** True when written in JSON form (`COPY ["a", "b"]`). */
  jsonForm: boolean;
  chown?: string;
  chmod?: string;
  link: boolean;
  exclude: string[];
  parents: boolean;
}
export interface Copy extends CopyLike {
  kind: 'copy';
  /** `--from=stage|index|image`, unexpanded (see stages.ts). */
  from?: string;
}
export interface Add extends CopyLike {
  kind: 'add';
  checksum?: string;
  keepGitDir: boolean;
  /** `--unpack=true|false`; undefined = default (unpack local archives, not remote ones). */
  unpack?: boolean;
}

export interface KeyValue {
  key: string;
  /** Unexpanded value with its quotes, as buildkit keeps it until dispatch. */
  value: string;
}

export interface Env extends Base {
  kind: 'env';
  pairs: KeyValue[];
}

export interface ArgDef {
  key: string;
  /** Default value, unexpanded; undefined when written as plain `ARG NAME`. */
  value?: string;
}
export interface Arg extends Base {
  kind: 'arg';
  args: ArgDef[];
}

export interface Workdir extends Base {
  kind: 'workdir';
  path: string;
}
export interface User extends Base {
  kind: 'user';
  user: string;
}
export interface Cmd extends Base {
  kind: 'cmd';
  command: CommandLine;
}
export interface Entrypoint extends Base {
  kind: 'entrypoint';
  command: CommandLine;
}
export interface Label extends Base {
  kind: 'label';
  pairs: KeyValue[];
}
export interface Expose extends Base {
  kind: 'expose';
  /** Port words as written, e.g. `80`, `8080/udp`, `$PORT` (unexpanded). */
  ports: string[];
}
export interface Volume extends Base {
  kind: 'volume';
  paths: string[];
}
export interface Shell extends Base {
  kind: 'shell';
  /** Always exec form, e.g. ['/bin/sh', '-c']. */
  shell: string[];
}
export interface StopSignal extends Base {
  kind: 'stopsignal';
  signal: string;
}

/** Durations are nanoseconds, as in the image config's Healthcheck. */
export interface Healthcheck extends Base {
  kind: 'healthcheck';
  /** Image-config form: ['NONE'] | ['CMD', ...args] | ['CMD-SHELL', command]. */
  test: string[];
  interval?: number;
  timeout?: number;
  startPeriod?: number;
  startInterval?: number;
  retries?: number;
}

export interface Onbuild extends Base {
  kind: 'onbuild';
  /** The trigger text stored in the image config (e.g. `RUN echo hi`). */
  expression: string;
  /** The trigger parsed, so errors in it surface at build time of this image. */
  instruction: Instruction;
}

export interface Maintainer extends Base {
  kind: 'maintainer';
  maintainer: string;
}

export type Instruction =
  | From
  | Run
  | Copy
  | Add
  | Env
  | Arg
  | Workdir
  | User
  | Cmd
  | Entrypoint
  | Label
  | Expose
  | Volume
  | Shell
  | StopSignal
  | Healthcheck
  | Onbuild
  | Maintainer;

/** What a stage holds after its FROM. */
export type StageInstruction = Exclude<Instruction, From>;

export interface Stage {
  /** `FROM x AS name` (lower-cased); undefined for unnamed stages. */
  name?: string;
  /** Position among the stages, 0-based (what `COPY --from=0` refers to). */
  index: number;
  from: From;
  /** Instructions after FROM, in order (the FROM itself is `from`). */
  instructions: StageInstruction[];
}

export interface Directives {
  /** `# syntax=` value, if any (recorded, not acted on). */
  syntax?: string;
  escape: '\\' | '`';
  /** `# check=` value, if any. */
  check?: string;
}

export interface Dockerfile {
  file?: string;
  directives: Directives;
  /** ARGs before the first FROM (usable in FROM lines; see stages.ts). */
  metaArgs: Arg[];
  stages: Stage[];
}

function expandMount(m: RunMount, ex: (w: string) => string): RunMount {
  const out: RunMount = { ...m };
  for (const k of ['target', 'id', 'from', 'source', 'env'] as const) {
    const o = out as unknown as Record<string, unknown>;
    if (typeof o[k] === 'string') o[k] = ex(o[k] as string);
  }
  return out;
}

/**
 * Returns a copy of `ins` with the words buildkit expands at dispatch passed through `ex`
 * (usually `w => processWord(w, env, escape)`). FROM and `COPY --from` are not touched here:
 * they are resolved against the meta ARGs by stages.ts. Heredoc bodies are expanded by dispatch
 * only where buildkit does (COPY/ADD inline files with `expand: true`).
 */
export function expandInstruction<T extends Instruction>(ins: T, ex: (word: string) => string): T {
  const i = ins as Instruction;
  switch (i.kind) {
    case 'env':
    case 'label':
      return { ...i, pairs: i.pairs.map((p) => ({ key: ex(p.key), value: ex(p.value) })) } as T;
    case 'arg':
      return {
        ...i,
        args: i.args.map((a) => (a.value === undefined ? { key: ex(a.key) } : { key: ex(a.key), value: ex(a.value) })),
      } as T;
    case 'workdir':
      return { ...i, path: ex(i.path) } as T;
    case 'user':
      return { ...i, user: ex(i.user) } as T;
    case 'expose':
      return { ...i, ports: i.ports.map(ex) } as T;
    case 'volume':
      return { ...i, paths: i.paths.map(ex) } as T;
    case 'stopsignal':
      return { ...i, signal: ex(i.signal) } as T;
    case 'run':
      return { ...i, mounts: i.mounts.map((m) => expandMount(m, ex)) } as T;
    case 'copy':
    case 'add': {
      const heredocNames = new Set(i.heredocs.map((h) => h.name));
      const isHeredocWord = (w: string): boolean => w.startsWith('<<') && heredocNames.size > 0;
      const out: CopyLike = {
        ...i,
        sources: i.sources.map((s) => (isHeredocWord(s) ? s : ex(s))),
        dest: ex(i.dest),
        exclude: i.exclude.map(ex),
      };
      if (i.chown !== undefined) out.chown = ex(i.chown);
      if (i.chmod !== undefined) out.chmod = ex(i.chmod);
      if (i.kind === 'add' && i.checksum !== undefined) (out as Add).checksum = ex(i.checksum);
      return out as T;
    }
    default:
      return ins;
  }
}
