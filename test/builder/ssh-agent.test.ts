/**
 * The agents `build --ssh` forwards, checked with OpenSSH's own tools: keys of every kind
 * ssh-keygen makes (OpenSSH and PEM formats) listed by `ssh-add -l` and signing for
 * `ssh-keygen -Y sign`, whose signatures `ssh-keygen -Y verify` accepts; a real ssh-agent behind
 * the read-only filter (listing and signing pass, adding and removing keys are refused).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTmp } from '../helpers/tmp.js';
import { SshForwards, parseSshFlag } from '../../src/builder/inputs/ssh-agent.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
const keys: { name: string; args: string[] }[] = [
  { name: 'ed25519', args: ['-t', 'ed25519'] },
  { name: 'rsa', args: ['-t', 'rsa', '-b', '2048'] },
  { name: 'ecdsa256', args: ['-t', 'ecdsa', '-b', '256'] },
  { name: 'ecdsa384', args: ['-t', 'ecdsa', '-b', '384'] },
  { name: 'ecdsa521', args: ['-t', 'ecdsa', '-b', '521'] },
  { name: 'rsa-pem', args: ['-t', 'rsa', '-b', '2048', '-m', 'PEM'] },
  { name: 'ecdsa-pem', args: ['-t', 'ecdsa', '-b', '256', '-m', 'PEM'] },
  { name: 'rsa-pkcs8', args: ['-t', 'rsa', '-b', '2048', '-m', 'PKCS8'] },
];
let agentProc: ChildProcess | undefined;

/** Runs a tool without blocking the event loop (the agents under test answer from this process). */
function sh(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, input?: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
  });
}

const keyPath = (name: string): string => join(tmp.dir, name);
const fingerprint = async (name: string): Promise<string> => (await sh('ssh-keygen', ['-l', '-f', `${keyPath(name)}.pub`])).stdout.split(' ')[1]!;

beforeAll(async () => {
  tmp = await makeTmp('imgbuild-ssh-agent-');
  for (const k of keys) {
    const r = await sh('ssh-keygen', ['-q', ...k.args, '-N', '', '-C', `key-${k.name}`, '-f', keyPath(k.name)]);
    if (r.status !== 0) throw new Error(r.stderr);
  }
  const locked = await sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'secret', '-f', keyPath('locked')]);
  if (locked.status !== 0) throw new Error(locked.stderr);
}, 60_000);
afterAll(async () => {
  if (agentProc?.pid && agentProc.exitCode === null) agentProc.kill();
  await tmp.cleanup();
});

/** `ssh-keygen -Y sign` with the agent at `sock`, then `-Y verify` of the signature. */
async function signAndVerify(sock: string, name: string): Promise<void> {
  const data = join(tmp.dir, `data-${name}`);
  await writeFile(data, `signed by ${name}\n`);
  const signed = await sh('ssh-keygen', ['-Y', 'sign', '-f', `${keyPath(name)}.pub`, '-n', 'file', data], { SSH_AUTH_SOCK: sock });
  expect(signed.stderr).not.toMatch(/error|refused/i);
  expect(signed.status).toBe(0);
  const allowed = join(tmp.dir, `allowed-${name}`);
  await writeFile(allowed, `signer ${(await readFile(`${keyPath(name)}.pub`, 'utf8')).trim()}\n`);
  const verified = await sh('ssh-keygen', ['-Y', 'verify', '-f', allowed, '-I', 'signer', '-n', 'file', '-s', `${data}.sig`], {}, `signed by ${name}\n`);
  expect(verified.stdout + verified.stderr).toMatch(/Good "file" signature for signer/);
}

