/**
 * Whether a path can be reached (any kind of file; links followed). Depends on nothing internal,
 * so every area may use it (see the dependency rule in test/conformance/dependency-rule.test.ts).
 */
import { access } from 'node:fs/promises';

export async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}
