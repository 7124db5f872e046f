/**
 * `--change` instructions (as `docker import` and `docker commit` take them) applied to a
 * container config. Pure: no I/O.
 */
import type { ContainerConfig } from './types.js';
import { InvalidArgumentError } from '../errors.js';

/** Splits Dockerfile-style words (`k=v "a b" 'c'`), removing quotes and backslash escapes. */
function words(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let any = false;
  let q: string | undefined;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (q) {
      if (ch === q) q = undefined;
      else if (ch === '\\' && q === '"' && i + 1 < s.length) cur += s[++i];
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      q = ch;
      any = true;
    } else if (ch === '\\' && i + 1 < s.length) {
      cur += s[++i];
      any = true;
    } else if (/\s/.test(ch)) {
      if (any || cur) out.push(cur);
      cur = '';
      any = false;
    } else {
      cur += ch;
      any = true;
    }
  }
  if (q) throw new InvalidArgumentError(`unterminated quote in ${JSON.stringify(s)}`);
  if (any || cur) out.push(cur);
  return out;
}

function jsonArray(rest: string): string[] | undefined {
  if (!rest.trimStart().startsWith('[')) return undefined;
  try {
    const v = JSON.parse(rest) as unknown;
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  } catch {
    // not JSON: shell form
  }
  return undefined;
}

function keyValues(kw: string, rest: string): [string, string][] {
  const ws = words(rest);
  if (ws.length === 0) throw new InvalidArgumentError(`${kw} needs at least one argument`);
  if (!ws[0]!.includes('=')) {
    // legacy `ENV key value with spaces`
    const m = /^\s*(\S+)\s+([\s\S]*)$/.exec(rest);
    if (!m) throw new InvalidArgumentError(`${kw} ${rest}: expected key=value or "key value"`);
    return [[m[1]!, m[2]!.trim()]];
  }
  return ws.map((w) => {
    const i = w.indexOf('=');
    if (i <= 0) throw new InvalidArgumentError(`${kw}: ${JSON.stringify(w)} is not key=value`);
    return [w.slice(0, i), w.slice(i + 1)];
  });
}

/**
 * Applies Dockerfile instructions to a container config, as `docker import/commit --change` does:
 * CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR, STOPSIGNAL. Returns a new object.
 */
export function applyConfigChanges(base: ContainerConfig | undefined, changes: string[]): ContainerConfig {
  const c: ContainerConfig = structuredClone(base ?? {});
  for (const change of changes) {
    const m = /^\s*(\w+)\s*([\s\S]*)$/.exec(change);
    if (!m) throw new InvalidArgumentError(`invalid change ${JSON.stringify(change)}`);
    const kw = m[1]!.toUpperCase();
    const rest = m[2]!.trim();
    switch (kw) {
      case 'CMD':
      case 'ENTRYPOINT': {
        const v = jsonArray(rest) ?? (rest === '' ? [] : ['/bin/sh', '-c', rest]);
        if (kw === 'CMD') c.Cmd = v;
        else {
          c.Entrypoint = v;
          // As in a Dockerfile, a new ENTRYPOINT resets an inherited CMD.
          if (!changes.some((x) => /^\s*cmd\b/i.test(x))) c.Cmd = null;
        }
        break;
      }
      case 'ENV': {
        const env = [...(c.Env ?? [])];
        for (const [k, v] of keyValues(kw, rest)) {
          const i = env.findIndex((e) => e.split('=')[0] === k);
          if (i >= 0) env[i] = `${k}=${v}`;
          else env.push(`${k}=${v}`);
        }
        c.Env = env;
        break;
      }
      case 'LABEL':
        c.Labels = { ...(c.Labels ?? {}), ...Object.fromEntries(keyValues(kw, rest)) };
        break;
      case 'EXPOSE': {
        const ports = { ...(c.ExposedPorts ?? {}) };
        for (const p of words(rest)) {
          if (!/^\d+(-\d+)?(\/(tcp|udp|sctp))?$/i.test(p)) throw new InvalidArgumentError(`EXPOSE: invalid port ${JSON.stringify(p)}`);
          ports[p.includes('/') ? p.toLowerCase() : `${p}/tcp`] = {};
        }
        c.ExposedPorts = ports;
        break;
      }
      case 'VOLUME': {
        const vols = { ...(c.Volumes ?? {}) };
        for (const v of jsonArray(rest) ?? words(rest)) vols[v] = {};
        c.Volumes = vols;
        break;
      }
      case 'USER':
        c.User = rest;
        break;
      case 'WORKDIR':
        c.WorkingDir = rest.startsWith('/') ? rest : `${(c.WorkingDir ?? '/').replace(/\/$/, '')}/${rest}`;
        break;
      case 'STOPSIGNAL':
        c.StopSignal = rest;
        break;
      case 'ONBUILD':
        c.OnBuild = [...(c.OnBuild ?? []), rest];
        break;
      default:
        throw new InvalidArgumentError(`unsupported change instruction ${JSON.stringify(m[1])}: use CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR or STOPSIGNAL`);
    }
  }
  return c;
}
