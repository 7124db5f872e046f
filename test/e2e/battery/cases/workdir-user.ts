/** WORKDIR and USER: directories WORKDIR creates (and their owner), the user and groups RUN gets. */
import type { Case } from '../types.js';
import { addUser, lines } from './util.js';

const BK_WORKDIR = 'buildkit frontend/dockerfile/dockerfile_workdir_test.go';
const BK_CORE = 'buildkit frontend/dockerfile/dockerfile_core_test.go';
const MOBY_CLI = 'moby integration-cli/docker_cli_build_test.go';

/** One line of `id` output per RUN, as upstream's checks compare it. */
const ID = 'echo "$(id -u):$(id -g)/$(id -un):$(id -gn)/$(id -G):$(id -Gn)"';

export const workdirUserCases: Case[] = [
  {
    name: 'workdir-creates-dir-on-scratch',
    upstream: `${BK_WORKDIR}:testWorkdirCreatesDir`,
    dockerfile: 'FROM scratch\nWORKDIR /foo\nWORKDIR /\n',
    expect: { files: { foo: { type: 'dir', mode: 0o755, owner: '0:0' } }, config: { WorkingDir: '/' } },
    buildahFails: 'buildah creates a WORKDIR only when a later step writes to the image',
  },
  {
    name: 'workdir-created-without-later-step',
    upstream: `${BK_WORKDIR}:testWorkdirCreatesDir (on an image)`,
    buildahFails: 'buildah creates a WORKDIR only when a later step writes to the image',
    dockerfile: 'FROM busybox\nWORKDIR /a/b/c\n',
    expect: { files: { 'a/b/c': { type: 'dir', mode: 0o755, owner: '0:0' } }, config: { WorkingDir: '/a/b/c' } },
  },
  {
    name: 'workdir-owned-by-user',
    upstream: `${BK_WORKDIR}:testWorkdirUser`,
    dockerfile: `FROM busybox\n${addUser('user', 1000)}\n` + 'USER user\nWORKDIR /mydir\nRUN [ "$(stat -c "%U %G" /mydir)" = "user user" ]\n',
    expect: { files: { mydir: { type: 'dir', owner: '1000:1000' } } },
  },
  {
    name: 'workdir-owned-by-numeric-user',
    upstream: `${BK_WORKDIR}:testWorkdirUser (numeric USER)`,
    dockerfile: 'FROM busybox\nUSER 1234:5678\nWORKDIR /numeric\n',
    expect: { files: { numeric: { type: 'dir', owner: '1234:5678' } } },
    buildahFails: 'buildah creates the WORKDIR as root',
  },
  {
    name: 'workdir-existing-keeps-owner',
    upstream: `${BK_WORKDIR}:testWorkdirExists`,
    dockerfile: `FROM busybox\n${addUser('user', 1000)}\n` + 'RUN mkdir /mydir && chown user:user /mydir\nWORKDIR /mydir\nRUN [ "$(stat -c "%U %G" /mydir)" = "user user" ]\n',
    expect: { files: { mydir: { type: 'dir', owner: '1000:1000' } } },
  },
  {
    name: 'workdir-relative',
    upstream: `${MOBY_CLI}:TestBuildRelativeWorkdir`,
    dockerfile: `FROM busybox
RUN sh -c "[ "$PWD" = "/" ]"
WORKDIR test1
RUN sh -c "[ "$PWD" = "/test1" ]"
WORKDIR /test2
RUN sh -c "[ "$PWD" = "/test2" ]"
WORKDIR test3
RUN sh -c "[ "$PWD" = "/test2/test3" ]"
`,
    expect: { config: { WorkingDir: '/test2/test3' }, files: { test1: { type: 'dir' }, 'test2/test3': { type: 'dir' } } },
  },
  {
    name: 'workdir-env-variables',
    upstream: `${MOBY_CLI}:TestBuildWorkdirWithEnvVariables`,
    dockerfile: lines('FROM busybox', 'ENV DIRPATH /test1', 'ENV SUBDIRNAME test2', 'WORKDIR $DIRPATH', 'WORKDIR $SUBDIRNAME/$MISSING_VAR'),
    expect: { config: { WorkingDir: '/test1/test2' } },
  },
  {
    name: 'workdir-trailing-slash',
    upstream: 'moby integration/build/build_test.go:TestBuildWorkdirNoCacheMiss',
    dockerfile: 'FROM busybox\nWORKDIR /foo/\n',
    expect: { config: { WorkingDir: '/foo' }, files: { foo: { type: 'dir' } } },
    buildahFails: 'buildah keeps the trailing slash in WorkingDir',
  },
  {
    name: 'workdir-keeps-cmd',
    upstream: `${MOBY_CLI}:TestBuildWorkdirImageCmd`,
    dockerfile: 'FROM busybox\nWORKDIR /foo/bar\nLABEL a=b\n',
    expect: { config: { Cmd: ['sh'], WorkingDir: '/foo/bar', Labels: { a: 'b' } } },
  },
  {
    name: 'workdir-stage-config-inherited',
    upstream: 'moby integration/build/build_test.go:TestBuildMultiStageParentConfig',
    buildahFails: 'buildah creates a WORKDIR only when a later step writes to the image',
    dockerfile: 'FROM busybox AS stage0\nENV WHO=parent\nWORKDIR /foo\nFROM stage0\nENV WHO=sibling1\nWORKDIR sub1\nFROM stage0\nWORKDIR sub2\n',
    expect: { config: { WorkingDir: '/foo/sub2', env: ['WHO=parent'] }, files: { 'foo/sub2': { type: 'dir' } }, absent: ['foo/sub1'] },
  },
  {
    name: 'workdir-scratch-stage-resets',
    upstream: `${MOBY_CLI}:TestBuildMultiStageResetScratch`,
    dockerfile: 'FROM busybox\nWORKDIR /foo/bar\nFROM scratch\nENV FOO=bar\n',
    expect: { config: { WorkingDir: null, env: ['FOO=bar'] }, layers: 0 },
  },
  {
    name: 'user-config-and-whoami',
    upstream: `${MOBY_CLI}:TestBuildUser`,
    dockerfile: "FROM busybox\nRUN echo 'dockerio:x:1001:1001::/bin:/bin/false' >> /etc/passwd\nUSER dockerio\nRUN [ $(whoami) = 'dockerio' ]\n",
    expect: { config: { User: 'dockerio' } },
  },
  {
    name: 'user-ids-and-groups',
    upstream: `${BK_CORE}:testUser / ${MOBY_CLI}:TestBuildUsersAndGroups`,
    dockerfile: lines(
      'FROM busybox',
      'RUN mkdir -m 0777 /out',
      `RUN ${ID} > /out/root`,
      "RUN echo 'dockerio:x:1001:1001::/bin:/bin/false' >> /etc/passwd && echo 'dockerio:x:1001:' >> /etc/group",
      'USER dockerio',
      `RUN ${ID} > /out/dockerio`,
      'USER root',
      "RUN echo 'supplementary:x:1002:dockerio' >> /etc/group",
      'USER dockerio',
      `RUN ${ID} > /out/supplementary-by-name`,
      'USER 1001',
      `RUN ${ID} > /out/supplementary-by-id`,
      'USER dockerio:dockerio',
      `RUN ${ID} > /out/group-by-name`,
      'USER 1001:dockerio',
      `RUN ${ID} > /out/uid-group-name`,
      'USER dockerio:supplementary',
      `RUN ${ID} > /out/other-group`,
      'USER 1001:1002',
      `RUN ${ID} > /out/other-group-ids`,
      'USER 1042:1043',
      `RUN ${ID} > /out/unknown`,
      'USER daemon',
      'RUN id -un > /out/daemon',
    ),
    expect: {
      files: {
        'out/root': '0:0/root:root/0:root\n',
        'out/dockerio': '1001:1001/dockerio:dockerio/1001:dockerio\n',
        'out/supplementary-by-name': '1001:1001/dockerio:dockerio/1001 1002:dockerio supplementary\n',
        'out/supplementary-by-id': '1001:1001/dockerio:dockerio/1001 1002:dockerio supplementary\n',
        'out/group-by-name': '1001:1001/dockerio:dockerio/1001:dockerio\n',
        'out/uid-group-name': '1001:1001/dockerio:dockerio/1001:dockerio\n',
        'out/other-group': '1001:1002/dockerio:supplementary/1002:supplementary\n',
        'out/other-group-ids': '1001:1002/dockerio:supplementary/1002:supplementary\n',
        'out/unknown': '1042:1043/1042:1043/1043:1043\n',
        'out/daemon': 'daemon\n',
      },
      config: { User: 'daemon' },
    },
  },
  {
    name: 'user-additional-gids',
    upstream: `${BK_CORE}:testUserAdditionalGids`,
    dockerfile: `FROM busybox
RUN mkdir -m 0777 /out
SHELL ["/bin/sh", "-euxc"]
RUN id > /out/root
USER 1234
RUN id > /out/uid
USER 1234:1234
RUN id > /out/uid-gid
USER daemon
RUN id > /out/daemon
`,
    expect: {
      files: {
        'out/root': 'uid=0(root) gid=0(root) groups=0(root)\n',
        'out/uid': 'uid=1234 gid=0(root) groups=0(root)\n',
        'out/uid-gid': 'uid=1234 gid=1234 groups=1234\n',
        'out/daemon': 'uid=1(daemon) gid=1(daemon) groups=1(daemon)\n',
      },
    },
  },
  {
    name: 'user-root-supplementary-groups',
    upstream: `${BK_CORE}:testUser (root in wheel)`,
    dockerfile: "FROM busybox\nRUN echo 'wheel:x:10:root' >> /etc/group\nUSER root\nRUN echo \"$(id -G):$(id -Gn)\" > /groups\n",
    expect: { files: { groups: '0 10:root wheel\n' } },
    xfail: 'a RUN as root gets its primary group only: reading /etc/group would cost a host mount per step, and root\'s capabilities make its other groups moot',
  },
  {
    name: 'user-group-in-etc-group-after-user',
    upstream: `${BK_CORE}:testUser (supplementary groups read when the step runs)`,
    dockerfile: `FROM busybox
RUN mkdir -m 0777 /out && echo 'app:x:1500:1500::/:/bin/sh' >> /etc/passwd && echo 'app:x:1500:' >> /etc/group
USER app
RUN echo "$(id -G)" > /out/before
USER root
RUN echo 'extra:x:1600:daemon,app' >> /etc/group
USER app
RUN echo "$(id -G)" > /out/after
`,
    expect: { files: { 'out/before': '1500\n', 'out/after': '1500 1600\n' } },
  },
];
