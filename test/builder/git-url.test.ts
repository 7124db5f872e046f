/**
 * Git references read as BuildKit reads them (its dfgitutil TestParseGitRef cases): which words
 * are git remotes at all, the remote git is given, the ref and subdir of a fragment or a query.
 */
import { describe, it, expect } from 'vitest';
import { parseGitRef, redactRemote } from '../../src/builder/inputs/git-url.js';

const ref = (s: string): { remote: string; ref: string; subdir: string; local?: boolean } | undefined => {
  const g = parseGitRef(s);
  return g && { remote: g.remote, ref: g.ref, subdir: g.subdir, ...(g.indistinguishableFromLocal ? { local: true } : {}) };
};

describe('parseGitRef', () => {
  it('takes http(s) URLs only when the path ends in .git', () => {
    expect(ref('https://example.com/')).toBeUndefined();
    expect(ref('https://example.com/foo')).toBeUndefined();
    expect(ref('https://example.com/foo.git/')).toBeUndefined();
    expect(ref('https://example.com/foo.git.bar')).toBeUndefined();
    expect(ref('http://github.com/docker/docker.git:#branch')).toBeUndefined();
    expect(ref('https://example.com/foo.git')).toEqual({ remote: 'https://example.com/foo.git', ref: '', subdir: '' });
    expect(ref('https://example.com/foo.git#release/1.2')).toEqual({ remote: 'https://example.com/foo.git', ref: 'release/1.2', subdir: '' });
    expect(ref('https://foo:bar@github.com/moby/buildkit.git')?.remote).toBe('https://foo:bar@github.com/moby/buildkit.git');
  });

  it('takes git://, ssh:// and scp-like remotes whatever their path', () => {
    expect(ref('git://example.com/foo')).toEqual({ remote: 'git://example.com/foo', ref: '', subdir: '' });
    expect(ref('ssh://git@example.com:2222/foo#main')).toEqual({ remote: 'ssh://git@example.com:2222/foo', ref: 'main', subdir: '' });
    expect(ref('git@github.com:moby/buildkit')).toEqual({ remote: 'git@github.com:moby/buildkit', ref: '', subdir: '' });
    expect(ref('git@bitbucket.org:atlassianlabs/atlassian-docker.git')?.remote).toBe('git@bitbucket.org:atlassianlabs/atlassian-docker.git');
    expect(ref('git@github.com:moby/buildkit.git?subdir=/subdir#v1.0.0')).toEqual({ remote: 'git@github.com:moby/buildkit.git', ref: 'v1.0.0', subdir: 'subdir' });
    expect(parseGitRef('git@github.com:moby/buildkit')?.scheme).toBe('ssh');
  });

  it('takes github.com/... as a context only (indistinguishable from a local path), and never ./ or other schemes', () => {
    expect(ref('github.com/moby/buildkit#master')).toEqual({ remote: 'https://github.com/moby/buildkit', ref: 'master', subdir: '', local: true });
    expect(ref('custom.xyz/moby/buildkit.git')).toBeUndefined();
    expect(ref('./.git')).toBeUndefined();
    expect(ref('.git')).toBeUndefined();
    expect(ref('ftp://example.com/foo.git')).toBeUndefined();
    expect(ref('/abs/path/repo.git')).toBeUndefined();
  });

  it('splits #ref:subdir, the subdir made clean', () => {
    expect(ref('https://github.com/foo/bar.git#baz/qux:quux/quuz')).toEqual({ remote: 'https://github.com/foo/bar.git', ref: 'baz/qux', subdir: 'quux/quuz' });
    expect(ref('https://github.com/docker/docker.git#:myfolder')).toEqual({ remote: 'https://github.com/docker/docker.git', ref: '', subdir: 'myfolder' });
    expect(ref('https://h/r.git#main:../../etc/./x/')).toEqual({ remote: 'https://h/r.git', ref: 'main', subdir: 'etc/x' });
  });

  it('reads the query keys, refusing conflicts and unknown keys', () => {
    expect(ref('https://github.com/docker/docker.git?ref=v1.0.0&subdir=/subdir')).toEqual({ remote: 'https://github.com/docker/docker.git', ref: 'v1.0.0', subdir: 'subdir' });
    expect(ref('https://github.com/moby/buildkit.git?subdir=/subdir#v1.0.0')).toEqual({ remote: 'https://github.com/moby/buildkit.git', ref: 'v1.0.0', subdir: 'subdir' });
    expect(ref('https://github.com/moby/buildkit.git?tag=v1.0.0')?.ref).toBe('refs/tags/v1.0.0');
    expect(ref('github.com/moby/buildkit?tag=v1.0.0')?.ref).toBe('refs/tags/v1.0.0');
    expect(ref('https://github.com/moby/buildkit.git?branch=v1.0')?.ref).toBe('refs/heads/v1.0');
    const g = parseGitRef('https://h/r.git?keep-git-dir&submodules=false&mtime=commit&checksum=abc123');
    expect([g?.keepGitDir, g?.submodules, g?.mtime, g?.checksum]).toEqual([true, false, 'commit', 'abc123']);
    expect(() => parseGitRef('https://github.com/moby/buildkit.git?ref=v1.0.0#v1.2.3')).toThrow(/ref conflicts/);
    expect(() => parseGitRef('https://github.com/moby/buildkit.git?ref=v1.0.0&tag=v1.2.3')).toThrow(/ref conflicts/);
    expect(() => parseGitRef('https://github.com/moby/buildkit.git?tag=v1.0.0&branch=v1.0')).toThrow(/branch conflicts with tag/);
    expect(() => parseGitRef('https://h/r.git?mtime=now')).toThrow(/invalid mtime value/);
    expect(() => parseGitRef('https://h/r.git?bogus=1')).toThrow(/unexpected git URL query "bogus"/);
    expect(() => parseGitRef('https://h/r.git?ref=')).toThrow(/has no value/);
  });

  it('redacts a password from a remote', () => {
    expect(redactRemote('https://user:secret@h/r.git')).toBe('https://user:xxxxx@h/r.git');
    expect(redactRemote('git@h:r.git')).toBe('git@h:r.git');
  });
});
