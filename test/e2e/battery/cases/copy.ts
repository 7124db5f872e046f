/** COPY: wildcards, trailing slashes, relative destinations, symlinks, ownership, --chmod, --link. */
import type { Case } from '../types.js';
import { addUser, lines, tarBytes } from './util.js';

const BK_COPY = 'buildkit frontend/dockerfile/dockerfile_copy_test.go';
const BK_CORE = 'buildkit frontend/dockerfile/dockerfile_core_test.go';
const MOBY_CLI = 'moby integration-cli/docker_cli_build_test.go';

const WILDCARD_FILES = {
  'foo.go': 'foo-contents',
  'bar.go': 'bar-contents',
  'sub/dir1/dir2/foo': 'foo-contents',
};

export const copyCases: Case[] = [
  {
    name: 'copy-wildcards',
    upstream: `${BK_COPY}:testCopyWildcards`,
    dockerfile: `FROM scratch
COPY *.go /gofiles/
COPY f*.go foo2.go
COPY sub/* /subdest/
COPY sub/*/dir2/foo /subdest2/
COPY sub/*/dir2/foo /subdest3/bar
COPY . all/
COPY sub/dir1/ subdest4
COPY sub/dir1/. subdest5
COPY sub/dir1 subdest6
`,
    files: WILDCARD_FILES,
    expect: {
      files: {
        'gofiles/foo.go': 'foo-contents',
        'gofiles/bar.go': 'bar-contents',
        'foo2.go': 'foo-contents',
        'subdest/dir2/foo': 'foo-contents',
        'subdest2/foo': 'foo-contents',
        'subdest3/bar': 'foo-contents',
        'all/foo.go': 'foo-contents',
        'all/sub/dir1/dir2/foo': 'foo-contents',
        'subdest4/dir2/foo': 'foo-contents',
        'subdest5/dir2/foo': 'foo-contents',
        'subdest6/dir2/foo': 'foo-contents',
      },
      absent: ['subdest/dir1', 'subdest6/dir1'],
    },
  },
  {
    name: 'copy-empty-wildcard',
    upstream: `${BK_COPY}:testEmptyWildcard`,
    dockerfile: 'FROM scratch\nCOPY foo nomatch* /\n',
    files: { foo: 'contents0' },
    expect: { files: { foo: 'contents0' } },
  },
  {
    name: 'copy-wildcard-in-name',
    upstream: `${MOBY_CLI}:TestBuildCopyWildcardInName`,
    dockerfile: 'FROM busybox\nCOPY *.txt /tmp/\n',
    files: { '*.txt': 'hi there' },
    expect: { files: { 'tmp/*.txt': 'hi there' } },
  },
  {
    name: 'copy-wildcard-files-and-dirs',
    upstream: `${MOBY_CLI}:TestBuildCopyWildcard`,
    dockerfile: `FROM busybox
COPY file*.txt /tmp/
RUN mkdir /tmp1
COPY dir* /tmp1/
RUN mkdir /tmp2
COPY dir/*dir /tmp2/
`,
    files: { 'file1.txt': 'test1', 'file2.txt': 'test2', 'dir/nested_file': 'nested file', 'dir/nested_dir/nest_nest_file': '2 times nested', dirt: 'dirty' },
    expect: {
      files: {
        'tmp/file1.txt': 'test1',
        'tmp/file2.txt': 'test2',
        'tmp1/dirt': 'dirty',
        'tmp1/nested_file': 'nested file',
        'tmp1/nested_dir/nest_nest_file': '2 times nested',
        'tmp2/nest_nest_file': '2 times nested',
      },
    },
  },
  {
    name: 'copy-dest-trailing-slash',
    upstream: `${BK_COPY}:testPreserveDestDirSlash`,
    dockerfile: 'FROM busybox\nCOPY testfile /sample/\n',
    files: { testfile: 'contents0' },
    expect: { files: { 'sample/testfile': 'contents0', sample: { type: 'dir', mode: 0o755, owner: '0:0' } } },
  },
  {
    name: 'copy-dest-no-slash-renames',
    upstream: `${MOBY_CLI}:TestBuildCopySingleFileToNonExistDir`,
    dockerfile: 'FROM busybox\nCOPY test_file /test_dir/renamed\n',
    files: { test_file: 'x' },
    expect: { files: { 'test_dir/renamed': 'x', test_dir: { type: 'dir', mode: 0o755 } } },
  },
  {
    name: 'copy-to-existing-dir',
    upstream: `${MOBY_CLI}:TestBuildCopySingleFileToExistDir`,
    dockerfile: 'FROM busybox\nRUN mkdir /exists && touch /exists/exists_file && chown -R 1:1 /exists\nCOPY test_file /exists\n',
    files: { test_file: 'y' },
    expect: { files: { 'exists/test_file': { content: 'y', owner: '0:0' }, exists: { type: 'dir', owner: '1:1' }, 'exists/exists_file': { owner: '1:1' } } },
  },
  {
    name: 'copy-empty-dest-is-workdir',
    upstream: `${BK_COPY}:testEmptyDestDir`,
    dockerfile: 'FROM busybox\nENV empty=""\nWORKDIR /w\nCOPY testfile $empty\n',
    files: { testfile: 'contents0' },
    expect: { files: { 'w/testfile': 'contents0' } },
  },
  {
    name: 'copy-link-dot-dest',
    upstream: `${BK_COPY}:testCopyLinkDotDestDir`,
    buildahFails: 'buildah 1.28 has no COPY --link',
    dockerfile: 'FROM busybox\nWORKDIR /var/www\nCOPY --link testfile .\nRUN [ "$(cat testfile)" = "contents0" ]\n',
    files: { testfile: 'contents0' },
    expect: { files: { 'var/www/testfile': 'contents0' } },
  },
  {
    name: 'copy-link-empty-dest',
    upstream: `${BK_COPY}:testCopyLinkEmptyDestDir`,
    buildahFails: 'buildah 1.28 has no COPY --link',
    dockerfile: 'FROM busybox\nWORKDIR /var/www\nENV empty=""\nCOPY --link testfile $empty\nRUN [ "$(cat testfile)" = "contents0" ]\n',
    files: { testfile: 'contents0' },
    expect: { files: { 'var/www/testfile': 'contents0' } },
  },
  {
    name: 'copy-file-dot-with-workdir',
    upstream: `${MOBY_CLI}:TestBuildCopyFileDotWithWorkdir`,
    dockerfile: 'FROM busybox\nWORKDIR /foo\nCOPY file .\nRUN ["cat", "/foo/file"]\n',
    files: { file: 'content' },
    expect: { files: { 'foo/file': 'content' }, config: { WorkingDir: '/foo' } },
  },
  {
    name: 'copy-relative-paths',
    upstream: `${BK_COPY}:testCopyRelative / ${MOBY_CLI}:TestBuildRelativeCopy`,
    dockerfile: `FROM busybox
WORKDIR /test1
WORKDIR test2
RUN sh -c "[ "$PWD" = '/test1/test2' ]"
COPY foo ./
ADD foo ./bar/baz
COPY foo ./bar/baz2
WORKDIR ..
COPY foo ./
COPY foo /test3/
WORKDIR /test4
COPY . .
WORKDIR /test5/test6
COPY foo ../
`,
    files: { foo: 'hello' },
    expect: {
      files: {
        'test1/test2/foo': 'hello',
        'test1/test2/bar/baz': 'hello',
        'test1/test2/bar/baz2': 'hello',
        'test1/foo': 'hello',
        'test3/foo': 'hello',
        'test4/foo': 'hello',
        'test5/foo': 'hello',
        'test5/test6': { type: 'dir' },
      },
      config: { WorkingDir: '/test5/test6' },
    },
  },
  {
    name: 'copy-dir-contents-to-root',
    upstream: `${MOBY_CLI}:TestBuildCopyDirContentToRoot`,
    dockerfile: 'FROM busybox\nCOPY test_dir /\n',
    files: { 'test_dir/test_file': 'tf', 'test_dir/sub/inner': 'in' },
    expect: { files: { test_file: 'tf', 'sub/inner': 'in' }, absent: ['test_dir'] },
  },
  {
    name: 'copy-dir-contents-to-existing-dir',
    upstream: `${MOBY_CLI}:TestBuildCopyDirContentToExistDir`,
    dockerfile: 'FROM busybox\nRUN mkdir /exists && chown 1:1 /exists\nCOPY test_dir/ /exists/\n',
    files: { 'test_dir/test_file': 'tf' },
    expect: { files: { 'exists/test_file': { content: 'tf', owner: '0:0' }, exists: { owner: '1:1' } } },
  },
  {
    name: 'copy-whole-dir-keeps-modes',
    upstream: `${MOBY_CLI}:TestBuildCopyWholeDirToRoot`,
    dockerfile: 'FROM busybox\nCOPY test_dir /test_dir\n',
    files: { 'test_dir/test_file': { content: 'tf', mode: 0o640 }, 'test_dir/x': { content: '#!/bin/sh\n', mode: 0o755 }, 'test_dir/sub': { dir: true, mode: 0o700 } },
    expect: {
      files: {
        'test_dir/test_file': { content: 'tf', mode: 0o640, owner: '0:0' },
        'test_dir/x': { mode: 0o755 },
        'test_dir/sub': { type: 'dir', mode: 0o700 },
      },
    },
  },
  {
    name: 'copy-override-files',
    upstream: `${BK_COPY}:testCopyOverrideFiles`,
    dockerfile: `FROM scratch
COPY sub sub
COPY sub sub
COPY files/foo.go dest/foo.go
COPY files/foo.go dest/foo.go
COPY files dest
`,
    files: { 'sub/dir1/dir2/foo': 'foo-contents', 'files/foo.go': 'foo.go-contents' },
    expect: { files: { 'sub/dir1/dir2/foo': 'foo-contents', 'dest/foo.go': 'foo.go-contents' } },
  },
  {
    name: 'copy-var-substitution',
    upstream: `${BK_COPY}:testCopyVarSubstitution`,
    dockerfile: 'FROM scratch\nENV FOO bar\nCOPY $FOO baz\n',
    files: { bar: 'bar-contents' },
    expect: { files: { baz: 'bar-contents' } },
  },
  {
    name: 'copy-unicode-paths',
    upstream: `${BK_COPY}:testCopyUnicodePath`,
    dockerfile: 'FROM busybox\nCOPY test-äöü.txt /\nCOPY test-%C3%A4%C3%B6%C3%BC.txt /\nCOPY test+aou.txt /\n',
    files: { 'test-äöü.txt': 'foo', 'test-%C3%A4%C3%B6%C3%BC.txt': 'bar', 'test+aou.txt': 'baz' },
    expect: { files: { 'test-äöü.txt': 'foo', 'test-%C3%A4%C3%B6%C3%BC.txt': 'bar', 'test+aou.txt': 'baz' } },
  },
  {
    name: 'copy-symlinks-followed',
    upstream: `${BK_COPY}:testCopySymlinks`,
    dockerfile: 'FROM scratch\nCOPY foo /\nCOPY sub/l* alllinks/\n',
    files: {
      bar: 'bar-contents',
      foo: { symlink: 'bar' },
      'sub/lfile': 'lfile-contents',
      'sub/l0': { symlink: 'subfile' },
      'sub/subfile': 'subfile-contents',
      'sub/l1': { symlink: 'second' },
      'sub/second': { symlink: 'baz' },
      'sub/baz': 'baz-contents',
    },
    expect: {
      files: {
        foo: { type: 'file', content: 'bar-contents' },
        'alllinks/l0': { type: 'file', content: 'subfile-contents' },
        'alllinks/lfile': 'lfile-contents',
        'alllinks/l1': { type: 'file', content: 'baz-contents' },
      },
    },
  },
  {
    name: 'copy-symlink-inside-dir-kept',
    upstream: `${BK_COPY}:testCopyFollowAllSymlinks`,
    dockerfile: 'FROM scratch\nCOPY foo /\nCOPY foo/sub bar\n',
    files: { bar: 'bar-contents', 'foo/sub': { symlink: '../bar' } },
    expect: { files: { sub: { link: '../bar' }, bar: { type: 'file', content: 'bar-contents' } } },
  },
  {
    name: 'copy-through-symlinked-dir',
    upstream: `${BK_COPY}:testCopyThroughSymlinkContext`,
    dockerfile: 'FROM scratch\nCOPY link/foo .\n',
    files: { link: { symlink: 'sub' }, 'sub/foo': 'contents' },
    expect: { files: { foo: 'contents' } },
  },
  {
    name: 'copy-through-symlink-from-stage',
    upstream: `${BK_COPY}:testCopyThroughSymlinkMultiStage`,
    dockerfile: `FROM busybox AS build
RUN mkdir -p /out/sub && ln -s /out/sub /sub && ln -s out/sub /sub2 && echo -n "data" > /sub/foo
FROM scratch
COPY --from=build /sub/foo .
COPY --from=build /sub2/foo bar
`,
    expect: { files: { foo: 'data', bar: 'data' } },
  },
  {
    name: 'copy-symlink-basename',
    upstream: `${MOBY_CLI}:TestBuildSymlinkBasename`,
    dockerfile: 'FROM busybox\nCOPY asymlink /\n',
    files: { foo: 'bar', asymlink: { symlink: 'foo' } },
    expect: { files: { asymlink: { type: 'file', content: 'bar' } }, absent: ['foo'] },
  },
  {
    name: 'copy-symlink-to-dir',
    upstream: `${MOBY_CLI}:TestBuildFollowSymlinkToDir`,
    dockerfile: 'FROM busybox\nCOPY asymlink /\n',
    files: { 'foo/abc': 'bar', 'foo/def': 'baz', asymlink: { symlink: 'foo' } },
    expect: { files: { abc: 'bar', def: 'baz' }, absent: ['asymlink'] },
  },
  {
    name: 'copy-into-symlinked-destination',
    upstream: `${BK_CORE}:testSymlinkDestination`,
    dockerfile: 'FROM scratch\nADD t.tar /\nCOPY foo /symlink/\n',
    files: { foo: 'content0', 't.tar': { bytes: tarBytes((t) => t.symlink('symlink', '../tmp/symlink-target')) } },
    expect: { files: { 'tmp/symlink-target/foo': 'content0', symlink: { link: '../tmp/symlink-target' } } },
  },
  {
    name: 'copy-socket-becomes-file',
    upstream: `${BK_COPY}:testCopySocket`,
    buildahFails: 'buildah leaves a socket of the context out',
    dockerfile: 'FROM scratch\nCOPY . /\n',
    files: { 'socket.sock': { socket: true }, other: 'x' },
    expect: { files: { 'socket.sock': { type: 'file', content: '' }, other: 'x' } },
  },
  {
    name: 'copy-chown-names-and-ids',
    upstream: `${BK_COPY}:testCopyChown`,
    dockerfile: lines(
      'FROM busybox',
      'ENV owner 1000',
      'COPY --chown=daemon foo /',
      'COPY --chown=1000:nogroup bar /baz',
      'ARG group',
      'COPY --chown=${owner}:${group} foo /foobis',
    ),
    files: { foo: 'foo-contents', 'bar/sub': '' },
    args: { group: 'nogroup' },
    expect: { files: { foo: { owner: '1:1' }, 'baz/sub': { owner: '1000:65534' }, baz: { type: 'dir', owner: '1000:65534' }, foobis: { owner: '1000:65534' } } },
  },
  {
    name: 'copy-chown-creates-dest',
    upstream: `${BK_COPY}:testCopyChownCreateDest`,
    dockerfile: lines(
      'FROM busybox',
      'ARG group',
      'ENV owner user01',
      addUser('user', 1000),
      addUser('user01', 1001),
      'COPY --chown=user:user . /dest',
      'COPY --chown=${owner}:${group} . /dest01',
      'RUN [ "$(stat -c "%U %G" /dest)" = "user user" ]',
      'RUN [ "$(stat -c "%U %G" /dest01)" = "user01 user" ]',
    ),
    files: { f: 'x' },
    args: { group: 'user' },
    expect: { files: { dest: { type: 'dir', owner: '1000:1000' }, 'dest/f': { owner: '1000:1000' }, dest01: { owner: '1001:1000' } } },
  },
  {
    name: 'copy-chown-uid-only',
    upstream: `${MOBY_CLI}:TestBuildChownSingleFile (--chown=uid: the group is the uid)`,
    dockerfile: 'FROM busybox\nCOPY --chown=1001 f /f\nCOPY --chown=daemon:0 f /g\nCOPY f /h\n',
    files: { f: 'x' },
    expect: { files: { f: { owner: '1001:1001' }, g: { owner: '1:0' }, h: { owner: '0:0' } } },
  },
  {
    name: 'copy-chmod-octal',
    upstream: `${BK_COPY}:testCopyChmod`,
    dockerfile: lines(
      'FROM busybox',
      'COPY --chmod=0644 foo /',
      'COPY --chmod=777 bar /baz',
      'COPY --chmod=0 foo /foobis',
      'COPY --chmod=777 foo /parent/foo',
      'COPY --chmod=770 foo /parent/sub/foo',
      'ARG mode',
      'COPY --chmod=${mode} foo /footer',
    ),
    files: { foo: { content: 'foo-contents', mode: 0o600 }, bar: { content: 'bar-contents', mode: 0o700 } },
    args: { mode: '755' },
    expect: {
      files: {
        foo: { mode: 0o644 },
        baz: { mode: 0o777 },
        foobis: { mode: 0 },
        parent: { type: 'dir', mode: 0o777 },
        'parent/sub': { type: 'dir', mode: 0o770 },
        footer: { mode: 0o755 },
      },
    },
    buildahFails: 'buildah creates the missing parents of a --chmod destination 0755',
  },
  {
    name: 'copy-chmod-special-bits',
    upstream: `${BK_COPY}:testCopyInvalidChmod (the valid range is 0 to 07777)`,
    buildahFails: 'buildah makes a --chmod destination directory 0755',
    dockerfile: 'FROM busybox\nCOPY --chmod=4755 f /suid\nCOPY --chmod=2750 f /sgid\nCOPY --chmod=1777 d /sticky/\nCOPY --chmod=07777 f /all\n',
    files: { f: 'x', 'd/in': 'y' },
    expect: { files: { suid: { mode: 0o4755 }, sgid: { mode: 0o2750 }, sticky: { type: 'dir', mode: 0o1777 }, 'sticky/in': { mode: 0o1777 }, all: { mode: 0o7777 } } },
  },
  {
    name: 'copy-chmod-dir-source',
    upstream: `${BK_CORE}:testStepNames (COPY --chmod of a directory)`,
    buildahFails: 'buildah makes a --chmod destination directory 0755',
    dockerfile: 'FROM busybox AS base\nWORKDIR /out\nRUN echo "base" > base && mkdir sub\nFROM scratch\nCOPY --from=base --chmod=0640 /out /out\n',
    expect: { files: { 'out/base': { content: 'base\n', mode: 0o640 }, 'out/sub': { type: 'dir', mode: 0o640 }, out: { type: 'dir', mode: 0o640 } } },
  },
  {
    name: 'copy-chmod-symbolic',
    upstream: `${BK_COPY}:testChmodNonOctal`,
    dockerfile: `FROM busybox AS base
RUN mkdir -p /input/dir /input/dirs/d1 /input/dirs/d2 /input/dirs/d3 && touch /input/file && chmod 666 /input/file && chmod 124 /input/dir && cp -a /input/dir /input/dirs/d1/d1 && cp -a /input/dir /input/dirs/d2/d2 && cp -a /input/dir /input/dirs/d3/d3
FROM scratch
COPY --from=base --chmod=go-w /input/file /f1
COPY --from=base --chmod=u=rw,g=r,o=r /input/file /f2
COPY --from=base --chmod=a+X /input/file /f3
COPY --from=base --chmod=go-w /input/dirs/d1 /
COPY --from=base --chmod=u+rw,g+r,o-x,o+w /input/dirs/d2 /
COPY --from=base --chmod=a+X /input/dirs/d3 /
`,
    expect: {
      files: {
        f1: { type: 'file', mode: 0o644 },
        f2: { type: 'file', mode: 0o644 },
        f3: { type: 'file', mode: 0o666 },
        d1: { type: 'dir', mode: 0o104 },
        d2: { type: 'dir', mode: 0o766 },
        d3: { type: 'dir', mode: 0o135 },
      },
    },
    buildahFails: 'buildah 1.28 accepts only octal --chmod',
  },
  {
    name: 'copy-chmod-symbolic-user-exec',
    upstream: `${BK_COPY}:testChmodNonOctal (u+x on a context file)`,
    dockerfile: 'FROM busybox\nCOPY --chmod=u+x run.sh /\nCOPY --chmod=go-rwx secret /\n',
    files: { 'run.sh': { content: 'echo', mode: 0o644 }, secret: { content: 's', mode: 0o644 } },
    expect: { files: { 'run.sh': { mode: 0o744 }, secret: { mode: 0o600 } } },
    buildahFails: 'buildah 1.28 accepts only octal --chmod',
  },
  {
    name: 'copy-chmod-invalid',
    upstream: `${BK_COPY}:testCopyInvalidChmod`,
    dockerfile: 'FROM scratch\nCOPY --chmod=64a foo /\n',
    files: { foo: 'foo-contents' },
    expect: { error: /invalid chmod parameter: '64a'\. it should be octal string and between 0 and 07777/ },
    buildahFails: 'buildah words the error differently',
  },
  {
    name: 'copy-chmod-out-of-range',
    upstream: `${BK_COPY}:testCopyInvalidChmod`,
    dockerfile: 'FROM scratch\nCOPY --chmod=10000 foo /\n',
    files: { foo: 'foo-contents' },
    expect: { error: /invalid chmod parameter: '10000'\. it should be octal string and between 0 and 07777/ },
    buildahFails: 'buildah words the error differently',
  },
  {
    name: 'copy-preserves-special-bits',
    upstream: `${MOBY_CLI}:TestBuildAddPreservesFilesSpecialBits`,
    dockerfile: 'FROM busybox\nADD suidbin /usr/bin/suidbin\nRUN chmod 4755 /usr/bin/suidbin\nADD ./data/ /\n',
    files: { suidbin: 'suidbin', 'data/usr/test_file': 'test1' },
    expect: { files: { 'usr/bin/suidbin': { mode: 0o4755 }, 'usr/test_file': 'test1' } },
  },
  {
    name: 'copy-missing-source',
    upstream: `${MOBY_CLI}:TestBuildAddFileNotFound`,
    dockerfile: 'FROM busybox\nCOPY foo /usr/local/bar\n',
    expect: { error: /foo.*(not found|no such file)/i },
  },
  {
    name: 'copy-from-stage-relative-source',
    upstream: 'buildkit frontend/dockerfile/dockerfile_workdir_test.go:testWorkdirCopyIgnoreRelative',
    dockerfile: 'FROM busybox AS base\nWORKDIR /foo\nCOPY Dockerfile /\nFROM busybox\nCOPY --from=base Dockerfile .\n',
    expect: { files: { Dockerfile: { contains: 'WORKDIR /foo' } } },
  },
  {
    name: 'copy-empty-layers',
    upstream: 'moby integration/build/build_test.go:TestBuildWithEmptyLayers',
    dockerfile: 'FROM busybox\nCOPY 1/ /target/\nCOPY 2/ /target/\nCOPY 3/ /target/\n',
    files: { '1/a': 'asdf', '2/a': 'asdf', '3/a': 'asdf' },
    expect: { files: { 'target/a': 'asdf' }, layers: 4 },
  },
];
