/**
 * `run --security-opt`, read as Docker reads it (`key=value`, or the older `key:value`). What maps
 * onto the sandbox is accepted: `no-new-privileges[=bool]` (the kernel's no_new_privs, off unless
 * asked, as in Docker), `seccomp=unconfined` (no default syscall filter) and
 * `systempaths=unconfined` (no masked or read-only /proc and /sys paths). Seccomp profiles,
 * AppArmor and SELinux labels have nothing to map onto and are refused in one line.
 */
import { ImgbuildError, InvalidArgumentError } from '../errors.js';

export interface SecurityOptions {
  /** Set no_new_privs for the container's processes (exec'd ones included). */
  noNewPrivileges: boolean;
  /** The default syscall filter. */
  seccomp: boolean;
  /** Docker's masked and read-only paths under /proc and /sys. */
  systemPaths: boolean;
}

export const DEFAULT_SECURITY: Readonly<SecurityOptions> = { noNewPrivileges: false, seccomp: true, systemPaths: true };

/** Go's strconv.ParseBool, which Docker uses for `no-new-privileges=`. */
const BOOLS: Readonly<Record<string, boolean>> = {
  1: true, t: true, T: true, true: true, TRUE: true, True: true,
  0: false, f: false, F: false, false: false, FALSE: false, False: false,
};

const ACCEPTED = 'no-new-privileges[=true|false], seccomp=unconfined or systempaths=unconfined';

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
        const b = value === undefined ? true : BOOLS[value];
        if (b === undefined) throw invalid('expected no-new-privileges, no-new-privileges=true or no-new-privileges=false');
        out.noNewPrivileges = b;
        break;
      }
      case 'seccomp':
        if (value === 'unconfined') out.seccomp = false;
        else if (value) throw unsupported('seccomp profiles are not supported (seccomp=unconfined turns the default filter off)');
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
