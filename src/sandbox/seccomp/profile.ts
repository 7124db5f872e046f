/**
 * Docker's seccomp profile format (moby/profiles seccomp `types.go`) and its resolution for one
 * container, as moby's `setupSeccomp` and runc do it: the architectures from `architectures` or
 * the host's entry of `archMap`; a rule's `includes`/`excludes` judged against the container's
 * capabilities, the host's architecture and kernel; names the syscall tables do not know are
 * skipped (runc: "not supported by this kernel"). What is wrong with a profile is one line.
 */
import { release } from 'node:os';
import { InvalidArgumentError } from '../../errors.js';

export interface SeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: string;
}

export interface SeccompFilter {
  caps?: string[] | null;
  arches?: string[] | null;
  minKernel?: string | null;
}

export interface SeccompSyscall {
  name?: string;
  names?: string[] | null;
  action: string;
  errnoRet?: number | null;
  args?: SeccompArg[] | null;
  includes?: SeccompFilter | null;
  excludes?: SeccompFilter | null;
  comment?: string;
}

export interface SeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number | null;
  architectures?: string[] | null;
  archMap?: { architecture: string; subArchitectures?: string[] | null }[] | null;
  syscalls?: SeccompSyscall[] | null;
  flags?: string[] | null;
  listenerPath?: string;
  listenerMetadata?: string;
}

/** A rule for one syscall name after resolution: the action (SECCOMP_RET_* value) and its conditions (ANDed). */
export interface ResolvedRule {
  name: string;
  action: number;
  /** As written (`SCMP_ACT_ERRNO`), with its errno: for the runtime-spec form. */
  actionName: string;
  errnoRet?: number;
  args: { index: number; value: bigint; valueTwo: bigint; op: string }[];
}

export interface ResolvedProfile {
  defaultAction: number;
  defaultActionName: string;
  defaultErrnoRet?: number;
  flags: string[];
  /** libseccomp names (`SCMP_ARCH_X86_64`...) the filter covers. */
  arches: string[];
  rules: ResolvedRule[];
}

const RET = {
  KILL_PROCESS: 0x80000000,
  KILL_THREAD: 0,
  TRAP: 0x00030000,
  ERRNO: 0x00050000,
  TRACE: 0x7ff00000,
  LOG: 0x7ffc0000,
  ALLOW: 0x7fff0000,
} as const;
const EPERM = 1;

export const OPERATORS = ['SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ'];
const ARCHES = [
  'SCMP_ARCH_X86', 'SCMP_ARCH_X86_64', 'SCMP_ARCH_X32', 'SCMP_ARCH_ARM', 'SCMP_ARCH_AARCH64', 'SCMP_ARCH_MIPS',
  'SCMP_ARCH_MIPS64', 'SCMP_ARCH_MIPS64N32', 'SCMP_ARCH_MIPSEL', 'SCMP_ARCH_MIPSEL64', 'SCMP_ARCH_MIPSEL64N32',
  'SCMP_ARCH_PPC', 'SCMP_ARCH_PPC64', 'SCMP_ARCH_PPC64LE', 'SCMP_ARCH_S390', 'SCMP_ARCH_S390X', 'SCMP_ARCH_PARISC',
  'SCMP_ARCH_PARISC64', 'SCMP_ARCH_RISCV64', 'SCMP_ARCH_LOONGARCH64', 'SCMP_ARCH_M68K', 'SCMP_ARCH_SH', 'SCMP_ARCH_SHEB',
];
const FLAGS = ['SECCOMP_FILTER_FLAG_TSYNC', 'SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW', 'SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV'];

/** Node's `process.arch` → Go's GOARCH (what `includes.arches` names) and the native libseccomp arch. */
const HOST_ARCH: Record<string, { goarch: string; native: string }> = {
  x64: { goarch: 'amd64', native: 'SCMP_ARCH_X86_64' },
  ia32: { goarch: '386', native: 'SCMP_ARCH_X86' },
  arm64: { goarch: 'arm64', native: 'SCMP_ARCH_AARCH64' },
  arm: { goarch: 'arm', native: 'SCMP_ARCH_ARM' },
};

export class SeccompProfileError extends InvalidArgumentError {
  constructor(message: string) {
    super(`seccomp profile: ${message}`);
    this.name = 'SeccompProfileError';
  }
}

function errno(v: number | null | undefined, what: string): number {
  if (v === undefined || v === null) return EPERM;
  if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new SeccompProfileError(`${what}: errnoRet ${v} is not an errno`);
  return v;
}

