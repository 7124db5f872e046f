/**
 * BuildKit's "did you mean" for lint messages (`util/suggest.Search`): the first name with the
 * smallest Levenshtein distance under 3, none when a name matches exactly.
 */

function levenshtein(a: string, b: string): number {
  const x = Array.from(a);
  const y = Array.from(b);
  let prev = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const cur = [i];
    for (let j = 1; j <= y.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (x[i - 1] === y[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[y.length]!;
}

/** The suggestion for `word` among `names`, or '' (case-insensitive keeps the word's own case pattern out: the name is returned as written). */
export function searchName(word: string, names: readonly string[], caseSensitive: boolean): string {
  const w = caseSensitive ? word : word.toLowerCase();
  let match = '';
  let min = 3;
  for (const n of names) {
    const o = caseSensitive ? n : n.toLowerCase();
    if (o === w) return '';
    const d = levenshtein(w, o);
    if (d < min) {
      match = n;
      min = d;
    }
  }
  return match;
}
