/**
 * The two pieces of undici the registry client uses — the connection-pooling Agent and the
 * promise `request` API — loaded from their own modules instead of undici's index. The index
 * requires every dispatcher, the mock agents, fetch, websocket and the cache stores: 51 ms of
 * module loading on this machine (median of 3, `await import('undici')`) against 19 ms for these
 * two, and more under load (~100 ms in a `node --cpu-prof` of `imgbuild pull` on a busy host),
 * paid by every pull and push before the first byte moves. undici has no `exports` map, so the
 * deep paths are public in practice; they are pinned by the undici@7 dependency, and the types
 * come from undici's own declarations.
 */
import type { Agent as UndiciAgent, Dispatcher } from 'undici';
// Static imports, so that the CLI bundle (scripts/build.mjs) carries these modules in its code
// cache: loaded from node_modules they cost ~12 ms of every pull and push (`--cpu-prof`).
import AgentImpl from 'undici/lib/dispatcher/agent.js';
import apiRequestImpl from 'undici/lib/api/api-request.js';

export const Agent = AgentImpl as unknown as typeof UndiciAgent;
export type Agent = UndiciAgent;

const apiRequest = apiRequestImpl as unknown as (
  this: Dispatcher,
  o: Dispatcher.RequestOptions,
) => Promise<Dispatcher.ResponseData>;

/** undici's `request(url, { dispatcher, ... })`, for an absolute URL. */
export function httpRequest(
  url: URL,
  o: Omit<Dispatcher.RequestOptions, 'origin' | 'path'> & { dispatcher: Dispatcher },
): Promise<Dispatcher.ResponseData> {
  const { dispatcher, ...rest } = o;
  return apiRequest.call(dispatcher, { ...rest, origin: url.origin, path: `${url.pathname}${url.search}` });
}

/** How much of a response body nobody reads is consumed to keep its connection (as undici's dump). */
const DISCARD_LIMIT = 128 * 1024;

/**
 * Reads and drops a response body whose content does not matter (a ping, a HEAD, an upload's
 * reply), so its connection goes back to the pool for the next request. undici's own
 * `body.dump()` resolves on the stream's `close`, and a request made then found the connection
 * not yet free: each one opened a new connection (seen with NODE_DEBUG=undici; the ping's
 * connection was never used for the manifest). A body longer than the limit is destroyed, which
 * closes its connection, as dump does.
 */
export async function discardBody(body: Dispatcher.ResponseData['body']): Promise<void> {
  let n = 0;
  try {
    for await (const chunk of body) {
      n += (chunk as Buffer).length;
      if (n > DISCARD_LIMIT) {
        body.destroy();
        return;
      }
    }
  } catch {
    // a broken body of a response we do not read: its status is what counts
  }
}