describe('an agent of our own for key files', () => {
  it('lists every key, and signs what OpenSSH verifies', async () => {
    const fw = await SshForwards.open([{ id: 'keys', paths: keys.map((k) => keyPath(k.name)) }], {});
    const served = await fw.serve('keys', tmp.dir, 'keys.sock');
    try {
      const st = await stat(served.path);
      expect(st.isSocket()).toBe(true);
      expect(st.mode & 0o777).toBe(0o600);
      const listed = await sh('ssh-add', ['-l'], { SSH_AUTH_SOCK: served.path });
      expect(listed.status).toBe(0);
      const lines = listed.stdout.trim().split('\n');
      expect(lines.map((l) => l.split(' ')[1])).toEqual(await Promise.all(keys.map((k) => fingerprint(k.name))));
      // Listed without comments, as BuildKit's keyring lists them.
      expect(lines[0]).toMatch(/^256 SHA256:\S+  \(ED25519\)$/);
      for (const k of keys) await signAndVerify(served.path, k.name);
      // Keys cannot be added through it.
      expect((await sh('ssh-add', [keyPath('ed25519')], { SSH_AUTH_SOCK: served.path })).status).not.toBe(0);
    } finally {
      await fw.close();
    }
  });

  it('refuses a passphrase-protected key, a missing file, and keys mixed with a socket', async () => {
    await expect(SshForwards.open([{ id: 'x', paths: [keyPath('locked')] }], {})).rejects.toThrow(/passphrase protected/);
    await expect(SshForwards.open([{ id: 'x', paths: [join(tmp.dir, 'nope')] }], {})).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(SshForwards.open([{ id: 'default', paths: [] }], {})).rejects.toThrow(/make sure SSH_AUTH_SOCK is set/);
    await expect(SshForwards.open([{ id: 'x', paths: [`${keyPath('rsa')}.pub`] }], {})).rejects.toThrow(/no private key found/);
  });

  it('parses --ssh values as buildx does', () => {
    expect(parseSshFlag('default')).toEqual({ id: 'default', paths: [] });
    expect(parseSshFlag('default=/run/agent.sock')).toEqual({ id: 'default', paths: ['/run/agent.sock'] });
    expect(parseSshFlag('gh=/k/a,/k/b')).toEqual({ id: 'gh', paths: ['/k/a', '/k/b'] });
  });
});

describe('a forwarded agent socket', () => {
  it('passes listing and signing to a real ssh-agent, and refuses adding and removing keys', async () => {
    const sock = join(tmp.dir, 'real-agent.sock');
    agentProc = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
    for (let i = 0; i < 100 && !(await stat(sock).catch(() => undefined)); i++) await new Promise((r) => setTimeout(r, 20));
    expect((await sh('ssh-add', [keyPath('ed25519'), keyPath('rsa')], { SSH_AUTH_SOCK: sock })).status).toBe(0);
    // `default` without a path is $SSH_AUTH_SOCK.
    const fw = await SshForwards.open([{ id: 'default', paths: [] }], { SSH_AUTH_SOCK: sock });
    expect(fw.hostSocket('default')).toBe(sock);
    const served = await fw.serve('default', tmp.dir, 'proxy.sock', { mode: 0o660, uid: 1000, gid: 1001 });
    try {
      const st = await stat(served.path);
      expect([st.mode & 0o777, st.uid, st.gid]).toEqual([0o660, 1000, 1001]);
      const listed = await sh('ssh-add', ['-l'], { SSH_AUTH_SOCK: served.path });
      expect(listed.stdout.trim().split('\n').map((l) => l.split(' ')[1])).toEqual([await fingerprint('ed25519'), await fingerprint('rsa')]);
      await signAndVerify(served.path, 'rsa');
      expect((await sh('ssh-add', ['-D'], { SSH_AUTH_SOCK: served.path })).status).not.toBe(0);
      expect((await sh('ssh-add', [keyPath('ecdsa256')], { SSH_AUTH_SOCK: served.path })).status).not.toBe(0);
      // The agent behind is unchanged.
      expect((await sh('ssh-add', ['-l'], { SSH_AUTH_SOCK: sock })).stdout.trim().split('\n')).toHaveLength(2);
    } finally {
      await fw.close();
      agentProc.kill();
    }
  });
});
