/** ARG and ENV: scoping, meta ARGs, defaults and expansion, predefined ARGs, the config's Env. */
import type { Case } from '../types.js';
import { lines } from './util.js';

const BK_ARGS = 'buildkit frontend/dockerfile/dockerfile_args_test.go';
const MOBY_CLI = 'moby integration-cli/docker_cli_build_test.go';

/** The host's architecture as Go names it (the battery builds for the host). */
const ARCH = process.arch === 'x64' ? 'amd64' : process.arch;

export const argCases: Case[] = [
  {
    name: 'arg-global-in-from',
    upstream: `${BK_ARGS}:testGlobalArg`,
    dockerfile: lines('ARG tag=nosuchtag', 'FROM busybox:${tag}', 'RUN echo ok > /ok'),
    args: { tag: 'latest' },
    expect: { files: { ok: 'ok\n' } },
  },
  {
    name: 'arg-global-required-error',
    upstream: `${BK_ARGS}:testGlobalArgErrors`,
    buildahFails: 'buildah 1.28 has no ${VAR:?message} in ARG values',
    dockerfile: lines('ARG FOO=${FOO:?"custom error"}', 'FROM busybox'),
    expect: { error: /FOO: custom error/ },
  },
  {
    name: 'arg-global-required-given',
    upstream: `${BK_ARGS}:testGlobalArgErrors (value given)`,
    buildahFails: 'buildah 1.28 has no ${VAR:?message} in ARG values',
    dockerfile: lines('ARG FOO=${FOO:?"custom error"}', 'FROM busybox', 'ARG FOO', 'RUN echo -n $FOO > /foo'),
    args: { FOO: 'bar' },
    expect: { files: { foo: 'bar' } },
  },
  {
    name: 'arg-default-required-error',
    upstream: `${BK_ARGS}:testArgDefaultExpansion`,
    buildahFails: 'buildah 1.28 has no ${VAR:?message} in ARG values',
    dockerfile: lines('FROM scratch', 'ARG FOO', 'ARG BAR=${FOO:?"foo missing"}'),
    expect: { error: /FOO: foo missing/ },
  },
  {
    name: 'arg-default-required-given',
    upstream: `${BK_ARGS}:testArgDefaultExpansion (FOO given)`,
    buildahFails: 'buildah 1.28 has no ${VAR:?message} in ARG values',
    dockerfile: lines('FROM busybox', 'ARG FOO', 'ARG BAR=${FOO:?"foo missing"}', 'RUN echo -n $BAR > /bar'),
    args: { FOO: '123' },
    expect: { files: { bar: '123' } },
  },
  {
    name: 'arg-default-not-evaluated-when-given',
    upstream: `${BK_ARGS}:testArgDefaultExpansion (BAR given)`,
    buildahFails: 'buildah 1.28 has no ${VAR:?message} in ARG values',
    dockerfile: lines('FROM busybox', 'ARG FOO', 'ARG BAR=${FOO:?"foo missing"}', 'RUN echo -n $BAR > /bar'),
    args: { BAR: '123' },
    expect: { files: { bar: '123' } },
  },
  {
    name: 'arg-multi-per-line',
    upstream: `${BK_ARGS}:testMultiArgs`,
    dockerfile: `ARG a1="foo bar" a2=box
ARG a3="$a2-foo"
FROM busy$a2 AS build
ARG a3 a4="123 456" a1
RUN echo -n "$a1:$a3:$a4" > /out
FROM scratch
COPY --from=build /out .
`,
    expect: { files: { out: 'foo bar:box-foo:123 456' } },
  },
  {
    name: 'arg-quoted-meta',
    upstream: `${BK_ARGS}:testQuotedMetaArgs`,
    dockerfile: `ARG a1="box"
ARG a2="$a1-foo"
FROM busy$a1 AS build
ARG a2
ARG a3="bar-$a2"
RUN echo -n $a3 > /out
FROM scratch
COPY --from=build /out .
`,
    expect: { files: { out: 'bar-box-foo' } },
  },
  ...(['foo', undefined] as const).map((target): Case => ({
    name: `arg-targetstage-${target ?? 'default'}`,
    upstream: `${BK_ARGS}:testTargetStageNameArg`,
    dockerfile: `FROM busybox AS base
WORKDIR /out
RUN echo -n "value:$TARGETSTAGE" > /out/first
ARG TARGETSTAGE
RUN echo -n "value:$TARGETSTAGE" > /out/second
FROM scratch AS foo
COPY --from=base /out/ /
FROM scratch
COPY --from=base /out/ /
`,
    ...(target ? { target } : {}),
    expect: { files: { first: 'value:', second: `value:${target ?? 'default'}` } },
    buildahFails: 'buildah 1.28 does not predefine TARGETSTAGE',
  })),
  {
    name: 'arg-targetstage-named-last',
    upstream: `${BK_ARGS}:testTargetStageNameArg (final stage named)`,
    dockerfile: `FROM busybox AS base
ARG TARGETSTAGE
RUN echo -n "value:$TARGETSTAGE" > /second
FROM scratch AS final
COPY --from=base /second /
`,
    expect: { files: { second: 'value:final' } },
    buildahFails: 'buildah 1.28 does not predefine TARGETSTAGE',
  },
  ...([
    ['nil', undefined, 'my_arg=def_val my_arg=def_val my_arg=d'],
    ['empty', '', 'my_arg=def_val my_arg=def_val my_arg=d'],
    ['override', 'override', 'my_arg=override my_arg=override my_arg=ov'],
  ] as const).map(([n, v, out]): Case => ({
    name: `arg-default-env-${n}`,
    upstream: `${BK_ARGS}:testDefaultEnvWithArgs (${n})`,
    dockerfile: lines(
      'ARG image=idlebox',
      'FROM busy${image#idle} AS build',
      'ARG my_arg',
      'ENV my_arg "my_arg=${my_arg:-def_val}"',
      'ENV my_trimmed_arg "${my_arg%%e*}"',
      'COPY myscript.sh myscript.sh',
      'RUN ./myscript.sh $my_arg $my_trimmed_arg',
      'FROM scratch',
      'COPY --from=build /out /out',
    ),
    files: { 'myscript.sh': { content: '#!/bin/sh\necho -n $my_arg $* > /out\n', mode: 0o700 } },
    ...(v !== undefined ? { args: { my_arg: v } } : {}),
    expect: { files: { out: out } },
    buildahFails: 'buildah 1.28 has no ${VAR#pattern} in FROM',
  })),
  {
    name: 'arg-empty-string-in-env',
    upstream: `${BK_ARGS}:testEmptyStringArgInEnv`,
    dockerfile: 'FROM busybox AS build\nARG FOO\nARG BAR=\nRUN env > env.txt\nFROM scratch\nCOPY --from=build env.txt .\n',
    expect: { files: { 'env.txt': { contains: '\nBAR=\n' } } },
  },
  {
    name: 'arg-unset-not-in-env',
    upstream: `${BK_ARGS}:testEmptyStringArgInEnv (an ARG without a value)`,
    dockerfile: 'FROM busybox AS build\nARG FOO\nRUN env > env.txt && if grep -q "^FOO=" env.txt; then exit 1; fi\n',
    expect: { files: { 'env.txt': { contains: 'PATH=' } } },
  },
  {
    name: 'env-percent-formatting',
    upstream: `${BK_ARGS}:testEnvEmptyFormatting`,
    dockerfile: "FROM busybox AS build\nENV myenv foo%sbar\nRUN [ \"$myenv\" = 'foo%sbar' ]\n",
    expect: { config: { env: ['myenv=foo%sbar'] } },
  },
  {
    name: 'env-replacement-quoting',
    upstream: `${MOBY_CLI}:TestBuildEnvironmentReplacementEnv`,
    dockerfile: lines(
      'FROM busybox',
      'ENV foo zzz',
      'ENV bar ${foo}',
      "ENV abc1='$foo'",
      'ENV env1=$foo env2=${foo} env3="$foo" env4="${foo}"',
      "RUN [ \"$abc1\" = '$foo' ] && (echo \"$abc1\" | grep -q foo)",
      'ENV abc2="\\$foo"',
      "RUN [ \"$abc2\" = '$foo' ] && (echo \"$abc2\" | grep -q foo)",
      "ENV abc3 '$foo'",
      "RUN [ \"$abc3\" = '$foo' ] && (echo \"$abc3\" | grep -q foo)",
      'ENV abc4 "\\$foo"',
      "RUN [ \"$abc4\" = '$foo' ] && (echo \"$abc4\" | grep -q foo)",
      'ENV foo2="abc\\def"',
      "RUN [ \"$foo2\" = 'abc\\def' ]",
      'ENV foo3="abc\\\\def"',
      "RUN [ \"$foo3\" = 'abc\\def' ]",
      "ENV foo4='abc\\\\def'",
      "RUN [ \"$foo4\" = 'abc\\\\def' ]",
      "ENV foo5='abc\\def'",
      "RUN [ \"$foo5\" = 'abc\\def' ]",
    ),
    expect: { config: { env: ['bar=zzz', 'env1=zzz', 'env2=zzz', 'env3=zzz', 'env4=zzz', 'abc1=$foo', 'foo2=abc\\def', 'foo4=abc\\\\def'] } },
  },
  {
    name: 'env-shell-interpolation-left-to-shell',
    upstream: `${MOBY_CLI}:TestBuildExoticShellInterpolation`,
    dockerfile: lines(
      'FROM busybox',
      'ENV SOME_VAR a.b.c',
      'RUN [ "$SOME_VAR" = \'a.b.c\' ] && [ "${SOME_VAR%.*}" = \'a.b\' ] && [ "${SOME_VAR%%.*}" = \'a\' ] && [ "${SOME_VAR#*.}" = \'b.c\' ] && [ "${SOME_VAR##*.}" = \'c\' ] && [ "${SOME_VAR/c/d}" = \'a.b.d\' ] && [ "${#SOME_VAR}" = \'5\' ] && [ "${SOME_UNSET_VAR:-$SOME_VAR}" = \'a.b.c\' ] && [ "${SOME_VAR:+Version: ${SOME_VAR}}" = \'Version: a.b.c\' ] && [ "${SOME_UNSET_VAR:+${SOME_VAR}}" = \'\' ] && touch /ok',
    ),
    expect: { files: { ok: '' } },
  },
  {
    name: 'env-position-kept-on-change',
    upstream: `${MOBY_CLI}:TestBuildEnv`,
    dockerfile: 'FROM busybox\nENV PORT 2375\nENV A=1 B=2\nENV PORT=2376\nRUN [ "$(env | grep PORT)" = "PORT=2376" ]\n',
    expect: { config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'PORT=2376', 'A=1', 'B=2'] } },
  },
  {
    name: 'arg-env-defined-after-arg-wins',
    upstream: `${MOBY_CLI}:TestBuildBuildTimeArgOverrideArgDefinedBeforeEnv`,
    dockerfile: 'FROM busybox\nARG foo\nENV foo barOverride\nRUN echo $foo > /out\nCMD echo $foo\n',
    args: { foo: 'bar' },
    expect: { files: { out: 'barOverride\n' }, config: { env: ['foo=barOverride'], Cmd: ['/bin/sh', '-c', 'echo $foo'] } },
  },
  {
    name: 'arg-env-defined-before-arg-wins',
    upstream: `${MOBY_CLI}:TestBuildBuildTimeArgOverrideEnvDefinedBeforeArg`,
    dockerfile: 'FROM busybox\nENV foo barOverride\nARG foo\nRUN echo $foo > /out\n',
    args: { foo: 'bar' },
    expect: { files: { out: 'barOverride\n' }, config: { env: ['foo=barOverride'] } },
  },
  {
    name: 'arg-expansion-in-instructions',
    upstream: `${MOBY_CLI}:TestBuildBuildTimeArgExpansion`,
    dockerfile: lines(
      'FROM busybox',
      'ARG WDIR',
      'WORKDIR ${WDIR}',
      'ARG AFILE',
      'ADD ${AFILE} testDir/',
      'ARG CFILE',
      'COPY $CFILE testDir/',
      'ARG foo',
      'ENV foo=${foo}',
      'ARG EPORT',
      'EXPOSE $EPORT',
      'ARG USER',
      'USER $USER',
      'ARG VOL',
      'VOLUME ${VOL}',
    ),
    files: { addFile: 'some stuff', copyFile: 'other stuff' },
    args: { WDIR: '/tmp', AFILE: 'addFile', CFILE: 'copyFile', foo: 'bar', EPORT: '9999', USER: 'testUser', VOL: '/testVol/' },
    expect: {
      files: { 'tmp/testDir/addFile': 'some stuff', 'tmp/testDir/copyFile': 'other stuff' },
      config: { WorkingDir: '/tmp', env: ['foo=bar'], ExposedPorts: { '9999/tcp': {} }, User: 'testUser', Volumes: { '/testVol/': {} } },
    },
  },
  {
    name: 'arg-defined-after-use',
    upstream: `${MOBY_CLI}:TestBuildBuildTimeArgUntrustedDefinedAfterUse`,
    dockerfile: 'FROM busybox\nRUN echo "[$foo]" > /before\nARG foo\nRUN echo "[$foo]" > /after\nCMD echo $foo\n',
    args: { foo: 'bar' },
    expect: { files: { before: '[]\n', after: '[bar]\n' }, config: { envLacks: ['foo'] } },
  },
  {
    name: 'arg-quoted-values',
    upstream: `${MOBY_CLI}:TestBuildBuildTimeArgQuotedValVariants`,
    dockerfile: `FROM busybox
ARG foo=""
ARG foo1=''
ARG foo2="''"
ARG foo3='""'
RUN [ "$foo" != "$foo2" ] && [ "$foo" != "$foo3" ] && [ "$foo1" != "$foo2" ] && [ "$foo1" != "$foo3" ] && [ "$foo2" != "$foo3" ] && echo "[$foo][$foo1][$foo2][$foo3]" > /out
`,
    expect: { files: { out: `[][][''][""]\n` } },
  },
  {
    name: 'arg-empty-values',
    upstream: `${MOBY_CLI}:TestBuildBuildTimeArgEmptyValVariants`,
    dockerfile: 'FROM busybox\nARG foo=\nARG foo1=""\nARG foo2=\'\'\nRUN [ "$foo" = "$foo1" ] && [ "$foo1" = "$foo2" ] && env > /env\n',
    expect: { files: { env: { contains: '\nfoo2=\n' } } },
  },
  {
    name: 'arg-not-in-image-config',
    upstream: `${MOBY_CLI}:TestBuildBuildTimeArgDefinitionWithNoEnvInjection`,
    dockerfile: 'FROM busybox\nARG foo\nRUN env > /env\n',
    args: { foo: 'bar' },
    expect: { files: { env: { contains: 'foo=bar' } }, config: { envLacks: ['foo'] } },
  },
  {
    name: 'arg-scoped-to-stage',
    upstream: `${MOBY_CLI}:TestBuildMultiStageArg`,
    dockerfile: 'FROM busybox\nARG stage_1_arg=AAAA\nRUN env > /out\nFROM busybox\nARG stage_2_arg=BBBB\nRUN env > /out\n',
    expect: { files: { out: { contains: 'stage_2_arg=BBBB' } } },
  },
  {
    name: 'arg-global-redeclared-in-stage',
    upstream: `${MOBY_CLI}:TestBuildMultiStageGlobalArg`,
    dockerfile: lines('ARG tag=nosuchtag', 'FROM busybox:${tag} AS first', 'RUN env > /out', 'FROM busybox:${tag}', 'ARG tag', 'COPY --from=first /out /first', 'RUN env > /out'),
    args: { tag: 'latest' },
    expect: { files: { out: { contains: 'tag=latest' } } },
  },
  {
    name: 'arg-global-not-visible-without-redeclare',
    upstream: `${MOBY_CLI}:TestBuildMultiStageGlobalArg (first stage)`,
    dockerfile: lines('ARG tag=latest', 'FROM busybox:${tag}', 'RUN echo "[$tag]" > /out'),
    expect: { files: { out: '[]\n' } },
  },
  {
    name: 'arg-predefined-platform',
    upstream: `${BK_ARGS}:testBuiltinArgs (the platform ARGs)`,
    dockerfile: 'FROM busybox\nRUN echo "[$TARGETOS]" > /undeclared\nARG TARGETPLATFORM TARGETOS TARGETARCH BUILDOS BUILDARCH\nRUN echo "$TARGETPLATFORM $TARGETOS $TARGETARCH $BUILDOS $BUILDARCH" > /out\n',
    expect: { files: { undeclared: '[]\n', out: `linux/${ARCH} linux ${ARCH} linux ${ARCH}\n` }, config: { envLacks: ['TARGETOS'] } },
  },
  {
    name: 'arg-predefined-in-meta-scope',
    upstream: `${BK_ARGS}:testGlobalArg (a predefined ARG before FROM)`,
    dockerfile: lines('ARG BUILDPLATFORM', 'ARG TARGETARCH', 'FROM --platform=${BUILDPLATFORM} busybox AS b', 'ARG TARGETARCH', 'RUN echo -n "${TARGETARCH}" > /arch'),
    expect: { files: { arch: ARCH } },
  },
];
