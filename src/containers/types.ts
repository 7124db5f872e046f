/** The option and I/O shapes the container lifecycle modules share. */
import type { Cgroup } from '../host/cgroups.js';
import type { NetworkState } from '../host/network.js';
import type { SandboxIO } from '../sandbox/sandbox.js';
import type { OverlaySnapshotter } from '../snapshots/overlay.js';

export interface LifecycleOptions {
  /** cgroup hierarchy root (tests); default /sys/fs/cgroup. */
  cgroupRoot?: string;
  /** Host-wide network lease dir; default /run/imgbuild/network. */
  networkStateDir?: string;
  /** Host-wide claims on container ids (claims.ts); default /run/imgbuild/containers. */
  claimsDir?: string;
  /** An already open snapshotter of this root (saves re-opening it). */
  snapshotter?: OverlaySnapshotter;
  /** The container's cgroup when the caller holds it already (saves detecting its paths again). */
  cgroup?: Cgroup;
  signal?: AbortSignal;
}

/** A container's cgroup and network, made before its process starts (resources.ts). */
export interface KernelObjects {
  cgroup: Cgroup;
  network: NetworkState;
}

/** The container's stdio and the hooks of a foreground run. */
export type RunIO = SandboxIO;

/** Options of a foreground run, whichever runtime runs it. */
export interface ForegroundOptions extends LifecycleOptions {
  /** The signal to pass on to the container's pid 1 when `signal` aborts (default SIGTERM). */
  forward?: () => NodeJS.Signals | undefined;
  /** How long pid 1 has to exit after that signal before the whole cgroup is killed (default 3 s). */
  killGraceMs?: number;
  /** The cgroup and network, when the caller started making them (createKernelObjects). */
  kernel?: Promise<KernelObjects>;
  /** The caller removes the container as soon as this returns (`--rm`): skip the final state write. */
  skipFinalState?: boolean;
}
