import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chompHeredocContent, heredocsFromLine, parseAst, parseHeredocWord, type AstNode } from '../../src/builder/frontend/ast.js';
import { parseDockerfile, parseTrigger } from '../../src/builder/frontend/parse.js';
import { suggest } from '../../src/builder/frontend/flags.js';
import { parseMount } from '../../src/builder/frontend/run-mount.js';
import { BuildError, UnknownInstructionError, withLocation } from '../../src/builder/errors.js';
import { expandInstruction, type Instruction } from '../../src/builder/frontend/instructions.js';

const CONF = join(import.meta.dirname, '../conformance/data/parser-testfiles');
const FIXTURES = join(import.meta.dirname, '../../fixtures');

/** The JSON shape of the conformance ASTs (buildkit parser.Node, upper-case cmd). */
function toConformance(n: AstNode, sub = false): unknown {
  return {
    cmd: n.keyword.toUpperCase(),
    flags: n.flags,
    args: n.trigger ? [toConformance(n.trigger, true)] : n.args,
    json_form: n.jsonForm,
    start_line: sub ? 0 : n.startLine,
    end_line: sub ? 0 : n.endLine,
    original: n.original,
  };
}

/** Go's strconv.Quote, for buildkit's `result` dump format. */
function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += '\\' + ch;
    else if (cp === 7) out += '\\a';
    else if (cp === 8) out += '\\b';
    else if (cp === 12) out += '\\f';
    else if (cp === 10) out += '\\n';
    else if (cp === 13) out += '\\r';
    else if (cp === 9) out += '\\t';
    else if (cp === 11) out += '\\v';
    else if (cp < 0x20 || cp === 0x7f) out += '\\x' + cp.toString(16).padStart(2, '0');
    else out += ch;
  }
  return out + '"';
}

/** buildkit Node.Dump(): `(cmd ["flags"] "arg" ...)` per instruction. */
function dump(n: AstNode): string {
  let s = n.keyword.toLowerCase();
  if (n.flags.length > 0) s += ' [' + n.flags.map(goQuote).join(' ') + ']';
  if (n.trigger) s += ' ' + '(' + dump(n.trigger) + ')';
  for (const a of n.args) s += ' ' + goQuote(a);
  return s.trim();
}

const norm = (x: unknown) => JSON.parse(JSON.stringify(x, (k, v: unknown) => (k === 'flags' && v === null ? [] : v))) as unknown;

describe('parser-testfiles/testfiles vs generated-ast', () => {
  const names = readdirSync(join(CONF, 'testfiles')).sort();
  it('has every case', () => expect(names.length).toBe(33));
  for (const name of names) {
    it(name, () => {
      const text = readFileSync(join(CONF, 'testfiles', name, 'Dockerfile'), 'utf8');
      const exp = JSON.parse(readFileSync(join(CONF, 'generated-ast', `${name}.ast.json`), 'utf8')) as {
        escape_token: string;
        instructions: unknown[];
        warnings: string[];
      };
      const ast = parseAst(text);
      expect(ast.directives.escape).toBe(exp.escape_token);
      // Go prints a nil flag list as null; [] and null mean the same here.
      expect(norm(ast.nodes.map((n) => toConformance(n)))).toEqual(norm(exp.instructions));
      expect(ast.warnings.map((w) => w.message)).toEqual(exp.warnings);
      for (const w of ast.warnings) expect(w.rule).toBe('NoEmptyContinuation');
    });
    it(`${name} (result dump)`, () => {
      const text = readFileSync(join(CONF, 'testfiles', name, 'Dockerfile'), 'utf8');
      const want = readFileSync(join(CONF, 'testfiles', name, 'result'), 'utf8').replace(/\n$/, '');
      const got = parseAst(text).nodes.map((n) => `(${dump(n)})`).join('\n');
      expect(got).toBe(want);
    });
  }
});

describe('parser-testfiles/testfiles-negative', () => {
  const names = readdirSync(join(CONF, 'testfiles-negative')).sort();
  it('has every case', () => expect(names).toEqual(['empty_dockerfile', 'env_no_value', 'only_comments', 'shykes-nested-json']));
  const expected: Record<string, RegExp> = {
    empty_dockerfile: /^1:1: file with no instructions$/,
    only_comments: /^3:1: file with no instructions$/,
    env_no_value: /^3:1: ENV must have two arguments$/,
    'shykes-nested-json': /^1:1: when using JSON array syntax, arrays must be comprised of strings only$/,
  };
  for (const name of names) {
    it(name, () => {
      const text = readFileSync(join(CONF, 'testfiles-negative', name, 'Dockerfile'), 'utf8');
      expect(() => parseAst(text)).toThrow(BuildError);
      expect(() => parseDockerfile(text)).toThrow(expected[name]!);
    });
  }
});

