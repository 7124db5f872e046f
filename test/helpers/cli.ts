/**
 * Runs the built CLI (`bin/imgbuild --root <root> ...`: the `imgbuild` executable) as a child process, the way a user
 * does, and collects its exit code and output.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';

export const REPO_ROOT = join(import.meta.dirname, '..', '..');
/** The `imgbuild` executable (a shell script starting Node; see bin/imgbuild). */
export const CLI_EXE = join(REPO_ROOT, 'bin', 'imgbuild');
/** The Node entry point it starts. */
export const CLI_MAIN = join(REPO_ROOT, 'dist', 'cli', 'bin.cjs');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  root: string;
  /** Added to (and overriding) the test process's environment. */
  env?: NodeJS.ProcessEnv;
  input?: string | Buffer;
  cwd?: string;
  /** Kill the CLI after this many ms (default 120 s) so a hung command fails the test. */
  timeoutMs?: number;
  /** A command that starts the CLI (e.g. `setpriv --reuid U ...`): the CLI's path and arguments follow it. */
  wrap?: string[];
}

export function runCli(args: string[], o: CliOptions): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const argv = [CLI_EXE, '--root', o.root, ...args];
    const child = spawn(o.wrap?.[0] ?? argv[0]!, o.wrap ? [...o.wrap.slice(1), ...argv] : argv.slice(1), {
      cwd: o.cwd ?? REPO_ROOT,
      env: { ...process.env, ...(o.env ?? {}) },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 120_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code: code ?? (signal ? 128 + 9 : 1),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
    child.stdin.on('error', () => {}); // the CLI may exit before reading all input
    if (o.input !== undefined) child.stdin.end(o.input);
    else child.stdin.end();
  });
}

/** Asserts a failed run whose stderr is exactly one line matching `re`. */
export function expectOneLineError(r: CliResult, re: RegExp): void {
  if (r.code === 0) throw new Error(`expected a failure, got exit 0 (stdout: ${r.stdout.slice(0, 200)})`);
  const lines = r.stderr.trim().split('\n');
  if (lines.length !== 1) throw new Error(`expected a one-line error, got:\n${r.stderr}`);
  if (!re.test(lines[0]!)) throw new Error(`error line ${JSON.stringify(lines[0])} does not match ${re}`);
}

/** The stdout of a run that must succeed; a failure throws with its exit code and stderr. */
export function okOut(r: CliResult): string {
  if (r.code !== 0) throw new Error(`expected exit 0, got ${r.code}; stderr: ${r.stderr.trim()}; stdout: ${r.stdout.slice(0, 200)}`);
  return r.stdout;
}
