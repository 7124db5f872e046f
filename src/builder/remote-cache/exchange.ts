/**
 * A build's cache imports and exports together: the sources and targets made from the options
 * (one registry session for all), the imported caches dispatch asks, the log of the build's layer
 * steps, and the exports run once the image is stored. The registry backend is loaded only when a
 * registry cache is named.
 */
import { ImgbuildError } from '../../errors.js';
import { chainIds } from '../../image/model.js';
import type { Digest } from '../../image/digest.js';
import type { OciStore } from '../../store/store.js';
import type { BuildReporter } from '../dispatch/stage.js';
import type { CacheSource, CacheTarget } from './backend.js';
import { exportCache, type MountExport } from './export.js';
import type { StepLogEntry } from '../dispatch/seams.js';
import { ImportedCache } from './import.js';
import { LocalCache } from './local.js';
import { describeLocation, type CacheExport, type CacheImport, type CacheLocation } from './options.js';

export interface ExchangeOptions {
  cacheFrom?: readonly CacheImport[];
  cacheTo?: readonly CacheExport[];
  /** Whether imports are used at all (not with --no-cache, as BuildKit). */
  useImports: boolean;
  /** The environment the registry credentials are read with (docker config, helpers). */
  env?: NodeJS.ProcessEnv;
  reporter: BuildReporter;
  signal?: AbortSignal;
}

/** Prints one warning line: the reporter's own way, or a task of its own. */
export function warner(reporter: BuildReporter): (line: string) => void {
  return (line) => {
    if (reporter.warn) return reporter.warn(line);
    const t = reporter.task(line);
    t.done();
  };
}

export class CacheExchange {
  /** Every layer step of the build, hit or built, in the order they ended. */
  readonly steps: StepLogEntry[] = [];
  private constructor(
    readonly imported: ImportedCache | undefined,
    private readonly targets: { exp: CacheExport; target: CacheTarget }[],
    private readonly close: () => Promise<void>,
    private readonly o: ExchangeOptions,
  ) {}

  static async open(store: OciStore, o: ExchangeOptions): Promise<CacheExchange | undefined> {
    const imports = o.useImports ? o.cacheFrom ?? [] : [];
    const exports = o.cacheTo ?? [];
    if (imports.length === 0 && exports.length === 0) return undefined;
    let session: import('../../registry/transport.js').RegistrySession | undefined;
    let registryModule: typeof import('./registry.js') | undefined;
    const backend = async (l: CacheLocation): Promise<CacheSource & CacheTarget> => {
      if (l.type === 'local') return new LocalCache(l.dir, l.tag, l.digest);
      registryModule ??= await import('./registry.js');
      session ??= registryModule.cacheSession(o.env);
      return new registryModule.RegistryCache(session, l.ref, o.signal);
    };
    const close = async (): Promise<void> => {
      await session?.close();
    };
    try {
      const sources = await Promise.all(imports.map((i) => backend(i.from)));
      const targets = await Promise.all(exports.map(async (exp) => ({ exp, target: await backend(exp.to) })));
      const imported = sources.length
        ? await ImportedCache.open(sources, store, { reporter: o.reporter, warn: warner(o.reporter), ...(o.signal ? { signal: o.signal } : {}) })
        : undefined;
      return new CacheExchange(imported, targets, close, o);
    } catch (e) {
      await close();
      throw e;
    }
  }

  /** Forgets the steps of a dispatch that is started again. */
  restart(): void {
    this.steps.length = 0;
  }

  /**
   * Writes every `--cache-to` cache of the image built (`diffIds`, its rootfs). A failure of an
   * export with `ignore-error=true` is a warning; any other fails the build (the image is stored).
   */
  async exportAll(store: OciStore, diffIds: readonly Digest[], mounts: readonly MountExport[] = []): Promise<void> {
    const imageChains = new Set(chainIds([...diffIds]));
    for (const { exp, target } of this.targets) {
      const task = this.o.reporter.task(`exporting cache to ${describeLocation(exp.to)}`);
      try {
        await exportCache(store, exp, target, {
          steps: this.steps, imageChains, ...(this.imported ? { imported: this.imported } : {}),
          ...(exp.cacheMounts ? { mounts } : {}), ...(this.o.signal ? { signal: this.o.signal } : {}),
        });
        task.done();
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        if (!exp.ignoreError || this.o.signal?.aborted) {
          task.fail(msg);
          throw new CacheExportError(describeLocation(exp.to), e);
        }
        task.log(`WARNING: failed to export the cache to ${describeLocation(exp.to)}: ${msg}`);
        task.done();
      }
    }
  }

  async dispose(): Promise<void> {
    await this.close();
  }
}

/** An export that failed without `ignore-error=true`: the build fails, after the image was stored. */
export class CacheExportError extends ImgbuildError {
  constructor(where: string, cause: unknown) {
    super(cause instanceof ImgbuildError ? cause.code : 'UNAVAILABLE', `exporting the build cache to ${where}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'CacheExportError';
  }
}
