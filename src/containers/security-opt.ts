/**
 * `run --security-opt`, read as Docker reads it (`key=value`, or the older `key:value`). What maps
 * onto the sandbox is accepted: `no-new-privileges[=bool]` (the kernel's no_new_privs, off unless
 * asked, as in Docker), `seccomp=unconfined` (no syscall filter), `seccomp=PROFILE.json` (a
 * profile in Docker's format, read and checked here, as the docker client reads it) and
 * `systempaths=unconfined` (no masked or read-only /proc and /sys paths). AppArmor and SELinux
 * labels have nothing to map onto and are refused in one line.
 */
import { readFileSync } from 'node:fs';
import { fromSystemError, ImgbuildError, InvalidArgumentError } from '../errors.js';
import { parseProfile, type SeccompProfile } from '../sandbox/seccomp/profile.js';
import { parseBool } from '../strconv.js';

export interface SecurityOptions {
  /** Set no_new_privs for the container's processes (exec'd ones included). */
  noNewPrivileges: boolean;
  /** The syscall filter: Docker's default (true), none (false) or a profile of the user's. */
  seccomp: boolean | SeccompProfile;
  /** Docker's masked and read-only paths under /proc and /sys. */
  systemPaths: boolean;
}

export const DEFAULT_SECURITY: Readonly<SecurityOptions> = { noNewPrivileges: false, seccomp: true, systemPaths: true };

const ACCEPTED = 'no-new-privileges[=true|false], seccomp=unconfined, seccomp=PROFILE.json or systempaths=unconfined';

/** Parses every `--security-opt` in order (a later one wins, as in Docker). */
export function parseSecurityOpts(opts: readonly string[]): SecurityOptions {
  const out: SecurityOptions = { ...DEFAULT_SECURITY };
  for (const opt of opts) {
    let sep = opt.indexOf('=');
    if (sep < 0 && opt !== 'no-new-privileges') sep = opt.indexOf(':');
    const key = sep < 0 ? opt : opt.slice(0, sep);
    const value = sep < 0 ? undefined : opt.slice(sep + 1);
    const invalid = (why: string): InvalidArgumentError => new InvalidArgumentError(`invalid --security-opt ${JSON.stringify(opt)}: ${why}`);
    const unsupported = (why: string): ImgbuildError => new ImgbuildError('NOT_IMPLEMENTED', `--security-opt ${JSON.stringify(opt)}: ${why}`);
    switch (key) {
      case 'no-new-privileges': {
        const b = value === undefined ? true : parseBool(value);
        if (b === undefined) throw invalid('expected no-new-privileges, no-new-privileges=true or no-new-privileges=false');
        out.noNewPrivileges = b;
        break;
      }
      case 'seccomp':
        if (value === 'unconfined') out.seccomp = false;
        else if (value) out.seccomp = readProfile(value);
        else throw invalid(`expected ${ACCEPTED}`);
        break;
      case 'systempaths':
        if (value !== 'unconfined') throw invalid('expected systempaths=unconfined');
        out.systemPaths = false;
        break;
      case 'apparmor':
        throw unsupported('AppArmor is not supported');
      case 'label':
        throw unsupported('SELinux labels are not supported');
      default:
        throw invalid(`expected ${ACCEPTED}`);
    }
  }
  return out;
}

/** `seccomp=FILE`: the profile's JSON, checked as it is read (docker reads it on the client too). */
function readProfile(path: string): SeccompProfile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const err = fromSystemError(e);
    throw new InvalidArgumentError(`--security-opt seccomp=${path}: ${err?.message ?? (e as Error).message}`, { cause: e });
  }
  try {
    return parseProfile(text);
  } catch (e) {
    throw new InvalidArgumentError(`--security-opt seccomp=${path}: ${(e as Error).message}`, { cause: e });
  }
}
