/**
 * `imgbuild analyze IMAGE`: what each layer of an image holds and wastes (src/analyze/), as a
 * table, as JSON (`--format json`, docs/analyze-report.schema.json) and as an HTML page
 * (`--html FILE`). `--fail-waste` makes it a CI check: exit 1 when the waste is above the limit,
 * 125 when imgbuild itself fails (a usage error, an image not found), as Docker's CLI separates a
 * command's result from its own failures.
 */
import type { Command } from 'commander';
import { writeFile } from 'node:fs/promises';
import type { CliContext } from '../context.js';
import { ellipsis, formatSize, shortId } from '../format.js';
import { ExitError, fromSystemError, ImgbuildError, InvalidArgumentError, isImgbuildError } from '../../errors.js';
import { analyzeImage } from '../../analyze/analyze.js';
import { openSource } from '../../analyze/open.js';
import { renderHtml } from '../../analyze/html.js';
import { checkWaste, parseWasteLimit, WasteLimitError, type WasteLimit } from '../../analyze/threshold.js';
import type { AnalysisReport } from '../../analyze/report.js';
import { parsePlatform } from '../../image/platform.js';

interface Flags {
  format?: string;
  html?: string;
  failWaste?: string;
  top?: string;
  remote?: boolean;
  platform?: string;
  insecure?: boolean;
  trunc?: boolean;
}

/** imgbuild's own failure: status 125, the check's failure keeping its 1. */
function ownFailure(e: unknown): unknown {
  if (e instanceof ExitError || e instanceof WasteLimitError) return e;
  const err = isImgbuildError(e) ? e : fromSystemError(e) ?? new ImgbuildError('INTERNAL', (e as Error)?.message ?? String(e), { cause: e });
  if ((err as { exitCode?: number }).exitCode === undefined) Object.defineProperty(err, 'exitCode', { value: 125 });
  return err;
}

function columnWidths(rows: string[][]): number[] {
  return rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
}

function columns(rows: string[][]): string {
  const widths = columnWidths(rows);
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('   ').trimEnd()).join('\n') + '\n';
}

function table(r: AnalysisReport, trunc: boolean, width: number): string {
  const pct = (x: number): string => `${x.toFixed(1)}%`;
  const head = [
    `Image:       ${r.image} (${r.source === 'store' ? 'store' : 'registry, not stored'})`,
    `Id:          ${trunc ? shortId(r.id) : r.id}`,
    `Size:        ${formatSize(r.sizeBytes)} in ${r.layers.length} layer${r.layers.length === 1 ? '' : 's'} (blobs ${formatSize(r.blobBytes)}); final file system ${formatSize(r.finalBytes)}`,
    `Wasted:      ${formatSize(r.wastedBytes)} (${pct(r.wastedPercent)} of the layers): deleted ${formatSize(r.waste.deletedBytes)}, overwritten ${formatSize(r.waste.overwrittenBytes)}, duplicate ${formatSize(r.waste.duplicateBytes)}`,
    `Efficiency:  ${pct(r.dive.efficiency * 100)} (dive's score; dive's potential wasted space ${formatSize(r.dive.wastedBytes)}${r.dive.userWastedFraction === null ? '' : `, ${pct(r.dive.userWastedFraction * 100)} of the layers above the first`})`,
  ].join('\n');
  const rows = [['LAYER', 'SIZE', 'ADDED', 'MODIFIED', 'REMOVED', 'WASTED', 'CREATED BY']];
  for (const l of r.layers) {
    rows.push([String(l.index), formatSize(l.size), String(l.added), String(l.modified), String(l.removed), formatSize(l.wastedBytes), l.createdBy.replace(/\s+/g, ' ')]);
  }
  // CREATED BY fits the terminal (at least 30 characters) unless --no-trunc.
  if (trunc) {
    const before = columnWidths(rows).slice(0, -1).reduce((s, w) => s + w + 3, 0);
    for (const row of rows.slice(1)) row[6] = ellipsis(row[6]!, Math.max(30, width - before));
  }
  let out = `${head}\n\n${columns(rows)}`;
  if (r.largestWasters.length > 0) {
    const w = [['WASTED', 'KIND', 'LAYER', 'PATH', 'WHY']];
    for (const x of r.largestWasters) {
      const why = x.kind === 'duplicate' ? `same content as ${x.of}` : `${x.kind} by layer ${x.by}`;
      w.push([formatSize(x.bytes), x.kind, String(x.layer), x.files > 1 ? `${x.path} (${x.files} files)` : x.path, why]);
    }
    out += `\nLargest wasters:\n${columns(w)}`;
  }
  return out;
}

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('analyze')
    .description("show what each layer of an image adds, removes and wastes, with dive's efficiency score")
    .argument('<image>', 'an image of the store, or a reference to read from its registry (streamed, not stored)')
    .option('--format <format>', "'table' or 'json'", 'table')
    .option('--html <file>', 'also write the report as a self-contained HTML page')
    .option('--fail-waste <bytes|percent>', 'exit 1 when the wasted bytes are above this size (50m, 1g) or percentage of the layers (10%)')
    .option('--top <n>', 'how many of the largest wasters to list', '10')
    .option('--remote', "read the image from its registry even when the store has it")
    .option('--platform <os/arch[/variant]>', 'platform to analyse from a multi-platform image')
    .option('--insecure', 'allow plain http and unverified TLS for this registry')
    .option('--no-trunc', 'do not truncate output')
    .action(async (input: string, flags: Flags) => {
      let limit: WasteLimit | undefined;
      const top = Number(flags.top);
      try {
        if (flags.format !== 'table' && flags.format !== 'json') throw new InvalidArgumentError(`invalid --format ${JSON.stringify(flags.format)}: use table or json`);
        if (!Number.isSafeInteger(top) || top < 0) throw new InvalidArgumentError(`invalid --top ${JSON.stringify(flags.top)}: expected a whole number`);
        if (flags.failWaste !== undefined) limit = parseWasteLimit(flags.failWaste);
      } catch (e) {
        throw ownFailure(e);
      }
      let report: AnalysisReport;
      try {
        const src = await openSource(() => ctx.store(), input, {
          ...(flags.remote ? { remote: true } : {}),
          ...(flags.platform ? { platform: parsePlatform(flags.platform) } : {}),
          ...(flags.insecure ? { insecure: true } : {}),
          env: ctx.env,
          signal: ctx.signal,
        });
        try {
          const analysis = await analyzeImage(src, { top, signal: ctx.signal });
          report = analysis.report;
          if (flags.html) await writeFile(flags.html, renderHtml(analysis, { formatSize }));
        } finally {
          await src.close();
        }
      } catch (e) {
        throw ownFailure(e);
      }
      if (flags.format === 'json') ctx.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      else ctx.stdout.write(table(report, flags.trunc !== false, (ctx.stdout as { columns?: number }).columns ?? 120));
      if (limit) {
        const why = checkWaste(report, limit, formatSize);
        if (why) throw new WasteLimitError(why);
      }
    });
}
