import type { SandboxSpec } from './spec.js';

/** runtime-spec config.json for the spec (a bundle runc/crun can run). */
export function toOciConfig(spec: SandboxSpec): object {
  void spec;
  throw new Error('not implemented yet');
}
