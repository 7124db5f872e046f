/**
 * Images as containers see them: which ones containers use, and removing (`rmi`) or pruning the
 * others by Docker's rules. An image a container was created from stays while the container does.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidReferenceError } from '../image/errors.js';
import { imageId } from '../image/model.js';
import { familiarReference, formatReference, parseReference } from '../image/reference.js';
import type { Digest } from '../image/digest.js';
import type { Descriptor } from '../image/types.js';
import { ImageNotFoundError } from '../store/errors.js';
import { findImage, listImages, loadImage } from '../store/images.js';
import type { OciStore } from '../store/store.js';
import { ImageConflictError, ImageInUseError } from './errors.js';
import { containersDir, files } from './record.js';
import { emitEvents, type EmitEvent } from '../store/events.js';
import { dropRepoDigests } from '../store/repo-digests.js';

/**
 * Manifest digest → ids of the containers created from it: every container directory whose
 * state.json names an image, complete or not (a creation names its image when it reserves its
 * name, before the layers are unpacked).
 */
export async function imageUsers(root: string): Promise<Map<string, string[]>> {
  const users = new Map<string, string[]>();
  let names: string[];
  try {
    names = await readdir(containersDir(root));
  } catch {
    return users;
  }
  for (const name of names) {
    let state: { image?: unknown; id?: unknown };
    try {
      state = JSON.parse(await readFile(join(containersDir(root), name, files.state), 'utf8')) as typeof state;
    } catch {
      continue;
    }
    if (typeof state.image !== 'string') continue;
    const list = users.get(state.image) ?? [];
    list.push(typeof state.id === 'string' ? state.id : name);
    users.set(state.image, list);
  }
  return users;
}

/** What `rmi` did for one operand: the names it removed (full references), the image it deleted. */
export interface ImageRemoval {
  input: string;
  untagged: string[];
  /** The image id, when the image itself went. */
  deleted?: string;
  /** Why nothing (more) was done for this operand. */
  error?: Error;
  /** The id of the image the names were removed from. */
  untaggedId?: string;
}

/** Docker's events for a removal: `untag` per name, then `delete` once the image is gone. */
function imageEvents(untagged: readonly string[], deleted: string | undefined, id: string | undefined): EmitEvent[] {
  const of = id ?? deleted ?? '';
  return [
    ...untagged.map((ref): EmitEvent => ({ type: 'image', action: 'untag', id: of, attributes: { name: display(ref) } })),
    ...(deleted !== undefined ? [{ type: 'image' as const, action: 'delete', id: deleted, attributes: { name: deleted } }] : []),
  ];
}

const display = (ref: string): string => familiarReference(parseReference(ref));

function refNames(removed: Descriptor[]): string[] {
  const out: string[] = [];
  for (const r of removed) {
    const ref = r.annotations?.['io.containerd.image.name'] ?? r.annotations?.['org.opencontainers.image.ref.name'];
    if (ref) out.push(ref);
  }
  return out;
}

/**
 * `rmi`: removes each image's tag, and the image once its last tag is gone, then the blobs no
 * longer referenced. An id naming several tags needs `force`; so does an image a container was
 * created from, which is then only untagged (kept as dangling while the container needs it).
 * Every operand is tried; the failures are in the results.
 */