/** runc's action names (`SCMP_ACT_*`) → the filter's return value. */
export function actionValue(action: unknown, errnoRet: number | null | undefined, what: string): number {
  switch (action) {
    case 'SCMP_ACT_KILL':
    case 'SCMP_ACT_KILL_THREAD':
      return RET.KILL_THREAD;
    case 'SCMP_ACT_KILL_PROCESS':
      return RET.KILL_PROCESS;
    case 'SCMP_ACT_TRAP':
      return RET.TRAP;
    case 'SCMP_ACT_ERRNO':
      return RET.ERRNO | errno(errnoRet, what);
    case 'SCMP_ACT_TRACE':
      return RET.TRACE | errno(errnoRet, what);
    case 'SCMP_ACT_LOG':
      return RET.LOG;
    case 'SCMP_ACT_ALLOW':
      return RET.ALLOW;
    case 'SCMP_ACT_NOTIFY':
      throw new SeccompProfileError(`${what}: SCMP_ACT_NOTIFY needs a seccomp agent, which imgbuild does not run`);
    default:
      throw new SeccompProfileError(`${what}: ${JSON.stringify(action)} is not a valid action`);
  }
}

/** `major.minor` of a kernel release (`6.18.0-1-amd64` → [6, 18]). */
function kernelVersion(s: string, what: string): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(s);
  if (!m) throw new SeccompProfileError(`${what}: minKernel ${JSON.stringify(s)} is not a kernel version`);
  return [Number(m[1]), Number(m[2])];
}

function atLeast(kernel: [number, number], min: [number, number]): boolean {
  return kernel[0] > min[0] || (kernel[0] === min[0] && kernel[1] >= min[1]);
}

function isStringList(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === 'string');
}

/** Reads a profile's JSON text, checking its shape (the line says which field is wrong). */
export function parseProfile(text: string): SeccompProfile {
  let p: unknown;
  try {
    p = JSON.parse(text);
  } catch (e) {
    throw new SeccompProfileError(`not JSON: ${(e as Error).message}`);
  }
  if (typeof p !== 'object' || p === null || Array.isArray(p)) throw new SeccompProfileError('not a JSON object');
  const o = p as Record<string, unknown>;
  if (typeof o.defaultAction !== 'string') throw new SeccompProfileError('defaultAction is missing or not a string');
  actionValue(o.defaultAction, o.defaultErrnoRet as number | undefined, 'defaultAction');
  for (const k of ['architectures', 'flags'] as const) {
    if (o[k] !== undefined && o[k] !== null && !isStringList(o[k])) throw new SeccompProfileError(`${k} is not a list of strings`);
  }
  if (o.archMap !== undefined && o.archMap !== null && !Array.isArray(o.archMap)) throw new SeccompProfileError('archMap is not a list');
  if (o.syscalls !== undefined && o.syscalls !== null && !Array.isArray(o.syscalls)) throw new SeccompProfileError('syscalls is not a list');
  (o.syscalls as unknown[] | undefined)?.forEach((s, i) => {
    const what = `syscalls[${i}]`;
    if (typeof s !== 'object' || s === null) throw new SeccompProfileError(`${what} is not an object`);
    const r = s as Record<string, unknown>;
    if (r.names !== undefined && r.names !== null && !isStringList(r.names)) throw new SeccompProfileError(`${what}.names is not a list of strings`);
    if (r.name !== undefined && typeof r.name !== 'string') throw new SeccompProfileError(`${what}.name is not a string`);
    if (typeof r.action !== 'string') throw new SeccompProfileError(`${what}.action is missing or not a string`);
    actionValue(r.action, r.errnoRet as number | undefined, what);
    if (r.args !== undefined && r.args !== null) {
      if (!Array.isArray(r.args)) throw new SeccompProfileError(`${what}.args is not a list`);
      r.args.forEach((a: unknown, j) => {
        const x = a as Record<string, unknown> | null;
        const at = `${what}.args[${j}]`;
        if (typeof x !== 'object' || x === null) throw new SeccompProfileError(`${at} is not an object`);
        if (!Number.isInteger(x.index) || (x.index as number) < 0 || (x.index as number) > 5) throw new SeccompProfileError(`${at}.index must be 0 to 5`);
        for (const k of ['value', 'valueTwo'] as const) {
          if (x[k] !== undefined && (!Number.isInteger(x[k]) || (x[k] as number) < 0)) throw new SeccompProfileError(`${at}.${k} is not an unsigned integer`);
        }
        if (!OPERATORS.includes(x.op as string)) throw new SeccompProfileError(`${at}: ${JSON.stringify(x.op)} is not a valid operator`);
      });
    }
    for (const k of ['includes', 'excludes'] as const) {
      const f = r[k] as Record<string, unknown> | null | undefined;
      if (f === undefined || f === null) continue;
      if (typeof f !== 'object') throw new SeccompProfileError(`${what}.${k} is not an object`);
      for (const l of ['caps', 'arches'] as const) {
        if (f[l] !== undefined && f[l] !== null && !isStringList(f[l])) throw new SeccompProfileError(`${what}.${k}.${l} is not a list of strings`);
      }
      if (f.minKernel !== undefined && f.minKernel !== null) kernelVersion(String(f.minKernel), `${what}.${k}`);
    }
  });
  return o as unknown as SeccompProfile;
}

