/** Pure matchers behind Docker's `--filter`s: label lists and `path.Match` globs. */

/** Docker's `Args.MatchKVList`: every `k` or `k=v` given must be among the labels. */
export function matchLabels(values: readonly string[] | undefined, labels: Readonly<Record<string, string>> | undefined): boolean {
  if (!values || values.length === 0) return true;
  const l = labels ?? {};
  if (Object.keys(l).length === 0) return false;
  return values.every((v) => {
    const eq = v.indexOf('=');
    const k = eq < 0 ? v : v.slice(0, eq);
    if (!Object.prototype.hasOwnProperty.call(l, k)) return false;
    return eq < 0 || l[k] === v.slice(eq + 1);
  });
}

/** Go's `path.Match` pattern as a RegExp: `*` and `?` stay within a path element, `[...]` classes, `\` escapes. */
export function pathMatchRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '\\' && i + 1 < pattern.length) re += `\\${pattern[++i]}`;
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) {
        re += '\\[';
        continue;
      }
      let body = pattern.slice(i + 1, end);
      const neg = body.startsWith('^');
      if (neg) body = body.slice(1);
      re += `[${neg ? '^' : ''}${body.replace(/[\]\\]/g, '\\$&')}]`;
      i = end;
    } else re += c.replace(/[.+^${}()|\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}
