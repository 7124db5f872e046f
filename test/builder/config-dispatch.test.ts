/**
 * The config-only instructions dispatched through the builder's seams (dispatch/seams.ts) with
 * an image store, a snapshotter and a step cache held in memory: what each instruction does to
 * the image config and its history, ARG and ENV scoping, base images and their ONBUILD triggers,
 * and that none of it touches a snapshot. Layer steps against real overlay snapshots are covered
 * by the build tests (dispatch.test.ts, test/e2e/build*.test.ts).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import pLimit from 'p-limit';
import { digestOf, type Digest } from '../../src/image/digest.js';
import type { LoadedImage } from '../../src/image/model.js';
import type { Descriptor, ImageConfig, Manifest, Platform } from '../../src/image/types.js';
import { MediaTypes } from '../../src/image/media-types.js';
import { Lease } from '../../src/store/lease.js';
import type { LayerBlob } from '../../src/store/layers.js';
import { ImageNotFoundError } from '../../src/store/errors.js';
import type { CacheRecord } from '../../src/builder/cache.js';
import { openContext } from '../../src/builder/context.js';
import { BuildError } from '../../src/builder/errors.js';
import { parseDockerfile } from '../../src/builder/frontend/parse.js';
import { buildStageGraph, findStageRef } from '../../src/builder/frontend/stages.js';
import { dispatchStage } from '../../src/builder/dispatch/dispatch.js';
import type { ImageState } from '../../src/builder/dispatch/image-state.js';
import type { BuildSnapshotter, BuildStore, StepCache } from '../../src/builder/dispatch/seams.js';
import type { DispatchEnv } from '../../src/builder/dispatch/stage.js';
import { makeTmp } from '../helpers/tmp.js';

const PLATFORM: Platform = { os: 'linux', architecture: 'amd64' };
const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const LAYER = digestOf('a layer');

// The build's scratch dir: a WORKDIR's mkdir happens in a dir there (on no mounts, with these fakes).
let tmp: { dir: string; cleanup: () => Promise<void> };
beforeEach(async () => {
  tmp = await makeTmp();
});
afterEach(async () => {
  await tmp.cleanup();
});

/** Images by reference, as LoadedImage values; records what was leased and pulled. */
class MemoryStore implements BuildStore {
  readonly lease = new Lease('/nonexistent-store-root');
  readonly images = new Map<string, LoadedImage>();
  readonly protected: Digest[] = [];
  readonly pulls: string[] = [];
  /** What a pull would bring (a registry's images). */
  readonly remote = new Map<string, LoadedImage>();

  add(ref: string, config: ImageConfig, target = this.images): LoadedImage {
    const rawConfig = Buffer.from(JSON.stringify(config));
    const layers: Descriptor[] = config.rootfs.diff_ids.map((d) => ({ mediaType: MediaTypes.OCI_LAYER, digest: d, size: 1 }));
    const manifest: Manifest = {
      schemaVersion: 2,
      mediaType: MediaTypes.OCI_MANIFEST,
      config: { mediaType: MediaTypes.OCI_CONFIG, digest: digestOf(rawConfig), size: rawConfig.length },
      layers,
    };
    const rawManifest = Buffer.from(JSON.stringify(manifest));
    const img: LoadedImage = {
      ref,
      descriptor: { mediaType: MediaTypes.OCI_MANIFEST, digest: digestOf(rawManifest), size: rawManifest.length },
      rawManifest,
      manifest,
      rawConfig,
      config,
    };
    target.set(ref, img);
    return img;
  }

  /** Config-only builds make no layers to write. */
  async materialize(): Promise<void> {}

  async protect(digests: Iterable<Digest>): Promise<Digest[]> {
    this.protected.push(...digests);
    return [];
  }

  async findImage(ref: string): Promise<LoadedImage> {
    const img = this.images.get(ref);
    if (!img) throw new ImageNotFoundError(ref);
    return img;
  }
}

/**
 * A snapshotter that refuses every call unless `layers` is set; then it keeps snapshots as
 * records, hands out no mounts, and "packs" a fixed layer.
 */
