// The closing line of scripts/test.sh, "N passed, N failed[, N skipped]", made from vitest's JSON
// report and vitest's exit status: `node scripts/summary.mjs REPORT STATUS` prints it and exits 1
// when anything failed, else 0, so the line and the exit status always agree.
//
// A failure vitest does not count as a failed test still counts: a test file that failed with no
// failed test in it (a hook or the import threw; vitest then reports its tests as skipped, or none)
// counts one, and a run that vitest ended non-zero, or without a readable report, counts one when
// nothing else was counted.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** @param {unknown} v */
const count = (v) => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : 0);

/**
 * @param {unknown} report the parsed JSON report, or undefined when there is none
 * @param {number | null} status vitest's exit status (null when it was killed by a signal)
 * @returns {{ passed: number, failed: number, skipped: number, line: string }}
 */
export function summarize(report, status) {
  const r = /** @type {Record<string, unknown>} */ (report !== null && typeof report === 'object' ? report : {});
  const files = Array.isArray(r.testResults) ? r.testResults : [];
  const passed = count(r.numPassedTests);
  let failed = count(r.numFailedTests);
  for (const file of files) {
    const tests = Array.isArray(file?.assertionResults) ? file.assertionResults : [];
    if (file?.status === 'failed' && !tests.some((t) => t?.status === 'failed')) failed += 1;
  }
  if (failed === 0 && (report === undefined || status !== 0 || r.success === false)) failed = 1;
  const skipped = count(r.numPendingTests) + count(r.numTodoTests);
  const line = `${passed} passed, ${failed} failed` + (skipped ? `, ${skipped} skipped` : '');
  return { passed, failed, skipped, line };
}

/** @param {string | undefined} file */
function readReport(file) {
  try {
    return file ? /** @type {unknown} */ (JSON.parse(readFileSync(file, 'utf8'))) : undefined;
  } catch {
    return undefined;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [file, statusArg] = process.argv.slice(2);
  const status = statusArg !== undefined && /^\d+$/.test(statusArg) ? Number(statusArg) : null;
  const s = summarize(readReport(file), status);
  console.log(s.line);
  process.exitCode = s.failed > 0 ? 1 : 0;
}
