/** ADD: local archives (plain, compressed, through wildcards, with --chown), URLs, --unpack, --checksum. */
import type { Case } from '../types.js';
import { fooTar, lines, tarBytes, tarGz, tarVia } from './util.js';
import { EMPTY_SHA256, FOO_SHA256 } from './http.js';

const BK_ADD = 'buildkit frontend/dockerfile/dockerfile_add_test.go';
const MOBY_CLI = 'moby integration-cli/docker_cli_build_test.go';

const NO_UNPACK = 'buildah 1.28 has no ADD --unpack';
const NO_CHECKSUM = 'buildah 1.28 has no ADD --checksum';

export const addCases: Case[] = [
  {
    name: 'add-tar',
    upstream: `${BK_ADD}:testDockerfileAddArchive`,
    dockerfile: 'FROM scratch\nADD t.tar /\n',
    files: { 't.tar': { bytes: tarBytes(fooTar) } },
    expect: { files: { foo: 'content0' }, absent: ['t.tar'] },
  },
  {
    name: 'add-tar-gz',
    upstream: `${BK_ADD}:testDockerfileAddArchive`,
    dockerfile: 'FROM scratch\nADD t.tar.gz /\n',
    files: { 't.tar.gz': { bytes: tarGz(fooTar) } },
    expect: { files: { foo: 'content0' }, absent: ['t.tar.gz'] },
  },
  {
    name: 'add-tar-xz',
    upstream: `${MOBY_CLI}:TestBuildAddTarXz`,
    dockerfile: 'FROM busybox\nADD test.tar.xz /\n',
    files: { 'test.tar.xz': { bytes: tarVia('xz', (t) => t.dir('test').file('test/foo', 'Hi')) } },
    expect: { files: { 'test/foo': 'Hi' } },
  },
  {
    name: 'add-tar-bzip2',
    upstream: `${MOBY_CLI}:TestBuildAddTarXzGz (another compression)`,
    dockerfile: 'FROM busybox\nADD test.tar.bz2 /x/\n',
    files: { 'test.tar.bz2': { bytes: tarVia('bzip2', (t) => t.file('foo', 'bz')) } },
    expect: { files: { 'x/foo': 'bz' } },
  },
  {
    name: 'add-non-tar-copied',
    upstream: `${MOBY_CLI}:TestBuildAddNonTar`,
    dockerfile: 'FROM busybox\nADD test.tar /\n',
    files: { 'test.tar': 'Hello' },
    expect: { files: { 'test.tar': 'Hello' } },
  },
  {
    name: 'add-unpack-false',
    upstream: `${BK_ADD}:testDockerfileAddArchive (--unpack=false)`,
    dockerfile: 'FROM scratch\nADD --unpack=false t.tar.gz /\n',
    files: { 't.tar.gz': { bytes: tarGz(fooTar) } },
    expect: { files: { 't.tar.gz': { type: 'file' } }, absent: ['foo'] },
    buildahFails: NO_UNPACK,
  },
  {
    name: 'copy-does-not-extract',
    upstream: `${BK_ADD}:testDockerfileAddArchive (COPY)`,
    dockerfile: 'FROM scratch\nCOPY t.tar.gz /\n',
    files: { 't.tar.gz': { bytes: tarGz(fooTar) } },
    expect: { files: { 't.tar.gz': { type: 'file' } }, absent: ['foo'] },
  },
  {
    name: 'add-tar-implied-parent',
    upstream: `${BK_ADD}:testDockerfileAddArchiveWithImpliedParentDir`,
    dockerfile: 'FROM scratch\nADD t.tar.gz /\n',
    files: { 't.tar.gz': { bytes: tarGz((t) => t.dir('etc/dnf').file('etc/dnf/dnf.conf', 'content0')) } },
    expect: { files: { 'etc/dnf/dnf.conf': 'content0', etc: { type: 'dir' } } },
  },
  {
    name: 'add-tar-through-absolute-symlink',
    upstream: `${BK_ADD}:testDockerfileAddArchiveThroughAbsoluteSymlink`,
    dockerfile: 'FROM scratch\nADD rootfs.tar /\nADD payload.tar /\n',
    files: {
      'rootfs.tar': { bytes: tarBytes((t) => t.dir('run').dir('var').symlink('var/run', '/run')) },
      'payload.tar': {
        bytes: tarBytes((t) => t.dir('var/run/act').dir('var/run/act/actions').dir('var/run/act/actions/broad').dir('var/run/act/actions/broad/.git')
          .file('var/run/act/actions/broad/.git/HEAD', 'ref: refs/heads/main\n')
          .hardlink('var/run/act/actions/broad/.git/HEAD.link', 'var/run/act/actions/broad/.git/HEAD')),
      },
    },
    expect: {
      files: {
        'run/act/actions/broad/.git/HEAD': 'ref: refs/heads/main\n',
        'run/act/actions/broad/.git/HEAD.link': 'ref: refs/heads/main\n',
        'var/run': { link: '/run' },
      },
    },
  },
  {
    name: 'add-chown-tar',
    upstream: `${BK_ADD}:testDockerfileAddChownArchive`,
    dockerfile: 'FROM scratch\nADD --chown=100:200 t.tar /out/\n',
    files: { 't.tar': { bytes: tarBytes((t) => t.file('foo', 'content0', { uid: 7, gid: 8 }).dir('d', { uid: 7, gid: 8 }).file('d/bar', 'b', { uid: 7, gid: 8 })) } },
    expect: { files: { 'out/foo': { content: 'content0', owner: '100:200' }, out: { type: 'dir', owner: '100:200' }, 'out/d': { owner: '100:200' }, 'out/d/bar': { owner: '100:200' } } },
    buildahFails: 'buildah keeps the archive\'s owners under ADD --chown',
  },
  {
    name: 'add-tar-keeps-owners',
    upstream: `${BK_ADD}:testDockerfileAddChownArchive (without --chown)`,
    dockerfile: 'FROM scratch\nADD t.tar /out/\n',
    files: { 't.tar': { bytes: tarBytes((t) => t.file('foo', 'content0', { uid: 7, gid: 8, mode: 0o640 })) } },
    expect: { files: { 'out/foo': { content: 'content0', owner: '7:8', mode: 0o640 }, out: { type: 'dir', owner: '0:0' } } },
  },
  {
    name: 'add-tar-wildcard',
    upstream: `${BK_ADD}:testDockerfileAddArchiveWildcard`,
    dockerfile: 'FROM scratch\nADD *.tar /dest\n',
    files: { 't.tar': { bytes: tarBytes(fooTar) }, 'b.tar': { bytes: tarBytes((t) => t.file('bar', 'content1')) } },
    expect: { files: { 'dest/foo': 'content0', 'dest/bar': 'content1' } },
  },
  {
    name: 'add-chown-expand',
    upstream: `${BK_ADD}:testDockerfileAddChownExpand`,
    dockerfile: lines(
      'FROM busybox',
      'ARG group',
      'ENV owner 1000',
      'ADD --chown=${owner}:${group} foo /',
      'RUN [ "$(stat -c "%u %G" /foo)" = "1000 nogroup" ]',
    ),
    files: { foo: 'foo-contents' },
    args: { group: 'nogroup' },
    expect: { files: { foo: { owner: '1000:65534' } } },
  },
  {
    name: 'add-url-to-dir',
    upstream: `${BK_ADD}:testDockerfileADDFromURL`,
    dockerfile: 'FROM scratch\nADD {{http}}/foo /dest/\n',
    expect: { files: { 'dest/foo': { content: 'content1', mode: 0o600, owner: '0:0' } } },
  },
  {
    name: 'add-url-archive-not-extracted',
    upstream: `${BK_ADD}:testDockerfileAddArchive (ADD from URL)`,
    dockerfile: 'FROM scratch\nADD {{http}}/t.tar.gz /\n',
    expect: { files: { 't.tar.gz': { type: 'file' } }, absent: ['foo'] },
  },
  {
    name: 'add-url-unpack',
    upstream: `${BK_ADD}:testDockerfileAddArchive (ADD --unpack=true from URL)`,
    dockerfile: 'FROM scratch\nADD --unpack=true {{http}}/t.tar.gz /dest/\n',
    expect: { files: { 'dest/foo': 'content0' }, absent: ['dest/t.tar.gz'] },
    buildahFails: NO_UNPACK,
  },
  {
    name: 'add-url-rename',
    upstream: `${BK_ADD}:testDockerfileAddArchive (moby/buildkit#386)`,
    dockerfile: 'FROM scratch\nADD {{http}}/t.tar.gz /newname.tar.gz\n',
    expect: { files: { 'newname.tar.gz': { type: 'file' } }, absent: ['foo', 't.tar.gz'] },
  },
  {
    name: 'add-url-chmod',
    upstream: `${BK_ADD}:testAddURLChmod`,
    dockerfile: lines(
      'FROM busybox',
      'ADD --chmod=644 {{http}}/foo /tmp/foo1',
      'ADD --chmod=755 {{http}}/foo /tmp/foo2',
      'ADD --chmod=0413 {{http}}/foo /tmp/foo3',
      'ARG mode',
      'ADD --chmod=${mode} {{http}}/foo /tmp/foo4',
    ),
    args: { mode: '400' },
    expect: { files: { 'tmp/foo1': { mode: 0o644 }, 'tmp/foo2': { mode: 0o755 }, 'tmp/foo3': { mode: 0o413 }, 'tmp/foo4': { mode: 0o400, content: 'content1' } } },
  },
  {
    name: 'add-chmod-invalid',
    upstream: `${BK_ADD}:testAddInvalidChmod`,
    dockerfile: 'FROM scratch\nADD --chmod=64a foo /\n',
    files: { foo: 'foo-contents' },
    expect: { error: /invalid chmod parameter: '64a'/ },
    buildahFails: 'buildah words the error differently',
  },
  {
    name: 'add-checksum-valid',
    upstream: `${BK_ADD}:testAddChecksum (Valid)`,
    dockerfile: `FROM scratch\nADD --checksum=${FOO_SHA256} {{http}}/foo /tmp/foo\n`,
    expect: { files: { 'tmp/foo': 'content1' } },
    buildahFails: NO_CHECKSUM,
  },
  {
    name: 'add-checksum-from-env',
    upstream: `${BK_ADD}:testAddChecksum (DigestFromEnv)`,
    dockerfile: lines('FROM scratch', `ENV DIGEST=${FOO_SHA256}`, 'ENV LINK={{http}}/foo', 'ADD --checksum=${DIGEST} ${LINK} /tmp/foo'),
    expect: { files: { 'tmp/foo': 'content1' } },
    buildahFails: NO_CHECKSUM,
  },
  {
    name: 'add-checksum-mismatch',
    upstream: `${BK_ADD}:testAddChecksum (DigestMismatch)`,
    dockerfile: `FROM scratch\nADD --checksum=${EMPTY_SHA256} {{http}}/foo /tmp/foo\n`,
    expect: { error: /digest mismatch|checksum mismatch/i },
    buildahFails: NO_CHECKSUM,
  },
  {
    name: 'add-checksum-unsupported-algorithm',
    upstream: `${BK_ADD}:testAddChecksum (DigestWithKnownButUnsupportedAlgoName)`,
    dockerfile: 'FROM scratch\nADD --checksum=md5:7e55db001d319a94b0b713529a756623 {{http}}/foo /tmp/foo\n',
    expect: { error: /unsupported digest algorithm|unsupported algorithm/i },
    buildahFails: NO_CHECKSUM,
  },
  {
    name: 'add-checksum-without-algorithm',
    upstream: `${BK_ADD}:testAddChecksum (DigestWithoutAlgoName)`,
    dockerfile: `FROM scratch\nADD --checksum=${FOO_SHA256.slice(7)} {{http}}/foo /tmp/foo\n`,
    expect: { error: /invalid checksum digest format|invalid.*digest/i },
    buildahFails: NO_CHECKSUM,
  },
  {
    name: 'add-checksum-local-source',
    upstream: `${BK_ADD}:testAddChecksum (NonHTTPSource)`,
    dockerfile: `FROM scratch\nADD --checksum=${FOO_SHA256} foo /tmp/foo\n`,
    files: { foo: 'content1' },
    expect: { error: /checksum requires HTTP\(S\) or Git sources/ },
    buildahFails: NO_CHECKSUM,
  },
  {
    name: 'copy-checksum-refused',
    upstream: `${BK_ADD}:testAddChecksum (COPY has no --checksum)`,
    dockerfile: `FROM scratch\nCOPY --checksum=${FOO_SHA256} foo /tmp/foo\n`,
    files: { foo: 'content1' },
    expect: { error: /checksum/ },
  },
  {
    name: 'add-local-and-url',
    upstream: `${MOBY_CLI}:TestBuildAddLocalAndRemoteFilesWithAndWithoutCache`,
    dockerfile: 'FROM busybox\nADD localfile {{http}}/foo /dir/\n',
    files: { localfile: 'local' },
    expect: { files: { 'dir/localfile': 'local', 'dir/foo': 'content1' } },
  },
  {
    name: 'add-env-replacement',
    upstream: `${MOBY_CLI}:TestBuildEnvironmentReplacementAddCopy`,
    dockerfile: lines(
      'FROM scratch',
      'ENV baz foo',
      'ENV quux bar',
      'ENV dot .',
      'ENV fee fff',
      'ENV gee ggg',
      'ADD ${baz} ${dot}',
      'COPY ${quux} ${dot}',
      'ADD ${zzz:-${fee}} ${dot}',
      'COPY ${zzz:-${gee}} ${dot}',
    ),
    files: { foo: 'test1', bar: 'test2', fff: 'test3', ggg: 'test4' },
    expect: { files: { foo: 'test1', bar: 'test2', fff: 'test3', ggg: 'test4' } },
  },
];
