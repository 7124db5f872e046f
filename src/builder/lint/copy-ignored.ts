/**
 * CopyIgnoredFile (BuildKit `validateCopySourcePath`): a COPY or ADD source from the context that
 * .dockerignore excludes. A .dockerignore with `!` patterns is not judged (an excluded directory
 * may have a re-included file in it), nor are ADD's URLs and git sources; `.` and `/` only when a
 * pattern excludes everything at the root (`*`, `**`, `**\/*`).
 */
import { posix } from 'node:path';
import type { SourceRange } from '../frontend/instructions.js';
import type { IgnoreMatcher } from '../frontend/dockerignore.js';
import type { Linter } from './config.js';
import { RULES } from './rules.js';

const REMOTE = /^(https?:\/\/|git@|git:\/\/|ssh:\/\/)/;

function rootIgnored(m: IgnoreMatcher): boolean {
  return m.patterns.some((p) => !p.exclusion && ['*', '**', '**/*'].includes(p.pattern));
}

export function lintCopySources(linter: Linter, m: IgnoreMatcher, kind: 'copy' | 'add', sources: readonly string[], range: SourceRange): void {
  if (m.patterns.length === 0 || m.hasExclusions) return;
  for (const raw of sources) {
    if (kind === 'add' && REMOTE.test(raw)) continue;
    const src = posix.normalize(raw.replace(/\\/g, '/')).replace(/(.)\/+$/, '$1');
    if ((src === '.' || src === '/') && !rootIgnored(m)) continue;
    // Matched as written, as BuildKit does: `/x` is not the pattern `x`.
    if (m.ignores(src)) linter.report(RULES.CopyIgnoredFile, range, RULES.CopyIgnoredFile.format(kind === 'add' ? 'Add' : 'Copy', src));
  }
}
