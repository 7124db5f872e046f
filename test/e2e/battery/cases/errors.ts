/** Errors the frontend reports, and finding the Dockerfile. */
import type { Case } from '../types.js';

const BK_CMD = 'buildkit frontend/dockerfile/dockerfile_cmd_test.go';
const BK_CORE = 'buildkit frontend/dockerfile/dockerfile_core_test.go';
const MOBY_CLI = 'moby integration-cli/docker_cli_build_test.go';
const WORDING = 'buildah words the error differently';

export const errorCases: Case[] = [
  {
    name: 'error-unknown-instruction',
    upstream: `${BK_CMD}:testDockerfileInvalidInstruction`,
    dockerfile: 'FROM scratch\nFNTRYPOINT ["/bin/sh", "-c", "echo invalidinstruction"]\n',
    expect: { error: /unknown instruction: FNTRYPOINT.*did you mean ENTRYPOINT\?/i },
    buildahFails: WORDING,
  },
  {
    name: 'error-invalid-json-run',
    upstream: `${BK_CMD}:testInvalidJSONCommands`,
    buildahFails: 'buildah ignores text after a JSON array',
    dockerfile: 'FROM busybox\nRUN ["echo", "hello"]this is invalid\n',
    expect: { error: /this is invalid/ },
  },
  {
    name: 'error-run-command-not-found',
    upstream: `${BK_CMD}:testDockerfileInvalidCommand`,
    dockerfile: 'FROM busybox\nRUN invalidcmd\n',
    expect: { error: /\/bin\/sh -c invalidcmd.*did not complete successfully|invalidcmd.*(exit code|status) 127/ },
  },
  {
    name: 'error-env-blank-name',
    upstream: `${MOBY_CLI}:TestBuildBlankName (ENV)`,
    dockerfile: 'FROM busybox\nENV =\n',
    expect: { error: /ENV names can not be blank/ },
    buildahFails: WORDING,
  },
  {
    name: 'error-label-blank-name',
    upstream: `${MOBY_CLI}:TestBuildBlankName (LABEL)`,
    dockerfile: 'FROM busybox\nLABEL =\n',
    expect: { error: /LABEL names can not be blank/ },
    buildahFails: WORDING,
  },
  {
    name: 'error-arg-blank-name',
    upstream: `${MOBY_CLI}:TestBuildBlankName (ARG)`,
    dockerfile: 'FROM busybox\nARG =foo\n',
    expect: { error: /ARG names can not be blank/ },
    buildahFails: WORDING,
  },
  {
    name: 'error-empty-dockerfile',
    upstream: 'moby integration/build/build_test.go:TestBuildWithEmptyDockerfile (empty)',
    dockerfile: '',
    expect: { error: /the Dockerfile cannot be empty|file with no instructions/ },
    buildahFails: WORDING,
  },
  {
    name: 'error-comment-only-dockerfile',
    upstream: 'moby integration/build/build_test.go:TestBuildWithEmptyDockerfile (comment-only)',
    dockerfile: '# this is a comment\n\n\n',
    expect: { error: /file with no instructions/ },
    buildahFails: WORDING,
  },
  {
    name: 'error-line-of-unknown-instruction',
    upstream: `${MOBY_CLI}:TestBuildLineErrorUnknownInstruction`,
    dockerfile: 'FROM busybox\nRUN echo hello world\nNOINSTRUCTION echo ba\nRUN echo hello\nERROR\n',
    expect: { error: /(Dockerfile:3|line 3).*unknown instruction: NOINSTRUCTION/i },
    buildahFails: WORDING,
  },
  {
    name: 'error-line-with-empty-lines',
    upstream: `${MOBY_CLI}:TestBuildLineErrorWithEmptyLines`,
    dockerfile: '\nFROM busybox\n\nRUN echo hello world\n\nRUN echo hello\n\nRUN [ "1" = "2" ]\n',
    expect: { error: /Dockerfile:8/ },
    buildahFails: WORDING,
  },
  {
    name: 'error-expose-invalid',
    upstream: `${MOBY_CLI}:TestBuildExpose (an invalid port)`,
    buildahFails: 'buildah accepts any EXPOSE word',
    dockerfile: 'FROM scratch\nEXPOSE abc\n',
    expect: { error: /abc/ },
  },
  {
    name: 'dockerfile-lowercase-name',
    upstream: `${BK_CORE}:testDockerfileLowercase`,
    buildahFails: 'buildah looks for Containerfile or Dockerfile only',
    dockerfile: 'FROM busybox\nCOPY f /f\n',
    dockerfileName: 'dockerfile',
    files: { f: 'lower' },
    expect: { files: { f: 'lower' } },
  },
  {
    name: 'dockerfile-symlinked',
    upstream: `${BK_CORE}:testSymlinkedDockerfile`,
    dockerfile: 'FROM scratch\nENV foo bar\n',
    dockerfileName: 'Dockerfile.web',
    files: { Dockerfile: { symlink: 'Dockerfile.web' } },
    expect: { config: { env: ['foo=bar'] } },
  },
  {
    name: 'dockerfile-utf8-bom',
    upstream: `${MOBY_CLI}:TestBuildWithUTF8BOM`,
    dockerfile: '\uFEFFFROM busybox\nRUN echo bom > /bom\n',
    expect: { files: { bom: 'bom\n' } },
  },
  {
    name: 'dockerfile-line-continuations',
    upstream: `${MOBY_CLI}:TestBuildLineBreak / TestBuildEOLInLine`,
    dockerfile: 'FROM busybox\nRUN sh -c \'echo root:testpass \\\n\t> /tmp/passwd\'\nRUN mkdir -p /var/run/sshd\nRUN sh -c "[ "$(cat /tmp/passwd)" = "root:testpass" ]"\n# a comment\nRUN echo a \\\n# comment inside\n  b > /ab\n',
    expect: { files: { 'tmp/passwd': 'root:testpass\n', ab: 'a b\n', 'var/run/sshd': { type: 'dir' } } },
  },
  {
    name: 'dockerfile-escape-directive',
    upstream: `${MOBY_CLI}:TestBuildEscapeNotBackslashWordTest (the escape directive)`,
    dockerfile: '# escape=`\nFROM busybox\nRUN echo a `\n  b > /ab\n',
    expect: { files: { ab: 'a b\n' } },
  },
];