export async function removeImages(store: OciStore, inputs: readonly string[], o: { force?: boolean } = {}): Promise<ImageRemoval[]> {
  const force = Boolean(o.force);
  const users = await imageUsers(store.root);
  const results: ImageRemoval[] = [];
  let deletedAny = false;

  const userOf = async (digest: string): Promise<string | undefined> => {
    const direct = users.get(digest)?.[0];
    if (direct) return direct;
    // A container records the platform manifest; the index entry leads to it.
    if (users.size === 0) return undefined;
    const entry = (await store.list()).find((e) => e.descriptor.digest === digest);
    if (!entry) return undefined;
    const img = await loadImage(store, entry.descriptor).catch(() => undefined);
    return img ? users.get(img.descriptor.digest)?.[0] : undefined;
  };

  const deleteImage = async (r: ImageRemoval, digest: string, id: string, label: string): Promise<void> => {
    const user = await userOf(digest);
    if (user !== undefined) {
      if (!force) throw new ImageInUseError(label, user, id);
      // Forced: drop the names but keep the image as dangling while a container needs it.
      const removed = await store.removeManifest(digest as Digest);
      r.untagged.push(...refNames(removed));
      const first = removed[0];
      if (first) await store.keepUntagged(first);
      return;
    }
    const removed = await store.removeManifest(digest as Digest);
    r.untagged.push(...refNames(removed));
    r.deleted = id;
    deletedAny = true;
  };

  for (const input of inputs) {
    const r: ImageRemoval = { input, untagged: [] };
    results.push(r);
    try {
      let full: string | undefined;
      try {
        const ref = parseReference(input);
        if (!ref.digest) full = formatReference(ref);
      } catch (e) {
        if (!(e instanceof InvalidReferenceError)) throw e;
      }
      const entries = await store.list();
      const byTag = full !== undefined ? entries.find((e) => e.ref === full) : undefined;
      if (byTag && full !== undefined) {
        const digest = byTag.descriptor.digest;
        const others = entries.filter((e) => e.descriptor.digest === digest && e.ref !== undefined && e.ref !== full);
        const img = await loadImage(store, byTag.descriptor).catch(() => undefined);
        if (img) r.untaggedId = imageId(img);
        if (others.length > 0) {
          await store.untag(full);
          r.untagged.push(full);
          continue;
        }
        await deleteImage(r, digest, img ? imageId(img) : digest, display(full));
        continue;
      }
      const img = await findImage(store, input);
      const top = img.indexDescriptor ?? img.descriptor;
      const tagged = entries.filter((e) => e.descriptor.digest === top.digest && e.ref !== undefined);
      if (tagged.length > 1 && !force) {
        throw new ImageConflictError(input, `image is referenced in multiple repositories (${tagged.map((e) => display(e.ref!)).join(', ')})`);
      }
      if (!entries.some((e) => e.descriptor.digest === top.digest)) throw new ImageNotFoundError(input);
      r.untaggedId = imageId(img);
      await deleteImage(r, top.digest, imageId(img), input);
    } catch (e) {
      r.error = e as Error;
    }
  }
  const deleted = results.flatMap((r) => (r.deleted !== undefined ? [r.deleted] : []));
  await emitEvents(store.root, results.flatMap((r) => imageEvents(r.untagged, r.deleted, r.untaggedId)));
  await dropRepoDigests(store.root, deleted).catch(() => {});
  if (deletedAny) await store.gc();
  return results;
}

/** One image `pruneImages` removed: the name it untagged and the id it deleted (once per id). */
export interface PrunedImage {
  untagged?: string;
  deleted?: string;
}

/**
 * The image part of `prune`: dangling images (with `all`, every image) that no container was
 * created from. Blobs are left to the store's gc.
 */
export async function pruneImages(store: OciStore, o: { all?: boolean } = {}): Promise<PrunedImage[]> {
  const users = await imageUsers(store.root);
  const out: PrunedImage[] = [];
  const gone = new Set<string>();
  for (const li of await listImages(store)) {
    const { entry, image } = li;
    if (entry.ref !== undefined && !o.all) continue;
    const used = users.has(entry.descriptor.digest) || (image !== undefined && users.has(image.descriptor.digest));
    if (used) continue;
    const p: PrunedImage = {};
    if (entry.ref !== undefined) {
      await store.untag(entry.ref);
      p.untagged = entry.ref;
    } else {
      await store.removeManifest(entry.descriptor.digest);
    }
    const id = image ? imageId(image) : entry.descriptor.digest;
    if (!gone.has(id)) p.deleted = id;
    gone.add(id);
    out.push(p);
  }
  await emitEvents(store.root, out.flatMap((p) => imageEvents(p.untagged !== undefined ? [p.untagged] : [], p.deleted, p.deleted)));
  await dropRepoDigests(store.root, gone).catch(() => {});
  return out;
}
