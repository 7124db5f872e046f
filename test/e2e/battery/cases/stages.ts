/** Multi-stage builds, --target, and ONBUILD triggers. */
import type { Case, FileExpect } from '../types.js';

const BK_MULTI = 'buildkit frontend/dockerfile/dockerfile_multistage_test.go';
const BK_ONBUILD = 'buildkit frontend/dockerfile/dockerfile_onbuild_test.go';
const BK_CORE = 'buildkit frontend/dockerfile/dockerfile_core_test.go';
const MOBY_CLI = 'moby integration-cli/docker_cli_build_test.go';
const MOBY_BUILD = 'moby integration/build/build_test.go';

/** moby's testdata/Dockerfile.TestBuildMultiStageCopy (stages copying one file to new and existing dirs). */
const MULTI_STAGE_COPY = `FROM busybox AS base
RUN mkdir existingdir
FROM base AS source
RUN echo "Hello World" > /hello
FROM base AS copy_to_root
COPY --from=source /hello /hello
FROM base AS copy_to_newdir
COPY --from=source /hello /newdir/hello
FROM base AS copy_to_newdir_nested
COPY --from=source /hello /newdir/newsubdir/hello
FROM base AS copy_to_existingdir
COPY --from=source /hello /existingdir/hello
FROM base AS copy_to_newsubdir
COPY --from=source /hello /existingdir/newsubdir/hello
`;