describe('parser-testfiles/testfile-line', () => {
  it('line numbers of each instruction', () => {
    const ast = parseAst(readFileSync(join(CONF, 'testfile-line', 'Dockerfile'), 'utf8'));
    expect(ast.nodes.map((n) => [n.startLine, n.endLine])).toEqual([
      [5, 5],
      [11, 12],
      [17, 31],
    ]);
    expect(ast.nodes[0]!.startLine).toBe(5);
    expect(ast.nodes[ast.nodes.length - 1]!.endLine).toBe(31);
  });
});

describe('parser-testfiles/heredoc-vectors.json', () => {
  const hv = JSON.parse(readFileSync(join(CONF, 'heredoc-vectors.json'), 'utf8')) as {
    TestParseExtractsHeredoc: {
      dockerfile: string;
      expected: { child_index: number; heredocs: { Name: string; FileDescriptor: number; Expand: boolean; Chomp: boolean; Content: string }[] | null }[];
    };
    TestParseJSONHeredoc: { dockerfile: string };
    TestHeredocChomp: { input: string; expected: string };
    TestParseHeredocHelpers: { valid_name_EOF: string[]; invalid_error: string[]; not_heredoc_nil: string[] };
    TestHeredocsFromLine: { cases: { line: string; names: string[] }[] };
  };
  const ast = parseAst(hv.TestParseExtractsHeredoc.dockerfile);
  for (const e of hv.TestParseExtractsHeredoc.expected) {
    it(`TestParseExtractsHeredoc child ${e.child_index}`, () => {
      const n = ast.nodes[e.child_index]!;
      const want = (e.heredocs ?? []).map((h) => ({
        name: h.Name,
        fileDescriptor: h.FileDescriptor,
        expand: h.Expand,
        chomp: h.Chomp,
        content: h.Content,
      }));
      expect(n.heredocs).toEqual(want);
    });
  }
  it('TestParseExtractsHeredoc: USER is not heredoc-capable, INVALID is its own node', () => {
    expect(ast.nodes[3]!.keyword).toBe('USER');
    expect(ast.nodes[4]!.keyword).toBe('INVALID');
  });
  it('TestParseJSONHeredoc: exec form never has heredocs', () => {
    const a = parseAst(hv.TestParseJSONHeredoc.dockerfile);
    for (const i of [1, 2, 3]) {
      expect(a.nodes[i]!.jsonForm).toBe(true);
      expect(a.nodes[i]!.heredocs).toEqual([]);
    }
  });
  it('TestHeredocChomp', () => {
    expect(chompHeredocContent(hv.TestHeredocChomp.input)).toBe(hv.TestHeredocChomp.expected);
  });
  for (const w of hv.TestParseHeredocHelpers.valid_name_EOF) {
    it(`ParseHeredoc valid ${w}`, () => expect(parseHeredocWord(w)?.name).toBe('EOF'));
  }
  for (const w of hv.TestParseHeredocHelpers.invalid_error) {
    it(`ParseHeredoc error ${w}`, () => expect(() => parseHeredocWord(w)).toThrow());
  }
  for (const w of hv.TestParseHeredocHelpers.not_heredoc_nil) {
    it(`ParseHeredoc not a heredoc ${JSON.stringify(w)}`, () => expect(parseHeredocWord(w)).toBeUndefined());
  }
  for (const c of hv.TestHeredocsFromLine.cases) {
    it(`heredocsFromLine ${c.line}`, () => expect(heredocsFromLine(c.line).map((h) => h.name)).toEqual(c.names));
  }
});

/** Goldens: fixtures/dockerfiles/<case>/{Dockerfile, expected.json}; UPDATE=1 rewrites them. */
describe('fixtures/dockerfiles goldens', () => {
  const dir = join(FIXTURES, 'dockerfiles');
  const cases = existsSync(dir) ? readdirSync(dir).sort() : [];
  it('has cases', () => expect(cases.length).toBeGreaterThanOrEqual(8));
  for (const name of cases) {
    it(name, () => {
      const text = readFileSync(join(dir, name, 'Dockerfile'), 'utf8');
      const got = JSON.parse(JSON.stringify(parseDockerfile(text, { file: 'Dockerfile' }))) as unknown;
      const file = join(dir, name, 'expected.json');
      if (process.env.UPDATE === '1' || !existsSync(file)) {
        mkdirSync(join(dir, name), { recursive: true });
        writeFileSync(file, JSON.stringify(got, null, 2) + '\n');
      }
      expect(got).toEqual(JSON.parse(readFileSync(file, 'utf8')));
    });
  }
});

