/** `--security-opt` as Docker reads it: what maps onto the sandbox, and one line for the rest. */
import { describe, it, expect } from 'vitest';
import { DEFAULT_SECURITY, parseSecurityOpts } from '../../src/containers/security-opt.js';
import { buildSandboxSpec } from '../../src/containers/spec.js';

describe('parseSecurityOpts', () => {
  it('defaults to Docker\'s: no no_new_privs, the default filter, masked system paths', () => {
    expect(parseSecurityOpts([])).toEqual({ noNewPrivileges: false, seccomp: true, systemPaths: true });
    expect(DEFAULT_SECURITY.noNewPrivileges).toBe(false);
  });

  it('reads no-new-privileges with or without a value, in either separator, the last one winning', () => {
    expect(parseSecurityOpts(['no-new-privileges']).noNewPrivileges).toBe(true);
    for (const v of ['true', '1', 't', 'TRUE', 'True']) expect(parseSecurityOpts([`no-new-privileges=${v}`]).noNewPrivileges, v).toBe(true);
    for (const v of ['false', '0', 'f', 'FALSE', 'False']) expect(parseSecurityOpts([`no-new-privileges=${v}`]).noNewPrivileges, v).toBe(false);
    expect(parseSecurityOpts(['no-new-privileges:true']).noNewPrivileges).toBe(true);
    expect(parseSecurityOpts(['no-new-privileges', 'no-new-privileges=false']).noNewPrivileges).toBe(false);
    expect(() => parseSecurityOpts(['no-new-privileges=maybe'])).toThrow('invalid --security-opt "no-new-privileges=maybe": expected no-new-privileges, no-new-privileges=true or no-new-privileges=false');
    expect(() => parseSecurityOpts(['no-new-privileges='])).toThrow(/^invalid --security-opt/);
  });

  it('turns the filter and the system path masks off when asked', () => {
    expect(parseSecurityOpts(['seccomp=unconfined'])).toEqual({ noNewPrivileges: false, seccomp: false, systemPaths: true });
    expect(parseSecurityOpts(['seccomp:unconfined']).seccomp).toBe(false);
    expect(parseSecurityOpts(['systempaths=unconfined']).systemPaths).toBe(false);
  });

  it('refuses what has nothing to map onto, naming the option', () => {
    const refused = (opt: string): { code?: string; message: string } => {
      try {
        parseSecurityOpts([opt]);
      } catch (e) {
        return e as { code?: string; message: string };
      }
      throw new Error(`${opt} was accepted`);
    };
    expect(refused('seccomp=/nonexistent/profile.json')).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/^--security-opt seccomp=\/nonexistent\/profile.json: .*no such file/i) });
    expect(refused('apparmor=unconfined')).toMatchObject({ code: 'NOT_IMPLEMENTED', message: '--security-opt "apparmor=unconfined": AppArmor is not supported' });
    expect(refused('label=disable')).toMatchObject({ code: 'NOT_IMPLEMENTED' });
    for (const opt of ['bogus', 'seccomp', 'seccomp=', 'systempaths=confined', 'privileged=true', '']) {
      expect(refused(opt), opt).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/^invalid --security-opt /) });
    }
  });
});

describe('the sandbox spec', () => {
  const input = {
    argv: ['true'], env: [], cwd: '/', user: { uid: 0, gid: 0, additionalGids: [] }, rootfs: [], hostname: 'h',
    etcFiles: { hosts: '/h', hostname: '/n', resolv: '/r' }, binds: [], tmpfs: [], readOnly: false, capabilities: [],
    rlimits: [], init: false, terminal: false, hostNetwork: false,
  };
  it('carries the options: no_new_privs only when asked, the filter and the masks unless unconfined', () => {
    const plain = buildSandboxSpec(input);
    expect(plain.process.noNewPrivileges).toBeFalsy();
    expect(plain.seccomp).not.toBe(false);
    expect(plain.maskedPaths).toBeUndefined(); // the defaults
    const all = buildSandboxSpec({ ...input, security: parseSecurityOpts(['no-new-privileges', 'seccomp=unconfined', 'systempaths=unconfined']) });
    expect(all.process.noNewPrivileges).toBe(true);
    expect(all.seccomp).toBe(false);
    expect(all.maskedPaths).toEqual([]);
    expect(all.readonlyPaths).toEqual([]);
  });
});
