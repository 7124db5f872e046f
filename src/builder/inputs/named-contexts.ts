/**
 * `build --build-context name=value` (buildx, BuildKit dockerui NamedContext): the value is an
 * image (`docker-image://REF`), an image in an OCI layout (`oci-layout://PATH[:TAG][@DIGEST]`), a
 * git repository or an http(s) URL, or a local directory. The name is normalized as an image
 * name (`alpine`, `docker.io/library/alpine:latest` and `alpine:latest` are one name), so that a
 * FROM, `COPY --from`, `RUN --mount from=` or a stage of that name finds it. Parsing only.
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ImgbuildError, InvalidArgumentError, NotFoundError } from '../../errors.js';
import { familiarReference, parseReference } from '../../image/reference.js';
import { isHttpUrl, parseGitRef, type GitRef } from './git-url.js';

export type NamedContextSource =
  | { kind: 'image'; ref: string }
  | { kind: 'scratch' }
  | { kind: 'oci-layout'; path: string; tag?: string; digest?: string }
  | { kind: 'git'; ref: GitRef }
  | { kind: 'url'; url: string }
  | { kind: 'dir'; path: string };

export interface NamedContext {
  /** The normalized name. */
  name: string;
  /** The value as given, for messages. */
  value: string;
  source: NamedContextSource;
}

/** The name as BuildKit compares them: an image name in its familiar form without `:latest`. */
export function normalizeContextName(name: string): string {
  let r;
  try {
    r = parseReference(name);
  } catch (e) {
    throw new InvalidArgumentError(`invalid context name ${name}: ${(e as Error).message}`, { cause: e });
  }
  return familiarReference(r).replace(/:latest$/, '');
}

/** `oci-layout://PATH[:TAG][@DIGEST]` (buildx's ocilayout.Parse). */
function parseOciLayout(rest: string, cwd: string): NamedContextSource {
  let path = rest;
  let digest: string | undefined;
  const at = path.lastIndexOf('@');
  if (at >= 0 && /^[a-z0-9]+:[0-9a-f]+$/.test(path.slice(at + 1))) {
    digest = path.slice(at + 1);
    path = path.slice(0, at);
  }
  let tag: string | undefined;
  const colon = path.lastIndexOf(':');
  if (colon > path.lastIndexOf('/')) {
    tag = path.slice(colon + 1);
    path = path.slice(0, colon);
  }
  if (path === '') throw new InvalidArgumentError(`oci-layout://${rest}: no path`);
  return { kind: 'oci-layout', path: resolve(cwd, path), ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

/** Reads one `--build-context` value (relative paths against `cwd`). */
export async function parseNamedContext(flag: string, cwd: string): Promise<NamedContext> {
  const eq = flag.indexOf('=');
  if (eq < 0) throw new InvalidArgumentError(`invalid context value: ${flag}, expected key=value`);
  const name = normalizeContextName(flag.slice(0, eq));
  const value = flag.slice(eq + 1);
  const at = (source: NamedContextSource): NamedContext => ({ name, value, source });
  if (value.startsWith('docker-image://')) {
    const ref = value.slice('docker-image://'.length);
    if (ref === 'scratch') return at({ kind: 'scratch' });
    try {
      parseReference(ref);
    } catch (e) {
      throw new InvalidArgumentError(`--build-context ${name}: ${(e as Error).message}`, { cause: e });
    }
    return at({ kind: 'image', ref });
  }
  if (value.startsWith('oci-layout://')) return at(parseOciLayout(value.slice('oci-layout://'.length), cwd));
  if (value.startsWith('target:')) throw new ImgbuildError('NOT_IMPLEMENTED', `--build-context ${name}: target: contexts are made by bake, which imgbuild does not have`);
  const git = parseGitRef(value);
  if (git) return at({ kind: 'git', ref: git });
  if (isHttpUrl(value)) return at({ kind: 'url', url: value });
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(value);
  if (scheme) throw new InvalidArgumentError(`unsupported context source ${scheme[1]} for ${name}`);
  const path = resolve(cwd, value);
  const st = await stat(path).catch((e: NodeJS.ErrnoException) => {
    throw new NotFoundError(`failed to get build context ${name}: ${value}: ${e.code === 'ENOENT' ? 'no such file or directory' : e.message}`, { cause: e });
  });
  if (!st.isDirectory()) throw new InvalidArgumentError(`failed to get build context path ${value}: not a directory`);
  return at({ kind: 'dir', path });
}

/** The `--build-context` values by normalized name (a later one for the same name wins). */
export async function parseNamedContexts(flags: string[], cwd: string): Promise<Map<string, NamedContext>> {
  const out = new Map<string, NamedContext>();
  for (const f of flags) {
    const c = await parseNamedContext(f, cwd);
    out.set(c.name, c);
  }
  return out;
}

/**
 * The named context a FROM, `--from` or stage name refers to, if any. `scratch` and `context`
 * are never looked up (BuildKit); a name that is no image name matches nothing.
 */
export function findNamedContext(contexts: ReadonlyMap<string, NamedContext>, name: string): NamedContext | undefined {
  if (contexts.size === 0) return undefined;
  const l = name.toLowerCase();
  if (l === 'scratch' || l === 'context') return undefined;
  try {
    return contexts.get(normalizeContextName(name));
  } catch {
    return undefined;
  }
}
