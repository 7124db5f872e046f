/** What the image config ends up holding: SHELL, CMD, ENTRYPOINT, EXPOSE, LABEL, VOLUME, STOPSIGNAL, HEALTHCHECK, history. */
import type { Case } from '../types.js';

const BK_CMD = 'buildkit frontend/dockerfile/dockerfile_cmd_test.go';
const BK_CORE = 'buildkit frontend/dockerfile/dockerfile_core_test.go';
const BK_IMAGE = 'buildkit frontend/dockerfile/dockerfile_image_test.go';
const BK_HEREDOC = 'buildkit frontend/dockerfile/dockerfile_heredoc_test.go';
const MOBY_CLI = 'moby integration-cli/docker_cli_build_test.go';

export const configCases: Case[] = [
  {
    name: 'shell-changes-run-and-cmd',
    upstream: `${MOBY_CLI}:TestBuildShellMultiple`,
    buildahFails: 'buildah runs a shell-form CMD or ENTRYPOINT with /bin/sh -c whatever SHELL says',
    dockerfile: 'FROM busybox\nRUN echo defaultshell > /default\nSHELL ["/bin/sh", "-c", "echo via-sh-c > /shell-c; eval \\"$1\\"", "x"]\nRUN echo second > /second\nSHELL ["ls"]\nRUN -l\nCMD -l\n',
    expect: { files: { default: 'defaultshell\n', 'shell-c': 'via-sh-c\n', second: 'second\n' }, config: { Shell: ['ls'], Cmd: ['ls', '-l'] } },
  },
  {
    name: 'shell-entrypoint',
    upstream: `${MOBY_CLI}:TestBuildShellEntrypoint`,
    buildahFails: 'buildah runs a shell-form CMD or ENTRYPOINT with /bin/sh -c whatever SHELL says',
    dockerfile: 'FROM busybox\nSHELL ["ls"]\nENTRYPOINT -l\n',
    expect: { config: { Entrypoint: ['ls', '-l'], Cmd: null } },
  },
  {
    name: 'shell-inherited-from-image',
    upstream: `${MOBY_CLI}:TestBuildShellInherited`,
    buildahFails: 'buildah runs a shell-form CMD or ENTRYPOINT with /bin/sh -c whatever SHELL says',
    bases: [{ tag: 'localhost/battery/shell-inherited:base', dockerfile: 'FROM busybox\nSHELL ["/bin/sh", "-c", "touch /via-shell; eval \\"$1\\"", "x"]\n' }],
    dockerfile: 'FROM localhost/battery/shell-inherited:base\nRUN echo hi > /out\nCMD echo foo\n',
    expect: {
      files: { 'via-shell': '', out: 'hi\n' },
      config: { Shell: ['/bin/sh', '-c', 'touch /via-shell; eval "$1"', 'x'], Cmd: ['/bin/sh', '-c', 'touch /via-shell; eval "$1"', 'x', 'echo foo'] },
    },
  },
  {
    name: 'shell-cmd-with-defined-shell',
    upstream: `${MOBY_CLI}:TestBuildSetCommandWithDefinedShell`,
    bases: [{ tag: 'localhost/battery/shell-defined:base', dockerfile: 'FROM busybox\nSHELL ["/bin/sh", "-c"]\n' }],
    dockerfile: 'FROM localhost/battery/shell-defined:base\nCMD echo foo\n',
    expect: { config: { Cmd: ['/bin/sh', '-c', 'echo foo'] } },
  },
  {
    name: 'shell-not-json',
    upstream: `${MOBY_CLI}:TestBuildShellNotJSON`,
    dockerfile: 'FROM scratch\nsHeLl exec -form\n',
    expect: { error: /SHELL requires the arguments to be in JSON form/ },
  },
  {
    name: 'shell-for-heredoc',
    upstream: `${BK_HEREDOC}:testRunFakeHeredoc`,
    dockerfile: 'FROM busybox AS build\nSHELL ["/bin/awk"]\nRUN <<EOF\nBEGIN {\n\tprint "foo" > "/dest"\n}\nEOF\nFROM scratch\nCOPY --from=build /dest /dest\n',
    expect: { files: { dest: 'foo\n' } },
    buildahSkip: 'buildah 1.28 has no heredocs',
  },
  {
    name: 'shell-and-entrypoint-in-child',
    upstream: `${BK_CMD}:testCmdShell`,
    buildahFails: 'buildah runs a shell-form CMD or ENTRYPOINT with /bin/sh -c whatever SHELL says',
    bases: [{ tag: 'localhost/battery/cmd-shell:base', dockerfile: 'FROM scratch\nCMD ["test"]\n' }],
    dockerfile: 'FROM localhost/battery/cmd-shell:base\nSHELL ["ls"]\nENTRYPOINT my entrypoint\n',
    expect: { config: { Cmd: null, Entrypoint: ['ls', 'my entrypoint'] } },
  },
  {
    name: 'entrypoint-shell-form-on-scratch',
    upstream: `${BK_CMD}:testDefaultShellAndPath`,
    dockerfile: 'FROM scratch\nENTRYPOINT foo bar\nCOPY Dockerfile .\n',
    expect: { config: { Entrypoint: ['/bin/sh', '-c', 'foo bar'] }, layers: 1 },
  },
  {
    name: 'entrypoint-not-used-by-run',
    upstream: `${BK_CMD}:testIgnoreEntrypoint`,
    dockerfile: 'FROM busybox\nENTRYPOINT ["/nosuchcmd"]\nRUN ["touch", "/ran"]\n',
    expect: { files: { ran: '' }, config: { Entrypoint: ['/nosuchcmd'] } },
  },
  {
    name: 'entrypoint-invalid-json-is-shell-form',
    upstream: `${BK_CMD}:testInvalidJSONCommands (ENTRYPOINT)`,
    buildahFails: 'buildah reads `[]random string` as an empty exec form',
    dockerfile: 'FROM busybox\nENTRYPOINT []random string\n',
    expect: { config: { Entrypoint: ['/bin/sh', '-c', '[]random string'] } },
  },
  {
    name: 'entrypoint-empty',
    upstream: `${MOBY_CLI}:TestBuildEmptyEntrypoint`,
    dockerfile: 'FROM busybox\nENTRYPOINT []\n',
    expect: { config: { Entrypoint: null, Cmd: null } },
  },
  {
    name: 'entrypoint-empty-inherited',
    upstream: `${MOBY_CLI}:TestBuildEmptyEntrypointInheritance`,
    bases: [{ tag: 'localhost/battery/entrypoint-inherit:base', dockerfile: 'FROM busybox\nENTRYPOINT ["/bin/echo"]\n' }],
    dockerfile: 'FROM localhost/battery/entrypoint-inherit:base\nENTRYPOINT []\n',
    expect: { config: { Entrypoint: null } },
  },
  {
    name: 'entrypoint-resets-inherited-cmd',
    upstream: `${MOBY_CLI}:TestBuildEntrypoint`,
    dockerfile: 'FROM busybox\nENTRYPOINT ["/bin/echo"]\n',
    expect: { config: { Entrypoint: ['/bin/echo'], Cmd: null } },
  },
  {
    name: 'entrypoint-keeps-cmd-of-stage',
    upstream: `${MOBY_CLI}:TestBuildClearCmd (CMD before ENTRYPOINT in one stage)`,
    dockerfile: 'FROM busybox\nCMD ["hello"]\nENTRYPOINT ["/bin/echo"]\n',
    expect: { config: { Entrypoint: ['/bin/echo'], Cmd: ['hello'] } },
  },
  {
    name: 'cmd-shell-and-exec-forms',
    upstream: `${MOBY_CLI}:TestBuildCmdShDashC / TestBuildCmdJSONNoShDashC`,
    dockerfile: 'FROM busybox AS a\nCMD echo cmd\nFROM busybox\nCMD ["echo", "cmd"]\n',
    target: 'a',
    expect: { config: { Cmd: ['/bin/sh', '-c', 'echo cmd'] } },
  },
  {
    name: 'cmd-empty-json',
    upstream: `${MOBY_CLI}:TestBuildEmptyCmd`,
    dockerfile: 'FROM busybox\nCMD []\n',
    expect: { config: { Cmd: null } },
  },
  {
    name: 'expose-expansion',
    upstream: `${BK_CORE}:testExposeExpansion`,
    dockerfile: 'FROM scratch\nARG PORTS="3000 4000/udp"\nEXPOSE $PORTS\nEXPOSE 5000\n',
    expect: { config: { ExposedPorts: { '3000/tcp': {}, '4000/udp': {}, '5000/tcp': {} } } },
  },
  {
    name: 'expose-upper-case-protocol',
    upstream: `${MOBY_CLI}:TestBuildExposeUpperCaseProto`,
    buildahFails: "buildah keeps the protocol's case",
    dockerfile: 'FROM scratch\nEXPOSE 5678/UDP\n',
    expect: { config: { ExposedPorts: { '5678/udp': {} } } },
  },
  {
    name: 'expose-many-ports',
    upstream: `${MOBY_CLI}:TestBuildExposeMorePorts`,
    dockerfile: `FROM scratch\nEXPOSE ${Array.from({ length: 40 }, (_, i) => String(i + 1)).join(' ')} \\\n  ${Array.from({ length: 40 }, (_, i) => String(i + 41)).join(' ')}\n`,
    expect: { config: { ExposedPorts: Object.fromEntries(Array.from({ length: 80 }, (_, i) => [`${i + 1}/tcp`, {}])) } },
  },
  {
    name: 'expose-range',
    upstream: `${MOBY_CLI}:TestBuildExpose (a port range)`,
    buildahFails: 'buildah keeps a port range as one entry',
    dockerfile: 'FROM scratch\nEXPOSE 80-82/tcp 2375\n',
    expect: { config: { ExposedPorts: { '80/tcp': {}, '81/tcp': {}, '82/tcp': {}, '2375/tcp': {} } } },
  },
  {
    name: 'labels-merge-with-base',
    upstream: `${BK_CORE}:testLabels / ${MOBY_CLI}:TestBuildLabelsOverride`,
    bases: [{ tag: 'localhost/battery/labels:base', dockerfile: 'FROM busybox\nLABEL a=1 b=2 "with space"="v 1"\n' }],
    dockerfile: 'FROM localhost/battery/labels:base\nLABEL b=3\nLABEL c="quoted value" d=\n',
    expect: { config: { Labels: { a: '1', b: '3', 'with space': 'v 1', c: 'quoted value', d: '' } } },
  },
  {
    name: 'labels-per-target',
    upstream: 'moby integration/build/build_test.go:TestBuildLabelWithTargets',
    dockerfile: 'FROM busybox AS target-a\nCMD ["/dev"]\nLABEL label-a=inline-a\nFROM busybox AS target-b\nCMD ["/dist"]\nLABEL label-b=inline-b\n',
    target: 'target-a',
    expect: { config: { Labels: { 'label-a': 'inline-a' }, Cmd: ['/dev'] } },
  },
  {
    name: 'stopsignal',
    upstream: `${MOBY_CLI}:TestBuildStopSignal`,
    dockerfile: 'FROM busybox\nSTOPSIGNAL SIGKILL\n',
    expect: { config: { StopSignal: 'SIGKILL' } },
  },
  {
    name: 'volume-forms',
    upstream: `${MOBY_CLI}:TestBuildWithVolumes`,
    dockerfile: 'FROM scratch\nVOLUME /test1\nVOLUME /test2\nVOLUME /test3 /test4\nVOLUME ["/test5", "/test6"]\nVOLUME [ "/test7" ]\n',
    expect: { config: { Volumes: { '/test1': {}, '/test2': {}, '/test3': {}, '/test4': {}, '/test5': {}, '/test6': {}, '/test7': {} } } },
  },
  {
    name: 'volume-empty-string',
    upstream: `${MOBY_CLI}:TestBuildEmptyStringVolume`,
    dockerfile: 'FROM busybox\nARG foo=""\nVOLUME $foo\n',
    expect: { error: /VOLUME specified can not be an empty string/i },
  },
  {
    name: 'healthcheck',
    upstream: 'moby integration-cli/docker_cli_health_test.go:TestHealth (the config)',
    dockerfile: 'FROM busybox\nHEALTHCHECK --interval=5s --timeout=3s --retries=2 CMD cat /ok\n',
    expect: { config: { Healthcheck: { Test: ['CMD-SHELL', 'cat /ok'], Interval: 5_000_000_000, Timeout: 3_000_000_000, Retries: 2 } } },
  },
  {
    name: 'scratch-config',
    upstream: `${BK_IMAGE}:testDockerfileScratchConfig`,
    dockerfile: 'FROM scratch\nENV foo=bar\n',
    expect: { layers: 0, config: { env: ['foo=bar', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'] }, history: [{ createdBy: /ENV foo=bar/, empty: true }] },
  },
  {
    name: 'history-of-steps',
    upstream: 'buildkit frontend/dockerfile/dockerfile_history_test.go:testExportedHistory',
    buildahFails: "buildah writes history in the classic builder's form",
    dockerfile: 'FROM busybox AS base\nENV foo=bar\nCOPY foo /foo2\nFROM busybox\nLABEL lbl=val\nCOPY --from=base foo2 foo3\nWORKDIR /\nRUN echo bar > foo4\nRUN ["ls"]\nEXPOSE 2375 5000 1234/udp\n',
    files: { foo: 'contents0' },
    expect: {
      layers: 4,
      files: { foo3: 'contents0', foo4: 'bar\n' },
      history: [
        { createdBy: /lbl=val/, empty: true },
        { createdBy: /COPY foo2 foo3/, empty: false },
        { createdBy: /WORKDIR \//, empty: true },
        { createdBy: /echo bar > foo4/, empty: false },
        { createdBy: /RUN .*ls/, empty: false },
        { createdBy: /EXPOSE .*1234\/udp/, empty: true },
      ],
    },
  },
];
