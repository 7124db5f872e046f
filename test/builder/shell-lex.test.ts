import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  envFromList,
  envFromMap,
  lex,
  processWord,
  processWords,
  processWordWithMatches,
  ShellExpansionError,
} from '../../src/builder/frontend/shell-lex.js';

const SHELL = join(import.meta.dirname, '../conformance/data/shell-tests');
const LEXER_FIXTURES = join(import.meta.dirname, '../../fixtures/lexer');

/** buildkit TestShellParser4Words: `ENV k=v` lines add to the env; `input | a,b,c` or `| error`. */
function wordsCases(file: string): { line: number; input: string; expected: string[] | 'error'; env: string[] }[] {
  const out: { line: number; input: string; expected: string[] | 'error'; env: string[] }[] = [];
  const env: string[] = [];
  readFileSync(file, 'utf8')
    .split('\n')
    .forEach((raw, i) => {
      if (raw.trim() === '' || raw.startsWith('#')) return;
      if (raw.startsWith('ENV ')) {
        env.push(raw.slice(4).replace(/^ +/, ''));
        return;
      }
      const bar = raw.indexOf('|');
      if (bar < 0) throw new Error(`${file}:${i + 1}: no '|'`);
      const input = raw.slice(0, bar).trim();
      const exp = raw.slice(bar + 1).replace(/^ +/, '');
      out.push({ line: i + 1, input, expected: exp === 'error' ? 'error' : exp.split(','), env: [...env] });
    });
  return out;
}

/** buildkit TestShellParser4EnvVars: `platform|input|expected`, A = all, U = unix, W = windows. */
function envVarCases(file: string): { line: number; platform: string; input: string; expected: string }[] {
  const out: { line: number; platform: string; input: string; expected: string }[] = [];
  readFileSync(file, 'utf8')
    .split('\n')
    .forEach((raw, i) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      const parts = line.split('|');
      if (parts.length !== 3) throw new Error(`${file}:${i + 1}: want 3 fields`);
      out.push({ line: i + 1, platform: parts[0]!.trim(), input: parts[1]!.trim(), expected: parts[2]!.trim() });
    });
  return out;
}

describe('shell-tests/wordsTest (buildkit, ProcessWords)', () => {
  for (const c of wordsCases(join(SHELL, 'wordsTest'))) {
    it(`line ${c.line}: ${c.input}`, () => {
      const env = envFromList(c.env);
      if (c.expected === 'error') expect(() => processWords(c.input, env)).toThrow(ShellExpansionError);
      else expect(processWords(c.input, env)).toEqual(c.expected);
    });
  }
});

describe('shell-tests/envVarTest (buildkit, ProcessWord)', () => {
  const env = envFromList(['PWD=/home', 'SHELL=bash', 'KOREAN=한국어', 'NULL=']);
  const cases = envVarCases(join(SHELL, 'envVarTest'));
  // Windows-only rows (W) test case-insensitive env keys, which do not apply on Linux.
  const windowsOnly = cases.filter((c) => c.platform === 'W');
  it('excludes only the Windows-only rows', () => {
    expect(windowsOnly.map((c) => c.line)).toEqual([25, 94]);
  });
  for (const c of cases.filter((c) => c.platform !== 'W')) {
    it(`line ${c.line}: ${c.input}`, () => {
      if (c.expected === 'error') expect(() => processWord(c.input, env)).toThrow(ShellExpansionError);
      else expect(processWord(c.input, env)).toBe(c.expected);
    });
  }
});