class MemorySnapshotter implements BuildSnapshotter {
  readonly calls: string[] = [];
  readonly committed = new Map<string, string | undefined>();
  private readonly active = new Map<string, string | undefined>();

  constructor(private readonly layers = false) {}

  private use(call: string): void {
    this.calls.push(call);
    if (!this.layers) throw new Error(`snapshotter used: ${call}`);
  }
  async prepare(key: string, parent?: string) {
    this.use(`prepare ${parent ?? '-'}`);
    this.active.set(key, parent);
    return [];
  }
  async view(key: string, parent?: string) {
    this.use(`view ${parent ?? '-'}`);
    return [];
  }
  async commit(name: string, key: string) {
    this.use(`commit ${name}`);
    this.committed.set(name, this.active.get(key));
    this.active.delete(key);
  }
  async remove(key: string) {
    this.use('remove');
    this.active.delete(key);
  }
  async upperDir(): Promise<string> {
    this.use('upperDir');
    throw new Error('no upper dir in memory');
  }
  async acquire(key: string) {
    this.use(`acquire ${key}`);
    return this.committed.has(key);
  }
  async diff(): Promise<LayerBlob> {
    this.use('diff');
    return { mediaType: MediaTypes.OCI_LAYER, digest: LAYER, size: 1, diffId: LAYER, uncompressedSize: 1 };
  }
  async unpack() {
    this.use('unpack');
  }
}

class MemoryCache implements StepCache {
  readonly records = new Map<Digest, Omit<CacheRecord, 'v'>>();
  async get(key: Digest) {
    const r = this.records.get(key);
    return r ? { v: 1 as const, ...r } : undefined;
  }
  async put(key: Digest, rec: Omit<CacheRecord, 'v'>) {
    this.records.set(key, rec);
  }
}

interface Run {
  image: ImageState;
  tasks: string[];
  store: MemoryStore;
  sn: MemorySnapshotter;
}

/** Dispatches the target stage of `text` (and the stages it names) through the fakes. */
async function dispatch(
  text: string,
  o: { store?: MemoryStore; sn?: MemorySnapshotter; buildArgs?: Record<string, string>; sourceDateEpoch?: number; pull?: boolean } = {},
): Promise<Run> {
  const store = o.store ?? new MemoryStore();
  const sn = o.sn ?? new MemorySnapshotter();
  const tasks: string[] = [];
  const df = parseDockerfile(text);
  const buildArgs = new Map(Object.entries(o.buildArgs ?? {}));
  const graph = buildStageGraph(df, { buildArgs, platform: PLATFORM });
  const results = new Map<number, Promise<ImageState>>();
  const env: DispatchEnv = {
    store,
    root: '/nonexistent-store-root',
    snapshotter: async () => sn,
    cache: new MemoryCache(),
    noCache: false,
    pull: o.pull ?? false,
    context: await openContext(undefined),
    tmpDir: tmp.dir,
    ...(o.sourceDateEpoch !== undefined ? { sourceDateEpoch: o.sourceDateEpoch } : {}),
    network: 'none',
    secrets: new Map(),
    buildArgs,
    metaArgs: graph.meta,
    platform: PLATFORM,
    escape: df.directives.escape,
    reporter: { task: (label) => ({ log() {}, done: () => void tasks.push(label), fail: () => void tasks.push(`failed: ${label}`) }) },
    stage: (ref, from) => {
      const st = findStageRef(df.stages, ref, from.index, true);
      if (!st) return Promise.resolve(undefined);
      let p = results.get(st.index);
      if (!p) results.set(st.index, (p = dispatchStage(env, st)));
      return p;
    },
    stepLimit: pLimit(1),
    unpacking: new Map(),
    pullImage: async (ref) => {
      store.pulls.push(ref);
      const img = store.remote.get(ref);
      if (!img) throw new ImageNotFoundError(ref);
      store.images.set(ref, img);
    },
  };
  const image = await dispatchStage(env, df.stages[graph.target]!);
  return { image, tasks, store, sn };
}

function baseConfig(over: Partial<NonNullable<ImageConfig['config']>> = {}, history: ImageConfig['history'] = []): ImageConfig {
  return {
    architecture: 'amd64',
    os: 'linux',
    config: { Env: [DEFAULT_PATH, 'BASE=1'], Cmd: ['sh'], ...over },
    rootfs: { type: 'layers', diff_ids: [digestOf('base layer')] },
    history,
  };
}

