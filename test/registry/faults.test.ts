/**
 * Failure behaviour against the real registry, with a fault proxy for what it cannot do by itself:
 * typed errors (MANIFEST_UNKNOWN, 401 with realm, DENIED), refused digests and oversized manifests
 * that leave the store untouched, Range resume after a cut connection (in-process and across
 * processes), bounded retries on 500/429, and no credentials on a redirect to another host.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { join } from 'node:path';
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { readdir, writeFile, mkdir } from 'node:fs/promises';
import { makeTmp } from '../helpers/tmp.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { startFaultProxy, startBlobHost, type FaultProxy } from '../helpers/fault-proxy.js';
import { ensureBusybox, BUSYBOX_REF } from '../helpers/base-image.js';
import { OciStore } from '../../src/store/store.js';
import { loadImage } from '../../src/store/images.js';
import { pullImage, ManifestTooLargeError } from '../../src/registry/pull.js';
import { pushImage } from '../../src/registry/push.js';
import { StaticAuthenticator } from '../../src/registry/auth.js';
import { AuthError, RegistryError, TransportError } from '../../src/registry/errors.js';
import { DigestMismatchError, SizeMismatchError } from '../../src/image/errors.js';
import type { TransferEvent } from '../../src/registry/progress.js';
import type { Descriptor } from '../../src/image/types.js';
import { assertBlobsIntact, storeSnapshot, testSession, validateStoredImage } from './util.js';

const tmp = await makeTmp('imgbuild-remote-faults-');
let reg: TestRegistry;
let proxy: FaultProxy;
let src: OciStore;
let pushed: Descriptor;
let layer: Descriptor;
let n = 0;

async function emptyStore(): Promise<OciStore> {
  return OciStore.open(join(tmp.dir, `store-${++n}`));
}

beforeAll(async () => {
  reg = await startRegistry({ mode: 'none' });
  proxy = await startFaultProxy(reg.url);
  src = await OciStore.open(join(tmp.dir, 'src'));
  await ensureBusybox(src.root);
  // uncompressed, so the layer blob is a couple of MB to cut in the middle
  pushed = await pushImage(src, BUSYBOX_REF, `${reg.host}/faults/bb:1`, { session: testSession(), compression: 'none' });
  layer = (await loadImage(src, pushed)).manifest.layers[0]!;
});
afterAll(async () => {
  await proxy?.stop();
  await reg?.stop();
  await tmp.cleanup();
});

beforeEach(() => proxy.reset());

const isLayerGet = (r: { method: string; url: string }): boolean => r.method === 'GET' && r.url.endsWith(`/blobs/${layer.digest}`);

/** Downloads a pull left in a store's ingest directory (to resume from). */
const remotePartials = async (root: string): Promise<string[]> => (await readdir(join(root, 'ingest'))).filter((f) => f.includes('remote-'));

/**
 * A pull of faults/bb:1 through the proxy with `rule` in force, into a new store, that must fail
 * and leave blobs/ and index.json as they were. Returns the error and the store.
 */
async function failedPull(rule: FaultProxy['rule']): Promise<{ err: unknown; store: OciStore }> {
  proxy.rule = rule;
  const store = await emptyStore();
  const before = await storeSnapshot(store.root);
  const err = await pullImage(store, `${proxy.host}/faults/bb:1`, { session: testSession() }).catch((e: unknown) => e);
  proxy.rule = () => undefined;
  expect(await storeSnapshot(store.root)).toEqual(before);
  return { err, store };
}

describe('connections', () => {
  it('a response nobody reads, and a HEAD, leave their connection for the next request', async () => {
    // One layer: the ping, manifest, config and layer take at most two connections (config and
    // layer are fetched at the same time).
    const store = await emptyStore();
    await pullImage(store, `${proxy.host}/faults/bb:1`, { session: testSession() });
    expect(proxy.seen.map((r) => r.method)).toEqual(['GET', 'GET', 'GET', 'GET']);
    expect(proxy.connections).toBeLessThanOrEqual(2);
    // One blob at a time: the ping, HEADs, upload POSTs and PUTs and the manifest PUT could all
    // share one connection. An unread body (undici's dump) or a HEAD (undici closes after one
    // unless told not to) used to cost a connection each: 5 here.
    proxy.reset();
    await pushImage(src, BUSYBOX_REF, `${proxy.host}/faults/conns:1`, { session: testSession(), compression: 'none', concurrency: 1 });
    expect(proxy.seen.map((r) => r.method)).toEqual(['GET', 'HEAD', 'POST', 'PUT', 'HEAD', 'POST', 'PUT', 'PUT']);
    expect(proxy.connections).toBeLessThanOrEqual(2);
  });
});

