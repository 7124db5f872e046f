/**
 * A build's work grows linearly with its instructions. Timings are never asserted here: the tests
 * count what a step could redo for every step before it — the bytes of JSON serialised and parsed
 * and the deep copies of an image (structuredClone) — over Dockerfiles of N and 4N instructions.
 * With a copy of the config per step (as before) the JSON grew 16-fold; it must grow about 4-fold.
 */
import { describe, it, expect, beforeEach, afterEach, vi } from 'vitest';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTmp } from '../helpers/tmp.js';
import { build } from '../../src/builder/build.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let ctx: string;
beforeEach(async () => {
  tmp = await makeTmp();
  ctx = join(tmp.dir, 'ctx');
  await mkdir(ctx, { recursive: true });
});
afterEach(async () => {
  vi.restoreAllMocks();
  await tmp.cleanup();
});

/** Config-only instructions of every kind that touches a growing part of the config. */
function dockerfile(n: number): string {
  const lines = ['FROM scratch AS base', 'ARG A=a'];
  for (let i = 0; i < n; i++) {
    switch (i % 8) {
      case 0: lines.push(`ENV e${i}=v${i} PATHX=\${PATHX}:${i % 10}`); break;
      case 1: lines.push(`WORKDIR /w${i % 7}`); break;
      case 2: lines.push(`EXPOSE ${1000 + i}`); break;
      case 3: lines.push(`VOLUME /v${i}`); break;
      case 4: lines.push(`USER u${i % 5}`); break;
      case 5: lines.push(`ONBUILD LABEL o${i}=1`); break;
      default: lines.push(`LABEL k${i}="v${i} \${A}"`);
    }
  }
  // A second stage starting from the first copies it once, however long it is.
  lines.push('FROM base', 'LABEL last=1');
  return `${lines.join('\n')}\n`;
}

interface Work {
  jsonBytes: number;
  clones: number;
  labels: number;
  history: number;
}

async function measure(n: number): Promise<Work> {
  await writeFile(join(ctx, 'Dockerfile'), dockerfile(n));
  const root = join(tmp.dir, `root-${n}`);
  const work = { jsonBytes: 0, clones: 0 };
  const stringify = JSON.stringify.bind(JSON);
  const parse = JSON.parse.bind(JSON);
  const clone = globalThis.structuredClone;
  vi.spyOn(JSON, 'stringify').mockImplementation(((...a: Parameters<typeof JSON.stringify>) => {
    const out = stringify(...a);
    work.jsonBytes += out?.length ?? 0;
    return out;
  }) as typeof JSON.stringify);
  vi.spyOn(JSON, 'parse').mockImplementation(((text: string, reviver?: Parameters<typeof JSON.parse>[1]) => {
    work.jsonBytes += text.length;
    return parse(text, reviver);
  }) as typeof JSON.parse);
  vi.spyOn(globalThis, 'structuredClone').mockImplementation(((v: unknown, o?: Parameters<typeof structuredClone>[1]) => {
    work.clones++;
    return clone(v, o);
  }) as typeof structuredClone);
  let r: Awaited<ReturnType<typeof build>>;
  try {
    r = await build({ root, contextDir: ctx, parallelism: 1 });
  } finally {
    vi.restoreAllMocks();
  }
  return { ...work, labels: Object.keys(r.config.config?.Labels ?? {}).length, history: r.config.history?.length ?? 0 };
}

describe('build work per instruction', () => {
  it('does not grow with the instructions before it (config-only steps)', async () => {
    const small = await measure(300);
    const large = await measure(1200);
    // The builds did the work asked: every LABEL and every step's history entry is there.
    expect(large.labels).toBeGreaterThan(3.5 * small.labels);
    expect(large.history).toBeGreaterThan(3.9 * small.history);
    // Linear: 4x the instructions, about 4x the JSON (the final config and manifest); a config copy
    // per step would make it 16x.
    expect(large.jsonBytes / small.jsonBytes).toBeLessThan(5);
    // One deep copy per stage (its starting image), not per step.
    expect(large.clones).toBe(small.clones);
    expect(large.clones).toBeLessThanOrEqual(2);
  }, 120_000);
});

describe('stage images', () => {
  it('a stage built on another leaves that stage\'s image as it was', async () => {
    await writeFile(join(ctx, 'x'), 'x');
    await writeFile(join(ctx, 'Dockerfile'), [
      'FROM scratch AS a',
      'ENV A=1 B=1',
      'LABEL from=a',
      'COPY x /x',
      'FROM a AS b',
      'ENV A=2',
      'LABEL from=b only-b=1',
      'EXPOSE 80',
      'COPY x /y',
      'FROM a',
      'COPY --from=b /y /y',
      'LABEL last=1',
      '',
    ].join('\n'));
    const r = await build({ root: join(tmp.dir, 'root'), contextDir: ctx });
    const c = r.config.config ?? {};
    expect(c.Labels).toEqual({ from: 'a', last: '1' });
    expect(c.Env).toContain('A=1');
    expect(c.ExposedPorts).toBeUndefined();
    // a's layer, then the COPY --from; b's layers stay in b.
    expect(r.config.rootfs.diff_ids).toHaveLength(2);
    expect(r.config.history?.map((h) => h.created_by)).not.toContain('EXPOSE 80/tcp');
  }, 60_000);

  it('ENV changes a variable where it is, as BuildKit does', async () => {
    await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\nENV A=1 B=2\nENV A=3 C=$A$B\n');
    const r = await build({ root: join(tmp.dir, 'root'), contextDir: ctx });
    expect(r.config.config?.Env).toEqual(['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'A=3', 'B=2', 'C=12']);
  });
});
