/**
 * `--cidfile`: the container id written to a file, which must not exist beforehand (Docker's
 * guard against two containers sharing one). Taken before the container is made, removed again
 * when no container came of it.
 */
import { writeSync } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { InvalidArgumentError } from '../../errors.js';

export class CidFile {
  private written = false;
  private constructor(readonly path: string, private fh: FileHandle | undefined) {}

  static async open(path: string): Promise<CidFile> {
    try {
      return new CidFile(path, await open(path, 'wx', 0o644));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new InvalidArgumentError(`container ID file found, make sure the other container isn't running or delete ${path}`);
      }
      throw new InvalidArgumentError(`--cidfile ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }

  /** Writes the id (once the container exists). */
  write(id: string): void {
    const fh = this.fh;
    this.fh = undefined;
    this.written = true;
    // Synchronously: `run -d` prints the id and exits right after.
    if (fh) {
      writeSync(fh.fd, id);
      void fh.close();
    }
  }

  /** Removes the file when no id was written (the creation failed). */
  async discard(): Promise<void> {
    if (this.written) return;
    await this.fh?.close().catch(() => {});
    this.fh = undefined;
    await rm(this.path, { force: true });
  }
}
