/**
 * Image references, parsed and normalised the way Docker does (distribution/reference):
 * `busybox` is `docker.io/library/busybox:latest`, a first component with a dot, a colon or
 * equal to `localhost` is a registry host (with optional port), and `@alg:hex` pins a digest.
 */
import { parseDigest, type Digest } from './digest.js';
import { InvalidReferenceError } from './errors.js';

export const DEFAULT_REGISTRY = 'docker.io';
export const DEFAULT_TAG = 'latest';
/** Where `docker.io` is actually served. */
export const DOCKER_HUB_HOST = 'registry-1.docker.io';

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const MAX_NAME = 255;

export interface Reference {
  /** Registry host, possibly with `:port` (`docker.io`, `127.0.0.1:5000`). */
  readonly registry: string;
  /** Repository path inside the registry (`library/busybox`). */
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: Digest;
}

function validDomain(d: string): boolean {
  let host = d;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    if (end < 0) return false;
    const rest = host.slice(end + 1);
    return rest === '' || /^:\d+$/.test(rest);
  }
  const colon = host.lastIndexOf(':');
  if (colon >= 0) {
    if (!/^\d+$/.test(host.slice(colon + 1))) return false;
    host = host.slice(0, colon);
  }
  return host.split('.').every((c) => DOMAIN_COMPONENT.test(c));
}

export function parseReference(input: string): Reference {
  const s = input.trim();
  if (s === '') throw new InvalidReferenceError(input, 'empty reference');
  let rest = s;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    try {
      digest = parseDigest(rest.slice(at + 1));
    } catch (e) {
      throw new InvalidReferenceError(input, (e as Error).message);
    }
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw new InvalidReferenceError(input, `invalid tag ${JSON.stringify(tag)}`);
  }
  if (rest === '') throw new InvalidReferenceError(input, 'missing repository name');
  let registry = DEFAULT_REGISTRY;
  let path = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase()) {
      if (!validDomain(first)) throw new InvalidReferenceError(input, `invalid registry host ${JSON.stringify(first)}`);
      registry = first;
      path = rest.slice(slash + 1);
    }
  }
  if (registry === 'index.docker.io' || registry === DOCKER_HUB_HOST) registry = DEFAULT_REGISTRY;
  if (path !== path.toLowerCase()) throw new InvalidReferenceError(input, 'repository name must be lowercase');
  const parts = path.split('/');
  for (const p of parts) {
    if (!COMPONENT.test(p)) throw new InvalidReferenceError(input, `invalid repository component ${JSON.stringify(p)}`);
  }
  if (registry === DEFAULT_REGISTRY && parts.length === 1) path = `library/${path}`;
  if (registry.length + 1 + path.length > MAX_NAME) {
    throw new InvalidReferenceError(input, `repository name longer than ${MAX_NAME} characters`);
  }
  if (tag === undefined && digest === undefined) tag = DEFAULT_TAG;
  return { registry, repository: path, ...(tag !== undefined ? { tag } : {}), ...(digest ? { digest } : {}) };
}

/** `registry/repository` */
export function repositoryName(r: Reference): string {
  return `${r.registry}/${r.repository}`;
}

/** The full normalised form: `docker.io/library/busybox:latest`, `host/repo@sha256:...`. */
export function formatReference(r: Reference): string {
  let s = repositoryName(r);
  if (r.tag !== undefined) s += `:${r.tag}`;
  if (r.digest !== undefined) s += `@${r.digest}`;
  return s;
}

/** Docker's familiar form for display: `busybox:latest`, `user/app:1`, `ghcr.io/o/r:t`. */
export function familiarName(r: Reference): string {
  let repo = repositoryName(r);
  if (r.registry === DEFAULT_REGISTRY) {
    repo = r.repository.startsWith('library/') && r.repository.split('/').length === 2 ? r.repository.slice(8) : r.repository;
  }
  return repo;
}

export function familiarReference(r: Reference): string {
  let s = familiarName(r);
  if (r.tag !== undefined) s += `:${r.tag}`;
  if (r.digest !== undefined) s += `@${r.digest}`;
  return s;
}

/** The host to contact for a registry name (docker.io is served from registry-1.docker.io). */
export function registryHost(registry: string): string {
  return registry === DEFAULT_REGISTRY ? DOCKER_HUB_HOST : registry;
}

/** Loopback registries may use plain http without asking, as Docker allows. */
export function isLoopbackRegistry(registry: string): boolean {
  const host = registry.startsWith('[') ? registry.slice(1, registry.indexOf(']')) : registry.replace(/:\d+$/, '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
