/**
 * `run --security-opt` for real: no_new_privs is set only when asked (as in Docker), `exec`
 * inherits it and the syscall filter from the container, in the built-in sandbox and under runc;
 * what has nothing to map onto is refused in one line before anything is made.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOneLineError, okOut } from '../helpers/cli.js';
import { setupEnv, type Env } from './containers-env.js';

let env: Env;
beforeAll(async () => {
  env = await setupEnv();
});
afterAll(async () => env?.cleanup());

const STATUS = ['grep', '-E', '^(NoNewPrivs|Seccomp):', '/proc/self/status'];

/** NoNewPrivs and Seccomp of /proc/self/status, as printed by a command's output. */
function flags(out: string): { noNewPrivs: string | undefined; seccomp: string | undefined } {
  return { noNewPrivs: /NoNewPrivs:\s*(\d)/.exec(out)?.[1], seccomp: /Seccomp:\s*(\d)/.exec(out)?.[1] };
}

async function statusOf(args: string[]): Promise<ReturnType<typeof flags>> {
  const r = await env.cli(['run', '--rm', ...args, 'busybox', ...STATUS]);
  expect(r.stderr, args.join(' ')).toBe('');
  expect(r.code).toBe(0);
  return flags(r.stdout);
}

describe('run --security-opt', () => {
  it('sets no_new_privs only when asked, and keeps the filter unless seccomp=unconfined', async () => {
    expect(await statusOf([])).toEqual({ noNewPrivs: '0', seccomp: '2' });
    expect(await statusOf(['--security-opt', 'no-new-privileges'])).toEqual({ noNewPrivs: '1', seccomp: '2' });
    expect(await statusOf(['--security-opt', 'no-new-privileges=true'])).toEqual({ noNewPrivs: '1', seccomp: '2' });
    expect(await statusOf(['--security-opt', 'no-new-privileges:true'])).toEqual({ noNewPrivs: '1', seccomp: '2' });
    expect(await statusOf(['--security-opt', 'no-new-privileges=false'])).toEqual({ noNewPrivs: '0', seccomp: '2' });
    expect(await statusOf(['--security-opt', 'seccomp=unconfined'])).toEqual({ noNewPrivs: '0', seccomp: '0' });
    expect(await statusOf(['--runtime', 'runc'])).toEqual({ noNewPrivs: '0', seccomp: '2' });
    expect(await statusOf(['--runtime', 'runc', '--security-opt', 'no-new-privileges'])).toEqual({ noNewPrivs: '1', seccomp: '2' });
  });

  it('exec inherits the container\'s no_new_privs and filter', async () => {
    const a = await env.cli(['run', '-d', '--name', 'nnp', '--security-opt', 'no-new-privileges', '--security-opt', 'seccomp=unconfined', 'busybox', 'sleep', '300']);
    expect(a.stderr).toBe('');
    const b = await env.cli(['run', '-d', '--name', 'plain', 'busybox', 'sleep', '300']);
    expect(b.stderr).toBe('');
    try {
      expect(flags((await env.cli(['exec', 'nnp', ...STATUS])).stdout)).toEqual({ noNewPrivs: '1', seccomp: '0' });
      expect(flags((await env.cli(['exec', 'plain', ...STATUS])).stdout)).toEqual({ noNewPrivs: '0', seccomp: '2' });
      const inspected = JSON.parse(okOut(await env.cli(['inspect', 'nnp', 'plain']))) as { HostConfig: { SecurityOpt: string[] | null } }[];
      expect(inspected.map((c) => c.HostConfig.SecurityOpt)).toEqual([['no-new-privileges', 'seccomp=unconfined'], null]);
    } finally {
      await env.cli(['rm', '-f', 'nnp', 'plain']);
    }
  });

  it('systempaths=unconfined leaves /proc and /sys unmasked', async () => {
    const masked = (await env.cli(['run', '--rm', 'busybox', 'cut', '-d', ' ', '-f', '5', '/proc/self/mountinfo'])).stdout.split('\n');
    expect(masked).toEqual(expect.arrayContaining(['/proc/keys', '/proc/sys']));
    const open = (await env.cli(['run', '--rm', '--security-opt', 'systempaths=unconfined', 'busybox', 'cut', '-d', ' ', '-f', '5', '/proc/self/mountinfo'])).stdout.split('\n');
    expect(open).toContain('/proc');
    expect(open).not.toContain('/proc/keys');
    expect(open).not.toContain('/proc/sys');
  });

  it('refuses the rest in one line, status 125, leaving nothing behind', async () => {
    for (const [opt, re] of [
      ['bogus', /^imgbuild: INVALID_ARGUMENT: invalid --security-opt "bogus": expected no-new-privileges\[=true\|false\], seccomp=unconfined, seccomp=PROFILE.json or systempaths=unconfined$/],
      ['no-new-privileges=maybe', /^imgbuild: INVALID_ARGUMENT: invalid --security-opt "no-new-privileges=maybe"/],
      ['seccomp=/nonexistent/profile.json', /^imgbuild: INVALID_ARGUMENT: --security-opt seccomp=\/nonexistent\/profile.json: .*no such file/i],
      ['apparmor=unconfined', /^imgbuild: NOT_IMPLEMENTED: --security-opt "apparmor=unconfined": AppArmor is not supported$/],
      ['label=disable', /^imgbuild: NOT_IMPLEMENTED: --security-opt "label=disable": SELinux labels are not supported$/],
    ] as const) {
      const r = await env.cli(['run', '--rm', '--security-opt', opt, 'busybox', 'true']);
      expectOneLineError(r, re);
      expect(r.code, opt).toBe(125);
    }
    expect((await env.cli(['ps', '-aq'])).stdout).toBe('');
  });
});
