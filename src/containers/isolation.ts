/**
 * Which isolation, snapshotter, network and user namespace a store and a container use, named
 * the same way in `info` and `inspect`. Everything is read from what the store and the container
 * record (a container's rootfs mounts, its record's `isolation`), never guessed from the host at
 * read time, so a container made before a host change is still described as it runs.
 *
 * The kinds: `namespaces` (root: every namespace of its own), `rootless` (the same inside the
 * user's user namespace), `chroot` (where namespaces cannot be made: a chroot of the rootfs with
 * what can still be unshared). Snapshotters: `overlayfs`, `fuse-overlayfs`, `vfs` (copies).
 */
import type { CgroupVersion } from '../host/cgroups.js';
import { rootlessIds } from '../host/userns.js';
import type { SandboxSpec } from '../sandbox/spec.js';

export type IsolationKind = 'namespaces' | 'rootless' | 'chroot';
export type SnapshotterName = 'overlayfs' | 'fuse-overlayfs' | 'vfs';

/** What `info` is told of the store and the host (each part fills what it knows). */
export interface IsolationFacts {
  /** The CLI runs as a user other than root (in its own user namespace). */
  rootless: boolean;
  /** The snapshotter the store's containers and build steps get (the probe's choice). */
  snapshotter: SnapshotterName;
  /** Set where namespaces cannot be made (an unprivileged pod): `chroot`. */
  isolation?: IsolationKind;
  /** Rootless: the program giving containers outbound network access (slirp4netns, pasta), if any. */
  rootlessNetworkCmd?: string;
  cgroupVersion?: CgroupVersion;
  /** Rootless: the delegated cgroup v2 subtree containers get their groups under, and its controllers. */
  cgroupDelegation?: { path: string; controllers: string[] };
}

/** The `info` fields these facts give (Docker's names where Docker has one, podman's otherwise). */
export interface HostIsolation {
  Isolation: IsolationKind;
  /** Docker's "Storage Driver": overlay, fuse-overlayfs or vfs. */
  Driver: string;
  Snapshotter: SnapshotterName;
  CgroupDriver: 'cgroupfs' | 'none';
  CgroupVersion: string;
  /** The controllers a container's limits can use (podman's host.cgroupControllers). */
  CgroupControllers: string[];
  /** Docker's form: `name=seccomp,profile=default`, `name=rootless`. */
  SecurityOptions: string[];
  /** podman's host.rootlessNetworkCmd: empty for root, or a rootless CLI without one. */
  RootlessNetworkCmd: string;
  /** The network `run` and RUN steps get without `--network`. */
  DefaultNetwork: string;
}

/** Docker's storage driver name for a snapshotter. */
export function driverName(s: string): string {
  return s === 'overlayfs' ? 'overlay' : s;
}

export function hostIsolation(f: IsolationFacts): HostIsolation {
  const isolation = f.isolation ?? (f.rootless ? 'rootless' : 'namespaces');
  // Root writes the cgroup tree itself; a rootless CLI only where a subtree is delegated to it.
  const cgroups = !f.rootless || f.cgroupDelegation !== undefined;
  return {
    Isolation: isolation,
    Driver: driverName(f.snapshotter),
    Snapshotter: f.snapshotter,
    CgroupDriver: cgroups ? 'cgroupfs' : 'none',
    CgroupVersion: f.cgroupVersion === undefined ? 'unknown' : String(f.cgroupVersion),
    CgroupControllers: f.rootless ? (f.cgroupDelegation?.controllers ?? []) : f.cgroupVersion === 1 ? ['cpu', 'cpuacct', 'memory', 'pids', 'freezer', 'blkio', 'devices'] : ['cpu', 'io', 'memory', 'pids'],
    SecurityOptions: ['name=seccomp,profile=default', ...(f.rootless ? ['name=rootless'] : []), ...(isolation === 'chroot' ? ['name=chroot'] : [])],
    RootlessNetworkCmd: f.rootless ? (f.rootlessNetworkCmd ?? '') : '',
    DefaultNetwork: f.rootless ? (f.rootlessNetworkCmd ?? 'none') : 'bridge',
  };
}

/** Docker's `Security Options` lines for `name=seccomp,profile=default` entries. */
export function securityOptionLines(opts: string[]): string[] {
  return opts.flatMap((o) => {
    const kv = o.split(',').map((p) => p.split('=') as [string, string?]);
    const name = kv.find(([k]) => k === 'name')?.[1] ?? o;
    return [name, ...kv.filter(([k]) => k !== 'name').map(([k, v]) => ` ${k[0]!.toUpperCase()}${k.slice(1)}: ${v ?? ''}`)];
  });
}

/** What a container's record says of its isolation (filled at create; absent in older records). */
export interface ContainerIsolationRecord {
  isolation?: IsolationKind;
  /** `--userns` as given (`host`, `auto`, ...); absent: the default. */
  userns?: string;
  snapshotter?: SnapshotterName;
}

/** The `inspect` fields of a container: GraphDriver.Name, HostConfig.Isolation and HostConfig.UsernsMode. */
export function containerIsolation(rec: { isolation?: ContainerIsolationRecord }, spec?: Pick<SandboxSpec, 'rootfs'>): { GraphDriver: string; Isolation: IsolationKind; UsernsMode: string } {
  // The rootfs mount the runtime performs says what made it, whatever the record predates.
  const type = spec?.rootfs[0]?.type as string | undefined;
  const fromMount: SnapshotterName | undefined = type === 'overlay' ? 'overlayfs' : type?.startsWith('fuse') ? 'fuse-overlayfs' : type === 'bind' ? 'vfs' : undefined;
  const snapshotter = rec.isolation?.snapshotter ?? fromMount ?? 'overlayfs';
  // A record from before the field: the store's owner ran it, so it is rootless when this CLI is.
  const isolation = rec.isolation?.isolation ?? (rootlessIds() ? 'rootless' : 'namespaces');
  return { GraphDriver: driverName(snapshotter), Isolation: isolation, UsernsMode: rec.isolation?.userns ?? '' };
}

/** The record's `isolation` for a container made now by this CLI. */
export function currentIsolation(o: { snapshotter?: SnapshotterName; userns?: string } = {}): ContainerIsolationRecord {
  return { isolation: rootlessIds() ? 'rootless' : 'namespaces', ...(o.snapshotter ? { snapshotter: o.snapshotter } : {}), ...(o.userns ? { userns: o.userns } : {}) };
}
