/**
 * The `local` driver's rules, as moby's volume/local has them: which names a volume may have,
 * which `-o` options it takes (`type`, `device`, `o`; each of type and device needs the other, o
 * needs both), and what a container mounts for a volume. Volumes are never mounted on the host:
 * a plain volume is its `_data` dir bound into the container, `type=tmpfs` a tmpfs made in the
 * container's own mount namespace, `o=bind` the `device` path bound in, so nothing is left mounted
 * whatever process is killed.
 */
import { posix } from 'node:path';
import { ImgbuildError, InvalidArgumentError } from '../errors.js';

export const LOCAL_DRIVER = 'local';
/** The label moby (23+) puts on anonymous volumes; `volume prune` without -a removes only these. */
export const ANONYMOUS_LABEL = 'com.docker.volume.anonymous';

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** A volume name as the local driver accepts it (moby's message, which hints at host paths). */
export function checkVolumeName(name: string): void {
  if (name.length === 1 && /^[a-zA-Z0-9]$/.test(name)) {
    throw new InvalidArgumentError(`create ${name}: volume name is too short, names should be at least two alphanumeric characters`);
  }
  if (!NAME.test(name)) {
    throw new InvalidArgumentError(
      `create ${name}: "${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`,
    );
  }
}

/** Refuses any driver but `local` (moby looks other names up as plugins; there are none here). */
export function checkDriver(name: string, driver: string | undefined): void {
  if (driver !== undefined && driver !== '' && driver !== LOCAL_DRIVER) {
    throw new ImgbuildError('NOT_FOUND', `create ${name}: error looking up volume plugin ${driver}: plugin "${driver}" not found`);
  }
}

const VALID = new Set(['type', 'device', 'o', 'size']);
const REQUIRES: Record<string, string[]> = { device: ['type'], type: ['device'], o: ['device', 'type'] };

/** The local driver's `-o` options, checked as moby checks them, plus what this host can mount. */
export function checkDriverOptions(name: string, opts: Record<string, string>): void {
  for (const k of Object.keys(opts)) if (!VALID.has(k)) throw new InvalidArgumentError(`create ${name}: invalid option: "${k}"`);
  for (const [k, needs] of Object.entries(REQUIRES)) {
    if (opts[k] === undefined) continue;
    for (const n of needs) if (opts[n] === undefined) throw new InvalidArgumentError(`create ${name}: missing required option: "${n}"`);
  }
  if (opts.size !== undefined) throw new ImgbuildError('NOT_IMPLEMENTED', `create ${name}: quota size requested but no quota support`);
  const m = volumeMountOf('/', opts);
  if (m.type === 'bind' && opts.device !== undefined && !posix.isAbsolute(m.source)) {
    throw new InvalidArgumentError(`create ${name}: the device of a bind volume must be an absolute path, not ${JSON.stringify(opts.device)}`);
  }
}

/** What a container mounts for a volume: a bind of `dataDir` or of the device, or a tmpfs. */
export type VolumeMount = { type: 'bind'; source: string } | { type: 'tmpfs'; options: string[] };

export function volumeMountOf(dataDir: string, opts: Record<string, string>): VolumeMount {
  if (opts.type === undefined && opts.device === undefined) return { type: 'bind', source: dataDir };
  const o = (opts.o ?? '').split(',').filter(Boolean);
  if (o.includes('bind') || o.includes('rbind')) return { type: 'bind', source: opts.device ?? '' };
  if (opts.type === 'tmpfs') return { type: 'tmpfs', options: o };
  throw new ImgbuildError('NOT_IMPLEMENTED', `volume type "${opts.type ?? ''}" is not supported: use type=tmpfs, or o=bind with a device path`);
}

/** `KEY=VALUE` (or `KEY`, an empty value) flags into a map, later ones winning. */
export function keyValues(list: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list) {
    const i = kv.indexOf('=');
    const k = i < 0 ? kv : kv.slice(0, i);
    if (k !== '') out[k] = i < 0 ? '' : kv.slice(i + 1);
  }
  return out;
}
