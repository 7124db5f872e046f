/**
 * How findings are printed, in BuildKit's and buildx's words: `--check`'s report (a count, then
 * each finding as `WARNING: Rule - URL`, its message, and the Dockerfile lines around it with
 * `>>>` on the instruction), its JSON form (BuildKit's lint result: `warnings` with `ruleName`,
 * `description`, `url`, `detail`, `location`, and `sources`), and the one-line form a build prints
 * (`Rule: message (line N)`).
 */
import type { LintWarning } from './config.js';

/** BuildKit `LintFormatShort`. */
export function shortForm(w: LintWarning): string {
  return `${w.rule}: ${w.detail}${w.range.start.line > 0 ? ` (line ${w.range.start.line})` : ''}`;
}

/** buildx's first line of a report with findings. */
export function countLine(n: number): string {
  return `Check complete, ${n === 1 ? '1 warning has been found!' : `${n} warnings have been found!`}`;
}

/**
 * The Dockerfile lines around a range (BuildKit `errdefs.Source.Print`): two lines of context
 * each side (four for a one-line range), the range's lines marked. The heading names the place as
 * `file:line:column`.
 */
export function sourceExcerpt(text: string, file: string, w: LintWarning): string {
  const lines = text.split('\n');
  let start = w.range.start.line;
  let end = Math.max(w.range.end.line, start);
  if (start < 1 || start > lines.length) return '';
  end = Math.min(end, lines.length);
  const pad = end === start ? 4 : 2;
  for (let p = 0; p < pad; p++) {
    if (start > 1) {
      start--;
      p++;
    }
    if (end !== lines.length) {
      end++;
      p++;
    }
  }
  let out = `${file}:${w.range.start.line}:${w.range.start.column}\n--------------------\n`;
  for (let i = start; i <= end; i++) {
    const marked = i >= w.range.start.line && i <= Math.max(w.range.end.line, w.range.start.line);
    out += ` ${String(i).padStart(3)} | ${marked ? '>>>' : '   '} ${lines[i - 1]}\n`;
  }
  return `${out}--------------------\n`;
}

/** One finding as `--check` prints it. */
export function warningBlock(text: string, file: string, w: LintWarning): string {
  return `\nWARNING: ${w.rule}${w.url ? ` - ${w.url}` : ''}\n${w.detail}\n${sourceExcerpt(text, file, w)}`;
}

/** The whole `--check` report (no findings: buildx's one line). */
export function checkReport(text: string, file: string, warnings: readonly LintWarning[]): string {
  if (warnings.length === 0) return 'Check complete, no warnings found.\n';
  return `${countLine(warnings.length)}\n${warnings.map((w) => warningBlock(text, file, w)).join('')}`;
}

/** BuildKit's lint result as JSON (`--call=check,format=json`); positions are 1-based lines. */
export function checkJson(text: string, file: string, warnings: readonly LintWarning[], error?: Error): string {
  const range = (w: { range: LintWarning['range'] }) => ({ start: { line: w.range.start.line }, end: { line: w.range.end.line } });
  const out: Record<string, unknown> = {
    warnings: warnings.map((w) => ({
      ruleName: w.rule,
      description: w.description,
      ...(w.url ? { url: w.url } : {}),
      detail: w.detail,
      location: { ranges: [range(w)] },
    })),
    sources: [{ filename: file, language: 'Dockerfile', data: Buffer.from(text).toString('base64') }],
  };
  if (error) {
    const r = (error as { range?: LintWarning['range'] }).range;
    out.buildError = { message: (error as { detail?: string }).detail ?? error.message, location: r ? { ranges: [range({ range: r })] } : {} };
  }
  return `${JSON.stringify(out, null, 2)}\n`;
}

/** buildx's summary after a build with findings (the details are `build --check`'s). */
export function buildSummary(warnings: readonly LintWarning[]): string {
  if (warnings.length === 0) return '';
  const n = warnings.length === 1 ? '1 warning found' : `${warnings.length} warnings found`;
  return `\n ${n} (use --check to expand):\n${warnings.map((w) => ` - ${shortForm(w)}\n`).join('')}`;
}