/** fixtures/dockerfiles-negative/<case>/{Dockerfile, error.txt}: error.txt is a regexp for the message. */
describe('fixtures/dockerfiles-negative', () => {
  const dir = join(FIXTURES, 'dockerfiles-negative');
  const cases = existsSync(dir) ? readdirSync(dir).sort() : [];
  it('has cases', () => expect(cases.length).toBeGreaterThanOrEqual(15));
  for (const name of cases) {
    it(name, () => {
      const text = readFileSync(join(dir, name, 'Dockerfile'), 'utf8');
      const want = readFileSync(join(dir, name, 'error.txt'), 'utf8').trim();
      let err: unknown;
      try {
        parseDockerfile(text, { file: 'Dockerfile' });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(BuildError);
      const be = err as BuildError;
      expect(be.message).toMatch(/^Dockerfile:\d+:\d+: /);
      expect(be.message).toMatch(new RegExp(want));
      expect(be.range?.start.line).toBeGreaterThan(0);
    });
  }
});

describe('typed instructions', () => {
  const one = (text: string): Instruction => parseDockerfile(`FROM scratch\n${text}\n`).stages[0]!.instructions[0]!;

  it('RUN mounts and modes', () => {
    const r = one('RUN --mount=type=cache,target=/root/.cache,sharing=locked,id=pip --mount=type=secret,id=tok --network=none --security=sandbox pip install x');
    expect(r).toMatchObject({
      kind: 'run',
      command: { form: 'shell', command: 'pip install x' },
      mounts: [
        { type: 'cache', target: '/root/.cache', sharing: 'locked', id: 'pip', readonly: false },
        { type: 'secret', id: 'tok', target: '/run/secrets/tok', required: false, mode: 0o400, uid: 0, gid: 0 },
      ],
      network: 'none',
      security: 'sandbox',
    });
    expect(parseMount('type=bind,source=/a,target=/b')).toEqual({ type: 'bind', source: '/a', target: '/b', readonly: true });
    expect(parseMount('type=bind,src=/a,dst=/b,rw')).toEqual({ type: 'bind', source: '/a', target: '/b', readonly: false });
    expect(parseMount('target=/b,from=builder,ro')).toEqual({ type: 'bind', from: 'builder', target: '/b', readonly: true });
    expect(parseMount('type=tmpfs,target=/t,size=64m')).toEqual({ type: 'tmpfs', target: '/t', size: 64 * 1024 * 1024 });
    expect(parseMount('type=cache,target=/c,mode=0700,uid=1000,gid=1000')).toMatchObject({ mode: 0o700, uid: 1000, gid: 1000 });
    expect(parseMount('type=secret,id=aws,env=AWS_KEY')).toEqual({ type: 'secret', id: 'aws', env: 'AWS_KEY', required: false, mode: 0o400, uid: 0, gid: 0 });
    // No target means WORKDIR (resolved at dispatch, as BuildKit does): `--mount=ro` binds the context there.
    expect(parseMount('type=cache')).toMatchObject({ type: 'cache', target: '' });
    expect(parseMount('ro')).toEqual({ type: 'bind', target: '', readonly: true });
    expect(parseMount('from=delve-src,src=/usr/src/delve,rw')).toEqual({ type: 'bind', target: '', from: 'delve-src', source: '/usr/src/delve', readonly: false });
    expect(parseMount('type=tmpfs')).toEqual({ type: 'tmpfs', target: '' });
    expect(parseMount('type=secret,source=npmrc,target=/root/.npmrc')).toMatchObject({ type: 'secret', id: 'npmrc', target: '/root/.npmrc' });
    expect(() => parseMount('type=bogus,target=/x')).toThrow(/unsupported mount type/);
    expect(() => parseMount('type=tmpfs,target=/x,from=a')).toThrow(/unexpected key 'from'/);
  });

  it('RUN exec form and heredoc script', () => {
    expect(one('RUN ["echo", "hi"]')).toMatchObject({ command: { form: 'exec', args: ['echo', 'hi'] }, heredocs: [] });
    const r = parseDockerfile('FROM scratch\nRUN <<-EOF bash\n\techo $HOME\n\tEOF\n').stages[0]!.instructions[0]!;
    expect(r).toMatchObject({
      kind: 'run',
      command: { form: 'shell', command: '<<-EOF bash' },
      heredocs: [{ name: 'EOF', chomp: true, expand: true, content: 'echo $HOME\n' }],
    });
    expect(r.range.start).toEqual({ line: 2, column: 1 });
    expect(r.range.end.line).toBe(4);
  });

  it('COPY/ADD flags, heredoc sources, JSON form', () => {
    expect(one('COPY --from=build --chown=1:2 --chmod=644 --link --exclude=*.md --exclude=tmp a b /dst/')).toMatchObject({
      kind: 'copy',
      sources: ['a', 'b'],
      dest: '/dst/',
      from: 'build',
      chown: '1:2',
      chmod: '644',
      link: true,
      exclude: ['*.md', 'tmp'],
      parents: false,
      jsonForm: false,
    });
    expect(one('COPY ["a b", "/c d/"]')).toMatchObject({ sources: ['a b'], dest: '/c d/', jsonForm: true });
    expect(one('ADD --checksum=sha256:abc --keep-git-dir=true https://x/y.tgz /y')).toMatchObject({
      kind: 'add',
      checksum: 'sha256:abc',
      keepGitDir: true,
    });
    const c = parseDockerfile("FROM scratch\nCOPY <<A <<'B' /d/\n$x\nA\n$y\nB\n").stages[0]!.instructions[0]!;
    expect(c).toMatchObject({
      sources: ['<<A', "<<'B'"],
      dest: '/d/',
      heredocs: [
        { name: 'A', expand: true, content: '$x\n' },
        { name: 'B', expand: false, content: '$y\n' },
      ],
    });
  });

  it('ENV/LABEL/ARG keep values unexpanded with their quotes', () => {
    expect(one('ENV A="x y" B=$A')).toMatchObject({ pairs: [{ key: 'A', value: '"x y"' }, { key: 'B', value: '$A' }] });
    expect(one('ENV OLD some value')).toMatchObject({ pairs: [{ key: 'OLD', value: 'some value' }] });
    expect(one('LABEL "com.x"="a b" v=1')).toMatchObject({ pairs: [{ key: '"com.x"', value: '"a b"' }, { key: 'v', value: '1' }] });
    expect(one('ARG A B=2 C=')).toMatchObject({ args: [{ key: 'A' }, { key: 'B', value: '2' }, { key: 'C', value: '' }] });
  });

  it('HEALTHCHECK options in nanoseconds', () => {
    expect(one('HEALTHCHECK --interval=1m30s --timeout=500ms --start-period=2s --start-interval=1s --retries=4 CMD curl -f x')).toMatchObject({
      test: ['CMD-SHELL', 'curl -f x'],
      interval: 90e9,
      timeout: 500e6,
      startPeriod: 2e9,
      startInterval: 1e9,
      retries: 4,
    });
    expect(one('HEALTHCHECK CMD ["a", "b"]')).toMatchObject({ test: ['CMD', 'a', 'b'] });
    expect(one('HEALTHCHECK NONE')).toMatchObject({ test: ['NONE'] });
  });

  it('CMD/ENTRYPOINT/SHELL/others', () => {
    expect(one('CMD echo hi')).toMatchObject({ kind: 'cmd', command: { form: 'shell', command: 'echo hi' } });
    expect(one('ENTRYPOINT []')).toMatchObject({ kind: 'entrypoint', command: { form: 'exec', args: [] } });
    // Not valid JSON: buildkit falls back to shell form.
    expect(one("CMD ['a']")).toMatchObject({ command: { form: 'shell', command: "['a']" } });
    expect(one('SHELL ["/bin/bash", "-c"]')).toMatchObject({ shell: ['/bin/bash', '-c'] });
    expect(one('EXPOSE 80 443/tcp $P')).toMatchObject({ ports: ['80', '443/tcp', '$P'] });
    expect(one('VOLUME ["/a", "/b"]')).toMatchObject({ paths: ['/a', '/b'] });
    expect(one('VOLUME /a /b')).toMatchObject({ paths: ['/a', '/b'] });
    expect(one('WORKDIR /app dir')).toMatchObject({ path: '/app dir' });
    expect(one('USER app:app')).toMatchObject({ user: 'app:app' });
    expect(one('STOPSIGNAL SIGTERM')).toMatchObject({ signal: 'SIGTERM' });
    expect(one('MAINTAINER me')).toMatchObject({ kind: 'maintainer', maintainer: 'me' });
    expect(one('onbuild run echo hi')).toMatchObject({
      kind: 'onbuild',
      expression: 'run echo hi',
      instruction: { kind: 'run', command: { form: 'shell', command: 'echo hi' } },
    });
  });

  it('stages, meta args, names, warnings, comments', () => {
    const df = parseDockerfile(
      '# syntax=docker/dockerfile:1\n# check=skip=all\nARG BASE=alpine\n# the builder\nFROM $BASE AS Build\nRUN a \\\n\n  b\nFROM --platform=$BUILDPLATFORM scratch\nCOPY --from=build / /\n',
      { file: 'Dockerfile' },
    );
    expect(df.directives).toEqual({ escape: '\\', syntax: 'docker/dockerfile:1', check: 'skip=all' });
    expect(df.metaArgs.map((a) => a.args)).toEqual([[{ key: 'BASE', value: 'alpine' }]]);
    expect(df.stages.map((s) => [s.index, s.name, s.from.image, s.from.platform])).toEqual([
      [0, 'build', '$BASE', undefined],
      [1, undefined, 'scratch', '$BUILDPLATFORM'],
    ]);
    expect(df.stages[0]!.from.comments).toEqual(['the builder']);
    expect(df.stages[0]!.instructions[0]!.range).toMatchObject({ file: 'Dockerfile', start: { line: 6, column: 1 }, end: { line: 8 } });
  });

  it('backtick escape directive', () => {
    const df = parseDockerfile('# escape=`\nFROM scratch\nRUN dir c:\\ `\n  /w\n');
    expect(df.directives.escape).toBe('`');
    expect(df.stages[0]!.instructions[0]).toMatchObject({ command: { form: 'shell', command: 'dir c:\\   /w' } });
  });

  it('CRLF line endings and BOM', () => {
    const df = parseDockerfile('\ufeffFROM scratch\r\nRUN a \\\r\n  b\r\n');
    expect(df.stages[0]!.instructions[0]).toMatchObject({ command: { form: 'shell', command: 'a   b' } });
  });

  it('unknown instruction suggests the closest keyword', () => {
    try {
      parseDockerfile('FROM scratch\n  RNU echo\n', { file: 'Dockerfile' });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(UnknownInstructionError);
      const u = e as UnknownInstructionError;
      expect(u.keyword).toBe('RNU');
      expect(u.suggestion).toBe('RUN');
      expect(u.message).toBe('Dockerfile:2:3: unknown instruction: RNU (did you mean run?)');
    }
    expect(suggest('COPPY', ['COPY', 'RUN'])).toBe('COPY');
    expect(suggest('XYZZY', ['COPY', 'RUN'])).toBeUndefined();
  });

  it('parseTrigger for ONBUILD expressions from image configs', () => {
    expect(parseTrigger('COPY . /app')).toMatchObject({ kind: 'copy', sources: ['.'], dest: '/app' });
    expect(() => parseTrigger('BOGUS x')).toThrow(UnknownInstructionError);
  });

  it('expandInstruction expands exactly the dispatch-time fields', () => {
    const ex = (w: string) => w.replace(/\$X/g, 'x');
    const env = expandInstruction(one('ENV $X=$X'), ex);
    expect(env).toMatchObject({ pairs: [{ key: 'x', value: 'x' }] });
    const copy = expandInstruction(one('COPY --from=$X --chown=$X $X /$X'), ex);
    expect(copy).toMatchObject({ from: '$X', chown: 'x', sources: ['x'], dest: '/x' });
    const run = expandInstruction(one('RUN --mount=type=cache,target=/$X echo $X'), ex);
    expect(run).toMatchObject({ command: { command: 'echo $X' }, mounts: [{ target: '/x' }] });
    const cmd = one('CMD echo $X');
    expect(expandInstruction(cmd, ex)).toBe(cmd);
  });

  it('withLocation wraps any error with a range', () => {
    const r = one('RUN x').range;
    const e = withLocation(new Error('boom'), r, 'RUN');
    expect(e.message).toBe('2:1: boom');
    expect(e.instruction).toBe('RUN');
    expect(withLocation(e, r)).toBe(e);
  });
});
