/**
 * The seccomp compiler against a small classic-BPF interpreter: Docker's profile semantics
 * (includes/excludes by capability, architecture and kernel, `name` vs `names`, several
 * conditions on one argument as alternatives), 64-bit argument comparisons split into words,
 * the architecture check, x32, the ENOSYS stub above the profile's highest syscall, and the
 * one-line errors of a malformed profile. The default program's digest is pinned to
 * FILTER_FORMAT, the key of the compiled-program cache.
 */
import { createHash } from 'node:crypto';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTmp } from '../helpers/tmp.js';
import { describe, expect, it } from 'vitest';
import { compileFilter } from '../../src/sandbox/seccomp/bpf.js';
import { DEFAULT_PROFILE } from '../../src/sandbox/seccomp/default-profile.js';
import { FILTER_FORMAT, seccompRuntimeSpec } from '../../src/sandbox/seccomp/filter.js';
import { parseProfile, resolveProfile, toRuntimeSpec, type SeccompProfile } from '../../src/sandbox/seccomp/profile.js';
import { syscallsX86, syscallsX86_64 } from '../../src/sandbox/seccomp/syscalls-x86.js';
import { DEFAULT_CAPABILITIES } from '../../src/sandbox/capabilities.js';

const X86 = syscallsX86();
const X86_64 = syscallsX86_64();

const X86_64_ARCH = 0xc000003e;
const I386_ARCH = 0x40000003;
const ALLOW = 0x7fff0000;
const errno = (e: number): number => 0x00050000 | e;

/** Runs a program (struct sock_filter[]) on seccomp_data {nr, arch, args}. */
function evaluate(prog: Buffer, nr: number, arch: number, args: bigint[] = []): number {
  const data = Buffer.alloc(64);
  data.writeInt32LE(nr, 0);
  data.writeUInt32LE(arch, 4);
  args.forEach((a, i) => data.writeBigUInt64LE(a, 16 + 8 * i));
  let acc = 0;
  for (let pc = 0; pc < prog.length / 8; ) {
    const code = prog.readUInt16LE(pc * 8);
    const jt = prog.readUInt8(pc * 8 + 2);
    const jf = prog.readUInt8(pc * 8 + 3);
    const k = prog.readUInt32LE(pc * 8 + 4);
    pc++;
    switch (code) {
      case 0x20: acc = data.readUInt32LE(k); break;
      case 0x54: acc = (acc & k) >>> 0; break;
      case 0x05: pc += k; break;
      case 0x15: pc += acc === k ? jt : jf; break;
      case 0x25: pc += acc > k ? jt : jf; break;
      case 0x35: pc += acc >= k ? jt : jf; break;
      case 0x06: return k;
      default: throw new Error(`unknown opcode ${code.toString(16)}`);
    }
  }
  throw new Error('fell off the end');
}

const program = (p: SeccompProfile, caps: readonly string[] = DEFAULT_CAPABILITIES, kernel = '6.1.0'): Buffer =>
  compileFilter(resolveProfile(parseProfile(JSON.stringify(p)), { capabilities: caps, arch: 'x64', kernel }));

