/**
 * RUN --mount of every type but ssh: bind (context and stage), cache, tmpfs, secret; variable
 * expansion in their options. Cache ids are unique to each case: the battery shares one store.
 */
import type { Case } from '../types.js';

const BK_MOUNT = 'buildkit frontend/dockerfile/dockerfile_mount_test.go';
const BK_SECRETS = 'buildkit frontend/dockerfile/dockerfile_secrets_test.go';

export const mountCases: Case[] = [
  {
    name: 'mount-context',
    upstream: `${BK_MOUNT}:testMountContext`,
    dockerfile: 'FROM busybox\nRUN --mount=target=/context [ "$(cat /context/testfile)" = "contents0" ] && cat /context/testfile > /copied\n',
    files: { testfile: 'contents0' },
    expect: { files: { copied: 'contents0' } },
  },
  {
    name: 'mount-bind-readonly',
    upstream: `${BK_MOUNT}:testMountContext (bind mounts are read-only)`,
    dockerfile: 'FROM busybox\nRUN --mount=target=/context touch /context/new\n',
    files: { testfile: 'contents0' },
    expect: { error: /touch \/context\/new|exit code: 1|status 1/ },
  },
  {
    name: 'mount-bind-rw-discarded',
    upstream: `${BK_MOUNT}:testMountRWCache`,
    buildahFails: "buildah's rw bind mount of a stage writes through to that stage",
    dockerfile: 'FROM busybox AS build\nRUN mkdir out && echo foo > out/foo\nFROM busybox AS second\nRUN --mount=from=build,src=out,target=/out,rw touch /out/bar && ls /out > /list\nFROM second\nCOPY --from=build /out /build-out\n',
    expect: { files: { list: 'bar\nfoo\n', 'build-out/foo': 'foo\n' }, absent: ['build-out/bar'] },
  },
  {
    name: 'mount-bind-two-sources',
    upstream: `${BK_MOUNT}:testMountDuplicate`,
    dockerfile: 'FROM busybox AS base\nRUN --mount=source=.,target=/tmp/test \\\n  --mount=source=b.txt,target=/tmp/b.txt \\\n  cat /tmp/test/a.txt /tmp/b.txt > /combined.txt\nFROM scratch\nCOPY --from=base /combined.txt /\n',
    files: { 'a.txt': 'foo\n', 'b.txt': 'bar\n' },
    expect: { files: { 'combined.txt': 'foo\nbar\n' } },
  },
  {
    name: 'mount-tmpfs',
    upstream: `${BK_MOUNT}:testMountTmpfs`,
    dockerfile: 'FROM busybox\nRUN --mount=target=/mytmp,type=tmpfs touch /mytmp/foo && mount | grep " /mytmp " > /mounted\nRUN [ ! -f /mytmp/foo ]\n',
    expect: { files: { mounted: { contains: 'tmpfs' } }, absent: ['mytmp/foo'] },
  },
  {
    name: 'mount-tmpfs-size',
    upstream: `${BK_MOUNT}:testMountTmpfsSize`,
    buildahFails: 'buildah 1.28 refuses a tmpfs size=',
    dockerfile: 'FROM busybox AS base\nRUN --mount=type=tmpfs,target=/dev/shm,size=128m mount | grep /dev/shm > /tmpfssize\nFROM scratch\nCOPY --from=base /tmpfssize /\n',
    expect: { files: { tmpfssize: { contains: 'size=131072k' } } },
  },
  {
    name: 'mount-cache-user-and-mode',
    upstream: `${BK_MOUNT}:testCacheMountUser`,
    dockerfile: 'FROM busybox\nRUN --mount=type=cache,target=/battery-cache-user,uid=1001,gid=1002,mode=0751 stat -c "%u %g %f" /battery-cache-user > /stat\n',
    expect: { files: { stat: '1001 1002 41e9\n' } },
  },
  {
    name: 'mount-cache-default-id',
    upstream: `${BK_MOUNT}:testCacheMountDefaultID`,
    dockerfile: `FROM busybox
RUN --mount=type=cache,target=/battery-cache-a touch /battery-cache-a/foo
RUN --mount=type=cache,target=/battery-cache-b [ ! -f /battery-cache-b/foo ]
RUN --mount=type=cache,target=/battery-cache-a [ -f /battery-cache-a/foo ] && touch /ok
`,
    expect: { files: { ok: '' }, absent: ['battery-cache-a/foo'] },
  },
  {
    name: 'mount-cache-target-from-env',
    upstream: `${BK_MOUNT}:testMountEnvVar`,
    dockerfile: 'FROM busybox\nENV SOME_PATH=/battery-cache-env\nRUN --mount=type=cache,target=/battery-cache-env touch /battery-cache-env/foo\nRUN --mount=type=cache,target=$SOME_PATH [ -f $SOME_PATH/foo ] && touch /ok\n',
    expect: { files: { ok: '' } },
  },
  {
    name: 'mount-type-from-arg',
    upstream: `${BK_MOUNT}:testMountArg`,
    dockerfile: 'FROM busybox\nARG MNT_TYPE=cache\nRUN --mount=type=$MNT_TYPE,target=/battery-cache-arg touch /battery-cache-arg/foo\nRUN --mount=type=cache,target=/battery-cache-arg [ -f /battery-cache-arg/foo ] && touch /ok\n',
    expect: { files: { ok: '' } },
  },
  {
    name: 'mount-id-from-env-across-stages',
    upstream: `${BK_MOUNT}:testMountEnvAcrossStages`,
    dockerfile: `FROM busybox as stage1
ENV MNT_ID=battery-cache-stages
ENV MNT_TYPE2=cache
RUN --mount=type=cache,id=battery-cache-stages,target=/abcabc touch /abcabc/foo
RUN --mount=type=$MNT_TYPE2,id=$MNT_ID,target=/cbacba [ -f /cbacba/foo ]
FROM stage1
RUN --mount=type=$MNT_TYPE2,id=$MNT_ID,target=/whatever [ -f /whatever/foo ] && touch /ok
`,
    expect: { files: { ok: '' } },
  },
  {
    name: 'mount-target-from-meta-arg',
    upstream: `${BK_MOUNT}:testMountMetaArg`,
    dockerfile: 'ARG META_PATH=/tmp/meta\nFROM busybox\nARG META_PATH\nRUN --mount=type=cache,id=battery-cache-meta,target=/tmp/meta touch /tmp/meta/foo\nRUN --mount=type=cache,id=battery-cache-meta,target=$META_PATH [ -f /tmp/meta/foo ] && touch /ok\n',
    expect: { files: { ok: '' } },
  },
  {
    name: 'mount-from-variable-refused',
    upstream: `${BK_MOUNT}:testMountFromError`,
    dockerfile: 'FROM busybox as test\nRUN touch /tmp/test\nFROM busybox\nENV ttt=test\nRUN --mount=from=$ttt,type=cache,target=/tmp ls\n',
    expect: { error: /'from' doesn't support variable expansion, define alias stage instead/ },
    buildahFails: 'buildah words the error differently',
  },
  {
    name: 'copy-from-variable-refused',
    upstream: 'buildkit frontend/dockerfile/dockerfile_copy_test.go:testDockerfileCopyFromArgs',
    dockerfile: 'FROM scratch\nCOPY --from=$FOO . .\n',
    expect: { error: /variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround/ },
    buildahFails: 'buildah words the error differently',
  },
  {
    name: 'mount-unknown-flag',
    upstream: `${BK_MOUNT}:testMountInvalid (--mont)`,
    dockerfile: 'FROM scratch\nRUN --mont=target=/mytmp,type=tmpfs /bin/true\n',
    expect: { error: /unknown flag: --mont.*did you mean (--)?mount\?/ },
    buildahFails: 'buildah words the error differently',
  },
  {
    name: 'mount-unknown-key',
    upstream: `${BK_MOUNT}:testMountInvalid (typ=)`,
    dockerfile: 'FROM scratch\nRUN --mount=typ=tmpfs /bin/true\n',
    expect: { error: /unexpected key 'typ'.*did you mean type\?/ },
    buildahFails: 'buildah words the error differently',
  },
  {
    name: 'mount-unknown-type',
    upstream: `${BK_MOUNT}:testMountInvalid (type=tmp)`,
    dockerfile: 'FROM scratch\nRUN --mount=type=tmp /bin/true\n',
    expect: { error: /unsupported mount type "tmp".*did you mean tmpfs\?/ },
    buildahFails: 'buildah words the error differently',
  },
  {
    name: 'mount-cache-source-escape-refused',
    upstream: `${BK_MOUNT}:testCacheMountSourceEscape`,
    dockerfile: `FROM busybox AS init
RUN --mount=type=cache,id=battery-sourceescape,target=/cache mkdir -p /cache/sel && echo benign > /cache/sel/benign.txt
FROM init AS link
RUN --mount=type=cache,id=battery-sourceescape,target=/cache rm -rf /cache/sel && ln -s /etc /cache/sel
FROM link AS victim
RUN --mount=type=cache,id=battery-sourceescape,source=sel,target=/victim cat /victim/passwd > /leaked
FROM scratch
COPY --from=victim /leaked /leaked
`,
    expect: { error: /./ },
  },
  {
    name: 'mount-secret-file-params',
    upstream: `${BK_SECRETS}:testSecretFileParams`,
    dockerfile: 'FROM busybox\nRUN --mount=type=secret,id=mysecret,required=false,mode=741,uid=100,gid=102,target=/mysecret stat -c "%u %g %f" /mysecret > /stat && cat /mysecret > /content\nRUN [ ! -f /mysecret ]\n',
    secrets: { mysecret: 'pw' },
    expect: { files: { stat: '100 102 81e1\n', content: 'pw' }, absent: ['mysecret'] },
  },
  {
    name: 'mount-secret-required-missing',
    upstream: `${BK_SECRETS}:testSecretRequiredWithoutValue`,
    dockerfile: 'FROM busybox\nRUN --mount=type=secret,required,id=mysecret foo\n',
    expect: { error: /secret "?mysecret"?(: not found| is required but was not given)/ },
    buildahFails: 'buildah words the error differently',
  },
  {
    name: 'mount-secret-as-env',
    upstream: `${BK_SECRETS}:testSecretAsEnviron`,
    dockerfile: 'FROM busybox\nENV SECRET_ENV=foo\nRUN --mount=type=secret,id=mysecret,env=SECRET_ENV [ "$SECRET_ENV" = "pw" ] && [ ! -f /run/secrets/mysecret ] && touch /ok\n',
    secrets: { mysecret: 'pw' },
    expect: { files: { ok: '' }, config: { env: ['SECRET_ENV=foo'] } },
    buildahFails: 'buildah 1.28 has no secret env=',
  },
  {
    name: 'mount-secret-env-and-file',
    upstream: `${BK_SECRETS}:testSecretAsEnvironWithFileMount`,
    dockerfile: 'FROM busybox\nRUN --mount=type=secret,id=mysecret,target=/run/secrets/secret,env=SECRET_ENV [ "$SECRET_ENV" = "pw" ] && [ -f /run/secrets/secret ] && touch /ok\n',
    secrets: { mysecret: 'pw' },
    expect: { files: { ok: '' } },
    buildahFails: 'buildah 1.28 has no secret env=',
  },
  {
    name: 'mount-secret-default-path',
    upstream: `${BK_SECRETS}:testSecretFileParams (the default target)`,
    dockerfile: 'FROM busybox\nRUN --mount=type=secret,id=mysecret cat /run/secrets/mysecret > /content\n',
    secrets: { mysecret: 'pw' },
    expect: { files: { content: 'pw' } },
  },
];
