/**
 * Named contexts (`--build-context`, inputs/named-contexts.ts) as the images a FROM, a
 * `COPY --from`, a `RUN --mount from=` or a replaced stage sees, as BuildKit makes them: an image
 * context is that image (pulled when missing); a directory, git or URL context is a rootfs
 * holding its files (a directory's own `.dockerignore` applied, every file owned by root) on an
 * empty image of the build's platform, made as a cached layer step keyed by the files' content.
 * Each is made once per build, when first asked for.
 */
import { mkdir } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { ImgbuildError } from '../../errors.js';
import type { Stage } from '../frontend/instructions.js';
import { loadIgnore, type IgnoreMatcher } from '../context.js';
import { checkoutGit, gitAuthHeader, resolveGit, secretReader } from '../inputs/git.js';
import { fetchUrl } from '../inputs/http.js';
import { findNamedContext, type NamedContext } from '../inputs/named-contexts.js';
import { applyCopy, planCopy, planDigest } from './copy.js';
import { loadBase } from './base-image.js';
import { draftOf, emptyImage, type ImageState } from './image-state.js';
import { layerStep } from './layer-step.js';
import { keyBase, type DispatchEnv, type StageCtx } from './stage.js';

export class NamedContextImages {
  private readonly made = new Map<string, Promise<ImageState>>();

  /** `preloaded`: images of contexts read before the build (OCI layouts), by name. */
  constructor(private readonly contexts: ReadonlyMap<string, NamedContext>, private readonly preloaded: ReadonlyMap<string, ImageState> = new Map()) {}

  /** The context `name` refers to, if any. */
  find(name: string): NamedContext | undefined {
    return findNamedContext(this.contexts, name);
  }

  /** The image of context `nc` (made once; `requester` is the stage that first asked). */
  image(nc: NamedContext, env: DispatchEnv, requester: Stage): Promise<ImageState> {
    let p = this.made.get(nc.name);
    if (!p) {
      p = this.make(nc, env, requester);
      p.catch(() => {});
      this.made.set(nc.name, p);
    }
    return p;
  }

  private async make(nc: NamedContext, env: DispatchEnv, requester: Stage): Promise<ImageState> {
    const src = nc.source;
    switch (src.kind) {
      case 'scratch':
        return emptyImage(env.platform);
      case 'image':
        return loadBase(env, src.ref, env.platform);
      case 'oci-layout': {
        const img = this.preloaded.get(nc.name);
        if (!img) throw new ImgbuildError('INTERNAL', `context ${nc.name}: OCI layout not loaded`);
        return img;
      }
      case 'dir':
        return treeImage(env, requester, nc, src.path, await loadIgnore(src.path));
      case 'git': {
        const dir = join(env.tmpDir, `context-${hashOf(nc.name)}`);
        const scratch = `${dir}.git-work`;
        await mkdir(scratch, { recursive: true });
        const authHeader = await gitAuthHeader(src.ref.remote, secretReader(env.secrets.values()));
        const o = { scratch, ...(authHeader ? { authHeader } : {}), ...(env.sshAuthSock ? { sshAuthSock: env.sshAuthSock } : {}), ...(env.signal ? { signal: env.signal } : {}) };
        const task = env.reporter.task(`[context ${nc.name}] load git source ${nc.value}`);
        try {
          await checkoutGit(src.ref, await resolveGit(src.ref, o), dir, { ...o, keepGitDir: src.ref.keepGitDir ?? false });
          task.done();
        } catch (e) {
          task.fail(e instanceof Error ? e.message : String(e));
          throw e;
        }
        return treeImage(env, requester, nc, dir, undefined);
      }
      case 'url': {
        // BuildKit's HTTP source: the download alone, as a file named `context`.
        const dir = join(env.tmpDir, `context-${hashOf(nc.name)}`);
        await mkdir(dir, { recursive: true });
        const res = await fetchUrl(src.url, `context ${nc.name}`, env.signal, { toFile: join(dir, 'context') });
        if (!res.ok) throw new ImgbuildError(res.status === 404 ? 'NOT_FOUND' : 'UNAVAILABLE', `context ${nc.name}: ${src.url}: HTTP ${res.status} ${res.statusText}`);
        return treeImage(env, requester, nc, dir, undefined);
      }
    }
  }
}

function hashOf(s: string): string {
  return createHash('sha256').update(s).digest('hex').slice(0, 12);
}

/** An image of one layer holding the files of `dir`, on the empty image of the build's platform. */
async function treeImage(env: DispatchEnv, requester: Stage, nc: NamedContext, dir: string, ignore: IgnoreMatcher | undefined): Promise<ImageState> {
  const tree = { root: dir, kind: 'context' as const, ...(ignore ? { ignore } : {}), statCache: env.context.stat };
  const plan = await planCopy({ sources: ['/'], tree, hash: true, ...(env.signal ? { signal: env.signal } : {}) });
  const base = emptyImage(env.platform);
  const s: StageCtx = {
    env, stage: requester, label: `context ${nc.name}`, image: draftOf(base), latest: undefined, envAt: new Map(),
    args: new Map(), cmdSet: false, workdirPending: false, step: 1, steps: 1,
  };
  await layerStep(s, `[context ${nc.name}] load ${nc.value}`, keyBase(s, { kind: 'named-context' }, { content: planDigest(plan) }), `build context ${nc.name}`, async (active) => {
    // Nothing below: the upper dir is the whole rootfs.
    const root = await (await env.snapshotter()).upperDir(active.key);
    await applyCopy(plan, { root, dest: '/', workdir: '/', ...(env.signal ? { signal: env.signal } : {}) });
  });
  return s.image;
}