export const stageCases: Case[] = [
  {
    name: 'stage-implicit-image-in-copy-from',
    upstream: `${BK_MULTI}:testMultiStageImplicitFrom`,
    dockerfile: 'FROM scratch\nCOPY --from=busybox /etc/passwd test\n',
    expect: { files: { test: { contains: 'root:x:0:0' } } },
  },
  {
    name: 'stage-name-masks-image',
    upstream: `${BK_MULTI}:testMultiStageImplicitFrom (a stage named like an image)`,
    dockerfile: 'FROM busybox AS golang\nRUN mkdir -p /usr/bin && echo -n foo > /usr/bin/go\nFROM scratch\nCOPY --from=golang /usr/bin/go go\n',
    expect: { files: { go: 'foo' } },
  },
  {
    name: 'stage-names-case-insensitive',
    upstream: `${BK_MULTI}:testMultiStageCaseInsensitive`,
    buildahFails: 'buildah 1.28 matches stage names case-sensitively',
    dockerfile: 'FROM scratch AS STAge0\nCOPY foo bar\nFROM scratch AS staGE1\nCOPY --from=staGE0 bar baz\nFROM scratch\nCOPY --from=stage1 baz bax\n',
    files: { foo: 'foo-contents' },
    target: 'Stage1',
    expect: { files: { baz: 'foo-contents' }, absent: ['bax', 'bar'] },
  },
  ...['/', '/d2'].map((src): Case => ({
    name: `stage-copy-from-later-stage${src === '/' ? '' : '-file'}`,
    upstream: `${BK_MULTI}:testOutOfOrderStage`,
    dockerfile: `FROM busybox AS target\nCOPY --from=build ${src} /out\nFROM busybox AS build\nCOPY /Dockerfile /d2\nFROM target\n`,
    expect: { error: /cannot copy from stage.*needs to be defined before current stage/ },
    buildahFails: 'buildah words the error differently',
  })),
  {
    name: 'stage-copy-from-self',
    upstream: `${MOBY_CLI}:TestBuildMultiStageCopyFromErrors (refers to current build stage)`,
    buildahFails: 'buildah looks the current stage up as an image',
    dockerfile: 'FROM busybox\nCOPY --from=0 foo bar\n',
    files: { foo: 'abc' },
    expect: { error: /circular dependency|refers to current (or future )?build stage|cannot copy from stage/i },
  },
  {
    name: 'stage-name-numeric-refused',
    upstream: `${MOBY_CLI}:TestBuildMultiStageCopyFromErrors (invalid name for build stage)`,
    buildahFails: 'buildah 1.28 panics on a numeric stage name',
    dockerfile: 'FROM busybox AS 1\nCOPY --from=1 foo bar\n',
    files: { foo: 'abc' },
    expect: { error: /invalid name for build stage/ },
  },
  {
    name: 'stage-empty-dockerfile-stages',
    upstream: `${BK_MULTI}:testEmptyStages`,
    dockerfile: 'ARG foo=bar\n',
    expect: { error: /dockerfile contains no stages to build|there is no build stage/i },
    buildahFails: 'buildah words the error differently',
  },
  {
    name: 'stage-copy-from-syntax',
    upstream: `${MOBY_CLI}:TestBuildMultiStageCopyFromSyntax`,
    dockerfile: `FROM busybox AS first
COPY foo bar
FROM busybox
COPY baz baz
RUN echo mno > baz/cc
FROM busybox
COPY bar /
COPY --from=1 baz sub/
COPY --from=0 bar baz
COPY --from=first bar bay
`,
    files: { foo: 'abc', bar: 'def', 'baz/aa': 'ghi', 'baz/bb': 'jkl' },
    expect: { files: { bar: 'def', 'sub/aa': 'ghi', 'sub/cc': 'mno\n', baz: 'abc', bay: 'abc' } },
  },
  {
    name: 'stage-name-variants',
    upstream: `${MOBY_CLI}:TestBuildMultiStageNameVariants`,
    buildahFails: 'buildah 1.28 matches stage names case-sensitively',
    dockerfile: 'FROM busybox as foo\nCOPY foo /\nFROM foo as foo1\nRUN echo 1 >> foo\nFROM foo as foO2\nRUN echo 2 >> foo\nFROM foo\nCOPY --from=foo1 foo f1\nCOPY --from=FOo2 foo f2\n',
    files: { foo: 'bar' },
    expect: { files: { foo: 'bar', f1: 'bar1\n', f2: 'bar2\n' } },
  },
  {
    name: 'stage-no-layer-leak',
    upstream: `${MOBY_BUILD}:TestBuildMultiStageLayerLeak`,
    dockerfile: 'FROM busybox\nWORKDIR /foo\nCOPY foo .\nFROM busybox\nWORKDIR /foo\nCOPY bar .\nRUN [ -f bar ]\nRUN [ ! -f foo ]\n',
    files: { foo: '0', bar: '1' },
    expect: { files: { 'foo/bar': '1' }, absent: ['foo/foo'] },
  },
  ...['copy_to_root', 'copy_to_newdir', 'copy_to_newdir_nested', 'copy_to_existingdir', 'copy_to_newsubdir'].map((target): Case => ({
    name: `stage-${target.replaceAll('_', '-')}`,
    upstream: `${MOBY_BUILD}:TestBuildMultiStageCopy (${target})`,
    dockerfile: MULTI_STAGE_COPY,
    target,
    expect: {
      files: ({
        copy_to_root: { hello: 'Hello World\n' },
        copy_to_newdir: { 'newdir/hello': 'Hello World\n', newdir: { type: 'dir', mode: 0o755, owner: '0:0' } },
        copy_to_newdir_nested: { 'newdir/newsubdir/hello': 'Hello World\n' },
        copy_to_existingdir: { 'existingdir/hello': 'Hello World\n' },
        copy_to_newsubdir: { 'existingdir/newsubdir/hello': 'Hello World\n' },
      } as Record<string, Record<string, string | FileExpect>>)[target] ?? {},
    },
  })),
  {
    name: 'target-intermediate',
    upstream: `${MOBY_CLI}:TestBuildIntermediateTarget`,
    buildahFails: 'buildah 1.28 matches stage names case-sensitively',
    dockerfile: 'FROM busybox AS build-env\nCMD ["/dev"]\nFROM busybox\nCMD ["/dist"]\n',
    target: 'BUIld-EnV',
    expect: { config: { Cmd: ['/dev'] } },
  },
  {
    name: 'target-missing',
    upstream: `${MOBY_CLI}:TestBuildIntermediateTarget (nosuchtarget)`,
    dockerfile: 'FROM busybox AS build-env\nCMD ["/dev"]\nFROM busybox\nCMD ["/dist"]\n',
    target: 'nosuchtarget',
    expect: { error: /target stage "?nosuchtarget"? could not be found/ },
    buildahFails: 'buildah words the error differently',
  },
  {
    name: 'target-mistyped-suggests',
    upstream: `${BK_CORE}:testTargetMistype`,
    dockerfile: 'FROM scratch AS build\nCOPY Dockerfile /out\nFROM scratch\nCOPY --from=build /out /\n',
    target: 'bulid',
    expect: { error: /target stage "bulid" could not be found \(did you mean build\?\)/ },
    buildahFails: 'buildah words the error differently',
  },
  {
    name: 'target-skips-unneeded-stages',
    upstream: `${MOBY_CLI}:TestBuildIntermediateTarget (stages after the target are not built)`,
    dockerfile: 'FROM busybox AS a\nRUN echo a > /a\nFROM busybox AS broken\nRUN exit 1\nFROM a AS b\nRUN echo b > /b\nFROM broken\n',
    target: 'b',
    expect: { files: { a: 'a\n', b: 'b\n' } },
  },
  {
    name: 'onbuild-stage-to-stage',
    upstream: `${MOBY_BUILD}:TestBuildMultiStageOnBuild`,
    dockerfile: "FROM busybox AS stage1\nONBUILD RUN echo 'foo' >somefile\nONBUILD ENV bar=baz\nFROM stage1\nRUN cat somefile\nFROM stage1\nRUN cat somefile > /copied\n",
    expect: { files: { copied: 'foo\n' }, config: { env: ['bar=baz'], OnBuild: null } },
  },
  {
    name: 'onbuild-inherited-stage-run',
    upstream: `${BK_ONBUILD}:testOnBuildInheritedStageRun`,
    dockerfile: 'FROM busybox AS base\nONBUILD RUN mkdir -p /out && echo -n 11 >> /out/foo\nFROM base AS mid\nRUN cp /out/foo /out/bar\nFROM scratch\nCOPY --from=mid /out/bar /\n',
    expect: { files: { bar: '11' } },
  },
  {
    name: 'onbuild-inherited-stage-copy-from',
    upstream: `${BK_ONBUILD}:testOnBuildInheritedStageWithFrom`,
    dockerfile: 'FROM busybox AS src\nRUN mkdir -p /in && echo -n 12 > /in/file\nFROM busybox AS base\nONBUILD COPY --from=src /in/file /out/foo\nFROM base AS mid\nRUN cp /out/foo /out/bar\nFROM scratch\nCOPY --from=mid /out/bar /\n',
    expect: { files: { bar: '12' } },
    buildahFails: 'buildah does not run ONBUILD triggers when a stage starts from another stage',
  },
  {
    name: 'onbuild-image-runs-once',
    upstream: `${BK_ONBUILD}:testOnBuildWithChildStage`,
    bases: [{ tag: 'localhost/battery/onbuild-child:base', dockerfile: 'FROM busybox\nONBUILD RUN mkdir -p /out && touch /out/didrun\n' }],
    dockerfile: `FROM localhost/battery/onbuild-child:base AS base
RUN [ -f /out/didrun ] && touch /step1
RUN rm /out/didrun
RUN [ ! -f /out/didrun ] && touch /step2
FROM base AS child
RUN [ ! -f /out/didrun ] && touch /step3
FROM scratch
COPY --from=child /step* /
`,
    expect: { files: { step1: '', step2: '', step3: '' } },
  },
  {
    name: 'onbuild-cleared-in-child',
    upstream: `${BK_ONBUILD}:testOnBuildCleared`,
    bases: [
      { tag: 'localhost/battery/onbuild-cleared:base', dockerfile: 'FROM busybox\nONBUILD RUN mkdir -p /out && echo -n 11 >> /out/foo\n' },
      { tag: 'localhost/battery/onbuild-cleared:child', dockerfile: 'FROM localhost/battery/onbuild-cleared:base\n' },
    ],
    dockerfile: 'FROM localhost/battery/onbuild-cleared:child AS base\nFROM scratch\nCOPY --from=base /out /\n',
    expect: { files: { foo: '11' } },
  },
  {
    name: 'onbuild-lowercase',
    upstream: `${MOBY_CLI}:TestBuildOnBuildLowercase`,
    bases: [{ tag: 'localhost/battery/onbuild-lower:base', dockerfile: 'FROM busybox\nonbuild run echo quux > /quux\n' }],
    dockerfile: 'FROM localhost/battery/onbuild-lower:base\n',
    expect: { files: { quux: 'quux\n' }, config: { OnBuild: null } },
  },
  {
    name: 'onbuild-config-recorded',
    upstream: `${MOBY_CLI}:TestBuildOnBuild (the trigger is stored, not run)`,
    dockerfile: 'FROM busybox\nONBUILD RUN echo "hello" > /h\nONBUILD ENV A=1\n',
    expect: { config: { OnBuild: ['RUN echo "hello" > /h', 'ENV A=1'] }, absent: ['h'] },
  },
  {
    name: 'onbuild-cmd-entrypoint-json',
    upstream: `${MOBY_CLI}:TestBuildOnBuildCmdEntrypointJSON`,
    bases: [{ tag: 'localhost/battery/onbuild-cmd:base', dockerfile: 'FROM busybox\nONBUILD CMD ["hello world"]\nONBUILD ENTRYPOINT ["echo"]\nONBUILD RUN ["true"]\n' }],
    dockerfile: 'FROM localhost/battery/onbuild-cmd:base\n',
    expect: { config: { Cmd: ['hello world'], Entrypoint: ['echo'] } },
  },
  {
    name: 'onbuild-entrypoint-json',
    upstream: `${MOBY_CLI}:TestBuildOnBuildEntrypointJSON`,
    bases: [{ tag: 'localhost/battery/onbuild-ep:base', dockerfile: 'FROM busybox\nONBUILD ENTRYPOINT ["echo"]\n' }],
    dockerfile: 'FROM localhost/battery/onbuild-ep:base\nCMD ["hello world"]\n',
    expect: { config: { Cmd: ['hello world'], Entrypoint: ['echo'] } },
  },
  {
    name: 'onbuild-not-in-grandchild',
    upstream: `${MOBY_CLI}:TestBuildOnBuildLimitedInheritance`,
    bases: [
      { tag: 'localhost/battery/onbuild-limited:grandparent', dockerfile: 'FROM busybox\nRUN echo "GRANDPARENT"\nONBUILD RUN echo "ONBUILD PARENT" >> /count\n' },
      { tag: 'localhost/battery/onbuild-limited:parent', dockerfile: 'FROM localhost/battery/onbuild-limited:grandparent\n' },
    ],
    dockerfile: 'FROM localhost/battery/onbuild-limited:parent\n',
    expect: { files: { count: 'ONBUILD PARENT\n' } },
  },
  {
    name: 'onbuild-new-dependencies',
    upstream: `${BK_ONBUILD}:testOnBuildNewDeps`,
    bases: [{ tag: 'localhost/battery/onbuild-deps:base', dockerfile: 'FROM busybox\nONBUILD COPY --from=busybox /etc/passwd /out/passwd2\n' }],
    dockerfile: 'FROM localhost/battery/onbuild-deps:base AS base\nRUN cat /out/passwd2 > /out/passwd3\nFROM scratch\nCOPY --from=base /out /\n',
    expect: { files: { passwd3: { contains: 'root:x:0:0' } } },
  },
  {
    name: 'onbuild-bind-mount-from-stage',
    upstream: `${BK_ONBUILD}:testOnBuildNewDeps (a trigger's RUN --mount from a stage of the child)`,
    buildahFails: "buildah does not find a trigger's mount source among the child's stages",
    bases: [{ tag: 'localhost/battery/onbuild-mount:base', dockerfile: 'FROM busybox\nONBUILD RUN --mount=type=bind,target=/in,from=inputstage mkdir /out && cat /in/foo > /out/bar\n' }],
    dockerfile: 'FROM busybox AS inputstage\nRUN echo -n foo > /foo\nFROM localhost/battery/onbuild-mount:base AS base\nRUN echo -n bar3 > /out/bar3\nFROM scratch\nCOPY --from=base /out /\n',
    expect: { files: { bar: 'foo', bar3: 'bar3' } },
  },
  {
    name: 'onbuild-cache-mount',
    upstream: `${BK_ONBUILD}:testOnBuildWithCacheMount`,
    bases: [{ tag: 'localhost/battery/onbuild-cache:base', dockerfile: 'FROM busybox\nONBUILD RUN --mount=type=cache,target=/battery-onbuild-cache echo -n 42 >> /battery-onbuild-cache/foo && echo -n 11 >> /bar\n' }],
    dockerfile: 'FROM localhost/battery/onbuild-cache:base\nRUN --mount=type=cache,target=/battery-onbuild-cache [ "$(cat /battery-onbuild-cache/foo)" = "42" ] && [ "$(cat /bar)" = "11" ] && touch /ok\n',
    expect: { files: { ok: '', bar: '11' } },
  },
  {
    name: 'onbuild-heredoc',
    upstream: 'buildkit frontend/dockerfile/dockerfile_heredoc_test.go:testOnBuildHeredoc',
    bases: [{ tag: 'localhost/battery/onbuild-heredoc:base', dockerfile: 'FROM busybox\nONBUILD RUN <<EOF\necho -n "hello world" >> /dest\nEOF\n' }],
    dockerfile: 'FROM localhost/battery/onbuild-heredoc:base AS base\nFROM scratch\nCOPY --from=base /dest /dest\n',
    expect: { files: { dest: 'hello world' } },
    buildahSkip: 'buildah 1.28 has no heredocs',
  },
  {
    name: 'onbuild-onbuild-refused',
    upstream: 'buildkit frontend/dockerfile/instructions/parse_test.go (ONBUILD ONBUILD)',
    dockerfile: 'FROM busybox\nONBUILD ONBUILD RUN true\n',
    expect: { error: /Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed/ },
  },
  {
    name: 'onbuild-from-refused',
    upstream: 'buildkit frontend/dockerfile/instructions/parse_test.go (ONBUILD FROM)',
    dockerfile: 'FROM busybox\nONBUILD FROM scratch\n',
    expect: { error: /FROM isn't allowed as an ONBUILD trigger/ },
  },
];