describe('seccomp profiles compiled to BPF', () => {
  it("Docker's default: an allow list, syscalls opened by capabilities, EPERM otherwise, ENOSYS past its highest", () => {
    const d = program(DEFAULT_PROFILE);
    expect(evaluate(d, X86_64.mkdir!, X86_64_ARCH)).toBe(ALLOW);
    expect(evaluate(d, X86_64.keyctl!, X86_64_ARCH)).toBe(errno(1));
    expect(evaluate(d, X86_64.mount!, X86_64_ARCH)).toBe(errno(1));
    expect(evaluate(program(DEFAULT_PROFILE, [...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN']), X86_64.mount!, X86_64_ARCH)).toBe(ALLOW);
    expect(evaluate(d, X86_64.clone3!, X86_64_ARCH)).toBe(errno(38));
    // clone: namespace flags refused (MASKED_EQ on the flags), a plain fork allowed
    expect(evaluate(d, X86_64.clone!, X86_64_ARCH, [0x11n])).toBe(ALLOW);
    expect(evaluate(d, X86_64.clone!, X86_64_ARCH, [0x10000000n])).toBe(errno(1));
    expect(evaluate(d, X86_64.personality!, X86_64_ARCH, [0xffffffffn])).toBe(ALLOW);
    expect(evaluate(d, X86_64.personality!, X86_64_ARCH, [0x1ffffffffn])).toBe(errno(1));
    expect(evaluate(d, 999, X86_64_ARCH)).toBe(errno(38)); // newer than the profile
    expect(evaluate(d, X86.mkdir!, I386_ARCH)).toBe(ALLOW);
    expect(evaluate(d, X86.keyctl!, I386_ARCH)).toBe(errno(1));
    expect(evaluate(d, 0x40000000 + 83, X86_64_ARCH)).toBe(ALLOW); // x32 mkdir
    expect(evaluate(d, 1, 0xc00000b7)).toBe(0); // aarch64: not in the filter, killed
    expect(createHash('sha256').update(program(DEFAULT_PROFILE, DEFAULT_CAPABILITIES, '6.1.0')).digest('hex').slice(0, 16)).toBe(PINNED[FILTER_FORMAT]);
  });

  it('compares 64-bit arguments by both words, and treats conditions on one argument as alternatives', () => {
    const rule = (op: string, value: number, valueTwo?: number) =>
      program({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['write'], action: 'SCMP_ACT_ERRNO', errnoRet: 5, args: [{ index: 2, value, ...(valueTwo !== undefined ? { valueTwo } : {}), op }] }] });
    const hit = (p: Buffer, v: bigint): boolean => evaluate(p, X86_64.write!, X86_64_ARCH, [0n, 0n, v]) === errno(5);
    const big = 2 ** 33 + 7; // a high word of 2
    expect([hit(rule('SCMP_CMP_EQ', big), BigInt(big)), hit(rule('SCMP_CMP_EQ', big), 7n)]).toEqual([true, false]);
    expect([hit(rule('SCMP_CMP_NE', big), BigInt(big)), hit(rule('SCMP_CMP_NE', big), 7n)]).toEqual([false, true]);
    expect([2n ** 32n, BigInt(big), BigInt(big) + 1n, 2n ** 40n].map((v) => hit(rule('SCMP_CMP_GT', big), v))).toEqual([false, false, true, true]);
    expect([BigInt(big) - 1n, BigInt(big), 2n ** 40n].map((v) => hit(rule('SCMP_CMP_GE', big), v))).toEqual([false, true, true]);
    expect([7n, BigInt(big) - 1n, BigInt(big), 2n ** 40n].map((v) => hit(rule('SCMP_CMP_LT', big), v))).toEqual([true, true, false, false]);
    expect([BigInt(big), BigInt(big) + 1n].map((v) => hit(rule('SCMP_CMP_LE', big), v))).toEqual([true, false]);
    expect([0x10n, 0x13n, 0x1_0000_0010n].map((v) => hit(rule('SCMP_CMP_MASKED_EQ', 0xf0, 0x10), v))).toEqual([true, true, true]);
    expect(hit(rule('SCMP_CMP_MASKED_EQ', 0xf0, 0x10), 0x20n)).toBe(false);
    // two conditions on one argument: either (runc); on two arguments: both
    const either = program({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['write'], action: 'SCMP_ACT_ERRNO', errnoRet: 5, args: [{ index: 0, value: 1, op: 'SCMP_CMP_EQ' }, { index: 0, value: 2, op: 'SCMP_CMP_EQ' }] }] });
    expect([1n, 2n, 3n].map((v) => evaluate(either, X86_64.write!, X86_64_ARCH, [v]) === errno(5))).toEqual([true, true, false]);
    const both = program({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['write'], action: 'SCMP_ACT_ERRNO', errnoRet: 5, args: [{ index: 0, value: 1, op: 'SCMP_CMP_EQ' }, { index: 1, value: 2, op: 'SCMP_CMP_EQ' }] }] });
    expect(evaluate(both, X86_64.write!, X86_64_ARCH, [1n, 2n])).toBe(errno(5));
    expect(evaluate(both, X86_64.write!, X86_64_ARCH, [1n, 3n])).toBe(ALLOW);
  });

  it('filters rules by caps, arches and kernel as moby does; unknown names are skipped', () => {
    const p: SeccompProfile = {
      defaultAction: 'SCMP_ACT_ERRNO',
      architectures: ['SCMP_ARCH_X86_64'],
      syscalls: [
        { names: ['getpid', 'no_such_call'], action: 'SCMP_ACT_ALLOW' },
        { names: ['getuid'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN'] } },
        { names: ['getgid'], action: 'SCMP_ACT_ALLOW', excludes: { caps: ['CAP_SYS_ADMIN'] } },
        { names: ['gettid'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['arm64'] } },
        { names: ['getppid'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: '6.2' } },
      ],
    };
    const plain = program(p);
    const admin = program(p, ['CAP_SYS_ADMIN']);
    const allowed = (prog: Buffer, n: string): boolean => evaluate(prog, X86_64[n]!, X86_64_ARCH) === ALLOW;
    expect(['getpid', 'getuid', 'getgid', 'gettid', 'getppid'].map((n) => allowed(plain, n))).toEqual([true, false, true, false, false]);
    expect(['getuid', 'getgid'].map((n) => allowed(admin, n))).toEqual([true, false]);
    expect(allowed(program(p, DEFAULT_CAPABILITIES, '6.2.1'), 'getppid')).toBe(true);
    expect(evaluate(plain, X86.getpid!, I386_ARCH)).toBe(0); // i386 not listed: killed, as libseccomp's bad-arch action
  });

  it("config.json's seccomp section is the resolved profile, kept in the cache beside the programs and made again when damaged", async () => {
    const tmp = await makeTmp();
    try {
      const want = toRuntimeSpec(resolveProfile(DEFAULT_PROFILE, { capabilities: DEFAULT_CAPABILITIES }));
      expect(seccompRuntimeSpec(undefined, DEFAULT_CAPABILITIES)).toEqual(want);
      expect(seccompRuntimeSpec(undefined, DEFAULT_CAPABILITIES, { cacheDir: tmp.dir })).toEqual(want);
      const [file, ...more] = readdirSync(tmp.dir).filter((f) => f.endsWith('.json'));
      expect(more).toEqual([]);
      // What the cache holds is what is used (read, not recomputed)...
      writeFileSync(join(tmp.dir, file!), '{"defaultAction":"SCMP_ACT_ALLOW"}');
      expect(seccompRuntimeSpec(undefined, [...DEFAULT_CAPABILITIES].reverse(), { cacheDir: tmp.dir })).toEqual({ defaultAction: 'SCMP_ACT_ALLOW' });
      // ...a damaged file is replaced, and other capabilities have an entry of their own.
      writeFileSync(join(tmp.dir, file!), '{"defaultAct');
      expect(seccompRuntimeSpec(undefined, DEFAULT_CAPABILITIES, { cacheDir: tmp.dir })).toEqual(want);
      expect(seccompRuntimeSpec(undefined, [...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN'], { cacheDir: tmp.dir })).not.toEqual(want);
      expect(readdirSync(tmp.dir).filter((f) => f.endsWith('.json'))).toHaveLength(2);
    } finally {
      await tmp.cleanup();
    }
  });

  it('says in one line what is wrong with a profile', () => {
    const bad = (p: unknown): string => {
      try {
        const parsed = parseProfile(typeof p === 'string' ? p : JSON.stringify(p));
        resolveProfile(parsed, { capabilities: [], arch: 'x64', kernel: '6.1' });
      } catch (e) {
        return (e as Error).message;
      }
      return 'accepted';
    };
    expect(bad('[1]')).toBe('seccomp profile: not a JSON object');
    expect(bad({ defaultAction: 'SCMP_ACT_NOPE' })).toBe('seccomp profile: defaultAction: "SCMP_ACT_NOPE" is not a valid action');
    expect(bad({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['x'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 1, op: 'SCMP_CMP_ABOUT' }] }] }))
      .toBe('seccomp profile: syscalls[0].args[0]: "SCMP_CMP_ABOUT" is not a valid operator');
    expect(bad({ defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_Z80'] })).toBe('seccomp profile: "SCMP_ARCH_Z80" is not a valid architecture');
    expect(bad({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ name: 'a', names: ['b'], action: 'SCMP_ACT_ALLOW' }] })).toBe("seccomp profile: syscalls[0]: use either 'name' or 'names'");
    expect(bad({ defaultAction: 'SCMP_ACT_ALLOW', architectures: ['SCMP_ARCH_X86_64'], archMap: [{ architecture: 'SCMP_ARCH_X86_64' }] })).toBe("seccomp profile: use either 'architectures' or 'archMap'");
    expect(bad({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['x'], action: 'SCMP_ACT_NOTIFY' }] })).toMatch(/SCMP_ACT_NOTIFY needs a seccomp agent/);
    expect(bad(DEFAULT_PROFILE)).toBe('accepted');
  });
});

/** The first 16 hex digits of the default program's sha256, per FILTER_FORMAT: a change to the compiler's output must bump it. */
const PINNED: Record<number, string> = { 1: '4804306d8e6ef25e' };
