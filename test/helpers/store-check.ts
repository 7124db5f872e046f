/**
 * A consistency checker for a store root, for tests that kill imgbuild at arbitrary moments.
 *
 * `checkStore` checks what a command may see: the layout files parse; every blob's content
 * matches its name (so none is half-written); every index entry's manifest, config and layers are
 * present (an index's present platform manifests too); snapshot metadata parses, every record has
 * its directory (`fs`, plus `work` for an active one; none of `work`/`init` for a committed one),
 * parents exist and are committed, ids are unique and below `nextId`. Leftovers that are invisible
 * by design (an unknown `snapshots/<id>`, `new-*`/`rm-*` dirs, `work`/`init` in a committed
 * snapshot, ingest and temp files) are allowed here: `checkClean` is for after a prune, when no
 * leftover of a dead process may remain.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { mountsUnder } from './tmp.js';

interface Desc {
  digest: string;
  size: number;
  mediaType?: string;
}

async function exists(p: string): Promise<boolean> {
  return lstat(p).then(() => true, () => false);
}

async function sha256File(p: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(p)) h.update(c as Buffer);
  return h.digest('hex');
}

async function readJson(p: string, problems: string[]): Promise<unknown> {
  try {
    return JSON.parse(await readFile(p, 'utf8')) as unknown;
  } catch (e) {
    problems.push(`${p}: ${(e as Error).message}`);
    return undefined;
  }
}

function blobPath(root: string, d: string): string {
  const [alg, hex] = d.split(':');
  return join(root, 'blobs', alg!, hex!);
}

/** Problems of what a command may see in the store at `root` (empty: consistent). */
export async function checkStore(root: string): Promise<string[]> {
  const problems: string[] = [];
  await readJson(join(root, 'oci-layout'), problems);
  await readJson(join(root, 'imgbuild.json'), problems);
  const idx = (await readJson(join(root, 'index.json'), problems)) as { manifests?: Desc[] } | undefined;
  if (idx && !Array.isArray(idx.manifests)) problems.push('index.json: no manifests array');

  // Every blob's content matches its name.
  const blobs = new Set<string>();
  for (const alg of await readdir(join(root, 'blobs')).catch(() => [] as string[])) {
    for (const hex of await readdir(join(root, 'blobs', alg))) {
      blobs.add(`${alg}:${hex}`);
      if (alg === 'sha256' && (await sha256File(join(root, 'blobs', alg, hex))) !== hex) problems.push(`blob ${alg}:${hex}: content does not match its digest`);
    }
  }

  // Every index entry is complete. A build layer kept unwritten (store/lazy.ts) is there when
  // its record names a snapshot directory that exists and the size the descriptor says.
  const need = async (d: Desc, from: string): Promise<boolean> => {
    if (!blobs.has(d.digest)) {
      const [alg, hex] = d.digest.split(':');
      const rec = (await readJson(join(root, 'lazy-layers', alg!, `${hex!}.json`), []).catch(() => undefined)) as { size?: number; dir?: string } | undefined;
      if (rec?.dir !== undefined && (await exists(join(root, rec.dir)))) {
        if (rec.size !== d.size) problems.push(`${from}: lazy layer ${d.digest} has ${rec.size} bytes, descriptor says ${d.size}`);
        return false;
      }
      problems.push(`${from} names missing blob ${d.digest}`);
      return false;
    }
    const st = await stat(blobPath(root, d.digest));
    if (st.size !== d.size) problems.push(`${from}: blob ${d.digest} has ${st.size} bytes, descriptor says ${d.size}`);
    return true;
  };
  const walk = async (d: Desc, from: string, depth: number): Promise<void> => {
    if (!(await need(d, from))) return;
    let doc: { manifests?: Desc[]; config?: Desc; layers?: Desc[] };
    try {
      doc = JSON.parse(await readFile(blobPath(root, d.digest), 'utf8')) as typeof doc;
    } catch (e) {
      problems.push(`${from}: manifest ${d.digest} is not JSON: ${(e as Error).message}`);
      return;
    }
    for (const m of doc.manifests ?? []) if (blobs.has(m.digest) && depth < 4) await walk(m, `${from} > ${m.digest}`, depth + 1);
    if (doc.config) await need(doc.config, `${from} config`);
    for (const l of doc.layers ?? []) await need(l, `${from} layer`);
  };
  for (const m of idx?.manifests ?? []) await walk(m, `index entry ${m.digest}`, 0);

  // Snapshot metadata against the snapshot dirs.
  const overlay = join(root, 'overlay');
  if (await exists(join(overlay, 'metadata.json'))) {
    const doc = (await readJson(join(overlay, 'metadata.json'), problems)) as
      | { nextId: number; snapshots: Record<string, { id: number; kind: string; parent?: string; init?: boolean }> }
      | undefined;
    if (doc) {
      const ids = new Set<number>();
      for (const [key, r] of Object.entries(doc.snapshots)) {
        const dir = join(overlay, 'snapshots', String(r.id));
        if (ids.has(r.id)) problems.push(`snapshot ${key}: id ${r.id} used twice`);
        ids.add(r.id);
        if (r.id >= doc.nextId) problems.push(`snapshot ${key}: id ${r.id} not below nextId ${doc.nextId}`);
        if (!(await exists(join(dir, 'fs')))) problems.push(`snapshot ${key} (${r.kind}): ${dir}/fs missing`);
        if (r.kind === 'active' && !(await exists(join(dir, 'work')))) problems.push(`active snapshot ${key}: work dir missing`);
        if (r.kind === 'active' && r.init && !(await exists(join(dir, 'init')))) problems.push(`active snapshot ${key}: init dir missing`);

        if (r.parent !== undefined) {
          const p = doc.snapshots[r.parent];
          if (!p) problems.push(`snapshot ${key}: parent ${r.parent} missing`);
          else if (p.kind !== 'committed') problems.push(`snapshot ${key}: parent ${r.parent} is ${p.kind}`);
        }
      }
    }
  }
  return problems;
}

