/**
 * The certificate authorities imgbuild's verifying TLS connections trust.
 *
 * Normally Node's default store: its bundled roots plus NODE_EXTRA_CA_CERTS, which Node loads while
 * it starts. The `imgbuild` executable defers that load (bin/imgbuild: parsing a system bundle
 * costs ~34 ms of every command's start) and passes the file as IMGBUILD_DEFERRED_CA_CERTS; then
 * the same set is given explicitly, bundled roots plus that file, read only when a verifying TLS
 * connection is made. An unreadable file is ignored, as Node ignores it (with a warning) at start.
 */
import { readFileSync } from 'node:fs';

export const DEFERRED_CA_ENV = 'IMGBUILD_DEFERRED_CA_CERTS';

/** `ca` for tls.connect, or undefined when Node's default store already holds the right set. */
export function deferredTrust(env: NodeJS.ProcessEnv): string[] | undefined {
  const file = env[DEFERRED_CA_ENV];
  if (!file) return undefined;
  let extra: string;
  try {
    extra = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  // node:tls is loaded here, on the first verifying connection, not with this module: a pull from
  // a loopback registry makes none.
  const { rootCertificates } = process.getBuiltinModule('node:tls');
  return [...rootCertificates, extra];
}
