/**
 * `inspect` of a container: a Docker-shaped document (Id, State, Config, HostConfig, Mounts,
 * NetworkSettings, GraphDriver) plus the namespace ids of its running pid 1 from /proc/<pid>/ns.
 */
import { join } from 'node:path';
import { containerPid, getContainer } from './state.js';
import type { LifecycleOptions } from './types.js';
import { containerDir, pathOf, readSpec, type ContainerRecord } from './record.js';
import { namespacesOf } from './proc.js';
import type { SandboxSpec } from '../sandbox/spec.js';
import { layerDirs } from './rootfs.js';
import { hasHealthcheck, initialHealth, readHealth } from './health.js';
import { publishedPortsDocument, requestedPortsDocument } from './publish.js';
import { containerIsolation } from './isolation.js';

export async function inspectContainer(root: string, nameOrId: string, o: LifecycleOptions = {}): Promise<object> {
  const rec = await getContainer(root, nameOrId, o);
  return describeContainer(root, rec, o);
}

export async function describeContainer(root: string, rec: ContainerRecord, o: LifecycleOptions = {}): Promise<object> {
  const pid = await containerPid(rec, o);
  const running = rec.state.status === 'running';
  const restarting = rec.state.restarting === true && rec.state.status !== 'running';
  const health = hasHealthcheck(rec.config.Healthcheck) ? ((await readHealth(root, rec.id)) ?? initialHealth()) : undefined;
  let spec: SandboxSpec | undefined;
  try {
    spec = await readSpec(root, rec.id);
  } catch {
    spec = undefined;
  }
  const dirs = spec ? layerDirs(spec.rootfs) : [];
  const volumes = rec.hostConfig.volumes ?? [];
  const h = rec.hostConfig;
  const exposed = Object.keys(rec.config.ExposedPorts ?? {});
  const iso = containerIsolation(rec, spec);
  return {
    Id: rec.id,
    Created: rec.created,
    Path: rec.path,
    Args: rec.args,
    State: {
      // As docker has it, a container waiting to be restarted counts as running.
      Status: restarting ? 'restarting' : running && rec.state.paused ? 'paused' : rec.state.status,
      Running: running || restarting,
      Paused: Boolean(running && rec.state.paused),
      Restarting: restarting,
      OOMKilled: rec.state.oomKilled ?? false,
      Dead: rec.state.status === 'dead',
      Pid: running ? (pid ?? 0) : 0,
      ExitCode: rec.state.exitCode ?? 0,
      Error: rec.state.error ?? '',
      StartedAt: rec.state.startedAt ?? '0001-01-01T00:00:00Z',
      FinishedAt: rec.state.finishedAt ?? '0001-01-01T00:00:00Z',
      ...(health ? { Health: health } : {}),
    },
    Image: rec.imageId,
    ImageManifest: rec.image,
    ResolvConfPath: pathOf(root, rec.id, 'resolv'),
    HostnamePath: pathOf(root, rec.id, 'hostname'),
    HostsPath: pathOf(root, rec.id, 'hosts'),
    LogPath: pathOf(root, rec.id, 'log'),
    Name: `/${rec.name}`,
    RestartCount: rec.state.restartCount ?? 0,
    Driver: iso.GraphDriver,
    HostConfig: {
      AutoRemove: rec.hostConfig.autoRemove,
      NetworkMode: h.networkMode.startsWith('container:') ? h.networkMode : (h.networkName ?? h.networkMode),
      PortBindings: requestedPortsDocument(h.portBindings),
      PublishAllPorts: h.publishAll ?? false,
      Dns: h.dns ?? [],
      DnsSearch: h.dnsSearch ?? [],
      DnsOptions: h.dnsOptions ?? [],
      ExtraHosts: h.extraHosts ?? null,
      PidMode: h.pidMode ?? '',
      IpcMode: h.ipcMode ?? 'private',
      UsernsMode: iso.UsernsMode,
      Isolation: iso.Isolation,
      // As podman shows a container's own user namespace: container:host:size.
      ...(h.idMapping ? { IDMappings: { UidMap: [`0:${h.idMapping.uid}:${h.idMapping.size}`], GidMap: [`0:${h.idMapping.gid}:${h.idMapping.size}`] } } : {}),
      Binds: [
        ...rec.hostConfig.binds.map((b) => `${b.source}:${b.destination}${b.mode ? `:${b.mode}` : b.readOnly ? ':ro' : ''}`),
        // Named volumes of -v (those with a mode); --mount and anonymous volumes are not binds.
        ...volumes.filter((v) => !v.anonymous && v.mode !== '').map((v) => `${v.name}:${v.destination}${v.mode === 'z' ? '' : `:${v.mode}`}`),
      ],
      ...(rec.hostConfig.mounts ? { Mounts: rec.hostConfig.mounts } : {}),
      Tmpfs: Object.fromEntries(rec.hostConfig.tmpfs.map((t) => [t.destination, t.options.join(',')])),
      Memory: rec.hostConfig.memory ?? 0,
      NanoCpus: rec.hostConfig.cpus ? Math.round(rec.hostConfig.cpus * 1e9) : 0,
      CpuShares: rec.hostConfig.cpuShares ?? 0,
      PidsLimit: rec.hostConfig.pidsLimit ?? null,
      ReadonlyRootfs: rec.hostConfig.readOnly,
      CapAdd: rec.hostConfig.capAdd,
      CapDrop: rec.hostConfig.capDrop,
      SecurityOpt: rec.hostConfig.securityOpt ?? null,
      Privileged: rec.hostConfig.privileged ?? false,
      Devices: (rec.hostConfig.devices ?? []).map(deviceMapping),
      DeviceCgroupRules: rec.hostConfig.deviceCgroupRules ?? null,
      GroupAdd: rec.hostConfig.groupAdd ?? null,
      ShmSize: rec.hostConfig.shmSize ?? 64 * 1024 * 1024,
      Init: rec.hostConfig.init,
      CgroupParent: 'imgbuild',
      RestartPolicy: { Name: rec.hostConfig.restartPolicy?.name ?? 'no', MaximumRetryCount: rec.hostConfig.restartPolicy?.maximumRetryCount ?? 0 },
    },
    GraphDriver: {
      Name: iso.GraphDriver,
      Data: {
        SnapshotKey: rec.snapshotKey,
        UpperDir: dirs[0] ?? '',
        LowerDir: dirs.slice(1).join(':'),
      },
    },
    Mounts: [
      ...rec.hostConfig.binds.map((b) => ({
        Type: 'bind',
        Source: b.source,
        Destination: b.destination,
        Mode: b.mode ?? (b.readOnly ? 'ro' : ''),
        RW: !b.readOnly,
        Propagation: b.propagation ?? 'rprivate',
      })),
      ...volumes.map((v) => ({ Type: 'volume', Name: v.name, Source: v.source, Destination: v.destination, Driver: 'local', Mode: v.mode, RW: !v.readOnly, Propagation: '' })),
      ...rec.hostConfig.tmpfs.map((t) => ({ Type: 'tmpfs', Source: '', Destination: t.destination, Mode: t.options.join(','), RW: !t.options.includes('ro'), Propagation: '' })),
    ],
    Config: {
      Hostname: rec.config.Hostname,
      Domainname: rec.config.Domainname ?? '',
      MacAddress: h.macAddress ?? '',
      User: rec.config.User ?? '',
      Tty: rec.hostConfig.tty,
      OpenStdin: rec.hostConfig.interactive,
      Env: rec.config.Env ?? [],
      Cmd: rec.config.Cmd ?? null,
      Image: rec.imageName,
      Volumes: rec.config.Volumes ?? null,
      WorkingDir: rec.config.WorkingDir ?? '',
      Entrypoint: rec.config.Entrypoint ?? null,
      Labels: rec.config.Labels ?? {},
      StopSignal: rec.config.StopSignal,
      ExposedPorts: rec.config.ExposedPorts,
      ...(rec.config.Healthcheck ? { Healthcheck: rec.config.Healthcheck } : {}),
    },
    NetworkSettings: {
      SandboxKey: rec.network?.netnsPath ?? '',
      IPAddress: rec.network?.ip ?? '',
      IPPrefixLen: rec.network?.prefixLength ?? 0,
      MacAddress: rec.network?.macAddress ?? '',
      Gateway: rec.network?.gateway ?? '',
      Bridge: rec.network?.bridge ?? '',
      Ports: publishedPortsDocument(running ? (rec.state.ports ?? []) : [], exposed),
    },
    Cgroup: rec.cgroup ?? null,
    Namespaces: running && pid ? await namespacesOf(pid) : {},
    Directory: containerDir(root, rec.id),
    Spec: spec ? join(containerDir(root, rec.id), 'config.json') : undefined,
  };
}

/** `--device` as docker inspect shows it. */
function deviceMapping(d: string): { PathOnHost: string; PathInContainer: string; CgroupPermissions: string } {
  const parts = d.split(':');
  const perms = parts.length > 1 && /^[rwm]{1,3}$/.test(parts.at(-1)!) ? parts.pop()! : 'rwm';
  return { PathOnHost: parts[0] ?? '', PathInContainer: parts[1] ?? parts[0] ?? '', CgroupPermissions: perms };
}
