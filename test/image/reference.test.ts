import { describe, expect, it } from 'vitest';
import { parseReference, formatReference, familiarReference, familiarName, isLoopbackRegistry, registryHost } from '../../src/image/reference.js';
import { InvalidReferenceError } from '../../src/image/errors.js';

const D = `sha256:${'ab'.repeat(32)}`;

describe('parseReference normalises like Docker', () => {
  it.each([
    ['busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36', 'busybox:1.36'],
    ['library/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['docker.io/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['index.docker.io/library/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['user/app:v1', 'docker.io/user/app:v1', 'user/app:v1'],
    ['localhost/app', 'localhost/app:latest', 'localhost/app:latest'],
    ['localhost:5000/a/b:t', 'localhost:5000/a/b:t', 'localhost:5000/a/b:t'],
    ['127.0.0.1:5000/x', '127.0.0.1:5000/x:latest', '127.0.0.1:5000/x:latest'],
    ['ghcr.io/o/r/deep/path:tag-1.2_3', 'ghcr.io/o/r/deep/path:tag-1.2_3', 'ghcr.io/o/r/deep/path:tag-1.2_3'],
    ['[::1]:5000/app:1', '[::1]:5000/app:1', '[::1]:5000/app:1'],
    ['a__b/c.d-e:x', 'docker.io/a__b/c.d-e:x', 'a__b/c.d-e:x'],
    [`busybox@${D}`, `docker.io/library/busybox@${D}`, `busybox@${D}`],
    [`busybox:1@${D}`, `docker.io/library/busybox:1@${D}`, `busybox:1@${D}`],
    [`localhost:5000/a@${D}`, `localhost:5000/a@${D}`, `localhost:5000/a@${D}`],
  ])('%s → %s', (input, full, familiar) => {
    const r = parseReference(input);
    expect(formatReference(r)).toBe(full);
    expect(familiarReference(r)).toBe(familiar);
  });

  it('splits registry, repository, tag and digest', () => {
    expect(parseReference('localhost:5000/a/b:t')).toEqual({ registry: 'localhost:5000', repository: 'a/b', tag: 't' });
    expect(parseReference(`busybox@${D}`)).toEqual({ registry: 'docker.io', repository: 'library/busybox', digest: D });
    expect(familiarName(parseReference('docker.io/library/busybox:1'))).toBe('busybox');
    expect(familiarName(parseReference('docker.io/library/a/b'))).toBe('library/a/b');
  });

  it('a port is a registry, not a tag', () => {
    const r = parseReference('myhost:5000/repo');
    expect(r.registry).toBe('myhost:5000');
    expect(r.tag).toBe('latest');
  });

  it.each([
    ['', 'empty'],
    ['Busybox', 'uppercase'],
    ['docker.io/Library/busybox', 'uppercase path'],
    ['busybox:', 'empty tag'],
    ['busybox:-bad', 'tag starting with -'],
    [`busybox:${'t'.repeat(129)}`, 'tag too long'],
    ['busybox@sha256:abc', 'short digest'],
    [`busybox@sha256:${'AB'.repeat(32)}`, 'uppercase digest'],
    ['a//b', 'empty component'],
    ['-a/b', 'component starting with -'],
    ['a/b_', 'trailing separator'],
    ['host:port/x', 'non-numeric port'],
    ['bad_host.com/x', 'underscore in host'],
    [`${'a'.repeat(256)}`, 'name too long'],
    ['busy box', 'space'],
  ])('refuses %j (%s)', (input) => {
    expect(() => parseReference(input)).toThrow(InvalidReferenceError);
  });

  it('knows which registries are loopback and where docker.io lives', () => {
    expect(isLoopbackRegistry('localhost:5000')).toBe(true);
    expect(isLoopbackRegistry('127.0.0.1:5000')).toBe(true);
    expect(isLoopbackRegistry('[::1]:5000')).toBe(true);
    expect(isLoopbackRegistry('example.com')).toBe(false);
    expect(registryHost('docker.io')).toBe('registry-1.docker.io');
    expect(registryHost('ghcr.io')).toBe('ghcr.io');
  });
});
