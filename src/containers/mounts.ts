/**
 * `-v` and `--mount` as Docker reads them (docker/cli's opts/mount.go, then moby's Linux mount
 * parser): `-v /host:/ctr[:mode]` is a bind, `-v name:/ctr[:mode]` a named volume (made on first
 * use), `-v /ctr` an anonymous one; `--mount type=bind|volume|tmpfs,...` with Docker's keys. The
 * errors are Docker's texts. Nothing here touches the volume store.
 */
import { posix, resolve } from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import { parseBool } from '../strconv.js';

export type MountType = 'bind' | 'volume' | 'tmpfs';

/** One mount a container asks for, from `-v`, `--mount` or an image's VOLUME. */
export interface MountRequest {
  type: MountType;
  /** bind: the host path; volume: the name ('' for an anonymous volume); tmpfs: ''. */
  source: string;
  destination: string;
  readOnly: boolean;
  /** Docker's Mode as `inspect` shows it: the `-v` mode as given, '' otherwise. */
  mode: string;
  /** bind: rprivate unless asked otherwise. */
  propagation?: string;
  /** volume: do not copy the image's content into a new, empty volume. */
  noCopy?: boolean;
  /** bind (`-v src:dst:idmap`, podman's): the host files' owners shown through the container's user namespace. */
  idmap?: boolean;
  /** volume: `volume-opt=` and `volume-label=` of `--mount`, for a volume it makes. */
  volumeOptions?: Record<string, string>;
  volumeLabels?: Record<string, string>;
  volumeDriver?: string;
  /** tmpfs: the mount's options (`size=`, `mode=`, `ro`). */
  tmpfsOptions?: string[];
  /** tmpfs of `--mount`: `tmpfs-size` in bytes and `tmpfs-mode`, as given. */
  tmpfs?: { size?: number; mode?: number };
}

/** A `--mount` as Docker's HostConfig.Mounts shows it (`inspect`). */
export function dockerMount(m: MountRequest): Record<string, unknown> {
  return {
    Type: m.type,
    ...(m.source !== '' ? { Source: m.source } : {}),
    Target: m.destination,
    ...(m.readOnly ? { ReadOnly: true } : {}),
    ...(m.type === 'bind' && m.propagation !== 'rprivate' ? { BindOptions: { Propagation: m.propagation } } : {}),
    ...(m.type === 'volume' && (m.noCopy || m.volumeLabels || m.volumeOptions || m.volumeDriver !== undefined)
      ? {
          VolumeOptions: {
            ...(m.noCopy ? { NoCopy: true } : {}),
            ...(m.volumeLabels ? { Labels: m.volumeLabels } : {}),
            ...(m.volumeOptions || m.volumeDriver !== undefined ? { DriverConfig: { ...(m.volumeDriver ? { Name: m.volumeDriver } : {}), ...(m.volumeOptions ? { Options: m.volumeOptions } : {}) } } : {}),
          },
        }
      : {}),
    ...(m.tmpfs ? { TmpfsOptions: { ...(m.tmpfs.size ? { SizeBytes: m.tmpfs.size } : {}), ...(m.tmpfs.mode ? { Mode: m.tmpfs.mode } : {}) } } : {}),
  };
}

