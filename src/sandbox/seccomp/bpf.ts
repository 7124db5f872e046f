/**
 * A resolved seccomp profile (profile.ts) compiled to a classic BPF program for
 * `prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER)`, as libseccomp would build it for x86_64, i386
 * and x32: the architecture is checked first (another one gets KILL, libseccomp's bad-arch
 * action), syscalls above the highest one the profile names get ENOSYS when the default is
 * not ALLOW (runc's stub, so that libc falls back from calls newer than the profile), then
 * unconditional rules by action and the argument-filtered ones, 64-bit arguments compared as
 * two 32-bit words. The native helper installs the program as it is.
 */
import { SeccompProfileError, type ResolvedProfile, type ResolvedRule } from './profile.js';
import { syscallsX32, syscallsX86, syscallsX86_64 } from './syscalls-x86.js';

const AUDIT_ARCH_X86_64 = 0xc000003e;
const AUDIT_ARCH_I386 = 0x40000003;
const X32_BIT = 0x40000000;
const RET_ERRNO = 0x00050000;
const RET_KILL_THREAD = 0;
const ENOSYS = 38;
const BPF_MAXINSNS = 4096;

const LD_ABS = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JA = 0x05;
const JEQ = 0x15;
const JGT = 0x25;
const JGE = 0x35;
const AND = 0x54; // BPF_ALU | BPF_AND | BPF_K
const RET = 0x06;

const OFF_NR = 0;
const OFF_ARCH = 4;
const argOff = (i: number, hi: boolean): number => 16 + 8 * i + (hi ? 4 : 0);

/** A jump target: a relative count or a label resolved at assembly. */
type Target = number | string;
interface Insn {
  code: number;
  k: number | string;
  jt: Target;
  jf: Target;
}

class Assembler {
  readonly insns: Insn[] = [];
  private readonly labels = new Map<string, number>();
  private n = 0;

  label(prefix: string): string {
    return `${prefix}#${this.n++}`;
  }

  here(label: string): void {
    this.labels.set(label, this.insns.length);
  }

  emit(code: number, k: number | string = 0, jt: Target = 0, jf: Target = 0): void {
    this.insns.push({ code, k, jt, jf });
  }

  ld(off: number): void {
    this.emit(LD_ABS, off);
  }

  ret(v: number): void {
    this.emit(RET, v >>> 0);
  }

  assemble(): Buffer {
    if (this.insns.length > BPF_MAXINSNS) {
      throw new SeccompProfileError(`the filter needs ${this.insns.length} instructions, more than the kernel's ${BPF_MAXINSNS}`);
    }
    // struct sock_filter as two little-endian words (x86 is little-endian): code|jt<<16|jf<<24, k.
    const out = new Uint32Array(this.insns.length * 2);
    const rel = (t: Target, pc: number): number => {
      if (typeof t === 'number') return t;
      const at = this.labels.get(t);
      if (at === undefined) throw new Error(`unreachable: label ${t} not placed`);
      return at - pc - 1;
    };
    for (let pc = 0; pc < this.insns.length; pc++) {
      const ins = this.insns[pc]!;
      const jt = ins.code === JA ? 0 : rel(ins.jt, pc);
      const jf = ins.code === JA ? 0 : rel(ins.jf, pc);
      const k = typeof ins.k === 'string' ? rel(ins.k, pc) : ins.k;
      if (jt < 0 || jt > 255 || jf < 0 || jf > 255 || k < 0) throw new Error(`unreachable: jump out of range at ${pc}`);
      out[pc * 2] = (ins.code | (jt << 16) | (jf << 24)) >>> 0;
      out[pc * 2 + 1] = k >>> 0;
    }
    return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
  }
}

const lo = (v: bigint): number => Number(v & 0xffffffffn);
const hi = (v: bigint): number => Number((v >> 32n) & 0xffffffffn);

/** One condition: falls through when it holds, jumps to `fail` otherwise. */
function condition(a: Assembler, c: ResolvedRule['args'][number], wide: boolean, fail: string): void {
  const pass = a.label('pass');
  const v = c.op === 'SCMP_CMP_MASKED_EQ' ? c.valueTwo : c.value;
  const mask = c.value;
  // The high word decides unless it equals the datum's; then the low word does (32-bit arches: low only).
  if (wide) {
    a.ld(argOff(c.index, true));
    switch (c.op) {
      case 'SCMP_CMP_EQ':
        a.emit(JEQ, hi(v), 0, fail);
        break;
      case 'SCMP_CMP_NE':
        a.emit(JEQ, hi(v), 0, pass);
        break;
      case 'SCMP_CMP_GT':
      case 'SCMP_CMP_GE':
        a.emit(JGT, hi(v), pass, 0);
        a.emit(JEQ, hi(v), 0, fail);
        break;
      case 'SCMP_CMP_LT':
      case 'SCMP_CMP_LE':
        a.emit(JGE, hi(v), 0, pass);
        a.emit(JEQ, hi(v), 0, fail);
        break;
      case 'SCMP_CMP_MASKED_EQ':
        a.emit(AND, hi(mask));
        a.emit(JEQ, hi(v), 0, fail);
        break;
    }
  }
  a.ld(argOff(c.index, false));
  switch (c.op) {
    case 'SCMP_CMP_EQ':
      a.emit(JEQ, lo(v), 0, fail);
      break;
    case 'SCMP_CMP_NE':
      a.emit(JEQ, lo(v), fail, 0);
      break;
    case 'SCMP_CMP_GT':
      a.emit(JGT, lo(v), 0, fail);
      break;
    case 'SCMP_CMP_GE':
      a.emit(JGE, lo(v), 0, fail);
      break;
    case 'SCMP_CMP_LT':
      a.emit(JGE, lo(v), fail, 0);
      break;
    case 'SCMP_CMP_LE':
      a.emit(JGT, lo(v), fail, 0);
      break;
    case 'SCMP_CMP_MASKED_EQ':
      a.emit(AND, lo(mask));
      a.emit(JEQ, lo(v), 0, fail);
      break;
  }
  a.here(pass);
}

