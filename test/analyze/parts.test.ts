/**
 * The parts of `analyze` around the analysis: the treemap's layout (areas in proportion to bytes,
 * boxes inside their parents and apart from their siblings, small files gathered per directory and
 * layer), the HTML page's self-containment, and the `--fail-waste` limit.
 */
import { describe, expect, it } from 'vitest';
import { FileSystem } from '../../src/analyze/filesystem.js';
import type { LayerEntry } from '../../src/analyze/entries.js';
import { layoutTreemap, type TreemapBox } from '../../src/analyze/treemap.js';
import { renderHtml } from '../../src/analyze/html.js';
import { checkWaste, parseWasteLimit } from '../../src/analyze/threshold.js';
import type { AnalysisReport } from '../../src/analyze/report.js';

const file = (path: string, size: number, hash = path): LayerEntry => ({ path, kind: 'file', size, hash });

function sample(): FileSystem {
  const fs = new FileSystem();
  const l0: LayerEntry[] = [{ path: 'usr', kind: 'dir', size: 0 }, file('usr/a', 400_000), file('usr/b', 300_000), file('etc/c', 100_000)];
  for (let i = 0; i < 50; i++) l0.push(file(`usr/share/tiny${i}`, 10)); // 500 bytes of tiny files
  fs.apply(l0, 0);
  const l1 = [file('usr/b', 150_000, 'b2'), file('app/main', 49_000), file('usr/share/late', 30)];
  fs.apply(l1, 1);
  return fs;
}

const inside = (c: TreemapBox, p: TreemapBox): boolean => c.x >= p.x - 1e-6 && c.y >= p.y - 1e-6 && c.x + c.w <= p.x + p.w + 1e-6 && c.y + c.h <= p.y + p.h + 1e-6;
const overlap = (a: TreemapBox, b: TreemapBox): boolean => a.x + a.w > b.x + 1e-6 && b.x + b.w > a.x + 1e-6 && a.y + a.h > b.y + 1e-6 && b.y + b.h > a.y + 1e-6;

describe('treemap', () => {
  const boxes = layoutTreemap(sample(), { width: 1000, height: 600, minFraction: 1 / 1000 });

  it('gives the top level areas in proportion to their bytes, filling the whole', () => {
    const top = boxes.filter((b) => b.depth === 0);
    const total = top.reduce((s, b) => s + b.bytes, 0);
    expect(total).toBe(400_000 + 150_000 + 100_000 + 500 + 49_000 + 30);
    for (const b of top) expect((b.w * b.h) / (1000 * 600)).toBeCloseTo(b.bytes / total, 9);
    for (const a of top) for (const b of top) if (a !== b) expect(overlap(a, b), `${a.path} ${b.path}`).toBe(false);
  });

  it('puts every box inside its directory, apart from its siblings, coloured by the layer that wrote it', () => {
    const dirs = boxes.filter((b) => b.kind === 'dir');
    for (const b of boxes.filter((x) => x.depth > 0)) {
      const parent = dirs.find((d) => d.depth === b.depth - 1 && (b.path.startsWith(`${d.path}/`) || (b.kind === 'group' && b.path === d.path)));
      expect(parent, b.path).toBeDefined();
      expect(inside(b, parent!), b.path).toBe(true);
    }
    const files = boxes.filter((b) => b.kind === 'file');
    expect(files.map((b) => [b.path, b.layer]).sort()).toEqual([['/app/main', 1], ['/etc/c', 0], ['/usr/a', 0], ['/usr/b', 1]]);
  });

  it('gathers the files too small to see per directory and per layer', () => {
    // /usr/share (530 bytes) is under 1/1000 of the whole: its files join /usr's groups, one per layer.
    const groups = boxes.filter((b) => b.kind === 'group').map((b) => [b.path, b.layer, b.files, b.bytes]);
    expect(groups.sort()).toEqual([['/usr', 0, 50, 500], ['/usr', 1, 1, 30]]);
  });
});

describe('the HTML page', () => {
  it('is one self-contained document: inline style, SVG and script, nothing fetched', () => {
    const fs = sample();
    const report = { image: 'x', id: 'sha256:' + 'a'.repeat(64), manifestDigest: 'sha256:' + 'b'.repeat(64), source: 'store', layers: [0, 1].map((index) => ({ index, createdBy: `RUN step ${index} <b>`, size: 1, added: 1, modified: 0, removed: 0, wastedBytes: 0, hiddenBytes: 0 })), sizeBytes: 1, blobBytes: 1, finalBytes: 1, wastedBytes: 0, wastedPercent: 0, largestWasters: [], dive: { efficiency: 1 } } as unknown as AnalysisReport;
    const html = renderHtml({ report, fs }, { formatSize: (n) => `${n}B` });
    expect(html).not.toMatch(/\b(src|href)=|@import|url\(|https?:\/\//);
    expect(html).toContain('RUN step 1 &#60;b&#62;');
    // The four files; /usr/share is a box too thin (2 px) to hold its gathered tiny files.
    expect((html.match(/<rect class="f[ "]/g) ?? []).length).toBe(4);
    expect(html).toMatch(/<script>[\s\S]*<\/script>/);
  });
});

describe('--fail-waste', () => {
  it('reads sizes with binary units or a percentage, and refuses anything else', () => {
    expect(parseWasteLimit('2048')).toEqual({ bytes: 2048 });
    expect(parseWasteLimit('50m')).toEqual({ bytes: 50 * 1024 * 1024 });
    expect(parseWasteLimit('1.5GiB')).toEqual({ bytes: 1.5 * 1024 ** 3 });
    expect(parseWasteLimit('512KB')).toEqual({ bytes: 512 * 1024 });
    expect(parseWasteLimit('10%')).toEqual({ percent: 10 });
    expect(parseWasteLimit('2.5%')).toEqual({ percent: 2.5 });
    for (const bad of ['', 'ten', '-1', '10 %', '101%', '5x']) expect(() => parseWasteLimit(bad), bad).toThrow(/invalid --fail-waste/);
  });

  it('fails only above the limit', () => {
    const r = { image: 'i', wastedBytes: 1000, wastedPercent: 10 } as AnalysisReport;
    const f = (n: number): string => `${n}B`;
    expect(checkWaste(r, { bytes: 1000 }, f)).toBeUndefined();
    expect(checkWaste(r, { bytes: 999 }, f)).toMatch(/^i wastes 1000B \(1000 bytes, 10\.0% of its layers\), more than --fail-waste 999 bytes$/);
    expect(checkWaste(r, { percent: 10 }, f)).toBeUndefined();
    expect(checkWaste(r, { percent: 9.5 }, f)).toMatch(/wastes 10\.0% of its layers \(1000B\), more than --fail-waste 9\.5%/);
  });
});