/** Go's path.Clean for an absolute path: `/a/../b/` → `/b`. */
export function cleanPath(p: string): string {
  const n = posix.normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

const PROPAGATIONS = new Set(['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave']);
const CONSISTENCY = new Set(['consistent', 'cached', 'delegated']);

/** moby's linuxValidMountMode: at most one of each kind of mode. */
function validMode(mode: string): boolean {
  if (mode === '') return true;
  const counts = new Map<string, number>();
  for (const o of mode.split(',')) {
    // `idmap`: podman's, for a container with a user namespace of its own (--userns=auto).
    const kind = o === 'rw' || o === 'ro' ? 'rw' : o === 'z' || o === 'Z' ? 'label' : PROPAGATIONS.has(o) ? 'prop' : o === 'nocopy' ? 'copy' : CONSISTENCY.has(o) ? 'cons' : o === 'idmap' ? 'idmap' : undefined;
    if (!kind) return false;
    counts.set(kind, (counts.get(kind) ?? 0) + 1);
  }
  return [...counts.values()].every((n) => n <= 1);
}

/** moby's validateMountConfig, with its wording (`invalid mount config for type "bind": ...`). */
function validate(m: MountRequest, o: { bindMustExist: boolean; exists: (p: string) => boolean }): void {
  const fail = (why: string): never => {
    throw new InvalidArgumentError(`invalid mount config for type "${m.type}": ${why}`);
  };
  if (m.destination === '') fail('field Target must not be empty');
  if (cleanPath(m.destination) === '/') fail("invalid specification: destination can't be '/'");
  if (!posix.isAbsolute(m.destination)) fail(`invalid mount path: '${m.destination}' mount path must be absolute`);
  switch (m.type) {
    case 'bind':
      if (m.source === '') fail('field Source must not be empty');
      if (m.propagation !== undefined && !PROPAGATIONS.has(m.propagation)) fail(`invalid propagation mode: ${m.propagation}`);
      if (m.volumeOptions || m.volumeLabels || m.noCopy !== undefined || m.volumeDriver !== undefined) fail('field VolumeOptions must not be specified');
      if (!posix.isAbsolute(m.source)) fail(`invalid mount path: '${m.source}' mount path must be absolute`);
      if (o.bindMustExist && !o.exists(m.source)) fail(`bind source path does not exist: ${m.source}`);
      break;
    case 'volume':
      if (m.propagation !== undefined) fail('field BindOptions must not be specified');
      if (m.readOnly && m.source === '') fail('must not set ReadOnly mode when using anonymous volumes');
      break;
    case 'tmpfs':
      if (m.propagation !== undefined) fail('field BindOptions must not be specified');
      if (m.source !== '') fail('field Source must not be specified');
      break;
    default:
      fail('mount type unknown');
  }
}

/**
 * `-v SPEC` (moby's ParseMountRaw): `/ctr`, `src:/ctr` or `src:/ctr:mode`; a source that is an
 * absolute path (or starts with `.`, made absolute against `cwd` as docker's CLI does) is a bind.
 */
export function parseVolumeFlag(raw: string, cwd: string = process.cwd()): MountRequest {
  const invalid = (): InvalidArgumentError => new InvalidArgumentError(`invalid volume specification: '${raw}'`);
  const arr = raw.split(':');
  if (arr[0] === '' || arr.length > 3) throw invalid();
  let source = '';
  let destination: string;
  let mode = '';
  if (arr.length === 1) destination = arr[0]!;
  else if (arr.length === 2) {
    if (validMode(arr[1]!)) throw invalid(); // a destination and a mode: `/foo:rw`
    [source, destination] = [arr[0]!, arr[1]!];
  } else [source, destination, mode] = [arr[0]!, arr[1]!, arr[2]!];
  if (!validMode(mode)) throw new InvalidArgumentError(`invalid mode: ${mode}`);
  if (source === '.' || source.startsWith('./') || source.startsWith('../')) source = resolve(cwd, source);
  const modes = mode.split(',');
  const type: MountType = posix.isAbsolute(source) ? 'bind' : 'volume';
  const prop = modes.find((x) => PROPAGATIONS.has(x));
  const m: MountRequest = {
    type,
    source: type === 'bind' ? cleanPath(source) : source,
    destination,
    readOnly: modes.includes('ro'),
    // moby gives a named `-v` volume the SELinux mode `z` when none is given (docker's CLI
    // turns an anonymous one into a VOLUME of the container, which gets none).
    mode: type === 'volume' && source !== '' && mode === '' ? 'z' : mode,
    ...(type === 'bind' ? { propagation: prop ?? 'rprivate' } : {}),
    ...(modes.includes('nocopy') ? { noCopy: true } : {}),
    ...(modes.includes('idmap') ? { idmap: true } : {}),
  };
  try {
    if (type === 'volume' && prop) throw new InvalidArgumentError(`invalid mount config for type "volume": field BindOptions must not be specified`);
    if (type === 'volume' && m.idmap) throw new InvalidArgumentError(`invalid mode: idmap applies to bind mounts (a new volume is given to the container's range already)`);
    validate(m, { bindMustExist: false, exists: () => true });
  } catch (e) {
    throw new InvalidArgumentError(`invalid volume specification: '${raw}': ${(e as Error).message}`);
  }
  return { ...m, destination: cleanPath(destination) };
}

/** Splits one CSV record (docker/cli reads `--mount` with encoding/csv): quotes group commas. */
function csvFields(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quoted) {
      if (c === '"' && s[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cur += c;
    } else if (c === '"' && cur === '') quoted = true;
    else if (c === ',') {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  if (quoted) throw new Error('extraneous or missing " in quoted-field');
  out.push(cur);
  return out;
}

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/** go-units' RAMInBytes: `64m`, `1.5g`, `512KiB`, plain bytes. */
function ramInBytes(v: string): number | undefined {
  const m = /^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(v);
  if (!m) return undefined;
  return Math.trunc(Number(m[1]) * UNITS[(m[2] ?? '').toLowerCase()]!);
}

/** moby's ConvertTmpfsOptions: `size=` in the largest unit that divides it, `mode=` in octal. */
function tmpfsSize(bytes: number): string {
  for (const [suffix, d] of [['g', 1024 ** 3], ['m', 1024 ** 2], ['k', 1024]] as const) if (bytes % d === 0) return `${bytes / d}${suffix}`;
  return String(bytes);
}

/**
 * `--mount type=...,src=...,dst=...[,readonly][,volume-opt=k=v][,tmpfs-size=...]` as docker's CLI
 * parses it, then checked as the daemon checks it (a bind's source must exist).
 */
export function parseMountFlag(raw: string, o: { cwd?: string; exists: (p: string) => boolean }): MountRequest {
  const flagError = (why: string): InvalidArgumentError => new InvalidArgumentError(`invalid argument "${raw}" for "--mount" flag: ${why}`);
  let fields: string[];
  try {
    fields = csvFields(raw);
  } catch (e) {
    throw flagError(`parse error on line 1, column ${raw.length}: ${(e as Error).message}`);
  }
  let type = 'volume';
  let source = '';
  let target = '';
  let readOnly = false;
  let propagation: string | undefined;
  let noCopy: boolean | undefined;
  let volumeOptions: Record<string, string> | undefined;
  let volumeLabels: Record<string, string> | undefined;
  let volumeDriver: string | undefined;
  let bindOpts = false;
  let tmpfs: { size?: number; mode?: number } | undefined;
  const setOn = (map: Record<string, string>, v: string): void => {
    const i = v.indexOf('=');
    const k = i < 0 ? v : v.slice(0, i);
    if (k !== '') map[k] = i < 0 ? '' : v.slice(i + 1);
  };
  const bool = (key: string, v: string): boolean => {
    const b = parseBool(v);
    if (b === undefined) throw flagError(key === 'volume-nocopy' ? `invalid value for volume-nocopy: ${v}` : `invalid value for ${key}: ${v}`);
    return b;
  };
  for (const field of fields) {
    const i = field.indexOf('=');
    if (i < 0) {
      if (field === 'readonly' || field === 'ro') readOnly = true;
      else if (field === 'volume-nocopy') noCopy = true;
      else if (field === 'bind-nonrecursive') bindOpts = true;
      else throw flagError(`invalid field '${field}' must be a key=value pair`);
      continue;
    }
    const key = field.slice(0, i);
    const val = field.slice(i + 1);
    switch (key) {
      case 'type':
        type = val.toLowerCase();
        break;
      case 'source':
      case 'src':
        source = val === '.' || val.startsWith('./') ? resolve(o.cwd ?? process.cwd(), val) : val;
        break;
      case 'target':
      case 'dst':
      case 'destination':
        target = val;
        break;
      case 'readonly':
      case 'ro':
        readOnly = bool(key, val);
        break;
      case 'consistency':
        break;
      case 'bind-propagation':
        propagation = val.toLowerCase();
        break;
      case 'bind-nonrecursive':
        bool(key, val);
        bindOpts = true;
        break;
      case 'volume-nocopy':
        noCopy = bool(key, val);
        break;
      case 'volume-label':
        setOn((volumeLabels ??= {}), val);
        break;
      case 'volume-driver':
        volumeDriver = val;
        break;
      case 'volume-opt':
        setOn((volumeOptions ??= {}), val);
        break;
      case 'tmpfs-size': {
        const n = ramInBytes(val);
        if (n === undefined) throw flagError(`invalid value for ${key}: ${val}`);
        (tmpfs ??= {}).size = n;
        break;
      }
      case 'tmpfs-mode': {
        if (!/^[0-7]+$/.test(val) || Number.parseInt(val, 8) > 0xffffffff) throw flagError(`invalid value for ${key}: ${val}`);
        (tmpfs ??= {}).mode = Number.parseInt(val, 8);
        break;
      }
      default:
        throw flagError(`unexpected key '${key}' in '${field}'`);
    }
  }
  if (type === '') throw flagError('type is required');
  if (target === '') throw flagError('target is required');
  const volumeOpts = volumeOptions !== undefined || volumeLabels !== undefined || volumeDriver !== undefined || noCopy !== undefined;
  if (volumeOpts && type !== 'volume') throw flagError(`cannot mix 'volume-*' options with mount type '${type}'`);
  if ((bindOpts || propagation !== undefined) && type !== 'bind') throw flagError(`cannot mix 'bind-*' options with mount type '${type}'`);
  if (tmpfs && type !== 'tmpfs') throw flagError(`cannot mix 'tmpfs-*' options with mount type '${type}'`);
  const m: MountRequest = {
    type: type as MountType,
    source,
    destination: target,
    readOnly,
    mode: '',
    ...(type === 'bind' ? { propagation: propagation ?? 'rprivate' } : {}),
    ...(noCopy !== undefined ? { noCopy } : {}),
    ...(volumeOptions ? { volumeOptions } : {}),
    ...(volumeLabels ? { volumeLabels } : {}),
    ...(volumeDriver !== undefined ? { volumeDriver } : {}),
  };
  if (type === 'tmpfs') {
    if (tmpfs) m.tmpfs = tmpfs;
    m.tmpfsOptions = ['nosuid', 'nodev', 'noexec', ...(readOnly ? ['ro'] : []), ...(tmpfs?.mode ? [`mode=${tmpfs.mode.toString(8)}`] : []), ...(tmpfs?.size ? [`size=${tmpfsSize(tmpfs.size)}`] : [])];
  }
  if (type === 'bind' && propagation !== undefined && !PROPAGATIONS.has(propagation)) {
    throw new InvalidArgumentError(`invalid mount config for type "bind": invalid propagation mode: ${propagation}`);
  }
  validate(m, { bindMustExist: true, exists: o.exists });
  return { ...m, destination: cleanPath(target), ...(type === 'bind' ? { source: cleanPath(source) } : {}) };
}

/** Docker's check that no two mounts share a destination (`Duplicate mount point: /data`). */
export function checkDuplicates(destinations: readonly string[]): void {
  const seen = new Set<string>();
  for (const d of destinations) {
    const n = cleanPath(d);
    if (seen.has(n)) throw new InvalidArgumentError(`Duplicate mount point: ${n}`);
    seen.add(n);
  }
}
