import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  createMatcher,
  DockerignorePatternError,
  goClean,
  loadIgnore,
  parseIgnoreFile,
  type IgnoreMatcher,
} from '../../src/builder/frontend/dockerignore.js';
import { makeTmp } from '../helpers/tmp.js';

const VEC = JSON.parse(readFileSync(join(import.meta.dirname, '../conformance/data/dockerignore/dockerignore-vectors.json'), 'utf8')) as {
  pattern_vectors: { patterns: string[]; path: string; expected: boolean; api: string; expect_error?: boolean }[];
  ignorefile_parse_cases: { input: string | null; expected: string[] }[];
  context_tree_cases: {
    name: string;
    files: string[];
    dockerignore?: string;
    ignore_file?: string;
    dockerfile_path?: string;
    exclude_patterns?: string[];
    expect_present: string[];
    expect_absent: string[];
    derived_absent?: string[];
    expect_listing?: string[];
    expect_error?: string;
    expect_walk?: string[];
  }[];
};

describe('dockerignore-vectors.json pattern_vectors', () => {
  it('has every vector', () => expect(VEC.pattern_vectors.length).toBe(137));
  VEC.pattern_vectors.forEach((v, i) => {
    const legacy = v.api.startsWith('Matches(');
    it(`#${i} ${JSON.stringify(v.patterns)} ${JSON.stringify(v.path)} → ${v.expect_error ? 'error' : v.expected} (${legacy ? 'Matches' : 'MatchesOrParentMatches'})`, () => {
      if (v.expect_error) {
        expect(() => {
          const m = createMatcher(v.patterns);
          if (legacy) m.matchesLegacy(v.path);
          else m.ignores(v.path);
        }).toThrow(DockerignorePatternError);
        return;
      }
      const m = createMatcher(v.patterns);
      expect(legacy ? m.matchesLegacy(v.path) : m.ignores(v.path)).toBe(v.expected);
    });
  });
});

describe('dockerignore-vectors.json ignorefile_parse_cases', () => {
  VEC.ignorefile_parse_cases.forEach((c, i) => {
    it(`#${i}`, () => expect(parseIgnoreFile(c.input ?? '')).toEqual(c.expected));
  });
});

/** Walks a context like a COPY of `.` would: ignored dirs pruned unless a `!` may re-include below. */
async function walk(root: string, m: IgnoreMatcher): Promise<string[]> {
  const out: string[] = [];
  async function visit(rel: string, parentIgnored: boolean): Promise<boolean> {
    let any = false;
    const entries = await readdir(rel ? join(root, rel) : root, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      const ignored = m.ignores(p);
      if (e.isDirectory()) {
        if (!ignored) {
          out.push(`dir ${p}`);
          await visit(p, false);
          any = true;
        } else if (m.mayReinclude(p)) {
          const at = out.length;
          if (await visit(p, true)) {
            out.splice(at, 0, `dir ${p}`); // parent of a re-included file is kept
            any = true;
          }
        }
      } else if (!ignored) {
        out.push(`file ${p}`);
        any = true;
      }
    }
    void parentIgnored;
    return any;
  }
  await visit('', false);
  return out;
}

describe('dockerignore-vectors.json context_tree_cases', () => {
  it('has every case', () => expect(VEC.context_tree_cases.length).toBe(24));
  for (const c of VEC.context_tree_cases) {
    it(c.name, async () => {
      const { dir, cleanup } = await makeTmp('imgbuild-ignore-');
      try {
        for (const f of c.files) {
          if (f.endsWith('/')) {
            await mkdir(join(dir, f), { recursive: true });
            continue;
          }
          await mkdir(dirname(join(dir, f)), { recursive: true });
          await writeFile(join(dir, f), '');
        }
        if (c.dockerignore !== undefined) await writeFile(join(dir, c.ignore_file ?? '.dockerignore'), c.dockerignore);
        let m: IgnoreMatcher;
        const load = async () => {
          if (c.exclude_patterns) return createMatcher(c.exclude_patterns);
          const ig = await loadIgnore(dir, join(dir, c.dockerfile_path ?? 'Dockerfile'));
          if (c.ignore_file) expect(ig.source).toBe(join(dir, c.ignore_file));
          return ig;
        };
        if (c.expect_error) {
          await expect(load()).rejects.toThrow(DockerignorePatternError);
          if (c.expect_error.startsWith('illegal')) await expect(load()).rejects.toThrow(c.expect_error);
          return;
        }
        m = await load();
        const walked = await walk(dir, m);
        const paths = new Set(walked.map((w) => w.slice(w.indexOf(' ') + 1)));
        for (const p of c.expect_present) expect(paths, `present ${p}`).toContain(p);
        for (const p of [...c.expect_absent, ...(c.derived_absent ?? [])]) {
          expect(paths, `absent ${p}`).not.toContain(p);
          expect([...paths].filter((x) => x.startsWith(`${p}/`)), `nothing below ${p}`).toEqual([]);
        }
        if (c.expect_listing) expect([...paths].filter((p) => !p.includes('/'))).toEqual(c.expect_listing);
        if (c.expect_walk) expect(walked).toEqual(c.expect_walk);
      } finally {
        await cleanup();
      }
    });
  }
});

describe('matcher helpers', () => {
  it('goClean follows Go path.Clean', () => {
    expect(goClean('./dir1/../foo2')).toBe('foo2');
    expect(goClean('dir1//foo/')).toBe('dir1/foo');
    expect(goClean('/../a')).toBe('/a');
    expect(goClean('../a/..')).toBe('..');
    expect(goClean('')).toBe('.');
  });
  it('mayReinclude prunes only when no ! pattern can reach below', () => {
    const m = createMatcher(['node_modules', 'build', '!build/keep/*.txt', '!*/docs']);
    expect(m.ignores('node_modules/x/y.js')).toBe(true);
    expect(m.mayReinclude('node_modules')).toBe(true); // `!*/docs` could match node_modules/docs
    expect(m.mayReinclude('build')).toBe(true);
    expect(m.mayReinclude('build/other')).toBe(false);
    expect(m.ignores('build/keep/a.txt')).toBe(false);
    expect(createMatcher(['a', '!b/c']).mayReinclude('a')).toBe(false);
    expect(createMatcher(['a']).mayReinclude('a')).toBe(false);
    expect(createMatcher(['**', '!**/x']).mayReinclude('deep/dir')).toBe(true);
  });
  it('loadIgnore with no ignore file ignores nothing', async () => {
    const { dir, cleanup } = await makeTmp('imgbuild-ignore-');
    try {
      const m = await loadIgnore(dir, join(dir, 'Dockerfile'));
      expect(m.source).toBeUndefined();
      expect(m.ignores('anything')).toBe(false);
    } finally {
      await cleanup();
    }
  });
  it('errors name the ignore file', async () => {
    const { dir, cleanup } = await makeTmp('imgbuild-ignore-');
    try {
      await writeFile(join(dir, '.dockerignore'), 'ok\n[\n');
      await expect(loadIgnore(dir)).rejects.toThrow(`${join(dir, '.dockerignore')}: syntax error in pattern "["`);
    } finally {
      await cleanup();
    }
  });
});