describe('registry errors', () => {
  it('MANIFEST_UNKNOWN for a missing tag, store unchanged', async () => {
    const store = await emptyStore();
    const before = await storeSnapshot(store.root);
    const err = await pullImage(store, `${reg.host}/faults/bb:missing`, { session: testSession() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as RegistryError).status).toBe(404);
    expect((err as RegistryError).codes).toContain('MANIFEST_UNKNOWN');
    expect((err as RegistryError).code).toBe('NOT_FOUND');
    expect(await storeSnapshot(store.root)).toEqual(before);
  });

  it('DENIED maps to PERMISSION_DENIED with the registry message', async () => {
    proxy.rule = (r) =>
      r.method === 'PUT' && r.url.includes('/manifests/')
        ? { kind: 'respond', status: 403, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ errors: [{ code: 'DENIED', message: 'requested access to the resource is denied' }] }) }
        : undefined;
    const err = await pushImage(src, BUSYBOX_REF, `${proxy.host}/faults/denied:1`, { session: testSession(), compression: 'none' }).catch((e: unknown) => e);
    proxy.rule = () => undefined;
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as RegistryError).codes).toEqual(['DENIED']);
    expect((err as RegistryError).code).toBe('PERMISSION_DENIED');
    expect((err as Error).message).toMatch(/requested access to the resource is denied/);
  });

  it('refuses a blob whose bytes do not match its digest; nothing reaches blobs/ or index.json', async () => {
    const { err, store } = await failedPull((r) => (isLayerGet(r) ? { kind: 'corrupt' } : undefined));
    expect(err).toBeInstanceOf(DigestMismatchError);
    expect((err as DigestMismatchError).expected).toBe(layer.digest);
    // the bad download is not kept for resuming either
    expect(await remotePartials(store.root)).toEqual([]);
  });

  it('stops a blob body that runs past its size as soon as it does; nothing is kept', async () => {
    const tooLong = Buffer.alloc(layer.size + 256 * 1024, 7);
    const { err, store } = await failedPull((r) =>
      isLayerGet(r) ? { kind: 'respond', status: 200, headers: { 'content-length': String(tooLong.length) }, body: tooLong } : undefined,
    );
    expect(err).toBeInstanceOf(SizeMismatchError);
    expect((err as Error).message).toContain(layer.digest);
    expect(await remotePartials(store.root)).toEqual([]);
  });

  it('refuses a manifest over 4 MiB', async () => {
    const big = Buffer.alloc(5 * 1024 * 1024, 0x20);
    big.write('{"schemaVersion":2,');
    const { err } = await failedPull((r) =>
      r.method === 'GET' && r.url.includes('/manifests/') ? { kind: 'respond', status: 200, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body: big } : undefined,
    );
    expect(err).toBeInstanceOf(ManifestTooLargeError);
  });

  it('refuses a manifest whose bytes do not match the digest asked for', async () => {
    proxy.rule = (r) => (r.method === 'GET' && r.url.includes('/manifests/') ? { kind: 'corrupt' } : undefined);
    const store = await emptyStore();
    const err = await pullImage(store, `${proxy.host}/faults/bb@${pushed.digest}`, { session: testSession() }).catch((e: unknown) => e);
    proxy.rule = () => undefined;
    expect(err).toBeInstanceOf(DigestMismatchError);
    expect((await store.list()).length).toBe(0);
  });
});

