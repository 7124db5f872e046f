/**
 * `imgbuild version [--format]`: Docker's Client and Server blocks. There is no daemon: the
 * "server" is what runs containers on this host (imgbuild's own sandbox, the kernel, and runc
 * when installed), so scripts that read `{{.Server.Version}}` still get an answer.
 */
import { execFile } from 'node:child_process';
import { arch, release } from 'node:os';
import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { IMGBUILD_VERSION } from '../about.js';
import { formatRows } from '../template/index.js';

interface Component {
  Name: string;
  Version: string;
  Details?: Record<string, string>;
}

/** `runc --version`'s first line's version, when runc is installed. */
function runcVersion(signal: AbortSignal): Promise<Component | undefined> {
  return new Promise((resolve) => {
    execFile('runc', ['--version'], { signal, timeout: 5000 }, (err, stdout) => {
      if (err) return resolve(undefined);
      const v = /runc version (\S+)/.exec(stdout)?.[1];
      const commit = /commit: (\S+)/.exec(stdout)?.[1];
      resolve(v ? { Name: 'runc', Version: v, ...(commit ? { Details: { GitCommit: commit } } : {}) } : undefined);
    });
  });
}

const goArch = (): string => (arch() === 'x64' ? 'amd64' : arch());

export default function register(program: Command, ctx: CliContext): void {
  program
    .command('version')
    .description('show the imgbuild version information')
    .option('-f, --format <template>', 'format the output with a template ({{.Client.Version}}, {{json .}})')
    .action(async (f: { format?: string }) => {
      const runc = await runcVersion(ctx.signal);
      const data = {
        Client: {
          Version: IMGBUILD_VERSION,
          NodeVersion: process.version,
          Os: 'linux',
          Arch: goArch(),
          Context: 'default',
        },
        Server: {
          Platform: { Name: 'imgbuild (daemonless)' },
          Version: IMGBUILD_VERSION,
          Os: 'linux',
          Arch: goArch(),
          KernelVersion: release(),
          Root: ctx.root(),
          Components: [
            { Name: 'Engine', Version: IMGBUILD_VERSION, Details: { Daemon: 'none: each command works on the store directly', NodeVersion: process.version } },
            { Name: 'sandbox', Version: IMGBUILD_VERSION, Details: { Runtime: 'imgbuild (native helper)' } },
            ...(runc ? [runc] : []),
          ] as Component[],
        },
      };
      if (f.format !== undefined) {
        ctx.stdout.write(formatRows(f.format, [data], { headers: {}, defaultTable: '{{json .}}' }));
        return;
      }
      const pad = (k: string, n: number): string => `${k}:`.padEnd(n);
      let out = 'Client:\n';
      out += ` ${pad('Version', 19)}${data.Client.Version}\n ${pad('Node version', 19)}${data.Client.NodeVersion}\n ${pad('OS/Arch', 19)}${data.Client.Os}/${data.Client.Arch}\n ${pad('Context', 19)}${data.Client.Context}\n`;
      out += `\nServer: ${data.Server.Platform.Name}\n`;
      for (const c of data.Server.Components) {
        out += ` ${c.Name}:\n  ${pad('Version', 18)}${c.Version}\n`;
        if (c.Name === 'Engine') out += `  ${pad('OS/Arch', 18)}${data.Server.Os}/${data.Server.Arch}\n  ${pad('Kernel', 18)}${data.Server.KernelVersion}\n  ${pad('Store root', 18)}${data.Server.Root}\n`;
        for (const [k, v] of Object.entries(c.Details ?? {})) if (c.Name !== 'Engine' || k !== 'NodeVersion') out += `  ${pad(k, 18)}${v}\n`;
      }
      ctx.stdout.write(out);
    });
}
