import type { Dockerfile } from './instructions.js';
import { BuildError } from './errors.js';

/** Parses a Dockerfile into directives, meta ARGs and stages of typed instructions. */
export function parseDockerfile(text: string, o: { file?: string } = {}): Dockerfile {
  void text;
  throw new BuildError(`parser not implemented yet (${o.file ?? 'Dockerfile'})`, { code: 'NOT_IMPLEMENTED' });
}