describe('config-only instructions through the seams', () => {
  it('set the image config, each with an empty-layer history entry, and touch no snapshot', async () => {
    const r = await dispatch([
      'FROM scratch',
      'ENV A=1 B="two words"',
      'LABEL org.example.a=x "b c"=d',
      'USER app:app',
      'WORKDIR /',
      'EXPOSE 80 53/udp 8000-8002',
      'STOPSIGNAL SIGINT',
      'VOLUME /data /cache',
      'HEALTHCHECK --interval=5s --retries=3 CMD curl -f http://localhost/',
      'ONBUILD RUN echo triggered',
      'MAINTAINER someone',
      'CMD ["serve", "--port", "80"]',
      '',
    ].join('\n'));
    const c = r.image.config.config!;
    expect(c.Env).toEqual([DEFAULT_PATH, 'A=1', 'B=two words']);
    expect(c.Labels).toEqual({ 'org.example.a': 'x', 'b c': 'd' });
    expect(c.User).toBe('app:app');
    expect(c.WorkingDir).toBe('/');
    expect(c.ExposedPorts).toEqual({ '80/tcp': {}, '53/udp': {}, '8000/tcp': {}, '8001/tcp': {}, '8002/tcp': {} });
    expect(c.StopSignal).toBe('SIGINT');
    expect(c.Volumes).toEqual({ '/data': {}, '/cache': {} });
    expect(c.Healthcheck).toEqual({ Test: ['CMD-SHELL', 'curl -f http://localhost/'], Interval: 5e9, Retries: 3 });
    expect(c.OnBuild).toEqual(['RUN echo triggered']);
    expect(c.Cmd).toEqual(['serve', '--port', '80']);
    expect(r.image.config.author).toBe('someone');
    expect(r.image.layers).toEqual([]);
    expect(r.image.chainId).toBeUndefined();
    expect(r.sn.calls).toEqual([]);
    const history = r.image.config.history ?? [];
    expect(history.map((h) => h.created_by)).toEqual([
      'ENV A=1 B=two words',
      'LABEL org.example.a=x b c=d',
      'USER app:app',
      'WORKDIR /',
      'EXPOSE 80/tcp 53/udp 8000/tcp 8001/tcp 8002/tcp',
      'STOPSIGNAL SIGINT',
      'VOLUME ["/data","/cache"]',
      'HEALTHCHECK ["CMD-SHELL","curl -f http://localhost/"]',
      'ONBUILD RUN echo triggered',
      'MAINTAINER someone',
      'CMD ["serve","--port","80"]',
    ]);
    // Without SOURCE_DATE_EPOCH and without an earlier entry, config-only steps are dated 1970.
    for (const h of history) expect(h).toMatchObject({ created: '1970-01-01T00:00:00Z', empty_layer: true, comment: 'imgbuild' });
    expect(r.tasks[0]).toBe('[stage-0 1/12] FROM scratch');
    expect(r.tasks.at(-1)).toBe('[stage-0 12/12] CMD ["serve", "--port", "80"]');
  });

  it('VOLUME takes a JSON array as its list', async () => {
    const r = await dispatch('FROM scratch\nVOLUME ["/a", "/b"]\n');
    expect(r.image.config.config?.Volumes).toEqual({ '/a': {}, '/b': {} });
  });

  it('date config-only steps at SOURCE_DATE_EPOCH when it is set', async () => {
    const r = await dispatch('FROM scratch\nENV A=1\n', { sourceDateEpoch: 1_700_000_000 });
    expect(r.image.config.history?.[0]?.created).toBe('2023-11-14T22:13:20Z');
  });

  it('SHELL changes how a shell-form CMD and ENTRYPOINT are run; ENTRYPOINT keeps a CMD of the stage', async () => {
    const r = await dispatch('FROM scratch\nSHELL ["/bin/bash", "-eu", "-c"]\nCMD echo $HOME\nENTRYPOINT exec run\n');
    const c = r.image.config.config!;
    expect(c.Shell).toEqual(['/bin/bash', '-eu', '-c']);
    expect(c.Cmd).toEqual(['/bin/bash', '-eu', '-c', 'echo $HOME']);
    expect(c.Entrypoint).toEqual(['/bin/bash', '-eu', '-c', 'exec run']);
    expect(r.image.config.history?.map((h) => h.created_by)).toEqual([
      'SHELL ["/bin/bash","-eu","-c"]',
      'CMD ["/bin/bash","-eu","-c","echo $HOME"]',
      'ENTRYPOINT ["/bin/bash","-eu","-c","exec run"]',
    ]);
  });

  it('ARG: build args win over defaults, meta ARGs only when redeclared, ENV shadows an ARG', async () => {
    const r = await dispatch([
      'ARG META=meta',
      'FROM scratch',
      'ARG META',
      'ARG LOCAL=default',
      'ARG FROMCLI=default',
      'ARG UNSET',
      'ENV SHADOW=env',
      'ARG SHADOW=arg',
      'LABEL meta=$META local=$LOCAL cli=$FROMCLI unset=x${UNSET}x shadow=$SHADOW',
      '',
    ].join('\n'), { buildArgs: { FROMCLI: 'cli' } });
    expect(r.image.config.config?.Labels).toEqual({ meta: 'meta', local: 'default', cli: 'cli', unset: 'xx', shadow: 'env' });
    // ARG adds no history entry and no config.
    expect(r.image.config.history?.map((h) => h.created_by)).toEqual(['ENV SHADOW=env', 'LABEL meta=meta local=default cli=cli unset=xx shadow=env']);
    expect(r.image.config.config?.Env).toEqual([DEFAULT_PATH, 'SHADOW=env']);
  });

  it('ENV expands with the values before it and keeps a changed variable in its place', async () => {
    const r = await dispatch('FROM scratch\nENV A=1 B=2\nENV A=${A}0 C=$B$B\nENV PATH=/opt/bin:$PATH\n');
    expect(r.image.config.config?.Env).toEqual([`PATH=/opt/bin:${DEFAULT_PATH.slice(5)}`, 'A=10', 'B=2', 'C=22']);
  });

  it('WORKDIR resolves against the one before it; USER, STOPSIGNAL and EXPOSE expand variables', async () => {
    const r = await dispatch('FROM scratch\nENV U=app P=8080 S=TERM\nWORKDIR /srv\nUSER $U\nEXPOSE $P/udp\nSTOPSIGNAL SIG$S\n', {
      sn: new MemorySnapshotter(true),
    });
    const c = r.image.config.config!;
    expect(c.WorkingDir).toBe('/srv');
    expect(c.User).toBe('app');
    expect(c.ExposedPorts).toEqual({ '8080/udp': {} });
    expect(c.StopSignal).toBe('SIGTERM');
  });

  it('an EXPOSE port that is no number is an error located at its line', async () => {
    const e = await dispatch('FROM scratch\n\nEXPOSE http\n').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(BuildError);
    expect((e as BuildError).message).toBe('3:1: invalid EXPOSE port "http"');
    expect((e as BuildError).code).toBe('INVALID_ARGUMENT');
  });

  it('a VOLUME that expands to nothing is refused', async () => {
    await expect(dispatch('FROM scratch\nVOLUME $NOTHING\n')).rejects.toThrow('VOLUME specified can not be an empty string');
  });
});