export interface ResolveOptions {
  /** The container's capabilities (its bounding set), `CAP_` names. */
  capabilities: readonly string[];
  /** Node's process.arch of the host (default: this process's). */
  arch?: string;
  /** The host kernel's release (default: os.release()). */
  kernel?: string;
}

/** The profile as it applies to one container (moby's setupSeccomp), names not yet mapped to numbers. */
export function resolveProfile(p: SeccompProfile, o: ResolveOptions): ResolvedProfile {
  const host = HOST_ARCH[o.arch ?? process.arch];
  if (!host) throw new SeccompProfileError(`no seccomp support for the ${o.arch ?? process.arch} architecture`);
  const kernel = kernelVersion(o.kernel ?? release(), 'kernel');
  if (p.architectures?.length && p.archMap?.length) throw new SeccompProfileError("use either 'architectures' or 'archMap'");
  let arches = [...(p.architectures ?? [])];
  for (const m of p.archMap ?? []) {
    if (m.architecture === host.native) arches.push(m.architecture, ...(m.subArchitectures ?? []));
  }
  for (const a of arches) if (!ARCHES.includes(a)) throw new SeccompProfileError(`${JSON.stringify(a)} is not a valid architecture`);
  for (const f of p.flags ?? []) if (!FLAGS.includes(f)) throw new SeccompProfileError(`${JSON.stringify(f)} is not a valid flag`);
  arches = [...new Set(arches.length ? arches : [host.native])];
  const defaultAction = actionValue(p.defaultAction, p.defaultErrnoRet, 'defaultAction');
  const caps = new Set(o.capabilities);
  const rules: ResolvedRule[] = [];
  (p.syscalls ?? []).forEach((s, i) => {
    const what = `syscalls[${i}]`;
    if (s.name && s.names?.length) throw new SeccompProfileError(`${what}: use either 'name' or 'names'`);
    const ex = s.excludes;
    if (ex) {
      if (ex.arches?.includes(host.goarch)) return;
      if (ex.caps?.some((c) => caps.has(c))) return;
      if (ex.minKernel && atLeast(kernel, kernelVersion(ex.minKernel, what))) return;
    }
    const inc = s.includes;
    if (inc) {
      if (inc.arches?.length && !inc.arches.includes(host.goarch)) return;
      if (inc.caps?.length && !inc.caps.every((c) => caps.has(c))) return;
      if (inc.minKernel && !atLeast(kernel, kernelVersion(inc.minKernel, what))) return;
    }
    const action = actionValue(s.action, s.errnoRet, what);
    const args = (s.args ?? []).map((a) => ({ index: a.index, value: BigInt(a.value ?? 0), valueTwo: BigInt(a.valueTwo ?? 0), op: a.op }));
    // runc: several conditions on one argument are alternatives (one rule each), otherwise all must hold.
    const perIndex = new Map<number, number>();
    for (const a of args) perIndex.set(a.index, (perIndex.get(a.index) ?? 0) + 1);
    const alternatives = [...perIndex.values()].some((n) => n > 1) ? args.map((a) => [a]) : [args];
    for (const name of s.name ? [s.name] : (s.names ?? [])) {
      for (const alt of alternatives) {
        rules.push({ name, action, actionName: s.action, ...(typeof s.errnoRet === 'number' ? { errnoRet: s.errnoRet } : {}), args: alt });
      }
    }
  });
  return {
    defaultAction,
    defaultActionName: p.defaultAction,
    ...(typeof p.defaultErrnoRet === 'number' ? { defaultErrnoRet: p.defaultErrnoRet } : {}),
    flags: [...(p.flags ?? [])],
    arches,
    rules,
  };
}

/**
 * The resolved profile in the runtime-spec's form (`linux.seccomp` of config.json, which has no
 * includes or excludes): what runc applies for this container.
 */
export function toRuntimeSpec(r: ResolvedProfile): object {
  return {
    defaultAction: r.defaultActionName,
    ...(r.defaultErrnoRet !== undefined ? { defaultErrnoRet: r.defaultErrnoRet } : {}),
    architectures: r.arches,
    ...(r.flags.length ? { flags: r.flags } : {}),
    syscalls: merged(r.rules),
  };
}

/** Rules in the runtime-spec's form, neighbours with the same action and no arguments sharing one entry. */
function merged(rules: ResolvedRule[]): object[] {
  const out: { names: string[]; action: string; errnoRet?: number; args?: object[] }[] = [];
  for (const x of rules) {
    const last = out.at(-1);
    if (x.args.length === 0 && last && !last.args && last.action === x.actionName && last.errnoRet === x.errnoRet) {
      last.names.push(x.name);
      continue;
    }
    out.push({
      names: [x.name],
      action: x.actionName,
      ...(x.errnoRet !== undefined ? { errnoRet: x.errnoRet } : {}),
      ...(x.args.length
        ? { args: x.args.map((a) => ({ index: a.index, value: Number(a.value), ...(a.valueTwo ? { valueTwo: Number(a.valueTwo) } : {}), op: a.op })) }
        : {}),
    });
  }
  return out;
}