describe('resume and retry', () => {
  it('resumes a download cut mid-blob with a Range request', async () => {
    proxy.reset();
    proxy.rule = (r, count) => (isLayerGet(r) && count === 1 ? { kind: 'close-after', bytes: 700_000 } : undefined);
    const store = await emptyStore();
    const events: TransferEvent[] = [];
    const d = await pullImage(store, `${proxy.host}/faults/bb:1`, { session: testSession(), onProgress: (e) => events.push(e) });
    proxy.rule = () => undefined;
    expect(d.digest).toBe(pushed.digest);
    const gets = proxy.seen.filter(isLayerGet);
    expect(gets.length).toBe(2);
    expect(gets[0]!.range).toBeUndefined();
    const m = /^bytes=(\d+)-$/.exec(gets[1]!.range ?? '');
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(0);
    expect(Number(m![1])).toBeLessThanOrEqual(700_000);
    expect(events.some((e) => e.type === 'blob' && e.phase === 'retry')).toBe(true);
    await validateStoredImage(store, d);
    await assertBlobsIntact(store.root);
    expect(await remotePartials(store.root)).toEqual([]);
  });

  it('a download that breaks again and again but advances each time completes', async () => {
    proxy.rule = (r) => (isLayerGet(r) ? { kind: 'close-after', bytes: 300_000 } : undefined);
    const store = await emptyStore();
    const d = await pullImage(store, `${proxy.host}/faults/bb:1`, { session: testSession() });
    expect(d.digest).toBe(pushed.digest);
    // more breaks than the retry budget: attempts only count when no byte arrived
    expect(proxy.seen.filter(isLayerGet).length).toBe(Math.ceil(layer.size / 300_000));
    await validateStoredImage(store, d);
  });

  it('a failed pull keeps blobs/ and index.json unchanged, and the next pull resumes the partial', async () => {
    proxy.reset();
    proxy.rule = (r, count) => (isLayerGet(r) ? { kind: 'close-after', bytes: count === 1 ? 300_000 : 0 } : undefined);
    const store = await emptyStore();
    const before = await storeSnapshot(store.root);
    const err = await pullImage(store, `${proxy.host}/faults/bb:1`, { session: testSession() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(await storeSnapshot(store.root)).toEqual(before);
    const partials = await remotePartials(store.root);
    expect(partials.length).toBe(1);
    // as if left by a process that died: rename it to a pid that cannot be alive
    const { rename } = await import('node:fs/promises');
    await rename(join(store.root, 'ingest', partials[0]!), join(store.root, 'ingest', `99999999-dead${partials[0]!.slice(partials[0]!.indexOf('-remote-'))}`));
    proxy.reset();
    proxy.rule = () => undefined;
    const d = await pullImage(store, `${proxy.host}/faults/bb:1`, { session: testSession() });
    expect(d.digest).toBe(pushed.digest);
    const gets = proxy.seen.filter(isLayerGet);
    expect(gets.length).toBe(1);
    expect(gets[0]!.range).toMatch(/^bytes=[1-9]\d*-$/);
    await validateStoredImage(store, d);
  });

  it('adopts a partial download left by a dead process', async () => {
    const store = await emptyStore();
    const data = await src.read(layer);
    await mkdir(join(store.root, 'ingest'), { recursive: true });
    const hex = layer.digest.slice(7);
    await writeFile(join(store.root, 'ingest', `99999998-abcd-remote-sha256-${hex}`), data.subarray(0, 123_456));
    proxy.reset();
    const d = await pullImage(store, `${proxy.host}/faults/bb:1`, { session: testSession() });
    expect(d.digest).toBe(pushed.digest);
    expect(proxy.seen.filter(isLayerGet).map((r) => r.range)).toEqual(['bytes=123456-']);
  });

  it('retries after a 500 and succeeds', async () => {
    proxy.reset();
    proxy.rule = (r, count) => (r.method === 'GET' && r.url.includes('/manifests/') && count === 1 ? { kind: 'respond', status: 500, body: 'boom' } : undefined);
    const d = await pullImage(await emptyStore(), `${proxy.host}/faults/bb:1`, { session: testSession() });
    proxy.rule = () => undefined;
    expect(d.digest).toBe(pushed.digest);
    expect(proxy.seen.filter((r) => r.url.includes('/manifests/')).map((r) => r.status)).toEqual([500, 200]);
  });

  it('honours Retry-After on 429', async () => {
    proxy.reset();
    proxy.rule = (r, count) => (isLayerGet(r) && count === 1 ? { kind: 'respond', status: 429, headers: { 'retry-after': '1' }, body: '{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}' } : undefined);
    const t0 = Date.now();
    const d = await pullImage(await emptyStore(), `${proxy.host}/faults/bb:1`, { session: testSession() });
    const waited = Date.now() - t0;
    proxy.rule = () => undefined;
    expect(d.digest).toBe(pushed.digest);
    expect(proxy.seen.filter(isLayerGet).map((r) => r.status)).toEqual([429, 200]);
    expect(waited).toBeGreaterThanOrEqual(900); // the server asked for one second
  });

  it('gives up after a bounded number of attempts with a temporary RegistryError', async () => {
    proxy.reset();
    proxy.rule = (r) => (r.url.includes('/manifests/') ? { kind: 'respond', status: 503, body: '{"errors":[{"code":"UNAVAILABLE","message":"down"}]}' } : undefined);
    const store = await emptyStore();
    const err = await pullImage(store, `${proxy.host}/faults/bb:1`, { session: testSession() }).catch((e: unknown) => e);
    proxy.rule = () => undefined;
    expect(err).toBeInstanceOf(RegistryError);
    expect((err as RegistryError).temporary).toBe(true);
    expect((err as RegistryError).code).toBe('UNAVAILABLE');
    expect(proxy.seen.filter((r) => r.url.includes('/manifests/')).length).toBe(4);
  });

  it('fails with TransportError when nothing listens', async () => {
    const { freePort } = await import('../helpers/registry.js');
    const port = await freePort();
    const err = await pullImage(await emptyStore(), `127.0.0.1:${port}/x/y:1`, { session: testSession() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    expect((err as Error).message).toMatch(/ECONNREFUSED/);
  });
});

describe('uploads', () => {
  it('uses chunked uploads above the threshold', async () => {
    proxy.reset();
    const fresh = await emptyStore(); // no source records, so nothing can be mounted
    await ensureBusybox(fresh.root);
    const d = await pushImage(fresh, BUSYBOX_REF, `${proxy.host}/faults/chunked:1`, { session: testSession(), compression: 'none', chunkThreshold: 1000, chunkSize: 512 * 1024 });
    expect(d.digest).toBe(pushed.digest);
    expect(proxy.seen.filter((r) => r.method === 'PATCH').length).toBeGreaterThanOrEqual(Math.ceil(layer.size / (512 * 1024)));
    const back = await pullImage(await emptyStore(), `${reg.host}/faults/chunked:1`, { session: testSession() });
    expect(back.digest).toBe(d.digest);
  });

  it('falls back to a monolithic upload when the registry refuses PATCH', async () => {
    proxy.reset();
    proxy.rule = (r) => (r.method === 'PATCH' ? { kind: 'respond', status: 405, body: '{"errors":[{"code":"UNSUPPORTED","message":"no chunks here"}]}' } : undefined);
    const fresh = await emptyStore();
    await ensureBusybox(fresh.root);
    const d = await pushImage(fresh, BUSYBOX_REF, `${proxy.host}/faults/mono:1`, { session: testSession(), compression: 'none', chunkThreshold: 1000 });
    proxy.rule = () => undefined;
    expect(d.digest).toBe(pushed.digest);
    expect(proxy.seen.some((r) => r.method === 'PATCH' && r.status === 405)).toBe(true);
    expect(proxy.seen.some((r) => r.method === 'PUT' && r.url.includes('/blobs/uploads/') && r.url.includes('digest=') && r.status === 201)).toBe(true);
  });

  it('restarts an upload whose connection dropped', async () => {
    const fresh = await emptyStore();
    await ensureBusybox(fresh.root);
    let cut = false;
    proxy.rule = (r) => {
      if (!cut && r.method === 'PUT' && r.url.includes('/blobs/uploads/') && r.url.includes(encodeURIComponent(layer.digest))) {
        cut = true;
        return { kind: 'reset' };
      }
      return undefined;
    };
    const events: TransferEvent[] = [];
    const d = await pushImage(fresh, BUSYBOX_REF, `${proxy.host}/faults/reset:1`, { session: testSession(), compression: 'none', onProgress: (e) => events.push(e) });
    expect(cut).toBe(true);
    expect(d.digest).toBe(pushed.digest);
    expect(events.some((e) => e.type === 'blob' && e.phase === 'retry' && e.digest === layer.digest)).toBe(true);
    const back = await pullImage(await emptyStore(), `${reg.host}/faults/reset:1`, { session: testSession() });
    expect(back.digest).toBe(d.digest);
  });

  it('a chunked upload continues where the registry got to after a dropped chunk', async () => {
    const fresh = await emptyStore();
    await ensureBusybox(fresh.root);
    proxy.rule = (r, count) => (r.method === 'PATCH' && count === 2 ? { kind: 'reset' } : undefined);
    const events: TransferEvent[] = [];
    const d = await pushImage(fresh, BUSYBOX_REF, `${proxy.host}/faults/chunk-resume:1`, {
      session: testSession(), compression: 'none', chunkThreshold: 1000, chunkSize: 512 * 1024, onProgress: (e) => events.push(e),
    });
    expect(d.digest).toBe(pushed.digest);
    // one upload session for the layer: resumed, not restarted
    expect(proxy.seen.filter((r) => r.method === 'POST' && r.url.includes('/blobs/uploads/')).length).toBe(2); // layer + config
    expect(proxy.seen.some((r) => r.method === 'GET' && r.url.includes('/blobs/uploads/') && r.status === 204)).toBe(true);
    expect(events.some((e) => e.type === 'blob' && e.phase === 'retry' && /resuming the upload/.test(e.message ?? ''))).toBe(true);
    const back = await pullImage(await emptyStore(), `${reg.host}/faults/chunk-resume:1`, { session: testSession() });
    expect(back.digest).toBe(d.digest);
  });

  it('mounts blobs from the source repository on the same registry', async () => {
    const store = await emptyStore();
    await pullImage(store, `${reg.host}/faults/bb:1`, { session: testSession() });
    const events: TransferEvent[] = [];
    const d = await pushImage(store, `${reg.host}/faults/bb:1`, `${reg.host}/other/copy:1`, { session: testSession(), compression: 'none', onProgress: (e) => events.push(e) });
    expect(d.digest).toBe(pushed.digest);
    expect(events.filter((e) => e.type === 'blob' && e.phase === 'mounted').length).toBe(2);
    expect(events.some((e) => e.type === 'blob' && e.phase === 'transfer')).toBe(false);
  });
});

describe('blob sources', () => {
  it('remembers where pulled blobs came from and mounts them when pushing under another name', async () => {
    const store = await emptyStore();
    const d = await pullImage(store, `${reg.host}/faults/bb:1`, { session: testSession() });
    // a local name on another registry: the image ref gives no mount source, the record does
    await store.tag('docker.io/library/renamed:1', d);
    const events: TransferEvent[] = [];
    const p = await pushImage(store, 'renamed:1', `${reg.host}/elsewhere/renamed:1`, { session: testSession(), compression: 'none', onProgress: (e) => events.push(e) });
    expect(p.digest).toBe(d.digest);
    expect(events.filter((e) => e.type === 'blob' && e.phase === 'mounted').length).toBe(2);
    const { sourcesOf } = await import('../../src/registry/sources.js');
    expect(await sourcesOf(store.root, layer.digest, reg.host)).toEqual(['elsewhere/renamed', 'faults/bb']);
  });
});

describe('authentication', () => {
  let basic: TestRegistry;
  let token: TestRegistry;
  beforeAll(async () => {
    basic = await startRegistry({ mode: 'basic' });
    token = await startRegistry({ mode: 'token', tokenPolicy: (user, _repo, asked) => (user === 'alice' ? asked : user === 'bob' ? asked.filter((a) => a === 'pull') : []) });
  });
  afterAll(async () => {
    await basic?.stop();
    await token?.stop();
  });

  it('bad Basic credentials: AuthError 401 naming the realm', async () => {
    const session = testSession(new StaticAuthenticator({ [basic.host]: { username: 'alice', password: 'nope' } }));
    const err = await pushImage(src, BUSYBOX_REF, `${basic.host}/a/b:1`, { session }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect((err as AuthError).status).toBe(401);
    expect((err as AuthError).realm).toBe('imgbuild-test-realm');
    expect((err as AuthError).code).toBe('UNAUTHORIZED');
    expect((err as Error).message).toContain('imgbuild-test-realm');
  });

  it('bad token-server credentials: AuthError 401 naming the token realm', async () => {
    const session = testSession(new StaticAuthenticator({ [token.host]: { username: 'alice', password: 'nope' } }));
    const err = await pullImage(await emptyStore(), `${token.host}/a/b:1`, { session }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect((err as AuthError).status).toBe(401);
    expect((err as AuthError).realm).toBe(token.token!.realm);
    expect((err as Error).message).toContain(token.token!.realm);
  });

  it('a token without push access is refused by the registry (401 after one fresh token)', async () => {
    const session = testSession(new StaticAuthenticator({ [token.host]: { username: 'bob', password: 'builder' } }));
    const err = await pushImage(src, BUSYBOX_REF, `${token.host}/bob/bb:1`, { session, compression: 'none' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect((err as AuthError).code).toBe('UNAUTHORIZED');
    // scopes asked per repository, with push
    expect(token.token!.log.some((l) => l.scopes.includes('repository:bob/bb:pull,push'))).toBe(true);
  });

  it('identity tokens are exchanged with the OAuth2 refresh-token POST', async () => {
    const reg2 = await startRegistry({ mode: 'token', refreshTokens: { 'refresh-abc': 'alice' } });
    try {
      const session = testSession(new StaticAuthenticator({ [reg2.host]: { identityToken: 'refresh-abc' } }));
      const d = await pushImage(src, BUSYBOX_REF, `${reg2.host}/id/bb:1`, { session, compression: 'none' });
      expect(d.digest).toBe(pushed.digest);
      expect(reg2.token!.log.some((l) => l.method === 'POST' && l.grant === 'refresh_token' && l.user === 'alice')).toBe(true);
      expect(reg2.token!.log.some((l) => l.method === 'GET')).toBe(false);
    } finally {
      await reg2.stop();
    }
  });

  it('tokens are cached per scope for the session', async () => {
    const session = testSession(new StaticAuthenticator({ [token.host]: { username: 'alice', password: 'wonderland' } }));
    const before = token.token!.log.length;
    await pushImage(src, BUSYBOX_REF, `${token.host}/cache/bb:1`, { session, compression: 'none' });
    await pullImage(await emptyStore(), `${token.host}/cache/bb:1`, { session });
    await pullImage(await emptyStore(), `${token.host}/cache/bb:1`, { session });
    const fetched = token.token!.log.slice(before);
    // one pull,push token for the push, one pull token shared by both pulls
    expect(fetched.map((l) => l.scopes.join(' '))).toEqual(['repository:cache/bb:pull,push', 'repository:cache/bb:pull']);
  });

  it('never sends credentials along a redirect to another host', async () => {
    const bproxy = await startFaultProxy(basic.url);
    const blobHost = await startBlobHost(basic.url, 'alice:wonderland');
    try {
      const session = testSession(new StaticAuthenticator({ [bproxy.host]: { username: 'alice', password: 'wonderland' } }));
      const d0 = await pushImage(src, BUSYBOX_REF, `${bproxy.host}/redir/bb:1`, { session, compression: 'none' });
      bproxy.reset();
      bproxy.rule = (r) => (r.method === 'GET' && r.url.includes('/blobs/sha256:') ? { kind: 'redirect', location: `${blobHost.url}${r.url}` } : undefined);
      const store = await emptyStore();
      const d = await pullImage(store, `${bproxy.host}/redir/bb:1`, { session });
      expect(d.digest).toBe(d0.digest);
      expect(blobHost.seen.length).toBeGreaterThan(0);
      expect(blobHost.seen.every((r) => r.authorization === undefined)).toBe(true);
      // while the registry itself did get them
      expect(bproxy.seen.filter((r) => r.url.includes('/blobs/')).every((r) => r.authorization?.startsWith('Basic '))).toBe(true);
      await validateStoredImage(store, d);
    } finally {
      await blobHost.stop();
      await bproxy.stop();
    }
  });
});

describe('transport policy', () => {
  it('speaks https to a TLS registry on loopback (self-signed, as Docker treats 127.0.0.0/8)', async () => {
    const treg = await startRegistry({ mode: 'basic', tls: true });
    try {
      const session = testSession(new StaticAuthenticator({ [treg.host]: { username: 'alice', password: 'wonderland' } }));
      const d = await pushImage(src, BUSYBOX_REF, `${treg.host}/tls/bb:1`, { session, compression: 'none' });
      const store = await emptyStore();
      expect((await pullImage(store, `${treg.host}/tls/bb:1`, { session })).digest).toBe(d.digest);
      const base = await session.client(treg.host).ping();
      expect(base.origin).toBe(`https://${treg.host}`);
      expect(await session.client(treg.host).verifyCredentials()).toBe('basic');
    } finally {
      await treg.stop();
    }
  });

  it('a loopback TLS registry that leaves a plain request unanswered is still reached over https', async () => {
    const treg = await startRegistry({ mode: 'none', tls: true });
    // In front of it, a port that forwards TLS connections and holds plain ones without a word.
    const held: Socket[] = [];
    const front = createNetServer((c) => {
      c.once('data', (first) => {
        if (first[0] !== 0x16) {
          held.push(c);
          return;
        }
        const up = connect(treg.port, '127.0.0.1', () => {
          up.write(first);
          c.pipe(up).pipe(c);
        });
        up.on('error', () => c.destroy());
        c.on('error', () => up.destroy());
      });
    });
    await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
    const session = testSession();
    // also when the ping hangs and the test times out, which a finally block would not see
    onTestFinished(async () => {
      for (const c of held) c.destroy();
      front.close();
      await session.close();
      await treg.stop();
    });
    const host = `127.0.0.1:${(front.address() as AddressInfo).port}`;
    expect((await session.client(host).ping()).origin).toBe(`https://${host}`);
    expect(held.length).toBe(1);
  });

  it('asks a loopback registry over plain http first, and no TLS attempt reaches one that speaks it', async () => {
    const session = testSession();
    expect((await session.client(proxy.host).ping()).origin).toBe(`http://${proxy.host}`);
    // a TLS ClientHello would be a connection of its own with no HTTP request on it
    expect(proxy.seen.map((r) => `${r.method} ${r.url}`)).toEqual(['GET /v2/']);
    expect(proxy.connections).toBe(1);
    await session.close();
  });

  it('falls back to plain http only for loopback registries', async () => {
    const session = testSession();
    expect((await session.client(reg.host).ping()).origin).toBe(`http://${reg.host}`);
    // `localhost` counts as loopback too
    const local = `localhost:${reg.port}`;
    expect((await session.client(local).ping()).origin).toBe(`http://${local}`);
    await session.close();
  });

  it('verifies login credentials against a token server', async () => {
    const treg = await startRegistry({ mode: 'token' });
    try {
      const good = testSession(new StaticAuthenticator({ [treg.host]: { username: 'alice', password: 'wonderland' } }));
      expect(await good.client(treg.host).verifyCredentials()).toBe('bearer');
      const bad = testSession(new StaticAuthenticator({ [treg.host]: { username: 'alice', password: 'x' } }));
      const err = await bad.client(treg.host).verifyCredentials().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AuthError);
      expect((err as AuthError).realm).toBe(treg.token!.realm);
    } finally {
      await treg.stop();
    }
  });

  it('an aborted pull stops with ABORTED and leaves blobs/ and index.json unchanged', async () => {
    // slow the layer down so the abort lands mid-transfer
    proxy.rule = (r) => (isLayerGet(r) ? { kind: 'close-after', bytes: 400_000 } : undefined);
    const store = await emptyStore();
    const before = await storeSnapshot(store.root);
    const ac = new AbortController();
    const err = await pullImage(store, `${proxy.host}/faults/bb:1`, {
      session: testSession(),
      signal: ac.signal,
      onProgress: (e) => {
        if (e.type === 'blob' && e.phase === 'transfer') ac.abort(new Error('user pressed ^C'));
      },
    }).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('ABORTED');
    expect(await storeSnapshot(store.root)).toEqual(before);
  });
});
