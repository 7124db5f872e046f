/**
 * Dockerfile → typed instructions (buildkit `frontend/dockerfile/instructions`): each node of the
 * line-level AST (ast.ts) becomes an `Instruction` (instructions.ts); flags are checked per keyword
 * (flags.ts), RUN mounts are parsed (run-mount.ts), and instructions are grouped into meta ARGs and
 * stages. Nothing is expanded here (expansion needs the dispatch-time env).
 */
import type {
  Add,
  Arg,
  ArgDef,
  CommandLine,
  Copy,
  Dockerfile,
  From,
  Instruction,
  KeyValue,
  RunMount,
  SourceRange,
  Stage,
} from './instructions.js';
import { BuildError, DockerfileSyntaxError, UnknownInstructionError } from '../errors.js';
import { chompHeredocContent, lineRange, parseAst, type AstNode } from './ast.js';
import { parseFlags, parseGoDuration, suggest, type ParsedFlags } from './flags.js';
import { parseMount } from './run-mount.js';

/** The instruction keywords (buildkit `command.Commands`). */
const KEYWORDS = [
  'ADD',
  'ARG',
  'CMD',
  'COPY',
  'ENTRYPOINT',
  'ENV',
  'EXPOSE',
  'FROM',
  'HEALTHCHECK',
  'LABEL',
  'MAINTAINER',
  'ONBUILD',
  'RUN',
  'SHELL',
  'STOPSIGNAL',
  'USER',
  'VOLUME',
  'WORKDIR',
] as const;
type Keyword = (typeof KEYWORDS)[number];

function isKeyword(k: string): k is Keyword {
  return (KEYWORDS as readonly string[]).includes(k);
}

interface Ctx {
  file?: string;
  node: AstNode;
  keyword: Keyword;
  range: SourceRange;
}

function fail(c: Ctx, msg: string, at?: { line: number; column: number }): never {
  const range = at !== undefined ? lineRange(c.file, at.line, at.column, at.line, at.column) : c.range;
  throw new DockerfileSyntaxError(msg, { range, instruction: c.keyword });
}

/** Source position of a flag's text, for precise error positions (undefined: use the instruction's). */
function flagColumn(c: Ctx, flag: string, last = false): { line: number; column: number } | undefined {
  const i = last ? c.node.original.lastIndexOf(flag) : c.node.original.indexOf(flag);
  if (i < 0) return undefined;
  let seg = c.node.segments[0];
  for (const s of c.node.segments) if (s.offset <= i) seg = s;
  if (!seg) return undefined;
  return { line: seg.line, column: seg.column + (i - seg.offset) };
}

function flags(c: Ctx): ParsedFlags {
  return parseFlags(c.keyword, c.node.flags, (msg, flag, last) => fail(c, msg, flag !== undefined ? flagColumn(c, flag, last) : undefined));
}

function commandLine(c: Ctx): CommandLine {
  if (c.node.jsonForm) return { form: 'exec', args: [...c.node.args] };
  return { form: 'shell', command: c.node.args[0] ?? '' };
}

function keyValues(c: Ctx): KeyValue[] {
  const a = c.node.args;
  if (a.length === 0) fail(c, `${c.keyword} requires at least one argument`);
  const out: KeyValue[] = [];
  for (let i = 0; i + 1 < a.length; i += 3) {
    if (a[i] === '') fail(c, `${c.keyword} names can not be blank`);
    out.push({ key: a[i]!, value: a[i + 1]! });
  }
  return out;
}

function exactlyOne(c: Ctx): string {
  if (c.node.args.length !== 1) fail(c, `${c.keyword} requires exactly one argument`);
  return c.node.args[0]!;
}

function durationFlag(c: Ctx, f: ParsedFlags, name: string): number | undefined {
  const v = f.strings.get(name);
  if (v === undefined || v === '') return undefined;
  const ns = parseGoDuration(v);
  if (ns === undefined) fail(c, `invalid duration for --${name}: ${JSON.stringify(v)}`, flagColumn(c, `--${name}`));
  if (ns === 0) return 0;
  if (ns < 1e6) fail(c, `Interval "--${name}" cannot be less than 1ms`, flagColumn(c, `--${name}`));
  return ns;
}

