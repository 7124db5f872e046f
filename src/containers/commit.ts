/**
 * `commit`: the container's upper dir → one new layer (diffSnapshot packs the upper dir only, so
 * bind-mounted volumes, tmpfs and the init layer's placeholders are never included) → a new image
 * config (the container's effective config plus `-c` changes) with a history entry → tagged.
 */
import type { OciStore } from '../store/store.js';
import { findImage, writeImage } from '../store/images.js';
import { formatReference, parseReference } from '../image/reference.js';
import type { ContainerConfig, Descriptor, ImageConfig } from '../image/types.js';
import { diffSnapshot } from '../snapshots/diff.js';
import { containerSnapshotter, driverOf } from './snapshotter.js';
import { InvalidArgumentError } from '../errors.js';
import { withFrozen } from './freeze.js';
import { emitContainerEvent } from './events.js';
import { getContainer } from './state.js';
import type { LifecycleOptions } from './types.js';
import { mergeEnv } from './spec.js';

export interface CommitOptions extends LifecycleOptions {
  message?: string;
  author?: string;
  /** Dockerfile instructions: CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, STOPSIGNAL, VOLUME. */
  changes?: string[];
}

function jsonOrShell(rest: string): string[] {
  const t = rest.trim();
  if (t.startsWith('[')) {
    try {
      const v = JSON.parse(t) as unknown;
      if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
    } catch {
      // not JSON: shell form
    }
  }
  return ['/bin/sh', '-c', t];
}

function unquote(s: string): string {
  return s.length >= 2 && ((s.startsWith('"') && s.endsWith('"')) || (s.startsWith("'") && s.endsWith("'"))) ? s.slice(1, -1) : s;
}

/** `K=V K2="v 2"` or the legacy `K V` form. */
function keyValues(rest: string): [string, string][] {
  const t = rest.trim();
  if (!/^[^\s=]+=/.test(t)) {
    const i = t.search(/\s/);
    if (i < 0) throw new InvalidArgumentError(`expected KEY=VALUE in ${JSON.stringify(rest)}`);
    return [[t.slice(0, i), t.slice(i).trim()]];
  }
  const out: [string, string][] = [];
  for (const m of t.matchAll(/([^\s=]+)=("(?:[^"\\]|\\.)*"|'[^']*'|\S*)/g)) out.push([m[1]!, unquote(m[2]!)]);
  return out;
}

export function applyChanges(cfg: ContainerConfig, changes: string[]): ContainerConfig {
  const c: ContainerConfig = { ...cfg };
  for (const ch of changes) {
    const m = /^\s*(\w+)\s+([\s\S]*)$/.exec(ch);
    if (!m) throw new InvalidArgumentError(`invalid --change ${JSON.stringify(ch)}`);
    const kw = m[1]!.toUpperCase();
    const rest = m[2]!;
    switch (kw) {
      case 'CMD':
        c.Cmd = jsonOrShell(rest);
        break;
      case 'ENTRYPOINT':
        c.Entrypoint = jsonOrShell(rest);
        break;
      case 'ENV':
        c.Env = mergeEnv(c.Env ?? [], keyValues(rest).map(([k, v]) => `${k}=${v}`));
        break;
      case 'LABEL':
        c.Labels = { ...(c.Labels ?? {}), ...Object.fromEntries(keyValues(rest)) };
        break;
      case 'WORKDIR':
        c.WorkingDir = rest.trim();
        break;
      case 'USER':
        c.User = rest.trim();
        break;
      case 'STOPSIGNAL':
        c.StopSignal = rest.trim();
        break;
      case 'EXPOSE':
        c.ExposedPorts = { ...(c.ExposedPorts ?? {}) };
        for (const p of rest.trim().split(/\s+/)) c.ExposedPorts[p.includes('/') ? p : `${p}/tcp`] = {};
        break;
      case 'VOLUME':
        c.Volumes = { ...(c.Volumes ?? {}) };
        for (const v of rest.trim().startsWith('[') ? jsonOrShell(rest) : rest.trim().split(/\s+/)) c.Volumes[v] = {};
        break;
      default:
        throw new InvalidArgumentError(`--change ${kw} is not supported (CMD, ENTRYPOINT, ENV, LABEL, WORKDIR, USER, STOPSIGNAL, EXPOSE, VOLUME)`);
    }
  }
  return c;
}

export async function commitContainer(
  store: OciStore,
  nameOrId: string,
  ref: string | undefined,
  o: CommitOptions = {},
): Promise<Descriptor> {
  const root = store.root;
  const rec = await getContainer(root, nameOrId, o);
  const base = await findImage(store, rec.image);
  const sn = await containerSnapshotter(root, driverOf(rec), { signal: o.signal });
  // A running container is frozen while its upper dir is read, so the layer is one moment's state
  // (withFrozen names us as the holder: if we are killed meanwhile, the next reader thaws it).
  const diff = (): ReturnType<typeof diffSnapshot> => diffSnapshot(store, sn, rec.snapshotKey, {
      compression: 'none',
      signal: o.signal,
      ...(rec.hostConfig.idMapping ? { fromHostIds: rec.hostConfig.idMapping } : {}),
    });
  const layer = rec.state.status === 'running' ? await withFrozen(root, rec, o, diff) : await diff();
  // The container's effective config is the base: what `run` changed (env, cmd, workdir, user).
  const { Hostname: _h, ...effective } = rec.config;
  void _h;
  const cfg = applyChanges(effective, o.changes ?? []);
  const created = new Date().toISOString();
  const config: ImageConfig = {
    ...base.config,
    created,
    ...(o.author ? { author: o.author } : {}),
    config: cfg,
    rootfs: { type: 'layers', diff_ids: [...base.config.rootfs.diff_ids, layer.diffId] },
    history: [
      ...(base.config.history ?? []),
      {
        created,
        created_by: [rec.path, ...rec.args].join(' '),
        ...(o.author ? { author: o.author } : {}),
        ...(o.message ? { comment: o.message } : {}),
      },
    ],
  };
  const layerDesc: Descriptor = { mediaType: layer.mediaType, digest: layer.digest, size: layer.size };
  const desc = await writeImage(store, config, [...base.manifest.layers, layerDesc]);
  const full = ref ? formatReference(parseReference(ref)) : undefined;
  if (full) await store.tag(full, desc);
  const id = (JSON.parse((await store.read(desc)).toString('utf8')) as { config: { digest: string } }).config.digest;
  await emitContainerEvent(root, rec, 'commit', { comment: o.message ?? '', imageID: id, ...(full ? { imageRef: full } : {}) });
  return desc;
}
