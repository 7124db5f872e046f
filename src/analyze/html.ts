/**
 * `analyze --html`: the report as one self-contained page (inline CSS, SVG and a little script; no
 * network, no fonts or libraries fetched): the figures, the layers with their steps and waste, a
 * bar per layer of its wasted bytes by kind, the treemap of the final file system coloured by the
 * layer that last wrote each file, and the largest wasters. The SVG is written here, so the page
 * shows everything without its script, which only highlights a layer's boxes and names the box
 * under the pointer.
 */
import type { Analysis } from './analyze.js';
import { layoutTreemap, type TreemapBox } from './treemap.js';

export interface HtmlOptions {
  /** How sizes are written (the CLI's `formatSize`, Docker's HumanSize). */
  formatSize: (bytes: number) => string;
}

const W = 1200;
const H = 640;
const KINDS = [
  ['deleted', '#d9534f'],
  ['overwritten', '#f0ad4e'],
  ['duplicate', '#5bc0de'],
] as const;

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Distinct hues for consecutive layers (steps of the golden angle). */
export function layerColour(i: number): string {
  return `hsl(${Math.round((i * 137.508 + 200) % 360)} 60% 62%)`;
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

/** A layer's step as the page shows it: its command, else its history comment. */
function stepOf(l: { createdBy: string; comment?: string } | undefined): string {
  const step = (l?.createdBy ?? '').replace(/^\/bin\/sh -c #\(nop\) /, '').replace(/\s+/g, ' ').trim();
  return step || (l?.comment ? `(${l.comment})` : '(no history)');
}

function treemapSvg(a: Analysis, o: HtmlOptions, boxes: TreemapBox[]): string {
  const size = o.formatSize;
  const parts: string[] = [];
  for (const b of boxes) {
    if (b.w < 0.5 || b.h < 0.5) continue;
    const r = `x="${fmt(b.x)}" y="${fmt(b.y)}" width="${fmt(b.w)}" height="${fmt(b.h)}"`;
    const step = b.layer >= 0 ? ` — layer ${b.layer}: ${stepOf(a.report.layers[b.layer])}` : '';
    const title = esc(b.kind === 'group' ? `${b.path}: ${b.label}, ${size(b.bytes)}${step}` : `${b.path}, ${size(b.bytes)}${step}`);
    if (b.kind === 'dir') {
      parts.push(`<rect class="d" ${r}><title>${title}</title></rect>`);
    } else {
      parts.push(`<rect class="f${b.kind === 'group' ? ' g' : ''}" data-layer="${b.layer}" fill="${layerColour(b.layer)}" ${r}><title>${title}</title></rect>`);
    }
    const chars = Math.floor((b.w - 6) / 6.6);
    if (chars >= 3 && b.h >= 14) {
      const label = b.label.length > chars ? `${b.label.slice(0, chars - 1)}…` : b.label;
      parts.push(`<text x="${fmt(b.x + 3)}" y="${fmt(b.y + 11)}">${esc(label)}</text>`);
    }
  }
  return `<svg class="tm" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="treemap of the final file system">${parts.join('')}</svg>`;
}

function wasteChart(a: Analysis, o: HtmlOptions): string {
  const n = a.report.layers.length;
  const perLayer = Array.from({ length: n }, () => ({ deleted: 0, overwritten: 0, duplicate: 0 }));
  for (const w of a.fs.waste) perLayer[w.layer]![w.kind] += w.bytes;
  const max = Math.max(1, ...perLayer.map((p) => p.deleted + p.overwritten + p.duplicate));
  const rowH = 22;
  const left = 70;
  const width = 560;
  const rows = perLayer.map((p, i) => {
    let x = left;
    const bars = KINDS.map(([k, colour]) => {
      const w = (p[k] / max) * width;
      const bar = w > 0 ? `<rect x="${fmt(x)}" y="${i * rowH + 3}" width="${fmt(w)}" height="${rowH - 6}" fill="${colour}"><title>layer ${i}: ${k} ${esc(o.formatSize(p[k]))}</title></rect>` : '';
      x += w;
      return bar;
    }).join('');
    const total = p.deleted + p.overwritten + p.duplicate;
    return `<rect x="4" y="${i * rowH + 5}" width="12" height="12" fill="${layerColour(i)}"/><text x="22" y="${i * rowH + 15}">layer ${i}</text>${bars}<text x="${fmt(x + 6)}" y="${i * rowH + 15}">${esc(o.formatSize(total))}</text>`;
  });
  const h = n * rowH + 4;
  return `<svg class="wc" viewBox="0 0 ${left + width + 90} ${h}" width="${left + width + 90}" height="${h}" role="img" aria-label="wasted bytes per layer">${rows.join('')}</svg>`;
}

export function renderHtml(a: Analysis, o: HtmlOptions): string {
  const r = a.report;
  const size = o.formatSize;
  const boxes = layoutTreemap(a.fs, { width: W, height: H });
  const layerRows = r.layers.map((l) => `<tr data-layer="${l.index}"><td><span class="sw" style="background:${layerColour(l.index)}"></span>${l.index}</td><td>${esc(size(l.size))}</td><td>${l.added}</td><td>${l.modified}</td><td>${l.removed}</td><td>${esc(size(l.wastedBytes))}</td><td>${esc(size(l.hiddenBytes))}</td><td class="cmd">${esc(stepOf(l))}</td></tr>`).join('');
  const wasters = r.largestWasters.map((w) => {
    const why = w.kind === 'duplicate' ? `same content as ${esc(w.of ?? '')}` : `${w.kind} by layer ${w.by}`;
    return `<tr><td>${esc(size(w.bytes))}</td><td><span class="k ${w.kind}">${w.kind}</span></td><td class="p">${esc(w.path)}${w.files > 1 ? ` (${w.files} files)` : ''}</td><td>${w.layer}</td><td>${why}</td></tr>`;
  }).join('');
  const pct = (x: number): string => `${x.toFixed(1)}%`;
  const legend = KINDS.map(([k, c]) => `<span class="lg"><span class="sw" style="background:${c}"></span>${k}</span>`).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>imgbuild analyze: ${esc(r.image)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:20px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}
.sub{color:#666;font-family:monospace;font-size:12px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:14px 0}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:150px}
.card b{display:block;font-size:20px}.card span{color:#666;font-size:12px}
table{border-collapse:collapse}td,th{padding:3px 10px;text-align:left;border-bottom:1px solid #eee;vertical-align:top}
th{font-size:12px;color:#555}tr[data-layer]:hover{background:#f4f8ff;cursor:default}
.cmd,.p{font-family:monospace;font-size:12px;word-break:break-all;max-width:640px}
.sw{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:6px;vertical-align:-1px}
.lg{margin-right:14px;font-size:12px}
.k{font-size:12px;padding:0 6px;border-radius:3px;color:#fff}.deleted{background:#d9534f}.overwritten{background:#f0ad4e}.duplicate{background:#5bc0de}
svg text{font:11px system-ui,sans-serif;fill:#222;pointer-events:none}
.tm{max-width:100%;height:auto;border:1px solid #ccc;background:#fafafa}
.tm rect.d{fill:#00000008;stroke:#0003;stroke-width:.6}
.tm rect.f{stroke:#fff;stroke-width:.5}.tm rect.g{fill-opacity:.7}
.tm.hl rect.f:not(.on){fill-opacity:.12}
#info{font-family:monospace;font-size:12px;min-height:18px;margin:6px 0;color:#333}
</style></head><body>
<h1>${esc(r.image)}</h1>
<div class="sub">${esc(r.id)} · manifest ${esc(r.manifestDigest)} · read from the ${r.source}</div>
<div class="cards">
<div class="card"><b>${esc(size(r.sizeBytes))}</b><span>content of ${r.layers.length} layers (blobs ${esc(size(r.blobBytes))})</span></div>
<div class="card"><b>${esc(size(r.finalBytes))}</b><span>final file system</span></div>
<div class="card"><b>${esc(size(r.wastedBytes))}</b><span>wasted, ${pct(r.wastedPercent)} of the layers</span></div>
<div class="card"><b>${pct(r.dive.efficiency * 100)}</b><span>efficiency (dive's score)</span></div>
</div>
<h2>Layers</h2>
<table class="layers"><tr><th>layer</th><th>size</th><th>added</th><th>modified</th><th>removed</th><th>wasted</th><th>hides</th><th>created by</th></tr>${layerRows}</table>
<h2>Wasted bytes per layer</h2>
<div>${legend}</div>
${wasteChart(a, o)}
<h2>Final file system</h2>
<div>Each box is a file (or small files gathered per directory), its area its size, coloured by the layer that last wrote it. Hover a layer above to pick out its files.</div>
<div id="info"></div>
${treemapSvg(a, o, boxes)}
<h2>Largest wasters</h2>
<table class="wasters"><tr><th>bytes</th><th>kind</th><th>path</th><th>layer</th><th>why</th></tr>${wasters || '<tr><td colspan="5">nothing wasted</td></tr>'}</table>
<script>
(function(){
var svg=document.querySelector('svg.tm'),info=document.getElementById('info');
var files=svg?[].slice.call(svg.querySelectorAll('rect.f')):[];
function say(r){var t=r&&r.querySelector('title');info.textContent=t?t.textContent:'';}
var big=null;files.forEach(function(r){if(!big||(+r.getAttribute('width'))*(+r.getAttribute('height'))>(+big.getAttribute('width'))*(+big.getAttribute('height')))big=r;});
say(big);
if(svg)svg.addEventListener('mouseover',function(e){if(e.target.tagName==='rect')say(e.target);});
[].forEach.call(document.querySelectorAll('tr[data-layer]'),function(tr){
tr.addEventListener('mouseenter',function(){var l=tr.getAttribute('data-layer');svg.classList.add('hl');files.forEach(function(r){r.classList.toggle('on',r.getAttribute('data-layer')===l);});});
tr.addEventListener('mouseleave',function(){svg.classList.remove('hl');});
});
document.body.setAttribute('data-boxes',String(files.length));
})();
</script>
</body></html>
`;
}
