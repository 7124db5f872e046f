/**
 * The seccomp program a container's process gets: its own profile (`--security-opt
 * seccomp=FILE`) or Docker's default, resolved against its capabilities and compiled to BPF.
 * Compiled programs are remembered per profile and capability set, so the RUN steps of a build
 * compile the default once.
 */
import { compileFilter } from './bpf.js';
import { DEFAULT_PROFILE } from './default-profile.js';
import { resolveProfile, type SeccompProfile } from './profile.js';

const compiled = new WeakMap<SeccompProfile, Map<string, Buffer>>();

/** The BPF program (struct sock_filter[]) of `profile` (default: Docker's) for a process with `capabilities`. */
export function seccompProgram(profile: SeccompProfile | undefined, capabilities: readonly string[]): Buffer {
  const p = profile ?? DEFAULT_PROFILE;
  const key = [...capabilities].sort().join(',');
  let byCaps = compiled.get(p);
  if (!byCaps) compiled.set(p, (byCaps = new Map()));
  let prog = byCaps.get(key);
  if (!prog) byCaps.set(key, (prog = compileFilter(resolveProfile(p, { capabilities }))));
  return prog;
}

export { DEFAULT_PROFILE };
export { parseProfile, SeccompProfileError, type SeccompProfile } from './profile.js';
