/**
 * The template engine against Go's own text/template: vectors.json holds, for every case of
 * cases.json, what Go 1.19 with docker/cli's functions printed or the error it gave (made by
 * gen/main.go; Go is not needed to run this test).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { executeTemplate, parseTemplate, TemplateExecError, TemplateParseError } from '../../../src/cli/template/index.js';
import { tabwrite } from '../../../src/cli/template/tabwriter.js';

interface Vector {
  name: string;
  tpl: string;
  data?: unknown;
  missingkey?: 'default' | 'zero' | 'error';
  out?: string;
  error?: string;
  phase?: 'parse' | 'exec';
}

const file = JSON.parse(readFileSync(join(import.meta.dirname, 'vectors.json'), 'utf8')) as { data: unknown; vectors: Vector[]; tabwriter: { in: string; out: string }[] };

/**
 * Where the engine departs from Go on purpose, by template. Plain JavaScript data does not say
 * whether an empty array was a []string, so `join` takes any array of strings, even an empty one
 * (Docker's own data is typed: its empty lists are []string and join them); complex constants are
 * not supported.
 */
const KNOWN: ReadonlyMap<string, { out?: string; error?: string; phase?: string }> = new Map([
  ['{{join .EmptyList ","}}', { out: '' }],
  ['{{1+2i}}', { error: 'template: :1: complex numbers are not supported: 1+2i', phase: 'parse' }],
]);

function run(v: Vector): { out?: string; error?: string; phase?: string } {
  try {
    const tpl = parseTemplate(v.tpl);
    try {
      return { out: executeTemplate(tpl, v.data === undefined ? file.data : v.data, v.missingkey ? { missingKey: v.missingkey } : {}) };
    } catch (e) {
      if (e instanceof TemplateExecError) return { error: e.message, phase: 'exec' };
      throw e;
    }
  } catch (e) {
    if (e instanceof TemplateParseError) return { error: e.message, phase: 'parse' };
    throw e;
  }
}

describe('Go text/template vectors', () => {
  it('has the vectors', () => {
    expect(file.vectors.length).toBeGreaterThan(150);
    expect(file.vectors.filter((v) => v.error !== undefined).length).toBeGreaterThan(40);
  });
  file.vectors.forEach((v, i) => {
    it(`#${i} ${JSON.stringify(v.tpl).slice(0, 80)}`, () => {
      const got = run(v);
      const known = KNOWN.get(v.tpl);
      if (known) expect(got).toEqual(known);
      else if (v.error !== undefined) expect(got).toEqual({ error: v.error, phase: v.phase });
      else expect(got).toEqual({ out: v.out });
    });
  });
});

describe("Go's tabwriter as docker/cli sets it up for tables", () => {
  it('has the vectors', () => expect(file.tabwriter.length).toBeGreaterThan(10));
  file.tabwriter.forEach((v, i) => {
    it(`#${i} ${JSON.stringify(v.in).slice(0, 60)}`, () => expect(tabwrite(v.in)).toBe(v.out));
  });
});
