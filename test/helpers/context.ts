/** Writes a build context directory `<base>/<name>` holding `files` (relative path → content). */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export async function writeContext(base: string, name: string, files: Record<string, string>): Promise<string> {
  const dir = join(base, name);
  await mkdir(dir, { recursive: true });
  for (const [p, content] of Object.entries(files)) {
    await mkdir(join(dir, p, '..'), { recursive: true });
    await writeFile(join(dir, p), content);
  }
  return dir;
}
