/**
 * COPY and ADD as steps: sources from the context, another stage or an image, ADD's URLs and
 * archives, the cache key over the sources' content, and the layer step that writes them (see
 * copy.ts for Docker's copy rules, add-sources.ts for downloads and archives).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Add, Copy } from '../frontend/instructions.js';
import { processWord, lex } from '../frontend/shell-lex.js';
import { hashFile } from '../context.js';
import { PhaseClock } from '../../phases.js';
import { applyCopy, isArchive, planCopy, planDigest, type CopyPlan, type SourceTree } from './copy.js';
import { parseChmodSpec } from './chmod.js';
import { resolveChown } from './fs-root.js';
import { checkoutGitSource, download, extractArchive, gitSourceKey, gitSourcesOf, resolveGitSources, type Download, type GitSource } from './add-sources.js';
import { isHttpUrl } from '../inputs/git-url.js';
import { secretReader } from '../inputs/git.js';
import { loadBase } from './base-image.js';
import type { ImageState } from './image-state.js';
import { createWorkdir, layerStep, pendingWorkdirs } from './layer-step.js';
import { planDirectCopy, planInLayer } from './copy-direct.js';
import { resolveImageChown, soleLayerRoot, withHostMount, withImageRoot } from './snapshots.js';
import { getter, keyBase, type StageCtx } from './stage.js';

export async function dispatchCopy(s: StageCtx, ins: Copy | Add, label: string): Promise<void> {
  const env = s.env;
  const isAdd = ins.kind === 'add';
  // `--from` is expanded with the meta ARGs (the stage graph is fixed before dispatch, as in BuildKit).
  const from = ins.kind === 'copy' && ins.from !== undefined ? processWord(ins.from, (n) => env.metaArgs.get(n), env.escape) : undefined;
  const chmod = ins.chmod ? parseChmodSpec(ins.chmod) : undefined;
  const inline = new Map<string, Buffer>();
  for (const h of ins.heredocs) {
    const text = h.expand ? lex(h.content, getter(s), { escape: env.escape, skipProcessQuotes: true }).result : h.content;
    inline.set(h.name, Buffer.from(text));
  }
  // Git references first: an https URL ending in .git is a repository, not a download (BuildKit).
  const gitWords = gitSourcesOf(ins);
  const isGit = (x: string): boolean => gitWords.some((g) => g.word === x);
  const urls = isAdd ? ins.sources.filter((x) => isHttpUrl(x) && !isGit(x)) : [];
  const localSources = ins.sources.filter((x) => !urls.includes(x) && !isGit(x));
  let content: string;
  // Files come from another stage's (or an image's) rootfs, or from the context as planned.
  let source: { image: ImageState } | { plan: CopyPlan };
  // The context's walk and hashing (the cache key) are the step's too.
  const phases = new PhaseClock();
  const scratch = await mkdtemp(join(env.tmpDir, 'copy-'));
  try {
    const downloads: Download[] = [];
    for (const u of urls) downloads.push(await phases.time('download', () => download(u, scratch, (ins as Add).checksum, env.signal)));
    const gitOpts = { scratch, secret: secretReader(env.secrets.values()), ...(env.sshAuthSock ? { sshAuthSock: env.sshAuthSock } : {}), ...(env.signal ? { signal: env.signal } : {}) };
    // Resolved to commits now (the cache key), checked out only when the step runs.
    const gits: GitSource[] = gitWords.length ? await phases.time('git', () => resolveGitSources(gitWords, ins as Add, gitOpts)) : [];
    if (from) {
      // A stage, else an image reference.
      const image = (await env.stage(from, s.stage)) ?? (await loadBase(env, from, env.platform));
      source = { image };
      content = JSON.stringify({ from: image.chainId ?? 'empty', sources: localSources });
    } else {
      const tree: SourceTree | undefined = env.context.dir ? { root: env.context.dir, kind: 'context', ignore: env.context.ignore, statCache: env.context.stat } : undefined;
      const planned = phases.start('context');
      const plan = await planCopy({
        sources: localSources, tree, exclude: ins.exclude, parents: ins.parents, inline, hash: true,
        detectArchives: isAdd && (ins as Add).unpack !== false,
        ...(env.signal ? { signal: env.signal } : {}),
      });
      planned();
      source = { plan };
      content = planDigest(plan);
    }
    if (downloads.length) {
      content += JSON.stringify(await Promise.all(downloads.map(async (d) => [d.name, await hashFile(d.path)])));
    }
    if (gits.length) content += JSON.stringify(gits.map(gitSourceKey));
    // BuildKit's history text: the flags that change the files, the sources and the destination.
    const createdBy = [
      isAdd ? 'ADD' : 'COPY', ...(ins.parents ? ['--parents'] : []), ...(ins.chown ? [`--chown=${ins.chown}`] : []),
      ...(ins.chmod ? [`--chmod=${ins.chmod}`] : []), ...ins.sources, ins.dest,
    ].join(' ');
    const keyParts = keyBase(s, {
      kind: ins.kind, sources: ins.sources, dest: ins.dest, from: from ?? null, chown: ins.chown, chmod: ins.chmod,
      link: ins.link, exclude: ins.exclude, parents: ins.parents, checksum: isAdd ? (ins as Add).checksum : undefined,
      unpack: isAdd ? (ins as Add).unpack : undefined,
    }, { content });
    // --link: the layer does not depend on the parent's files (BuildKit), so neither does its key.
    if (ins.link) {
      keyParts.parent = 'link';
      keyParts.env = [];
      delete keyParts.user;
      keyParts.workdir = s.image.config.config?.WorkingDir || '/';
    }
    const workdir = s.image.config.config?.WorkingDir || '/';
    const workdirPending = s.workdirPending && !ins.link;
    const parentImage = s.image;
    // The context's plan with the downloads: known before the step writes anything.
    let all: CopyPlan | undefined;
    if ('plan' in source) {
      const plan = source.plan;
      // A URL is unpacked only when asked to (ADD --unpack=true), and only if it is an archive.
      const unpackUrls = isAdd && (ins as Add).unpack === true;
      all = { ...plan, items: [...plan.items], multiple: plan.multiple || downloads.length + localSources.length + gits.length > 1 };
      for (const d of downloads) {
        const archive = unpackUrls && (await isArchive(d.path));
        all.items.push({ source: d.name, name: d.name, isDir: false, ...(archive ? { archive } : {}), entries: [{ rel: '', type: 'file', src: d.path, mode: 0o600, uid: 0, gid: 0, mtimeMs: d.mtimeMs }] });
      }
    }
    // With nothing below (scratch, or --link) the upper dir is the whole rootfs: write into it
    // directly and save the host mount and umount (docs/architecture.md, Measurements).
    const direct = ins.link || !parentImage.chainId;
    await layerStep(s, label, keyParts, createdBy, async (active) => {
      /** Writes the planned files into the step's rootfs. */
      const write = async (plan: CopyPlan): Promise<void> => {
        // Over the image's layers, a copy that only adds new paths writes the upper dir too (copy-direct.ts).
        const upper = !direct && !env.mountForCopy
          ? await planDirectCopy({
            mounts: active.mounts, copy: { plan, dest: ins.dest, workdir },
            workdirs: workdirPending ? pendingWorkdirs(s) : [], ...(ins.chown ? { chown: ins.chown } : {}),
          })
          : undefined;
        const inRoot = async <T>(fn: (root: string) => Promise<T>): Promise<T> => {
          if (direct) return fn(await (await env.snapshotter()).upperDir(active.key));
          if (!upper) return withHostMount(env, active.mounts, fn, active.phases, active.unmounted);
          // Its own phase in a --trace: the directories copied up in place of the mount.
          active.phases.timeSync('copy-up', () => upper.prepare());
          return fn(upper.root);
        };
        await inRoot(async (root) => {
          if (workdirPending) await createWorkdir(s, root, upper);
          // Names in --chown come from the stage's /etc/passwd, also for a linked (empty) layer.
          const chown = !ins.chown ? undefined
            : upper ? upper.chown
              : ins.link && !/^\d+(:\d+)?$/.test(ins.chown) ? await resolveImageChown(env, parentImage, ins.chown, { phases: active.phases, ...(env.mountForCopy ? { mount: true } : {}) })
                : await resolveChown(root, ins.chown);
          const copied = active.phases.start('copy');
          await applyCopy(plan, {
            root, dest: ins.dest, workdir,
            ...(chown ? { chown } : {}), ...(chmod !== undefined ? { chmod } : {}),
            extract: (archive, dir, owner) => extractArchive(archive, dir, env.signal, owner),
            ...(env.signal ? { signal: env.signal } : {}),
          });
          copied();
        });
      };
      if ('image' in source) {
        const image = source.image;
        const plan = (root: string): Promise<CopyPlan> => planCopy({ sources: localSources, tree: { root, kind: 'image' }, exclude: ins.exclude, parents: ins.parents, ...(env.signal ? { signal: env.signal } : {}) });
        // Sources that one layer alone holds are read in its dir: no view snapshot, no mount.
        const inLayer = env.mountForCopy ? undefined : await planInLayer(await soleLayerRoot(env, image, localSources, active.phases), localSources, plan);
        // Else planned on the source's rootfs first: the plan tells whether the destination needs a mount.
        if (inLayer) await write(inLayer);
        else await withImageRoot(env, image, async (srcRoot) => write(await plan(srcRoot)), active.phases);
      } else {
        const plan = all as CopyPlan;
        // A repository's tree is copied into dest as a directory's contents are.
        for (const [i, g] of gits.entries()) {
          const dir = join(scratch, `git-${i}`);
          await active.phases.time('git', () => checkoutGitSource(g, dir, { ...gitOpts, scratch: join(scratch, `git-${i}.work`) }));
          const p = await planCopy({ sources: ['/'], tree: { root: dir, kind: 'context' }, ...(env.signal ? { signal: env.signal } : {}) });
          plan.items.push(...p.items.map((it) => ({ ...it, source: g.word })));
        }
        await write(plan);
      }
    }, { linked: ins.link, phases });
    if (!ins.link) s.workdirPending = false;
  } finally {
    await rm(scratch, { recursive: true, force: true }).catch(() => {});
  }
}