describe('a base image from the store', () => {
  it('is leased, inherited, and dates config-only steps after its newest entry', async () => {
    const store = new MemoryStore();
    const base = store.add('docker.io/library/base:1', baseConfig({}, [{ created: '2024-05-01T00:00:00Z', created_by: 'base' }]));
    const r = await dispatch('FROM docker.io/library/base:1\nENV BASE=2 MORE=3\nENTRYPOINT ["/entry"]\n', { store });
    const c = r.image.config.config!;
    // A changed variable keeps its place; ENTRYPOINT resets the inherited CMD.
    expect(c.Env).toEqual([DEFAULT_PATH, 'BASE=2', 'MORE=3']);
    expect(c.Entrypoint).toEqual(['/entry']);
    expect(c.Cmd).toBeNull();
    expect(r.image.layers).toEqual(base.manifest.layers);
    expect(r.image.chainId).toBe(base.config.rootfs.diff_ids[0]);
    expect(store.protected).toEqual([base.descriptor.digest, base.manifest.config.digest, ...base.manifest.layers.map((l) => l.digest)]);
    const history = r.image.config.history ?? [];
    expect(history.map((h) => h.created)).toEqual(['2024-05-01T00:00:00Z', '2024-05-01T00:00:00Z', '2024-05-01T00:00:00Z']);
    // Nothing of the base's rootfs is needed for config-only steps.
    expect(r.sn.calls).toEqual([]);
    expect(store.pulls).toEqual([]);
  });

  it('runs its ONBUILD triggers first and does not pass them on', async () => {
    const store = new MemoryStore();
    store.add('base', baseConfig({ OnBuild: ['ENV FROM_TRIGGER=yes', 'LABEL trigger=$BASE'] }));
    const r = await dispatch('FROM base\nLABEL own=1\n', { store });
    const c = r.image.config.config!;
    expect(c.OnBuild).toBeNull();
    expect(c.Env).toEqual([DEFAULT_PATH, 'BASE=1', 'FROM_TRIGGER=yes']);
    expect(c.Labels).toEqual({ trigger: '1', own: '1' });
    expect(r.tasks).toEqual(['[stage-0 1/2] FROM base', '[stage-0 ONBUILD] ENV FROM_TRIGGER=yes', '[stage-0 ONBUILD] LABEL trigger=$BASE', '[stage-0 2/2] LABEL own=1']);
  });

  it('is pulled when missing, and always with pull', async () => {
    const store = new MemoryStore();
    store.add('remote', baseConfig({ Cmd: ['remote'] }), store.remote);
    const r = await dispatch('FROM remote\n', { store });
    expect(store.pulls).toEqual(['remote']);
    expect(r.image.config.config?.Cmd).toEqual(['remote']);
    await dispatch('FROM remote\n', { store, pull: true });
    expect(store.pulls).toEqual(['remote', 'remote']);
  });

  it('that no store or registry has fails the FROM line', async () => {
    const e = await dispatch('FROM scratch\nENV A=1\nFROM nowhere\n').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(BuildError);
    expect((e as BuildError).message).toMatch(/^3:1: /);
    expect((e as BuildError).cause).toBeInstanceOf(ImageNotFoundError);
  });

  it('another stage is a base too, and its config carries over', async () => {
    const r = await dispatch('FROM scratch AS one\nENV ONE=1\nUSER nobody\nFROM one\nENV TWO=2\n');
    expect(r.image.config.config?.Env).toEqual([DEFAULT_PATH, 'ONE=1', 'TWO=2']);
    expect(r.image.config.config?.User).toBe('nobody');
    expect(r.image.config.history?.map((h) => h.created_by)).toEqual(['ENV ONE=1', 'USER nobody', 'ENV TWO=2']);
  });
});

describe('the mkdir of a WORKDIR', () => {
  it('is a layer step at the end of the stage, through the snapshotter and the step cache', async () => {
    const sn = new MemorySnapshotter(true);
    const r = await dispatch('FROM scratch\nWORKDIR /app\nENV A=1\n', { sn });
    expect(r.image.config.config?.WorkingDir).toBe('/app');
    expect(r.image.layers).toEqual([{ mediaType: MediaTypes.OCI_LAYER, digest: LAYER, size: 1 }]);
    expect(r.image.config.rootfs.diff_ids).toEqual([LAYER]);
    // On scratch the first layer's chain id is its diff id.
    expect(r.image.chainId).toBe(LAYER);
    expect(sn.calls).toEqual(['prepare -', 'diff', `acquire ${LAYER}`, `commit ${LAYER}`]);
    expect(sn.committed.get(LAYER)).toBeUndefined();
    const history = r.image.config.history ?? [];
    expect(history.map((h) => [h.created_by, h.empty_layer ?? false])).toEqual([['WORKDIR /app', true], ['ENV A=1', true], ['WORKDIR /app', false]]);
    expect(r.tasks.at(-1)).toBe('[stage-0] WORKDIR /app');
  });
});
