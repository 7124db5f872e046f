/**
 * `RUN --mount=...` values (buildkit `instructions/commands_runmount.go`): the CSV fields, their
 * aliases, the keys each mount type takes, and the defaults buildkit gives them.
 */
import type { CacheSharing, RunMount } from './instructions.js';
import { suggestWithin } from './flags.js';

/** Splits one `--mount` value: comma-separated key[=value] fields with CSV-style double quotes. */
function csvFields(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inQ = false;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (inQ) {
      if (ch === '"' && s[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') inQ = false;
      else cur += ch;
    } else if (ch === '"' && cur === '') inQ = true;
    else if (ch === ',') {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (inQ) throw new Error(`unterminated quote in ${JSON.stringify(s)}`);
  out.push(cur);
  return out;
}

function parseBoolWord(v: string | undefined, key: string): boolean {
  if (v === undefined) return true;
  const l = v.toLowerCase();
  if (l === 'true' || l === '1') return true;
  if (l === 'false' || l === '0') return false;
  throw new Error(`invalid value for ${key}: ${v}`);
}

function parseNumber(v: string | undefined, key: string, base: 8 | 10): number {
  if (v === undefined) throw new Error(`${key} needs a value`);
  const re = base === 8 ? /^0?[0-7]+$/ : /^\d+$/;
  if (!re.test(v)) throw new Error(`invalid ${key} ${JSON.stringify(v)}`);
  return Number.parseInt(v, base);
}

/** Parses a size like `64m`, `1g`, `4096` (bytes) as buildkit's tmpfs size option. */
function parseSize(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgtp]?)i?b?$/i.exec(v);
  if (!m) throw new Error(`invalid size ${JSON.stringify(v)}`);
  const mult: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };
  return Math.round(Number(m[1]) * mult[m[2]!.toLowerCase()]!);
}

const MOUNT_KEYS: Record<string, ReadonlySet<string>> = {
  bind: new Set(['target', 'source', 'from', 'readonly', 'readwrite']),
  cache: new Set(['target', 'source', 'from', 'readonly', 'readwrite', 'id', 'sharing', 'mode', 'uid', 'gid']),
  tmpfs: new Set(['target', 'size']),
  secret: new Set(['target', 'source', 'id', 'required', 'mode', 'uid', 'gid', 'env']),
  ssh: new Set(['target', 'id', 'required', 'mode', 'uid', 'gid']),
};
const KEY_ALIASES: Record<string, string> = {
  dst: 'target',
  destination: 'target',
  src: 'source',
  ro: 'readonly',
  rw: 'readwrite',
};

/** Options whose values are words (paths, names), usable before their variables are known. */
const WORD_KEYS = new Set(['target', 'source', 'from', 'id', 'env']);

const ALL_KEYS = [...new Set([...Object.values(MOUNT_KEYS).flatMap((k) => [...k]), 'type', ...Object.keys(KEY_ALIASES)])];

/** BuildKit's hint: the closest word within two edits. */
function hint(word: string, names: readonly string[]): string {
  const s = suggestWithin(word.toLowerCase(), names, 2);
  return s ? ` (did you mean ${s}?)` : '';
}

/**
 * Parses one `RUN --mount=...` value into a typed mount (buildkit `parseMount`). Values are
 * passed through `expand` first when it is given. Without it, a value holding a variable cannot
 * be read yet: such a mount is parsed only as far as it can be and keeps its text in `spec`,
 * which dispatch parses again with the stage's variables (BuildKit expands every option there).
 */
export function parseMount(value: string, expand?: (word: string) => string): RunMount {
  const fields = csvFields(value);
  const deferred = expand === undefined && value.includes('$');
  let type = 'bind';
  const kv = new Map<string, string | undefined>();
  const fieldOf = new Map<string, string>();
  for (const field of fields) {
    const f = field.trim();
    if (f === '') continue;
    const eq = f.indexOf('=');
    const rawKey = (eq < 0 ? f : f.slice(0, eq)).toLowerCase();
    let v = eq < 0 ? undefined : f.slice(eq + 1);
    const key = KEY_ALIASES[rawKey] ?? rawKey;
    if (v !== undefined && expand) v = expand(v);
    // Words keep their text (expandInstruction and the stage graph expand them); a value that
    // must be read (a type, a number, a flag) waits for dispatch.
    if (deferred && !WORD_KEYS.has(key) && v?.includes('$')) continue;
    if (key === 'type') {
      if (v === undefined || !(v in MOUNT_KEYS)) throw new Error(`unsupported mount type ${JSON.stringify(v ?? '')}${hint(v ?? '', Object.keys(MOUNT_KEYS))}`);
      type = v;
      continue;
    }
    if (kv.has(key)) throw new Error(`duplicate mount option ${key}`);
    kv.set(key, v);
    fieldOf.set(key, f);
  }
  const allowed = MOUNT_KEYS[type]!;
  for (const k of kv.keys()) {
    if (!ALL_KEYS.includes(k)) throw new Error(`unexpected key '${k}' in '${fieldOf.get(k) ?? k}'${hint(k, ALL_KEYS)}`);
    if (!allowed.has(k) && !deferred) throw new Error(`unexpected key '${k}' for mount type ${type}`);
  }
  const m = typedMount(type, kv);
  return deferred ? { ...m, spec: value } : m;
}

