/**
 * Push/pull round trips against the real distribution registry in its three auth modes: what we
 * push pulls back to the same manifest digest, validates (digests, sizes, diffIDs), and a second
 * push skips every blob.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { mkdir, writeFile, readFile } from 'node:fs/promises';
import { makeTmp } from '../helpers/tmp.js';
import { startRegistry, type TestRegistry, type RegistryMode } from '../helpers/registry.js';
import { ensureBusybox, BUSYBOX_REF } from '../helpers/base-image.js';
import { OciStore } from '../../src/store/store.js';
import { pullImage } from '../../src/registry/pull.js';
import { pushImage } from '../../src/registry/push.js';
import { Keychain, StaticAuthenticator } from '../../src/registry/auth.js';
import type { TransferEvent } from '../../src/registry/progress.js';
import { MediaTypes } from '../../src/image/media-types.js';
import { testSession, validateStoredImage } from './util.js';

const tmp = await makeTmp('imgbuild-remote-rt-');
afterAll(() => tmp.cleanup());

for (const mode of ['none', 'basic', 'token'] as RegistryMode[]) {
  describe(`round trip, auth ${mode}`, () => {
    let reg: TestRegistry;
    beforeAll(async () => {
      reg = await startRegistry({ mode });
    });
    afterAll(() => reg?.stop());

    it('pushes busybox, pulls it into an empty store with the same digest, and validates it', async () => {
      const src = await OciStore.open(join(tmp.dir, `${mode}-src`));
      await ensureBusybox(src.root);
      const auth = mode === 'none' ? undefined : new StaticAuthenticator({ [reg.host]: { username: 'alice', password: 'wonderland' } });
      const session = testSession(auth);
      const dest = `${reg.host}/test/busybox:1`;
      const events: TransferEvent[] = [];
      const pushed = await pushImage(src, BUSYBOX_REF, dest, { session, onProgress: (e) => events.push(e) });
      expect(pushed.mediaType).toBe(MediaTypes.OCI_MANIFEST);
      // the uncompressed stored layer went out gzip-compressed
      expect(events.some((e) => e.type === 'blob' && e.phase === 'compressing')).toBe(true);
      expect(events.some((e) => e.type === 'blob' && e.phase === 'transfer' && e.kind === 'layer')).toBe(true);

      const dst = await OciStore.open(join(tmp.dir, `${mode}-dst`));
      const pulled = await pullImage(dst, dest, { session });
      expect(pulled.digest).toBe(pushed.digest);
      expect(await dst.resolve(`${reg.host}/test/busybox:1`)).toMatchObject({ digest: pushed.digest });
      await validateStoredImage(dst, pulled);
      const m = JSON.parse((await dst.read(pulled)).toString()) as { layers: { mediaType: string }[] };
      expect(m.layers.map((l) => l.mediaType)).toEqual([MediaTypes.OCI_LAYER_GZIP]);

      // a second push finds every blob present and sends no blob bytes
      const again: TransferEvent[] = [];
      const pushed2 = await pushImage(src, BUSYBOX_REF, dest, { session, onProgress: (e) => again.push(e) });
      expect(pushed2.digest).toBe(pushed.digest);
      expect(again.filter((e) => e.type === 'blob' && e.phase === 'exists').length).toBe(2);
      expect(again.some((e) => e.type === 'blob' && e.phase === 'transfer')).toBe(false);

      // pulling again into the same store fetches no layer
      const pe: TransferEvent[] = [];
      await pullImage(dst, dest, { session, onProgress: (e) => pe.push(e) });
      expect(pe.some((e) => e.type === 'blob' && e.phase === 'transfer')).toBe(false);
      await session.close();
    });

    if (mode !== 'none') {
      it('reads credentials from a docker config.json (DOCKER_CONFIG)', async () => {
        const cfgDir = join(tmp.dir, `${mode}-docker`);
        await mkdir(cfgDir, { recursive: true });
        await writeFile(join(cfgDir, 'config.json'), JSON.stringify({ auths: { [`https://${reg.host}`]: { auth: Buffer.from('bob:builder').toString('base64') } } }));
        const src = await OciStore.open(join(tmp.dir, `${mode}-kc`));
        await ensureBusybox(src.root);
        const env = { ...process.env, DOCKER_CONFIG: cfgDir };
        const d = await pushImage(src, BUSYBOX_REF, `${reg.host}/bob/bb:kc`, { env, compression: 'none' });
        const dst = await OciStore.open(join(tmp.dir, `${mode}-kc-dst`));
        const p = await pullImage(dst, `${reg.host}/bob/bb:kc`, { env });
        expect(p.digest).toBe(d.digest);
        // with compression none the stored manifest went out unchanged
        expect(d.digest).toBe((await src.resolve(BUSYBOX_REF))!.digest);
        expect(new Keychain({ env }).path).toBe(join(cfgDir, 'config.json'));
        expect(JSON.parse(await readFile(join(cfgDir, 'config.json'), 'utf8')).auths).toBeDefined();
      });
    }
  });
}
