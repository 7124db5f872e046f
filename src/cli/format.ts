/**
 * Shared output formatting for the CLI, matching what Docker prints so scripts and eyes used to
 * `docker images` / `docker ps` read imgbuild's tables the same way: decimal size units with three
 * significant digits and "N minutes ago" durations (tables are Go's tabwriter: template/tabwriter.ts).
 */

const SIZE_UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];

/** Docker's `units.HumanSizeWithPrecision(n, 3)`: `0B`, `120B`, `1.23kB`, `4.26MB` (`units.HumanSize` with precision 4). */
export function formatSize(bytes: number, precision = 3): string {
  let n = Math.max(0, bytes);
  let i = 0;
  while (n >= 1000 && i < SIZE_UNITS.length - 1) {
    n /= 1000;
    i++;
  }
  // %.3g without trailing zeros: toPrecision then parseFloat drops "1.00" → "1".
  let s = String(parseFloat(n.toPrecision(precision)));
  if (s === '1000' && i < SIZE_UNITS.length - 1) {
    s = '1';
    i++;
  }
  return `${s}${SIZE_UNITS[i]}`;
}

/** Docker's `units.HumanDuration`: "Less than a second", "About a minute", "3 hours", "2 weeks". */
export function formatDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  const minutes = Math.floor(ms / 60_000);
  const hoursExact = ms / 3_600_000;
  const hours = Math.floor(hoursExact + 0.5);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(Math.floor(hoursExact) / 24 / 365)} years`;
}

/** "3 minutes ago"; "N/A" for a missing or unparseable time (Docker prints N/A for zero times). */
export function formatAgo(date: Date | string | number | undefined, now: Date = new Date()): string {
  if (date === undefined || date === '') return 'N/A';
  const d = date instanceof Date ? date : new Date(date);
  const t = d.getTime();
  if (Number.isNaN(t) || t <= 0) return 'N/A';
  return `${formatDuration(Math.max(0, now.getTime() - t))} ago`;
}

/** The 12-hex-digit short id Docker shows (`sha256:` dropped). */
export function shortId(digest: string): string {
  const i = digest.indexOf(':');
  return digest.slice(i + 1, i + 13);
}

/** Truncates `s` to `max` characters with a trailing ellipsis, as Docker does for CREATED BY. */
export function ellipsis(s: string, max: number): string {
  const chars = [...s];
  if (chars.length <= max) return s;
  return `${chars.slice(0, max - 1).join('')}…`;
}