describe('shell-tests/process-with-matches.json', () => {
  const data = JSON.parse(readFileSync(join(SHELL, 'process-with-matches.json'), 'utf8')) as {
    TestProcessWithMatches: { cases: { input: string; envs: Record<string, string>; expected: string; expected_error: boolean; matched: string[]; unmatched: string[] }[] };
    TestShellParserMandatoryEnvVars: { cases: { input: string; envs: string[]; expected?: string; error_contains?: string }[] };
    TestProcessWithMatchesPlatform: { input: string; cases: { envs: Record<string, string>; expected: string }[] };
    TestGetEnv: { cases: { envs: string[]; name: string; expected: string }[] };
  };
  data.TestProcessWithMatches.cases.forEach((c, i) => {
    it(`TestProcessWithMatches #${i}: ${c.input}`, () => {
      const env = envFromMap(c.envs);
      if (c.expected_error) {
        expect(() => processWordWithMatches(c.input, env)).toThrow(ShellExpansionError);
        return;
      }
      const r = processWordWithMatches(c.input, env);
      expect(r.result).toBe(c.expected);
      expect([...r.matched].sort()).toEqual([...c.matched].sort());
      expect([...r.unmatched].sort()).toEqual([...c.unmatched].sort());
    });
  });
  data.TestShellParserMandatoryEnvVars.cases.forEach((c, i) => {
    it(`TestShellParserMandatoryEnvVars #${i}: ${c.input} ${c.envs.join(' ')}`, () => {
      const env = envFromList(c.envs);
      if (c.error_contains !== undefined) expect(() => processWord(c.input, env)).toThrow(c.error_contains);
      else expect(processWord(c.input, env)).toBe(c.expected);
    });
  });
  data.TestProcessWithMatchesPlatform.cases.forEach((c, i) => {
    it(`TestProcessWithMatchesPlatform #${i}`, () => {
      expect(processWordWithMatches(data.TestProcessWithMatchesPlatform.input, envFromMap(c.envs)).result).toBe(c.expected);
    });
  });
  data.TestGetEnv.cases.forEach((c, i) => {
    it(`TestGetEnv #${i}: ${c.name} in [${c.envs.join(' ')}]`, () => {
      expect(envFromList(c.envs)(c.name) ?? '').toBe(c.expected);
    });
  });
});

describe('fixtures/lexer (input | expected)', () => {
  const env = envFromList(['PWD=/home', 'EMPTY=', 'LIST=a b  c', 'FILE=archive.tar.gz', 'P=/usr/local/bin']);
  for (const name of ['words.txt', 'env.txt']) {
    const cases = wordsCases(join(LEXER_FIXTURES, name));
    it(`${name} has cases`, () => expect(cases.length).toBeGreaterThan(5));
    for (const c of cases) {
      it(`${name}:${c.line}: ${c.input}`, () => {
        const e = c.env.length ? envFromList([...c.env]) : env;
        const run = () => (name === 'words.txt' ? processWords(c.input, e) : [processWord(c.input, e)]);
        if (c.expected === 'error') expect(run).toThrow(ShellExpansionError);
        else expect(run()).toEqual(c.expected);
      });
    }
  }
});

describe('lexer switches', () => {
  it('backtick escape', () => {
    expect(processWord('a`$b` c', envFromList(['b=x']), '`')).toBe('a$b c');
    expect(processWord('a\\b', envFromList([]), '`')).toBe('a\\b');
  });
  it('rawQuotes keeps quotes, skipUnsetEnv keeps unset refs', () => {
    expect(lex(`'E'O"F"`, envFromList([]), { rawQuotes: true }).result).toBe(`'E'O"F"`);
    expect(lex('${A:-x} $B ${C}', envFromList([]), { skipUnsetEnv: true }).result).toBe('${A:-x} $B ${C}');
  });
  it('pattern substitutions', () => {
    const env = envFromList(['F=archive.tar.gz', 'P=/a/b/c']);
    expect(processWord('${F%.*}', env)).toBe('archive.tar');
    expect(processWord('${F%%.*}', env)).toBe('archive');
    expect(processWord('${F#*.}', env)).toBe('tar.gz');
    expect(processWord('${F##*.}', env)).toBe('gz');
    expect(processWord('${P/\\//_}', env)).toBe('_a/b/c');
    expect(processWord('${P//\\//_}', env)).toBe('_a_b_c');
    expect(processWord('${P//b/$F}', env)).toBe('/a/archive.tar.gz/c');
  });
  it('error names the word', () => {
    expect(() => processWord('x${A:?need A}', envFromList([]))).toThrow('failed to process "x${A:?need A}": A: need A');
  });
});
