/**
 * The isolation of a build's RUN steps (`build --isolation`, IMGBUILD_ISOLATION): `oci`, `chroot`,
 * or `auto`, the strongest the host allows (sandbox/isolation.ts probes it). A build whose steps run
 * under chroot says so once, with the reason when the probe chose it; `oci`, the usual, goes unsaid.
 * The probe is not cached: it costs one helper start (6-8 ms measured), and a store kept across
 * pods (a persistent volume) would carry a stale answer into a pod with other rights.
 */
import { resolveIsolation, type IsolationChoice } from '../sandbox/isolation.js';
import type { Isolation } from '../sandbox/spec.js';
import type { BuildReporter } from './dispatch/stage.js';

export async function chooseIsolation(choice: IsolationChoice, reporter: BuildReporter, tmpDir: string, signal?: AbortSignal): Promise<Isolation> {
  const r = await resolveIsolation(choice, { tmpDir, ...(signal ? { signal } : {}) });
  if (r.isolation === 'chroot') {
    const t = reporter.task(`[internal] RUN isolation: chroot${choice === 'auto' ? ' (auto)' : ''}`);
    if (r.reason) t.log(`full isolation is not available here: ${r.reason}`);
    t.done();
  }
  return r.isolation;
}