/** Mount points at or below `root`. */
export function mountsIn(root: string): Promise<string[]> {
  return mountsUnder(root);
}

/**
 * Problems of a store after `prune` with no imgbuild process running: `checkStore`'s, plus any
 * leftover of a dead process — ingest, lease, lock and temp files, scratch dirs, snapshot dirs the
 * metadata does not know, active snapshots of builds and unpacks, and mounts.
 */
export async function checkClean(root: string): Promise<string[]> {
  const problems = await checkStore(root);
  const list = async (dir: string): Promise<string[]> => readdir(dir).catch(() => [] as string[]);
  for (const n of await list(join(root, 'ingest'))) problems.push(`ingest/${n} left`);
  for (const n of await list(join(root, 'leases'))) problems.push(`leases/${n} left`);
  for (const n of await list(join(root, 'cache', 'build', 'tmp'))) problems.push(`cache/build/tmp/${n} left`);
  const leftover = /\.lock($|\.)|\.tmp$/;
  const dirs = ['', 'lazy-layers/sha256', 'overlay', 'overlay/unpack', 'cache', 'cache/build', 'cache/build/steps', 'cache/compressed', 'cache/mounts', 'remote/sources/sha256'];
  for (const d of dirs) {
    for (const n of await list(join(root, d))) if (leftover.test(n)) problems.push(`${join(d, n)} left`);
  }
  for (const n of await list(join(root, 'overlay'))) {
    if (/^(new-|rm-|probe-)/.test(n)) problems.push(`overlay/${n} left`);
  }
  const meta = (await readJson(join(root, 'overlay', 'metadata.json'), []).catch(() => undefined)) as
    | { snapshots: Record<string, { id: number; kind: string; labels: Record<string, string> }> }
    | undefined;
  const ids = new Set(Object.values(meta?.snapshots ?? {}).map((r) => String(r.id)));
  for (const n of await list(join(root, 'overlay', 'snapshots'))) if (!ids.has(n)) problems.push(`overlay/snapshots/${n} unknown to the metadata`);
  for (const [key, r] of Object.entries(meta?.snapshots ?? {})) {
    if (r.kind !== 'committed') continue;
    for (const sub of ['work', 'init']) if (await exists(join(root, 'overlay', 'snapshots', String(r.id), sub))) problems.push(`committed snapshot ${key}: has ${sub}/`);
  }
  for (const [key, r] of Object.entries(meta?.snapshots ?? {})) {
    if (r.kind !== 'committed' && (/^(build|unpack)-/.test(key) || r.labels['imgbuild.lease'] !== undefined)) problems.push(`${r.kind} snapshot ${key} of a dead process left`);
  }
  for (const m of await mountsIn(root)) problems.push(`mount ${m} left`);
  return problems;
}
