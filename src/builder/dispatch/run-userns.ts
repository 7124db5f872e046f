/**
 * `build --userns=auto`: RUN steps in a user namespace of their own, as containers with
 * `run --userns=auto` (containers/userns.ts). The build holds one range of ids, taken when its
 * first RUN runs (a cached build takes none) and given back when it ends; a killed build's range
 * is given back by the next allocation or prune, its process being gone. A step's layers are
 * idmapped into it; its upper dir is handed to the range while it runs and back afterwards, so
 * the snapshots and the layer hold the ids the step saw (0, not the range's start).
 */
import { randomBytes } from 'node:crypto';
import { ImgbuildError } from '../../errors.js';
import {
  allocateIdRange,
  buildOwner,
  ownersAlive,
  releaseIdRange,
  shiftOwners,
  type IdRangeMapping,
  type SubidFiles,
  type UsernsMode,
} from '../../host/id-ranges.js';
import { rootlessIds } from '../../host/userns.js';
import { selfStartTime } from '../../pid.js';
import type { Mount, SandboxSpec } from '../../sandbox/spec.js';
import { containersDir, usernsDir } from '../../store/paths.js';

/** Refuses `--userns=auto` where it cannot work, before the build starts. */
export function checkBuildUserns(mode: UsernsMode): void {
  if (mode.kind === 'auto' && rootlessIds()) {
    throw new ImgbuildError('NOT_IMPLEMENTED', '--userns=auto needs root: a rootless build already runs in its user\'s namespace, with the user\'s subordinate ids');
  }
}

/** The build's range, allocated once on first use. */
export class BuildIdRange {
  private got?: Promise<IdRangeMapping>;
  private readonly owner = buildOwner(process.pid, selfStartTime(), randomBytes(4).toString('hex'));

  constructor(private readonly root: string, private readonly size: number, private readonly o: { files?: SubidFiles; signal?: AbortSignal } = {}) {}

  get(): Promise<IdRangeMapping> {
    this.got ??= allocateIdRange(usernsDir(this.root), this.owner, this.size, { isLive: ownersAlive(containersDir(this.root)), ...this.o });
    return this.got;
  }

  async release(): Promise<void> {
    if (this.got) await releaseIdRange(usernsDir(this.root), this.owner);
  }
}

/** The spec of a RUN in the range's user namespace: its mappings, its layers and binds idmapped. */
export function inUserNamespace(spec: SandboxSpec, m: IdRangeMapping): SandboxSpec {
  const idmapped = (x: Mount & { destination: string }): Mount & { destination: string } =>
    x.type === 'bind' ? { ...x, options: [...x.options, 'idmap'] } : x;
  return {
    ...spec,
    namespaces: ['user', ...spec.namespaces.filter((n) => n !== 'user')],
    uidMappings: [{ containerID: 0, hostID: m.uid, size: m.size }],
    gidMappings: [{ containerID: 0, hostID: m.gid, size: m.size }],
    rootfsIdmap: true,
    // The context, other stages, caches and secrets are seen with the owners they have.
    mounts: spec.mounts.map(idmapped),
  };
}

/**
 * Runs `fn` with an overlay step's upper dir owned by the range (what it holds: the WORKDIRs made
 * for it, and its root, which is the merged root's), then gives the upper dir back to in-container
 * ids, whatever `fn` did. A copying snapshotter's rootfs is an idmapped bind: nothing to do.
 */
export async function withUpperInRange<T>(upper: string | undefined, m: IdRangeMapping, fn: () => Promise<T>, o: { signal?: AbortSignal } = {}): Promise<T> {
  if (upper === undefined) return fn();
  await shiftOwners(upper, m, 'up', o);
  try {
    return await fn();
  } finally {
    await shiftOwners(upper, m, 'down');
  }
}
