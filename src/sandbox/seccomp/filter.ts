/**
 * The seccomp program a container's process gets: its own profile (`--security-opt
 * seccomp=FILE`) or Docker's default, resolved against its capabilities and compiled to BPF.
 * Compiling Docker's default costs 2-6 ms in a fresh process (cold code), more than every other
 * step `run --rm` adds, so programs are kept in a cache directory (the store's) under a key of
 * everything they depend on, and remembered in the process (a build's RUN steps).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { compileFilter } from './bpf.js';
import { DEFAULT_PROFILE } from './default-profile.js';
import { resolveProfile, toRuntimeSpec, type SeccompProfile } from './profile.js';

/**
 * What the compiler emits for given inputs: bump it whenever bpf.ts or profile.ts change the
 * program (test/sandbox/seccomp.test.ts pins the default program's digest to this value).
 */
export const FILTER_FORMAT = 1;
const DEFAULT_KEY = 'docker-default:moby-profiles-seccomp-v0.2.3';

const compiled = new WeakMap<SeccompProfile, Map<string, Buffer>>();

function cacheKey(profile: SeccompProfile | undefined, caps: string): string {
  const which = profile ? createHash('sha256').update(JSON.stringify(profile)).digest('hex') : DEFAULT_KEY;
  const kernel = /^\d+\.\d+/.exec(release())?.[0] ?? release();
  return createHash('sha256').update(`${FILTER_FORMAT}\n${which}\n${caps}\n${process.arch}\n${kernel}`).digest('hex');
}

/**
 * Reads a cached result (`<key><ext>`, taken when `valid` says it is whole), or makes one and
 * leaves it there (best effort: a cache that cannot be written is no failure).
 */
function cached(dir: string, key: string, ext: string, valid: (b: Buffer) => boolean, make: () => Buffer): Buffer {
  const file = join(dir, `${key}${ext}`);
  try {
    const b = readFileSync(file);
    if (valid(b)) return b;
  } catch {
    // not there yet
  }
  const prog = make();
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
    writeFileSync(tmp, prog, { mode: 0o600 });
    renameSync(tmp, file);
  } catch {
    // read-only or full: compile again next time
  }
  return prog;
}

/**
 * The BPF program (struct sock_filter[]) of `profile` (default: Docker's) for a process with
 * `capabilities`. Syscall tables exist for x86 only: elsewhere the default is no filter (as the
 * earlier built-in one allowed other architectures) and a profile of one's own is refused.
 */
export function seccompProgram(profile: SeccompProfile | undefined, capabilities: readonly string[], o: { cacheDir?: string } = {}): Buffer | undefined {
  if (!profile && process.arch !== 'x64' && process.arch !== 'ia32') return undefined;
  const p = profile ?? DEFAULT_PROFILE;
  const caps = [...capabilities].sort().join(',');
  let byCaps = compiled.get(p);
  if (!byCaps) compiled.set(p, (byCaps = new Map()));
  let prog = byCaps.get(caps);
  if (!prog) {
    const compile = (): Buffer => compileFilter(resolveProfile(p, { capabilities }));
    prog = o.cacheDir ? cached(o.cacheDir, cacheKey(profile, caps), '.bpf', (b) => b.length > 0 && b.length % 8 === 0, compile) : compile();
    byCaps.set(caps, prog);
  }
  return prog;
}

/**
 * `linux.seccomp` of a container's config.json (the runtime-spec form runc applies) for the same
 * profile and capabilities, cached beside the programs as JSON: resolving Docker's profile cost
 * ~1 ms of every `create`.
 */
export function seccompRuntimeSpec(profile: SeccompProfile | undefined, capabilities: readonly string[], o: { cacheDir?: string } = {}): object {
  const caps = [...capabilities].sort().join(',');
  let parsed: object | undefined;
  const make = (): Buffer => {
    parsed = toRuntimeSpec(resolveProfile(profile ?? DEFAULT_PROFILE, { capabilities }));
    return Buffer.from(JSON.stringify(parsed));
  };
  if (!o.cacheDir) {
    make();
    return parsed!;
  }
  const isWhole = (b: Buffer): boolean => {
    try {
      parsed = JSON.parse(b.toString('utf8')) as object;
      return typeof parsed === 'object' && parsed !== null;
    } catch {
      return false;
    }
  };
  cached(o.cacheDir, cacheKey(profile, caps), '.json', isWhole, make);
  return parsed!;
}

export { DEFAULT_PROFILE };
export { parseProfile, SeccompProfileError, type SeccompProfile } from './profile.js';
