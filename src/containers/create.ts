/**
 * Container creation: image → unpacked snapshots (shared, keyed by chain id) → an active snapshot
 * `ctr-<id>` with an init layer of placeholders for the bind-mounted files → the effective config
 * and the sandbox spec → the container directory, filled in under a name of its creator and
 * renamed into place complete (see record.ts), so that a creation cut short by SIGKILL leaves no
 * half-made container, only a directory prune recognises. Nothing runs until start.
 */
import { emitContainerEvent } from './events.js';
import { existsSync } from 'node:fs';
import { chown, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { seccompCacheDir } from '../store/paths.js';
import type { OciStore } from '../store/store.js';
import type { Descriptor, HealthConfig } from '../image/types.js';
import type { Digest } from '../image/digest.js';
import { chainIds, imageId } from '../image/model.js';
import { findImage } from '../store/images.js';
import type { OverlaySnapshotter } from '../snapshots/overlay.js';
import type { StorageDriver } from '../snapshots/drivers.js';
import { newContainerSnapshotter } from './snapshotter.js';
import { unpackImage } from '../snapshots/unpack.js';
import { hostname as osHostname } from 'node:os';
import { containerResolvConf, type HostDnsSource } from '../host/resolv-conf.js';
import { checkUnprivilegedPorts, rootlessResolver } from '../host/rootless-network.js';
import type { SandboxSpec } from '../sandbox/spec.js';
import { toOciConfig } from '../sandbox/sandbox.js';
import { seccompProgram } from '../sandbox/seccomp/filter.js';
import { ImgbuildError, InvalidArgumentError } from '../errors.js';
import { mkdirp } from '../fs.js';
import { generateName, newContainerId, shortId, validateName } from './ids.js';
import { NameInUseError } from './errors.js';
import {
  beginCreate,
  BUNDLE_ROOTFS,
  files,
  finishCreate,
  listRecords,
  pathOf,
  reservedNames,
  resolveContainer,
  snapshotKey,
  withContainersLock,
  writeRecord,
  type BindSpec,
  type ContainerRecord,
  type ContainerNetworkMode,
  type HostConfig,
} from './record.js';
import { checkDuplicates, dockerMount, parseMountFlag, parseVolumeFlag, type MountRequest } from './mounts.js';
import { attachVolumes, detachVolumes, imageVolumeRequests, type AttachedVolume } from './volumes.js';
import {
  buildSandboxSpec,
  capabilitySet,
  composeCommand,
  DEFAULT_PATH,
  mergeEnv,
  parseTmpfs,
  parseUlimit,
  readEnvFile,
  resolveEnvFlags,
} from './spec.js';
import { parseSecurityOpts } from './security-opt.js';
import { deviceSettings, privilegedCapabilities, readLabels, resolveGroups } from './run-flags.js';
import { resolveUser } from './users.js';
import { ensureRootfsDir } from './rootfs.js';
import { procStartTime } from './proc.js';
import { checkRestartWithAutoRemove, type RestartPolicy } from './restart-policy.js';
import { mergeHealthConfig } from './health.js';
import { checkAddHosts, checkNetworkConflicts, hostHostsFile, hostsFile, parseMacAddress, parseNamespaceMode, parseNetworkFlag } from './network-options.js';
import { parseExpose, portBindings as bindingsOf } from './publish.js';
import { currentIsolation } from './isolation.js';
import { parseUsernsMode, type SubidFiles } from '../host/id-ranges.js';
import { allocateContainerIds, checkUsernsMode, releaseContainerIds, type IdRangeMapping } from './userns.js';

export interface CreateOptions {
  /** The container id to use (64 hex); generated when omitted. */
  id?: string;
  /**
   * The directory beginCreate made for `id`, when the caller made it first (run does, before the
   * container's cgroup and network, so that those always belong to a known container). The caller
   * then removes it if creation fails; otherwise createContainer makes and removes its own.
   */
  dir?: string;
  image: string;
  cmd?: string[];
  name?: string;
  env?: string[];
  envFiles?: string[];
  workdir?: string;
  user?: string;
  /** `-v` specs: binds, named volumes, anonymous volumes. */
  volumes?: string[];
  /** `--mount` specs. */
  mounts?: string[];
  tmpfs?: string[];
  hostname?: string;
  /** `--domainname`. */
  domainname?: string;
  /** `--network`: bridge (the default; also `default`), none, host or container:NAME. */
  network?: string;
  publish?: string[];
  /** `-P`: every exposed port on a random host port. */
  publishAll?: boolean;
  /** `--expose`. */
  expose?: string[];
  dns?: string[];
  dnsSearch?: string[];
  dnsOptions?: string[];
  /** `--add-host name:ip` (ip may be host-gateway). */
  addHosts?: string[];
  /** `--mac-address` of eth0 on the bridge. */
  macAddress?: string;
  /** `--pid` and `--ipc`: host, or a namespace of its own. */
  pid?: string;
  ipc?: string;
  /** Where the host's DNS configuration is read (tests); /etc/resolv.conf by default. */
  hostDns?: HostDnsSource;
  /** Told of what is accepted but ignored (ports published with the host's network). */
  warn?: (message: string) => void;
  memory?: number;
  cpus?: number;
  pidsLimit?: number;
  /** `--memory-swap`: memory plus swap in bytes (-1: unlimited swap); needs `memory`. */
  memorySwap?: number;
  /** `--cpu-shares`: relative CPU weight. */
  cpuShares?: number;
  interactive?: boolean;
  tty?: boolean;
  entrypoint?: string;
  init?: boolean;
  readOnly?: boolean;
  capAdd?: string[];
  capDrop?: string[];
  ulimits?: string[];
  /** `--security-opt` values (security-opt.ts). */
  securityOpt?: string[];
  privileged?: boolean;
  /** `--device /dev/x[:/dev/y][:rwm]` (devices.ts). */
  devices?: string[];
  deviceCgroupRules?: string[];
  /** `--group-add`: group names (from the image's /etc/group) or gids. */
  groupAdd?: string[];
  /** `--shm-size` in bytes. */
  shmSize?: number;
  /** `--label k=v` and `--label-file` lines, over the image's labels. */
  labels?: string[];
  labelFiles?: string[];
  autoRemove?: boolean;
  /** `--restart` (restart-policy.ts); carried out by the container's keeper. */
  restartPolicy?: RestartPolicy;
  /** The `--health-*` / `--no-healthcheck` check (health.ts), over the image's HEALTHCHECK. */
  healthcheck?: HealthConfig;
  /** `--stop-signal` (default: the image's STOPSIGNAL, else SIGTERM). */
  stopSignal?: string;
  /** `--stop-timeout` in seconds (default 10; -1 waits forever). */
  stopTimeout?: number;
  /** Environment `-e NAME` (without a value) is taken from. */
  hostEnv?: NodeJS.ProcessEnv;
  /** `--userns`: host (the default) or auto[:size=N] (userns.ts). */
  userns?: string;
  /** Where `--userns=auto` reads the subordinate ranges (default /etc/subuid and /etc/subgid). */
  subidFiles?: SubidFiles;
  /** An already open snapshotter of this root (saves re-opening it); its kind is the container's driver. */
  snapshotter?: OverlaySnapshotter;
  /** `--storage-driver`: overlay or fuse-overlayfs (default: overlay where it mounts, else fuse-overlayfs). */
  storageDriver?: StorageDriver;
  signal?: AbortSignal;
}

/** The image's top chain id, unpacking the layers first unless that snapshot is already committed. */
async function unpacked(
  store: OciStore,
  sn: OverlaySnapshotter,
  layers: Descriptor[],
  diffIds: Digest[],
  signal?: AbortSignal,
): Promise<Digest | undefined> {
  const top = chainIds(diffIds).at(-1);
  if (top === undefined) return undefined;
  const info = await sn.stat(top).catch(() => undefined);
  // Unpacking commits a chain id's snapshot only once its content is complete.
  if (info?.kind === 'committed') return top;
  return unpackImage(store, sn, layers, diffIds, { signal });
}


export async function createContainer(store: OciStore, o: CreateOptions): Promise<ContainerRecord> {
  const root = store.root;
  const hostEnv = o.hostEnv ?? process.env;
  const img = await findImage(store, o.image, {});
  const cfg = img.config.config ?? {};
  const { entrypoint, cmd, argv } = composeCommand(cfg, { entrypoint: o.entrypoint, cmd: o.cmd });
  const { binds, tmpfs, volumeRequests, anonymousV, dockerMounts } = await mountsOf(o, cfg.Volumes);
  const rlimits = (o.ulimits ?? []).map(parseUlimit);
  const security = parseSecurityOpts(o.securityOpt ?? []);
  const capabilities = o.privileged ? privilegedCapabilities() : capabilitySet(o.capAdd ?? [], o.capDrop ?? []);
  const dev = deviceSettings(o);
  const labels = await readLabels(o.labels ?? [], o.labelFiles ?? []);
  // A profile that cannot apply to this container (no architecture of the host, too long) fails here, before anything is made.
  if (typeof security.seccomp === 'object') seccompProgram(security.seccomp, capabilities);
  checkRestartWithAutoRemove(o.restartPolicy, o.autoRemove ?? false);
  const healthcheck = mergeHealthConfig(cfg.Healthcheck, o.healthcheck);
  const userns = parseUsernsMode(o.userns);
  checkUsernsMode(userns);
  const net = parseNetworkFlag(o.network);
  if (net.note) o.warn?.(net.note);
  const expose = (o.expose ?? []).flatMap(parseExpose);
  checkNetworkConflicts(net, {
    hostname: o.hostname,
    dns: o.dns ?? [],
    addHosts: o.addHosts ?? [],
    publish: (o.publish?.length ?? 0) > 0 || Boolean(o.publishAll),
    expose: expose.length > 0,
    macAddress: o.macAddress,
  });
  const macAddress = o.macAddress ? parseMacAddress(o.macAddress) : undefined;
  checkAddHosts(o.addHosts ?? []);
  // Another container's pid or ipc namespace: it must exist now, and run at each start (as Docker).
  const joinedMode = async (m: ReturnType<typeof parseNamespaceMode>): Promise<string> =>
    m.startsWith('container:') ? `container:${(await resolveContainer(root, m.slice('container:'.length))).id}` : m;
  const pidMode = await joinedMode(parseNamespaceMode('--pid', o.pid));
  const ipcMode = await joinedMode(parseNamespaceMode('--ipc', o.ipc));
  if (userns.kind !== 'auto' && binds.some((b) => b.idmap)) throw new InvalidArgumentError('the idmap volume option needs --userns=auto: without a user namespace of its own there is nothing to map to');
  if (userns.kind === 'auto' && pidMode) {
    throw new InvalidArgumentError(`--pid ${o.pid} cannot be used with --userns=auto: a user namespace of its own cannot mount /proc for a pid namespace it does not own`);
  }
  const exposed = [...new Set([...Object.keys(cfg.ExposedPorts ?? {}), ...expose])];
  let portBindings = bindingsOf(o.publish ?? [], o.publishAll ?? false, exposed);
  if (portBindings.length > 0 && net.mode === 'host') {
    o.warn?.('Published ports are discarded when using host network mode');
    portBindings = [];
  }
  // Refused now rather than at each start: the helper binds them as the user.
  if (net.mode === 'slirp4netns' || net.mode === 'pasta') checkUnprivilegedPorts(portBindings);
  if (portBindings.length > 0 && net.mode === 'none') throw new InvalidArgumentError('-p needs a network: ports cannot be published with --network none');
  // The joined container must exist now; that it runs is checked at each start, as Docker does.
  const joined = net.container !== undefined ? await resolveContainer(root, net.container) : undefined;
  const networkMode: ContainerNetworkMode = joined ? `container:${joined.id}` : (net.mode as Exclude<typeof net.mode, 'container'>);
  const fileEnv: string[] = [];
  for (const f of o.envFiles ?? []) fileEnv.push(...(await readEnvFile(f, hostEnv)));
  const flagEnv = resolveEnvFlags(o.env ?? [], hostEnv);

  const id = o.id ?? newContainerId();
  if (!/^[0-9a-f]{64}$/.test(id)) throw new InvalidArgumentError(`invalid container id ${JSON.stringify(id)}`);
  if (joined?.id === id) throw new InvalidArgumentError('cannot join own network');
  // Docker's defaults: the host's name with its network, the joined container's with its.
  const hostname = joined?.config.Hostname ?? o.hostname ?? (net.mode === 'host' ? osHostname() : shortId(id));
  const domainname = joined ? joined.config.Domainname : o.domainname;
  const env = mergeEnv(
    [`PATH=${DEFAULT_PATH}`],
    cfg.Env ?? [],
    fileEnv,
    flagEnv,
    [`HOSTNAME=${hostname}`],
    o.tty ? ['TERM=xterm'] : [],
  );
  const workdir = o.workdir ?? (cfg.WorkingDir || '/');
  if (!workdir.startsWith('/')) throw new InvalidArgumentError(`the working directory ${JSON.stringify(workdir)} is not absolute`);

  const sn = o.snapshotter ?? (await newContainerSnapshotter(root, o.storageDriver, { signal: o.signal }));
  if (userns.kind === 'auto' && sn.kind !== 'overlay') {
    throw new ImgbuildError('NOT_IMPLEMENTED', `--userns=auto needs the overlay storage driver: a ${sn.kind} rootfs cannot be idmapped`);
  }
  const ownStartTime = procStartTime(process.pid);
  const topP = unpacked(store, sn, img.manifest.layers, img.config.rootfs.diff_ids, o.signal);
  topP.catch(() => {}); // awaited below, after the name is reserved
  const dir = o.dir ?? (await beginCreate(root, id));
  const at = (f: keyof typeof files): string => join(dir, files[f]);
  let prepared = false;
  let attached: AttachedVolume[] = [];
  let idMapping: IdRangeMapping | undefined;
  try {
    // Reserve the name first, so a concurrent create with the same name fails (while the image's
    // layers are checked or unpacked). The reservation names the image too, so that rmi and
    // prune leave it alone meanwhile.
    const name = await withContainersLock(root, async () => {
      const [all, reserved] = await Promise.all([listRecords(root), reservedNames(root, dir)]);
      const taken = (n: string): string | undefined => all.find((r) => r.name === n)?.id ?? reserved.get(n);
      let n = o.name !== undefined ? validateName(o.name) : generateName();
      if (o.name === undefined) {
        for (let i = 0; taken(n) !== undefined; i++) n = i < 20 ? generateName() : `${generateName()}_${i}`;
      }
      const clash = taken(n);
      if (clash !== undefined) throw new NameInUseError(n, clash);
      await writeFile(at('state'), JSON.stringify({ id, name: n, image: img.descriptor.digest }));
      return n;
    });

    // The range is held from here until rm (or until prune finds the container gone).
    if (userns.kind === 'auto') idMapping = await allocateContainerIds(root, id, userns.size, { files: o.subidFiles, signal: o.signal });
    const top = await topP;
    const key = snapshotKey(id);
    // A bind of a file gets a file to mount on, as in Docker; anything else a directory.
    const fileBinds = await bindsOfFiles(binds);
    const volumeDirs = [...binds.filter((b) => !fileBinds.includes(b.destination)).map((b) => b.destination), ...tmpfs.map((t) => t.destination), ...volumeRequests.map((v) => v.destination)];
    prepared = true;
    const rootfs = await sn.prepare(key, top, {
      labels: { 'imgbuild.container': id },
      init: { files: ['/etc/hosts', '/etc/resolv.conf', '/etc/hostname'], dirs: volumeDirs, mountFiles: fileBinds },
      signal: o.signal,
    });
    // The upper dir's root is the merged root's: the container's root must own it to write there.
    if (idMapping) await chown(await sn.upperDir(key), idMapping.uid, idMapping.gid);
    // From here on the container is a user of its volumes: `volume rm` refuses them.
    attached = await attachVolumes(root, id, dir, volumeRequests, rootfs, { signal: o.signal, ...(idMapping ? { idMapping } : {}) });
    const userSpec = o.user ?? cfg.User ?? '';
    // The spec names the files where they will be once the directory is in place.
    const etcFiles = { hosts: pathOf(root, id, 'hosts'), hostname: pathOf(root, id, 'hostname'), resolv: pathOf(root, id, 'resolv') };
    // Independent steps, taken together: the user lookup, the workdir, the container's /etc files.
    const [user] = await Promise.all([
      resolveUser(rootfs, userSpec),
      ensureRootfsDir(rootfs, workdir, idMapping),
      // A bridge's address is known at start, which writes the file again; a joined
      // container's files are copied then too.
      (net.mode === 'host' ? hostHostsFile() : Promise.resolve(undefined)).then((hostHosts) =>
        writeFile(at('hosts'), hostsFile(hostname, { domainname, extraHosts: o.addHosts, ...(hostHosts !== undefined ? { hostHosts } : {}) })),
      ),
      writeFile(at('hostname'), `${hostname}\n`),
      containerResolvConf(net.mode === 'host' ? 'host' : 'private', { nameservers: o.dns, search: o.dnsSearch, options: o.dnsOptions }, o.hostDns, rootlessResolver(net.mode)).then((t) =>
        writeFile(at('resolv'), t),
      ),
    ]);
    if (!env.some((e) => e.startsWith('HOME='))) env.push(`HOME=${user.home}`);
    if (o.groupAdd?.length) user.additionalGids = [...new Set([...user.additionalGids, ...(await resolveGroups(rootfs, o.groupAdd))])];

    const spec: SandboxSpec = buildSandboxSpec({
      argv,
      env,
      cwd: workdir,
      user,
      rootfs,
      hostname,
      domainname,
      etcFiles,
      binds,
      tmpfs,
      volumes: attached.map((a) => ({ destination: a.spec.destination, readOnly: a.spec.readOnly, mount: a.mount })),
      readOnly: o.readOnly ?? false,
      capabilities,
      rlimits,
      init: o.init ?? false,
      terminal: o.tty ?? false,
      hostNetwork: net.mode === 'host',
      hostPid: pidMode === 'host',
      hostIpc: ipcMode === 'host',
      security,
      privileged: o.privileged ?? false,
      devices: dev.nodes,
      ...(dev.rules ? { deviceRules: dev.rules } : {}),
      ...(o.shmSize !== undefined ? { shmSize: o.shmSize } : {}),
      ...(idMapping ? { idMapping } : {}),
    });
    const specWritten = Promise.all([
      writeFile(at('spec'), JSON.stringify(spec, null, 2)),
      writeFile(at('config'), `${JSON.stringify(safeOciConfig(spec, { memory: o.memory, cpus: o.cpus, pidsLimit: o.pidsLimit, ...(o.cpuShares !== undefined ? { cpuShares: o.cpuShares } : {}) }, id, seccompCacheDir(root)), null, 2)}\n`),
      mkdir(join(dir, BUNDLE_ROOTFS)),
    ]);
    specWritten.catch(() => {}); // awaited with the record below

    const hostConfig: HostConfig = {
      autoRemove: o.autoRemove ?? false,
      networkMode,
      networkName: net.name,
      portBindings,
      ...(o.publishAll ? { publishAll: true } : {}),
      ...(o.dns?.length ? { dns: [...o.dns] } : {}),
      ...(o.dnsSearch?.length ? { dnsSearch: [...o.dnsSearch] } : {}),
      ...(o.dnsOptions?.length ? { dnsOptions: [...o.dnsOptions] } : {}),
      ...(o.addHosts?.length ? { extraHosts: [...o.addHosts] } : {}),
      ...(pidMode ? { pidMode } : {}),
      ...(ipcMode ? { ipcMode } : {}),
      ...(macAddress ? { macAddress } : {}),
      memory: o.memory,
      cpus: o.cpus,
      pidsLimit: o.pidsLimit,
      ...(o.memorySwap !== undefined ? { memorySwap: o.memorySwap } : {}),
      ...(o.cpuShares !== undefined ? { cpuShares: o.cpuShares } : {}),
      binds,
      tmpfs,
      ...(attached.length > 0 ? { volumes: attached.map((a) => a.spec) } : {}),
      ...(dockerMounts.length > 0 ? { mounts: dockerMounts } : {}),
      readOnly: o.readOnly ?? false,
      capAdd: o.capAdd ?? [],
      capDrop: o.capDrop ?? [],
      ...(o.securityOpt?.length ? { securityOpt: [...o.securityOpt] } : {}),
      ...(o.privileged ? { privileged: true } : {}),
      ...(o.devices?.length ? { devices: [...o.devices] } : {}),
      ...(o.deviceCgroupRules?.length ? { deviceCgroupRules: [...o.deviceCgroupRules] } : {}),
      ...(dev.rules ? { deviceRules: dev.rules } : {}),
      ...(o.groupAdd?.length ? { groupAdd: [...o.groupAdd] } : {}),
      ...(o.shmSize !== undefined ? { shmSize: o.shmSize } : {}),
      init: o.init ?? false,
      tty: o.tty ?? false,
      interactive: o.interactive ?? false,
      ...(o.restartPolicy && o.restartPolicy.name !== 'no' ? { restartPolicy: o.restartPolicy } : {}),
      ...(idMapping ? { idMapping } : {}),
    };
    const rec: ContainerRecord = {
      id,
      name,
      image: img.descriptor.digest,
      imageName: o.image,
      imageId: imageId(img),
      parentChainId: top,
      snapshotKey: key,
      isolation: currentIsolation({ snapshotter: sn.kind === 'overlay' ? 'overlayfs' : 'fuse-overlayfs', ...(o.userns !== undefined ? { userns: o.userns } : {}) }),
      created: new Date().toISOString(),
      config: {
        ...cfg,
        ...(anonymousV.length > 0 ? { Volumes: { ...(cfg.Volumes ?? {}), ...Object.fromEntries(anonymousV.map((d) => [d, {}])) } } : {}),
        Hostname: hostname,
        ...(domainname ? { Domainname: domainname } : {}),
        // Docker adds the published ports to the exposed ones.
        ...(exposed.length + portBindings.length > 0
          ? { ExposedPorts: Object.fromEntries([...exposed, ...portBindings.map((b) => `${b.containerPort}/${b.protocol}`)].map((k) => [k, {}])) }
          : {}),
        Env: env,
        Entrypoint: entrypoint.length > 0 ? entrypoint : null,
        Cmd: cmd,
        WorkingDir: workdir,
        User: userSpec,
        ...(Object.keys(labels).length ? { Labels: { ...(cfg.Labels ?? {}), ...labels } } : {}),
        ...(healthcheck ? { Healthcheck: healthcheck } : {}),
        ...(o.stopSignal !== undefined ? { StopSignal: o.stopSignal } : {}),
        ...(o.stopTimeout !== undefined ? { StopTimeout: o.stopTimeout } : {}),
      },
      path: argv[0]!,
      args: argv.slice(1),
      hostConfig,
      // The creator's pid tells a reader whether a `created` container may still be started.
      state: { status: 'created', monitorPid: process.pid, monitorStartTime: await ownStartTime },
    };
    await Promise.all([specWritten, writeRecord(root, rec, dir)]);
    await finishCreate(root, id, dir);
    await emitContainerEvent(root, rec, 'create');
    return rec;
  } catch (e) {
    if (attached.length > 0) await detachVolumes(root, id, attached.map((a) => a.spec), { removeAnonymous: true }).catch(() => {});
    if (prepared) await sn.remove(snapshotKey(id)).catch(() => {});
    if (idMapping) await releaseContainerIds(root, id).catch(() => {});
    if (!o.dir) await rm(dir, { recursive: true, force: true });
    throw e;
  }
}

export { beginCreate };

/**
 * The container's mounts from `-v`, `--mount` and `--tmpfs`, checked before anything is made, and
 * the volumes it needs: those asked for and the image's VOLUMEs no mount covers (anonymous).
 */
async function mountsOf(
  o: Pick<CreateOptions, 'volumes' | 'mounts' | 'tmpfs'>,
  imageVolumes: Record<string, unknown> | undefined,
): Promise<{ binds: BindSpec[]; tmpfs: { destination: string; options: string[] }[]; volumeRequests: MountRequest[]; anonymousV: string[]; dockerMounts: Record<string, unknown>[] }> {
  const fromV = (o.volumes ?? []).map((v) => parseVolumeFlag(v));
  const fromMount = (o.mounts ?? []).map((m) => parseMountFlag(m, { exists: existsSync }));
  const requests = [...fromV, ...fromMount];
  const tmpfs = [
    ...(o.tmpfs ?? []).map(parseTmpfs),
    ...requests.filter((r) => r.type === 'tmpfs').map((r) => ({ destination: r.destination, options: r.tmpfsOptions ?? [] })),
  ];
  const bindReqs = requests.filter((r) => r.type === 'bind');
  const asked = requests.filter((r) => r.type === 'volume');
  const taken = [...bindReqs.map((r) => r.destination), ...tmpfs.map((t) => t.destination), ...asked.map((r) => r.destination)];
  checkDuplicates(taken);
  const volumeRequests = [...asked, ...imageVolumeRequests(imageVolumes, taken)];
  // Docker makes a missing host directory for -v (a --mount bind's must exist: checked above).
  for (const r of fromV) {
    if (r.type === 'bind' && !(await stat(r.source).catch(() => undefined))) await mkdirp(r.source);
  }
  const binds = bindReqs.map((r): BindSpec => ({
    source: r.source,
    destination: r.destination,
    readOnly: r.readOnly,
    ...(r.propagation && r.propagation !== 'rprivate' ? { propagation: r.propagation } : {}),
    ...(r.mode ? { mode: r.mode } : {}),
    ...(r.idmap ? { idmap: true } : {}),
  }));
  // docker's CLI makes `-v /path` a VOLUME of the container's config (commit keeps it).
  const anonymousV = fromV.filter((r) => r.type === 'volume' && r.source === '').map((r) => r.destination);
  return { binds, tmpfs, volumeRequests, anonymousV, dockerMounts: fromMount.map(dockerMount) };
}

/** The destinations of binds whose source (followed, as mount(2) follows it) is not a directory. */
async function bindsOfFiles(binds: BindSpec[]): Promise<string[]> {
  const kinds = await Promise.all(binds.map(async (b) => (await stat(b.source).catch(() => undefined))?.isDirectory() === false));
  return binds.filter((_, i) => kinds[i]).map((b) => b.destination);
}

/** Removes the directory of a creation that failed (after its kernel objects: see run). */
export async function abandonCreate(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/**
 * The container's directory is an OCI bundle that `runc run --bundle DIR` runs as it is: the
 * overlay is the first of config.json's mounts, at `/` over the empty `rootfs` dir, with the
 * container's limits and its cgroup path. toOciConfig may not cover every field; the native
 * runtime never reads this file.
 */
function safeOciConfig(spec: SandboxSpec, resources: { memory?: number; cpus?: number; pidsLimit?: number; cpuShares?: number }, id: string, seccompCacheDir: string): object {
  try {
    return toOciConfig(spec, { rootPath: BUNDLE_ROOTFS, rootfsInMounts: true, resources, cgroupsPath: `/imgbuild/${id}`, seccompCacheDir });
  } catch (e) {
    return { ociVersion: '1.0.2', error: `not representable: ${(e as Error).message}` };
  }
}