/** A mount left for dispatch (see parseMount) parsed with the stage's variables; others as they are. */
export function resolveDeferredMount(m: RunMount, expand: (word: string) => string): RunMount {
  if (m.spec === undefined) return m;
  try {
    return parseMount(m.spec, expand);
  } catch (e) {
    throw new Error(`invalid --mount=${m.spec}: ${(e as Error).message}`);
  }
}

function typedMount(type: string, kv: Map<string, string | undefined>): RunMount {
  const str = (k: string): string | undefined => {
    if (!kv.has(k)) return undefined;
    const v = kv.get(k);
    if (v === undefined) throw new Error(`mount option ${k} needs a value`);
    return v;
  };
  // No target is WORKDIR (BuildKit resolves it at dispatch, refusing only `/`): `--mount=ro` binds the context there.
  const target = str('target') ?? '';
  const readonly = (): boolean => {
    if (kv.has('readonly') && kv.has('readwrite')) throw new Error('readonly and readwrite are mutually exclusive');
    if (kv.has('readwrite')) return !parseBoolWord(kv.get('readwrite'), 'readwrite');
    if (kv.has('readonly')) return parseBoolWord(kv.get('readonly'), 'readonly');
    return type === 'bind';
  };
  const opt = <T extends object>(o: T, k: string, v: unknown): T => {
    if (v !== undefined) (o as Record<string, unknown>)[k] = v;
    return o;
  };
  switch (type) {
    case 'bind':
    case 'cache': {
      if (type === 'bind') {
        const m: RunMount = { type: 'bind', target, readonly: readonly() };
        opt(m, 'from', str('from'));
        opt(m, 'source', str('source'));
        return m;
      }
      const sharing = (str('sharing') ?? 'shared') as CacheSharing;
      if (!['shared', 'private', 'locked'].includes(sharing)) throw new Error(`unsupported sharing value ${JSON.stringify(sharing)}`);
      const m: RunMount = { type: 'cache', target, readonly: readonly(), sharing };
      opt(m, 'id', str('id'));
      opt(m, 'from', str('from'));
      opt(m, 'source', str('source'));
      if (kv.has('mode')) m.mode = parseNumber(kv.get('mode'), 'mode', 8);
      if (kv.has('uid')) m.uid = parseNumber(kv.get('uid'), 'uid', 10);
      if (kv.has('gid')) m.gid = parseNumber(kv.get('gid'), 'gid', 10);
      return m;
    }
    case 'tmpfs': {
      const m: RunMount = { type: 'tmpfs', target };
      const size = str('size');
      if (size !== undefined) m.size = parseSize(size);
      return m;
    }
    default: {
      // A secret's `source` names it too, and wins over `id` (BuildKit dispatchSecret).
      const id = (type === 'secret' ? str('source') : undefined) ?? str('id');
      const env = type === 'secret' ? str('env') : undefined;
      let tgt = target || undefined;
      let theId = id;
      // A secret without an id is named by its target; an ssh mount's id is `default` (BuildKit).
      if (!theId && tgt && type === 'secret') theId = tgt.split('/').filter(Boolean).pop();
      if (type === 'secret' && !tgt && env === undefined) {
        if (!theId) throw new Error('secret mount requires an id or a target');
        tgt = `/run/secrets/${theId}`;
      }
      // The first ssh mount's socket; dispatch numbers the others' (BuildKit's llb exec, sshTargets).
      if (type === 'ssh' && !tgt) tgt = '/run/buildkit/ssh_agent.0';
      if (type === 'ssh' && !theId) theId = 'default';
      const common = {
        required: kv.has('required') ? parseBoolWord(kv.get('required'), 'required') : false,
        mode: kv.has('mode') ? parseNumber(kv.get('mode'), 'mode', 8) : type === 'secret' ? 0o400 : 0o600,
        uid: kv.has('uid') ? parseNumber(kv.get('uid'), 'uid', 10) : 0,
        gid: kv.has('gid') ? parseNumber(kv.get('gid'), 'gid', 10) : 0,
      };
      const m: RunMount = type === 'secret' ? { type: 'secret', ...common } : { type: 'ssh', ...common };
      opt(m, 'id', theId);
      opt(m, 'target', tgt);
      if (type === 'secret') opt(m, 'env', env);
      return m;
    }
  }
}
