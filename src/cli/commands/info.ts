/**
 * `imgbuild info [--format]`: this host and store as Docker's `info` describes a daemon's: counts
 * of containers and images, storage driver and snapshotter, cgroups, kernel, OS, rootless, and the
 * registries configured (those with credentials in the Docker config, and the default one).
 */
import { parseStorageDriver } from '../../snapshots/drivers.js';
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { IMGBUILD_VERSION } from '../about.js';
import { formatRows } from '../template/index.js';

/** Registries named in the Docker config (`auths`, `credHelpers`), plus Docker Hub, the default. */
async function configuredRegistries(env: NodeJS.ProcessEnv): Promise<string[]> {
  const { dockerConfigPath, keyHost } = await import('../../registry/auth.js');
  const out = new Set<string>(['docker.io']);
  try {
    const cfg = JSON.parse(await readFile(dockerConfigPath(env), 'utf8')) as { auths?: Record<string, unknown>; credHelpers?: Record<string, string> };
    for (const k of [...Object.keys(cfg.auths ?? {}), ...Object.keys(cfg.credHelpers ?? {})]) out.add(keyHost(k));
  } catch {
    // no config: the default registry only
  }
  return [...out].sort();
}

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('info')
    .description('show system-wide information')
    .option('-f, --format <template>', 'format the output with a template ({{.Driver}}, {{json .}})')
    .action(async (f: { format?: string }) => {
      const [{ systemInfo }, { securityOptionLines }, { ISOLATION_ENV, parseIsolation }] = await Promise.all([
        import('../../containers/info.js'),
        import('../../containers/isolation.js'),
        import('../../sandbox/isolation.js'),
      ]);
      const store = await ctx.store();
      const isolation = parseIsolation(ctx.env[ISOLATION_ENV] ?? 'auto');
      const [info, registries] = await Promise.all([
        systemInfo(store, { signal: ctx.signal, isolation, ...(ctx.storageDriver() ? { storageDriver: parseStorageDriver(ctx.storageDriver()!) } : {}) }),
        configuredRegistries(ctx.env),
      ]);
      // Loopback registries are spoken to over plain http (registry/transport.ts), as Docker's
      // default insecure range 127.0.0.0/8; others only with --insecure.
      const data = { ...info, ServerVersion: IMGBUILD_VERSION, Registries: registries, InsecureRegistries: ['localhost', '127.0.0.0/8', '::1'], IndexServerAddress: 'https://index.docker.io/v1/' };
      if (f.format !== undefined) {
        ctx.stdout.write(formatRows(f.format, [data], { headers: {}, defaultTable: '{{json .}}' }));
        return;
      }
      const gib = (n: number): string => `${(n / 1024 ** 3).toFixed(2).replace(/\.?0+$/, '')}GiB`;
      const lines = [
        'Client:',
        ` Version:    ${IMGBUILD_VERSION}`,
        ' Context:    default',
        '',
        'Server:',
        ` Containers: ${data.Containers}`,
        `  Running: ${data.ContainersRunning}`,
        `  Paused: ${data.ContainersPaused}`,
        `  Stopped: ${data.ContainersStopped}`,
        ` Images: ${data.Images}`,
        ` Server Version: ${data.ServerVersion}`,
        ` Storage Driver: ${data.Driver}`,
        ...data.DriverStatus.map(([k, v]) => `  ${k}: ${v}`),
        ` Snapshotter: ${data.Snapshotter}`,
        ` Logging Driver: ${data.LoggingDriver}`,
        ` Cgroup Driver: ${data.CgroupDriver}`,
        ` Cgroup Version: ${data.CgroupVersion}`,
        ` Runtimes: ${data.Runtimes.join(' ')}`,
        ` Default Runtime: ${data.DefaultRuntime}`,
        ` Isolation: ${data.Isolation}${data.IsolationReason ? ` (full isolation is not available here: ${data.IsolationReason})` : ''}`,
        ` Default Network: ${data.DefaultNetwork}`,
        ...(data.RootlessNetworkCmd ? [` Rootless Network Cmd: ${data.RootlessNetworkCmd}`] : []),
        ' Security Options:',
        ...securityOptionLines(data.SecurityOptions).map((s) => `  ${s}`),
        ` Kernel Version: ${data.KernelVersion}`,
        ` Operating System: ${data.OperatingSystem}`,
        ` OSType: ${data.OSType}`,
        ` Architecture: ${data.Architecture}`,
        ` CPUs: ${data.NCPU}`,
        ` Total Memory: ${gib(data.MemTotal)}`,
        ` Store Root Dir: ${data.RootDir}`,
        ` Rootless: ${data.Rootless}`,
        ' Registries:',
        ...data.Registries.map((r) => `  ${r}`),
        ' Insecure Registries:',
        ...data.InsecureRegistries.map((r) => `  ${r}`),
      ];
      ctx.stdout.write(`${lines.join('\n')}\n`);
    });
}
