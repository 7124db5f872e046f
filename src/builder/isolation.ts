/**
 * The isolation of a build's RUN steps (`build --isolation`, IMGBUILD_ISOLATION): `oci`, `chroot`,
 * or `auto`, the strongest the host allows (sandbox/isolation.ts probes it). A build whose steps run
 * under chroot says so once, with the reason when the probe chose it; `oci`, the usual, goes unsaid.
 * A full-isolation answer is kept in the store for the environment it was found in (the digest
 * of sandbox/isolation.ts `isolationEnvironment`): a probe is one helper start, 8-13 ms of a cold
 * build's main thread measured (the fork of a Node process that size), and a store moved to a pod
 * with other rights has another digest there, so it probes again.
 */
import { resolveIsolation, type IsolationChoice } from '../sandbox/isolation.js';
import type { Isolation } from '../sandbox/spec.js';
import type { BuildReporter } from './dispatch/stage.js';

export async function chooseIsolation(choice: IsolationChoice, reporter: BuildReporter, o: { tmpDir: string; cacheFile?: string; signal?: AbortSignal }): Promise<Isolation> {
  const r = await resolveIsolation(choice, o);
  if (r.isolation === 'chroot') {
    const t = reporter.task(`[internal] RUN isolation: chroot${choice === 'auto' ? ' (auto)' : ''}`);
    if (r.reason) t.log(`full isolation is not available here: ${r.reason}`);
    t.done();
  }
  return r.isolation;
}
