/**
 * `--fail-waste BYTES|PERCENT`: a limit on the wasted bytes, as a size (`50m`, `1.5g`, `512KiB`,
 * plain bytes; binary units, as Docker reads `--memory`) or as a percentage of the layers' content
 * (`10%`). The check fails when the waste is above the limit, as dive's CI rules do.
 */
import { ImgbuildError, InvalidArgumentError } from '../errors.js';
import type { AnalysisReport } from './report.js';

export type WasteLimit = { bytes: number } | { percent: number };

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

export function parseWasteLimit(value: string): WasteLimit {
  const v = value.trim();
  const pct = /^(\d+(?:\.\d+)?)%$/.exec(v);
  if (pct) {
    const percent = Number(pct[1]);
    if (percent > 100) throw new InvalidArgumentError(`invalid --fail-waste ${JSON.stringify(value)}: a percentage is at most 100%`);
    return { percent };
  }
  const m = /^(\d+(?:\.\d+)?) ?([kmgt])?(?:i?b)?$/i.exec(v);
  if (!m) throw new InvalidArgumentError(`invalid --fail-waste ${JSON.stringify(value)}: expected bytes (such as 50m, 1.5g, 2048) or a percentage (such as 10%)`);
  return { bytes: Math.floor(Number(m[1]) * UNITS[(m[2] ?? '').toLowerCase()]!) };
}

/** The check failing: exit status 1 (imgbuild's own failures are 125). */
export class WasteLimitError extends ImgbuildError {
  readonly exitCode = 1;
  constructor(message: string) {
    super('FAILED_PRECONDITION', message);
    this.name = 'WasteLimitError';
  }
}

/** Why the report fails the limit, or undefined when it passes. */
export function checkWaste(r: AnalysisReport, limit: WasteLimit, fmt: (bytes: number) => string): string | undefined {
  const pct = `${r.wastedPercent.toFixed(1)}%`;
  if ('bytes' in limit) {
    if (r.wastedBytes > limit.bytes) return `${r.image} wastes ${fmt(r.wastedBytes)} (${r.wastedBytes} bytes, ${pct} of its layers), more than --fail-waste ${limit.bytes} bytes`;
    return undefined;
  }
  if (r.wastedPercent > limit.percent) return `${r.image} wastes ${pct} of its layers (${fmt(r.wastedBytes)}), more than --fail-waste ${limit.percent}%`;
  return undefined;
}
