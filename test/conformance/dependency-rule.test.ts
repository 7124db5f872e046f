/**
 * Enforces the dependency rule of docs/architecture.md on the source tree: each area imports only
 * the areas below it (image at the bottom; cli and the library face index.ts at the top), the
 * sandbox depends on nothing internal, snapshots and host use the sandbox's spec for types only,
 * and nothing imports cli. src/errors.ts, lock.ts, pid.ts, atomic.ts, fs.ts, phases.ts and strconv.ts depend on nothing
 * internal but each other and are open to all.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, dirname, resolve } from 'node:path';

const SRC = join(import.meta.dirname, '..', '..', 'src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

function area(file: string): string {
  const rel = relative(SRC, file).split('/');
  return rel.length === 1 ? 'root' : rel[0]!;
}

// Which areas each area may import (besides itself and the modules open to all).
const ALLOWED: Record<string, string[]> = {
  image: [],
  compress: ['image'],
  tar: ['compress', 'image'],
  // store → tar: a build layer kept unwritten is packed again from its snapshot (store/lazy.ts).
  store: ['tar', 'compress', 'image'],
  archive: ['store', 'tar', 'compress', 'image'],
  registry: ['store', 'tar', 'compress', 'image'],
  sandbox: [],
  host: [],
  snapshots: ['store', 'tar', 'compress', 'image'],
  volumes: ['store'],
  containers: ['volumes', 'snapshots', 'host', 'sandbox', 'store', 'image'],
  builder: ['snapshots', 'host', 'sandbox', 'registry', 'archive', 'store', 'tar', 'compress', 'image'],
  analyze: ['registry', 'store', 'tar', 'compress', 'image'],
  cli: ['builder', 'analyze', 'containers', 'volumes', 'snapshots', 'host', 'sandbox', 'registry', 'archive', 'store', 'tar', 'compress', 'image', 'root'],
  root: ['builder', 'analyze', 'containers', 'volumes', 'snapshots', 'host', 'sandbox', 'registry', 'archive', 'store', 'tar', 'compress', 'image'],
};

/** Imports of the sandbox's spec for its types (the Mount and Rlimit shapes) that are allowed. */
const TYPES_OF_SANDBOX_SPEC = new Set(['snapshots', 'host']);

/** Root modules that depend on nothing internal but each other (checked below), usable from every area. */
const OPEN_TO_ALL = new Set(['errors.ts', 'lock.ts', 'pid.ts', 'atomic.ts', 'fs.ts', 'phases.ts', 'strconv.ts']);

describe('dependency rule', () => {
  it('the modules open to all import nothing internal but each other', () => {
    for (const rel of OPEN_TO_ALL) {
      const specs = [...readFileSync(join(SRC, rel), 'utf8').matchAll(/from\s+['"](\.[^'"]+)['"]/g)].map((m) => m[1]!);
      expect(specs.filter((spec) => !OPEN_TO_ALL.has(relative(SRC, resolve(dirname(join(SRC, rel)), spec)).replace(/\.js$/, '.ts'))), rel).toEqual([]);
    }
  });
  const all = files(SRC);
  it('finds the source tree', () => {
    expect(all.length).toBeGreaterThan(5);
  });
  for (const f of all) {
    const from = area(f);
    it(`${relative(SRC, f)} imports only what ${from} may`, () => {
      const text = readFileSync(f, 'utf8');
      const bad: string[] = [];
      for (const m of text.matchAll(/(import|export)\s+(type\s+)?[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g)) {
        const spec = m[3] ?? m[4]!;
        const typeOnly = Boolean(m[2]);
        const target = resolve(dirname(f), spec).replace(/\.js$/, '.ts');
        const rel = relative(SRC, target);
        // Dependency-free modules every area may use.
        if (OPEN_TO_ALL.has(rel)) continue;
        const to = area(target);
        if (to === from) continue;
        if (TYPES_OF_SANDBOX_SPEC.has(from) && typeOnly && rel === 'sandbox/spec.ts') continue;
        if (!(ALLOWED[from] ?? []).includes(to)) bad.push(`${spec} (${to})`);
      }
      expect(bad, `forbidden imports in ${relative(SRC, f)}`).toEqual([]);
    });
  }

  it('has no import circles between files (type imports included)', () => {
    const IMPORT = /(?:import|export)\s+(?:type\s+)?[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g;
    const edges = new Map<string, string[]>();
    for (const f of all) {
      const out: string[] = [];
      for (const m of readFileSync(f, 'utf8').matchAll(IMPORT)) out.push(resolve(dirname(f), m[1] ?? m[2]!).replace(/\.js$/, '.ts'));
      edges.set(f, out);
    }
    // Depth-first search; a file met again while still on the path closes a circle.
    const state = new Map<string, 'open' | 'done'>();
    const circles: string[] = [];
    const visit = (f: string, path: string[]): void => {
      state.set(f, 'open');
      for (const t of edges.get(f) ?? []) {
        if (state.get(t) === 'open') circles.push([...path.slice(path.indexOf(t)), t].map((x) => relative(SRC, x)).join(' → '));
        else if (!state.has(t) && edges.has(t)) visit(t, [...path, t]);
      }
      state.set(f, 'done');
    };
    for (const f of all) if (!state.has(f)) visit(f, [f]);
    expect(circles).toEqual([]);
  });

  it('keeps every source file small (at most 700 lines)', () => {
    const big = all.map((f) => [relative(SRC, f), readFileSync(f, 'utf8').split('\n').length] as const).filter(([, n]) => n > 700);
    expect(big).toEqual([]);
  });
});