const STAGE_NAME_RE = /^[a-z][a-z0-9-_.]*$/;

function parseFrom(c: Ctx, f: ParsedFlags, base: Base): From {
  const a = c.node.args;
  if (a.length !== 1 && a.length !== 3) fail(c, 'FROM requires either one or three arguments');
  const out: From = { ...base, kind: 'from', image: a[0]! };
  if (a.length === 3) {
    if (a[1]!.toLowerCase() !== 'as') fail(c, `FROM requires either one or three arguments (expected "AS", got ${JSON.stringify(a[1])})`);
    const name = a[2]!.toLowerCase();
    if (!STAGE_NAME_RE.test(name)) {
      fail(c, `invalid name for build stage: ${JSON.stringify(a[2])}, name can't start with a number or contain symbols`);
    }
    out.stageName = name;
  }
  const p = f.strings.get('platform');
  if (p !== undefined) out.platform = p;
  return out;
}

type Base = { range: SourceRange; original: string; comments: string[] };

function copyCommon(c: Ctx, f: ParsedFlags, base: Base) {
  const a = c.node.args;
  if (a.length < 2) {
    fail(c, `${c.keyword} requires at least two arguments, but only ${a.length === 0 ? 'none were' : 'one was'} provided. Destination could not be determined`);
  }
  const heredocs = c.node.heredocs.map((h) => ({ ...h, content: h.chomp ? chompHeredocContent(h.content) : h.content }));
  const out = {
    ...base,
    sources: a.slice(0, -1),
    dest: a[a.length - 1]!,
    heredocs,
    jsonForm: c.node.jsonForm,
    link: f.bools.get('link') ?? false,
    exclude: f.arrays.get('exclude') ?? [],
    parents: f.bools.get('parents') ?? false,
  };
  const chown = f.strings.get('chown');
  const chmod = f.strings.get('chmod');
  return { ...out, ...(chown !== undefined ? { chown } : {}), ...(chmod !== undefined ? { chmod } : {}) };
}

