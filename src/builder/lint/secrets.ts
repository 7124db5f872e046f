/**
 * SecretsUsedInArgOrEnv (BuildKit `validateNoSecretKey`): an ARG or ENV name whose first or last
 * `_`-separated word (or the whole name) is a secret word, case-insensitively, unless it also has a
 * word that marks it as not secret (`public`, `file`, `version`).
 */
import type { SourceRange } from '../frontend/instructions.js';
import type { Linter } from './config.js';
import { RULES } from './rules.js';

const DENY = /(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)/i;
const ALLOW = /(?:_|^)(?:public|file|version)(?:_|$)/i;

export function lintSecretKey(linter: Linter, instruction: 'ARG' | 'ENV', key: string, range: SourceRange): void {
  if (DENY.test(key) && !ALLOW.test(key)) linter.report(RULES.SecretsUsedInArgOrEnv, range, RULES.SecretsUsedInArgOrEnv.format(instruction, key));
}