/** The rules of one syscall table, with the syscall number already loaded. */
function section(a: Assembler, p: ResolvedProfile, table: Readonly<Record<string, number>>, wide: boolean): void {
  // First unconditional action per syscall; argument rules in profile order.
  const plain = new Map<number, number>();
  const filtered = new Map<number, ResolvedRule[]>();
  let max = -1;
  for (const r of p.rules) {
    const nr = table[r.name];
    if (nr === undefined) continue; // unknown here: skipped, as runc does
    max = Math.max(max, nr);
    if (r.args.length === 0) {
      if (!plain.has(nr)) plain.set(nr, r.action);
    } else {
      const list = filtered.get(nr);
      if (list) list.push(r);
      else filtered.set(nr, [r]);
    }
  }
  if (p.defaultAction !== 0x7fff0000 && max >= 0) {
    a.emit(JGT, max, 0, 1);
    a.ret(RET_ERRNO | ENOSYS);
  }
  const byAction = new Map<number, number[]>();
  for (const [nr, act] of plain) {
    if (filtered.has(nr) || act === p.defaultAction) continue;
    const list = byAction.get(act);
    if (list) list.push(nr);
    else byAction.set(act, [nr]);
  }
  for (const [act, nrs] of byAction) {
    for (let i = 0; i < nrs.length; i += 200) {
      const chunk = nrs.slice(i, i + 200);
      chunk.forEach((nr, j) => a.emit(JEQ, nr, chunk.length - j, 0));
      a.emit(JA, 1);
      a.ret(act);
    }
  }
  for (const [nr, rules] of filtered) {
    const end = a.label('end');
    a.emit(JEQ, nr, 1, 0);
    a.emit(JA, end);
    for (const r of rules) {
      const next = a.label('next');
      for (const c of r.args) condition(a, c, wide, next);
      a.ret(r.action);
      a.here(next);
    }
    a.ret(plain.get(nr) ?? p.defaultAction);
    a.here(end);
    a.ld(OFF_NR); // the conditions loaded arguments
  }
  a.ret(p.defaultAction);
}

/** The BPF program (struct sock_filter[], little-endian) for this host's x86 architectures. */
export function compileFilter(p: ResolvedProfile): Buffer {
  const has = (arch: string): boolean => p.arches.includes(arch);
  if (!has('SCMP_ARCH_X86_64') && !has('SCMP_ARCH_X86') && !has('SCMP_ARCH_X32')) {
    throw new SeccompProfileError(`none of its architectures (${p.arches.join(', ')}) is one imgbuild compiles filters for (x86_64, x86, x32); --security-opt seccomp=unconfined runs without one`);
  }
  const a = new Assembler();
  const s64 = a.label('x86_64');
  const s32 = a.label('i386');
  const sx32 = a.label('x32');
  const bad = a.label('badarch');
  a.ld(OFF_ARCH);
  a.emit(JEQ, AUDIT_ARCH_X86_64, 0, 1);
  a.emit(JA, has('SCMP_ARCH_X86_64') || has('SCMP_ARCH_X32') ? s64 : bad);
  a.emit(JEQ, AUDIT_ARCH_I386, 0, 1);
  a.emit(JA, has('SCMP_ARCH_X86') ? s32 : bad);
  a.emit(JA, bad);
  if (has('SCMP_ARCH_X86_64') || has('SCMP_ARCH_X32')) {
    a.here(s64);
    a.ld(OFF_NR);
    a.emit(JGE, X32_BIT, 0, 1);
    a.emit(JA, has('SCMP_ARCH_X32') ? sx32 : bad);
    if (has('SCMP_ARCH_X86_64')) section(a, p, syscallsX86_64(), true);
    else a.emit(JA, bad);
  }
  if (has('SCMP_ARCH_X32')) {
    a.here(sx32);
    section(a, p, syscallsX32(), true);
  }
  if (has('SCMP_ARCH_X86')) {
    a.here(s32);
    a.ld(OFF_NR);
    section(a, p, syscallsX86(), false);
  }
  a.here(bad); // last, so that every jump here is forward
  a.ret(RET_KILL_THREAD);
  return a.assemble();
}