function toInstruction(node: AstNode, file: string | undefined): Instruction {
  const keyword = node.keyword.toUpperCase();
  const range = lineRange(file, node.startLine, node.startColumn, node.endLine, node.endColumn);
  if (!isKeyword(keyword)) throw new UnknownInstructionError(node.keyword, suggest(node.keyword, KEYWORDS), range);
  const c: Ctx = { node, keyword, range, ...(file !== undefined ? { file } : {}) };
  const f = flags(c);
  const base: Base = { range, original: node.original, comments: [...node.comments] };
  switch (keyword) {
    case 'FROM':
      return parseFrom(c, f, base);
    case 'RUN': {
      if (node.args.length === 0) fail(c, 'RUN requires at least one argument');
      const mounts: RunMount[] = [];
      for (const m of f.arrays.get('mount') ?? []) {
        try {
          mounts.push(parseMount(m));
        } catch (e) {
          fail(c, `invalid --mount=${m}: ${(e as Error).message}`, flagColumn(c, '--mount'));
        }
      }
      const out: Instruction = {
        ...base,
        kind: 'run',
        command: commandLine(c),
        heredocs: node.heredocs.map((h) => ({ ...h, content: h.chomp ? chompHeredocContent(h.content) : h.content })),
        mounts,
      };
      const net = f.strings.get('network');
      if (net !== undefined) {
        if (net !== 'default' && net !== 'none' && net !== 'host') fail(c, `unsupported network mode ${JSON.stringify(net)}`, flagColumn(c, '--network'));
        out.network = net;
      }
      const sec = f.strings.get('security');
      if (sec !== undefined) {
        if (sec !== 'sandbox' && sec !== 'insecure') fail(c, `unsupported security mode ${JSON.stringify(sec)}`, flagColumn(c, '--security'));
        out.security = sec;
      }
      return out;
    }
    case 'COPY': {
      const out: Copy = { ...copyCommon(c, f, base), kind: 'copy' };
      const from = f.strings.get('from');
      if (from !== undefined) out.from = from;
      return out;
    }
    case 'ADD': {
      const out: Add = { ...copyCommon(c, f, base), kind: 'add', keepGitDir: f.bools.get('keep-git-dir') ?? false };
      const checksum = f.strings.get('checksum');
      if (checksum !== undefined) out.checksum = checksum;
      const unpack = f.bools.get('unpack');
      if (unpack !== undefined) out.unpack = unpack;
      return out;
    }
    case 'ENV':
      return { ...base, kind: 'env', pairs: keyValues(c) };
    case 'LABEL':
      return { ...base, kind: 'label', pairs: keyValues(c) };
    case 'ARG': {
      if (node.args.length === 0) fail(c, 'ARG requires at least one argument');
      const args: ArgDef[] = node.args.map((w) => {
        const i = w.indexOf('=');
        if (i === 0) fail(c, `ARG names can not be blank`);
        return i < 0 ? { key: w } : { key: w.slice(0, i), value: w.slice(i + 1) };
      });
      return { ...base, kind: 'arg', args };
    }
    case 'WORKDIR':
      return { ...base, kind: 'workdir', path: exactlyOne(c) };
    case 'USER':
      return { ...base, kind: 'user', user: exactlyOne(c) };
    case 'STOPSIGNAL':
      return { ...base, kind: 'stopsignal', signal: exactlyOne(c) };
    case 'MAINTAINER':
      return { ...base, kind: 'maintainer', maintainer: exactlyOne(c) };
    case 'CMD':
      return { ...base, kind: 'cmd', command: commandLine(c) };
    case 'ENTRYPOINT':
      return { ...base, kind: 'entrypoint', command: commandLine(c) };
    case 'EXPOSE':
      if (node.args.length === 0) fail(c, 'EXPOSE requires at least one argument');
      return { ...base, kind: 'expose', ports: [...node.args] };
    case 'VOLUME':
      if (node.args.length === 0) fail(c, 'VOLUME requires at least one argument');
      if (node.args.some((p) => p.trim() === '')) fail(c, 'VOLUME specified can not be an empty string');
      return { ...base, kind: 'volume', paths: [...node.args] };
    case 'SHELL':
      if (node.args.length === 0) fail(c, 'SHELL requires at least one argument');
      if (!node.jsonForm) fail(c, 'SHELL requires the arguments to be in JSON form');
      return { ...base, kind: 'shell', shell: [...node.args] };
    case 'HEALTHCHECK': {
      const a = node.args;
      if (a.length === 0) fail(c, 'HEALTHCHECK requires at least one argument');
      const typ = a[0]!.toUpperCase();
      if (typ === 'NONE') {
        if (a.length !== 1) fail(c, 'HEALTHCHECK NONE takes no arguments');
        return { ...base, kind: 'healthcheck', test: ['NONE'] };
      }
      if (typ !== 'CMD') fail(c, `Unknown type ${JSON.stringify(typ)} in HEALTHCHECK (try CMD)`);
      if (a.length < 2 || (!node.jsonForm && a[1] === '')) fail(c, 'Missing command after HEALTHCHECK CMD');
      const test = node.jsonForm ? ['CMD', ...a.slice(1)] : ['CMD-SHELL', a[1]!];
      const out: Instruction = { ...base, kind: 'healthcheck', test };
      const interval = durationFlag(c, f, 'interval');
      const timeout = durationFlag(c, f, 'timeout');
      const startPeriod = durationFlag(c, f, 'start-period');
      const startInterval = durationFlag(c, f, 'start-interval');
      if (interval !== undefined) out.interval = interval;
      if (timeout !== undefined) out.timeout = timeout;
      if (startPeriod !== undefined) out.startPeriod = startPeriod;
      if (startInterval !== undefined) out.startInterval = startInterval;
      const retries = f.strings.get('retries');
      if (retries !== undefined && retries !== '') {
        if (!/^-?\d+$/.test(retries)) fail(c, `invalid --retries value ${JSON.stringify(retries)}`, flagColumn(c, '--retries'));
        const n = Number.parseInt(retries, 10);
        if (n < 0) fail(c, '--retries cannot be negative', flagColumn(c, '--retries'));
        out.retries = n;
      }
      return out;
    }
    case 'ONBUILD': {
      const t = node.trigger;
      if (!t) fail(c, 'ONBUILD requires at least one argument');
      const tk = t.keyword.toUpperCase();
      if (tk === 'ONBUILD') fail(c, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
      if (tk === 'FROM' || tk === 'MAINTAINER') fail(c, `${tk} isn't allowed as an ONBUILD trigger`);
      // The trigger shares the ONBUILD line's position.
      const inner = toInstruction(
        { ...t, startLine: node.startLine, endLine: node.endLine, startColumn: node.startColumn, endColumn: node.endColumn, heredocs: node.heredocs, segments: [] },
        file,
      );
      // A trigger's heredocs are stored with it, each body then its delimiter (BuildKit).
      const expression = node.original.replace(/^\s*ONBUILD\s*/i, '') + node.heredocs.map((h) => `\n${h.content}${h.name}`).join('');
      return { ...base, kind: 'onbuild', expression, instruction: inner };
    }
  }
}

/**
 * Parses an ONBUILD trigger expression as stored in an image config (e.g. `RUN echo hi`) into an
 * instruction, for running triggers when a stage builds FROM that image.
 */
export function parseTrigger(expression: string, o: { file?: string; escape?: '\\' | '`' } = {}): Instruction {
  const escape = o.escape ?? '\\';
  const text = escape === '`' ? `# escape=\`\n${expression}\n` : `${expression}\n`;
  const ast = parseAst(text, o.file !== undefined ? { file: o.file } : {});
  const node = ast.nodes[0]!;
  return toInstruction(node, o.file);
}

/**
 * Parses a Dockerfile into directives, meta ARGs and stages of typed instructions. Lint findings
 * (casing, MAINTAINER, ...) are not made here: src/builder/lint runs BuildKit's rules on the
 * result. `duplicateStages: 'allow'` lets lint read a Dockerfile that reuses a stage name (which
 * a build refuses).
 */
export function parseDockerfile(text: string, o: { file?: string; duplicateStages?: 'error' | 'allow' } = {}): Dockerfile {
  const ast = parseAst(text, o.file !== undefined ? { file: o.file } : {});
  const metaArgs: Arg[] = [];
  const stages: Stage[] = [];
  const names = new Map<string, number>();
  for (const node of ast.nodes) {
    const ins = toInstruction(node, o.file);
    if (ins.kind === 'from') {
      const stage: Stage = { index: stages.length, from: ins, instructions: [] };
      if (ins.stageName !== undefined) {
        if (names.has(ins.stageName) && o.duplicateStages !== 'allow') {
          throw new DockerfileSyntaxError(`duplicate stage name ${JSON.stringify(ins.stageName)} (first defined by stage ${names.get(ins.stageName)})`, {
            range: ins.range,
            instruction: 'FROM',
          });
        }
        if (!names.has(ins.stageName)) names.set(ins.stageName, stage.index);
        stage.name = ins.stageName;
      }
      stages.push(stage);
      continue;
    }
    const current = stages[stages.length - 1];
    if (!current) {
      if (ins.kind === 'arg') {
        metaArgs.push(ins);
        continue;
      }
      throw new DockerfileSyntaxError(
        `${node.keyword.toUpperCase()} before the first FROM: only ARG may come before FROM (no build stage in current context)`,
        { range: ins.range, instruction: node.keyword.toUpperCase() },
      );
    }
    current.instructions.push(ins);
  }
  if (stages.length === 0) {
    const last = ast.nodes[ast.nodes.length - 1]!;
    throw new BuildError('Dockerfile has no FROM instruction: there is no build stage', {
      range: lineRange(o.file, last.startLine, last.startColumn, last.endLine, last.endColumn),
    });
  }
  const df: Dockerfile = { directives: ast.directives, metaArgs, stages };
  if (o.file !== undefined) df.file = o.file;
  return df;
}
