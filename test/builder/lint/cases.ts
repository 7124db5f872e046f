/**
 * BuildKit's Dockerfile lint cases (moby/buildkit frontend/dockerfile/dockerfile_lint_test.go),
 * written again as data: each Dockerfile with the findings BuildKit's lint request returns
 * (rule, message, line), in line order.
 */
export interface Finding {
  rule: string;
  detail: string;
  line: number;
}
export interface LintCase {
  name: string;
  dockerfile: string;
  /** `--build-arg`s (BuildKit's `build-arg:` frontend attributes). */
  buildArgs?: Record<string, string>;
  dockerignore?: string;
  warnings: Finding[];
  /** The check also reports that the Dockerfile cannot be built; this matches the error. */
  error?: RegExp;
}

const w = (rule: string, line: number, detail: string): Finding => ({ rule, line, detail });

export const CASES: LintCase[] = [
  // testRuleCheckOption
  { name: 'check=skip=all', dockerfile: '#check=skip=all\nFROM scratch as base\ncopy Dockerfile .\n', warnings: [] },
  { name: 'check=skip=all;error=true', dockerfile: '#check=skip=all;error=true\nFROM scratch as base\ncopy Dockerfile .\n', warnings: [] },
  { name: 'check=skip two rules', dockerfile: '#check=skip=ConsistentInstructionCasing,FromAsCasing\nFROM scratch as base\ncopy Dockerfile .\n', warnings: [] },
  {
    name: 'check=skip one rule',
    dockerfile: '#check=skip=ConsistentInstructionCasing\nFROM scratch as base\ncopy Dockerfile .\n',
    warnings: [w('FromAsCasing', 2, "'as' and 'FROM' keywords' casing do not match")],
  },
  {
    name: 'BUILDKIT_DOCKERFILE_CHECK replaces the directive',
    dockerfile: '#check=skip=all\nFROM scratch as base\ncopy Dockerfile .\n',
    buildArgs: { BUILDKIT_DOCKERFILE_CHECK: 'skip=ConsistentInstructionCasing;error=true' },
    warnings: [w('FromAsCasing', 2, "'as' and 'FROM' keywords' casing do not match")],
  },
  {
    name: 'BUILDKIT_DOCKERFILE_CHECK skip=all over error=true',
    dockerfile: '#check=error=true\nFROM scratch as base\ncopy Dockerfile .\n',
    buildArgs: { BUILDKIT_DOCKERFILE_CHECK: 'skip=all' },
    warnings: [],
  },
  // testStageName
  {
    name: 'stage name casing, FROM/as casing',
    dockerfile: '\n# warning: stage name should be lowercase\n#\nFROM scratch AS BadStageName\n\n# warning: \'as\' should match \'FROM\' cmd casing.\n#\nFROM scratch as base2\n\nFROM scratch AS base3\n',
    warnings: [w('StageNameCasing', 4, "Stage name 'BadStageName' should be lowercase"), w('FromAsCasing', 8, "'as' and 'FROM' keywords' casing do not match")],
  },
  {
    name: 'AS against a lower-case from',
    dockerfile: "\n# warning: 'AS' should match 'from' cmd casing.\n#\nfrom scratch AS base\n\nfrom scratch as base2\n",
    warnings: [w('FromAsCasing', 4, "'AS' and 'from' keywords' casing do not match")],
  },
  // testNoEmptyContinuation
  {
    name: 'empty continuation line',
    dockerfile: '\nFROM scratch\n# warning: empty continuation line\nCOPY Dockerfile \\\n\n.\nCOPY Dockerfile \\\n.\n',
    warnings: [w('NoEmptyContinuation', 6, 'Empty continuation line')],
  },
  // testConsistentInstructionCasing
  {
    name: 'mixed-case From',
    dockerfile: "\n# warning: 'FROM' should be either lowercased or uppercased\n#\nFrom scratch as base\nFROM scratch AS base2\n",
    warnings: [w('ConsistentInstructionCasing', 4, "Command 'From' should match the case of the command majority (uppercase)")],
  },
  {
    name: 'copy against upper-case majority',
    dockerfile: "\nFROM scratch\n# warning: 'copy' should match command majority's casing (uppercase)\ncopy Dockerfile /foo\nCOPY Dockerfile /bar\n",
    warnings: [w('ConsistentInstructionCasing', 4, "Command 'copy' should match the case of the command majority (uppercase)")],
  },
  {
    name: 'frOM against lower-case majority',
    dockerfile: "\n# warning: 'frOM' should be either lowercased or uppercased\n#\nfrOM scratch as base\nfrom scratch as base2\n",
    warnings: [w('ConsistentInstructionCasing', 4, "Command 'frOM' should match the case of the command majority (lowercase)")],
  },
  {
    name: 'COPY against lower-case majority',
    dockerfile: "\nfrom scratch\n# warning: 'COPY' should match command majority's casing (lowercase)\nCOPY Dockerfile /foo\ncopy Dockerfile /bar\n",
    warnings: [w('ConsistentInstructionCasing', 4, "Command 'COPY' should match the case of the command majority (lowercase)")],
  },
  {
    name: 'from against upper-case majority',
    dockerfile: "\n# warning: 'from' should match command majority's casing (uppercase)\n#\nfrom scratch\nCOPY Dockerfile /foo\nCOPY Dockerfile /bar\nCOPY Dockerfile /baz\n",
    warnings: [w('ConsistentInstructionCasing', 4, "Command 'from' should match the case of the command majority (uppercase)")],
  },
  {
    name: 'FROM against lower-case majority',
    dockerfile: "\n# warning: 'FROM' should match command majority's casing (lowercase)\n#\nFROM scratch\ncopy Dockerfile /foo\ncopy Dockerfile /bar\ncopy Dockerfile /baz\n",
    warnings: [w('ConsistentInstructionCasing', 4, "Command 'FROM' should match the case of the command majority (lowercase)")],
  },
  { name: 'all lower case', dockerfile: '\nfrom scratch\ncopy Dockerfile /foo\ncopy Dockerfile /bar\n', warnings: [] },
  { name: 'all upper case', dockerfile: '\nFROM scratch\nCOPY Dockerfile /foo\nCOPY Dockerfile /bar\n', warnings: [] },
  { name: 'heredoc body is not an instruction', dockerfile: "\nFROM alpine\nRUN <<'EOT'\nenv\nEOT\n", warnings: [] },
  // testDuplicateStageName
  {
    name: 'duplicate stage name',
    dockerfile: '\nFROM scratch AS b\nFROM scratch AS b\n',
    warnings: [w('DuplicateStageName', 3, 'Duplicate stage name "b", stage names should be unique')],
  },
  { name: 'distinct stage names', dockerfile: '\nFROM scratch AS b1\nFROM scratch AS b2\n', warnings: [] },
  // testReservedStageName
  {
    name: 'reserved stage names',
    dockerfile: '\nFROM scratch AS scratch\nFROM scratch AS context\n',
    warnings: [
      w('ReservedStageName', 2, 'Stage name should not use the same name as reserved stage "scratch"'),
      w('ReservedStageName', 3, 'Stage name should not use the same name as reserved stage "context"'),
    ],
  },
  { name: 'reserved name as a base only', dockerfile: '\nFROM scratch\nFROM scratch AS a\n', warnings: [] },
  // testJSONArgsRecommended
  {
    name: 'CMD in shell form',
    dockerfile: '\nFROM scratch\nCMD mycommand\n',
    warnings: [w('JSONArgsRecommended', 3, 'JSON arguments recommended for CMD to prevent unintended behavior related to OS signals')],
  },
  {
    name: 'ENTRYPOINT in shell form',
    dockerfile: '\nFROM scratch\nENTRYPOINT mycommand\n',
    warnings: [w('JSONArgsRecommended', 3, 'JSON arguments recommended for ENTRYPOINT to prevent unintended behavior related to OS signals')],
  },
  { name: 'CMD after SHELL', dockerfile: '\nFROM scratch\nSHELL ["/usr/bin/customshell"]\nCMD mycommand\n', warnings: [] },
  { name: 'ENTRYPOINT after SHELL', dockerfile: '\nFROM scratch\nSHELL ["/usr/bin/customshell"]\nENTRYPOINT mycommand\n', warnings: [] },
  { name: 'CMD after the base stage\'s SHELL', dockerfile: '\nFROM scratch AS base\nSHELL ["/usr/bin/customshell"]\n\nFROM base\nCMD mycommand\n', warnings: [] },
  { name: 'ENTRYPOINT after the base stage\'s SHELL', dockerfile: '\nFROM scratch AS base\nSHELL ["/usr/bin/customshell"]\n\nFROM base\nENTRYPOINT mycommand\n', warnings: [] },
  // testMaintainerDeprecated
  {
    name: 'MAINTAINER',
    dockerfile: '\nFROM scratch\nMAINTAINER me@example.org\n',
    warnings: [w('MaintainerDeprecated', 3, 'Maintainer instruction is deprecated in favor of using label')],
  },
  { name: 'authors label', dockerfile: '\nFROM scratch\nLABEL org.opencontainers.image.authors="me@example.org"\n', warnings: [] },
  // testWarningsBeforeError
  {
    name: 'warnings before a parse error',
    dockerfile: '\nFROM scratch AS BadStageName\nMAINTAINER me@example.org\nBADCMD\n',
    warnings: [w('StageNameCasing', 2, "Stage name 'BadStageName' should be lowercase"), w('MaintainerDeprecated', 3, 'Maintainer instruction is deprecated in favor of using label')],
    error: /4:1: unknown instruction: BADCMD/,
  },
  // testUndeclaredArg
  { name: 'FROM $base declared', dockerfile: '\nARG base=scratch\nFROM $base\nCOPY Dockerfile .\n', warnings: [] },
  { name: 'BUILDPLATFORM redeclared', dockerfile: '\nARG BUILDPLATFORM=linux/amd64\nFROM --platform=$BUILDPLATFORM scratch\nCOPY Dockerfile .\n', warnings: [] },
  { name: 'BUILDPLATFORM predefined', dockerfile: '\nFROM --platform=$BUILDPLATFORM scratch\nCOPY Dockerfile .\n', warnings: [] },
  { name: 'declared ARG without value', dockerfile: '\nARG DEBUG\nFROM scratch${DEBUG}\nCOPY Dockerfile .\n', warnings: [] },
  { name: 'declared ARG in a default', dockerfile: '\nARG DEBUG\nFROM scra${DEBUG:-tch}\nCOPY Dockerfile .\n', warnings: [] },
  { name: 'declared empty ARG', dockerfile: '\nARG DEBUG=""\nFROM scratch${DEBUG-@bogus}\nCOPY Dockerfile .\n', warnings: [] },
  {
    name: 'misspelt BUILDPLATFORM',
    dockerfile: '\nFROM --platform=$BULIDPLATFORM scratch\nCOPY Dockerfile .\n',
    warnings: [w('UndefinedArgInFrom', 2, "FROM argument 'BULIDPLATFORM' is not declared (did you mean BUILDPLATFORM?)")],
    error: /platform/,
  },
  {
    name: 'misspelt MY_ARCH',
    dockerfile: '\nARG MY_OS=linux\nARG MY_ARCH=amd64\nFROM --platform=linux/${MYARCH} busybox\nCOPY Dockerfile .\n\t',
    warnings: [w('UndefinedArgInFrom', 4, "FROM argument 'MYARCH' is not declared (did you mean MY_ARCH?)")],
    error: /platform/,
  },
  {
    name: 'undeclared version',
    dockerfile: '\nARG tag=latest\nFROM busybox:${tag}${version} AS b\nCOPY Dockerfile .\n',
    warnings: [w('UndefinedArgInFrom', 3, "FROM argument 'version' is not declared")],
  },
  // testWorkdirRelativePath
  {
    name: 'relative WORKDIR',
    dockerfile: '\nFROM scratch\nWORKDIR app/\n',
    warnings: [w('WorkdirRelativePath', 3, 'Relative workdir "app/" can have unexpected results if the base image changes')],
  },
  { name: 'relative WORKDIR after the base stage\'s absolute one', dockerfile: '\nFROM scratch AS a\nWORKDIR /app\n\nFROM a AS b\nWORKDIR subdir/\n', warnings: [] },
  // testUnmatchedVars
  { name: 'declared ARG without value in COPY', dockerfile: '\nFROM scratch\nARG foo\nCOPY Dockerfile${foo} .\n', warnings: [] },
  { name: 'ARG of the base stage', dockerfile: '\nFROM alpine AS base\nARG foo=Dockerfile\n\nFROM base\nCOPY $foo .\n', warnings: [] },
  { name: 'RUN is not expanded', dockerfile: '\nFROM alpine\nRUN echo $PATH\n', warnings: [] },
  {
    name: 'variable used before its ARG',
    dockerfile: '\nFROM alpine\nCOPY $foo .\nARG foo=bar\nRUN echo $foo\n',
    warnings: [w('UndefinedVar', 3, "Usage of undefined variable '$foo'")],
  },
  {
    name: 'misspelt ARG',
    dockerfile: '\nFROM alpine\nARG DIR_BINARIES=binaries/\nARG DIR_ASSETS=assets/\nARG DIR_CONFIG=config/\nCOPY $DIR_ASSET .\n\t',
    warnings: [w('UndefinedVar', 6, "Usage of undefined variable '$DIR_ASSET' (did you mean $DIR_ASSETS?)")],
  },
  {
    name: 'misspelt PATH',
    dockerfile: '\nFROM alpine\nENV PATH=$PAHT:/tmp/bin\n\t\t',
    warnings: [w('UndefinedVar', 3, "Usage of undefined variable '$PAHT' (did you mean $PATH?)")],
  },
  // testAllTargetUnmarshal (a check dispatches every stage)
  {
    name: 'every stage is checked',
    dockerfile: '\nFROM scratch AS first\nCOPY $foo .\n\nFROM scratch AS second\nCOPY $bar .\n',
    warnings: [w('UndefinedVar', 3, "Usage of undefined variable '$foo'"), w('UndefinedVar', 6, "Usage of undefined variable '$bar'")],
  },
  // testMultipleInstructionsDisallowed
  {
    name: 'repeated CMD, ENTRYPOINT, HEALTHCHECK',
    dockerfile: '\nFROM scratch\nENTRYPOINT ["/myapp"]\nENTRYPOINT ["/myotherapp"]\nCMD ["/myapp"]\nCMD ["/myotherapp"]\nHEALTHCHECK CMD ["/myapp"]\nHEALTHCHECK CMD ["/myotherapp"]\n',
    warnings: [
      w('MultipleInstructionsDisallowed', 3, 'Multiple ENTRYPOINT instructions should not be used in the same stage because only the last one will be used'),
      w('MultipleInstructionsDisallowed', 5, 'Multiple CMD instructions should not be used in the same stage because only the last one will be used'),
      w('MultipleInstructionsDisallowed', 7, 'Multiple HEALTHCHECK instructions should not be used in the same stage because only the last one will be used'),
    ],
  },
  {
    name: 'repeated with other instructions between',
    dockerfile: '\nFROM scratch\nENTRYPOINT ["/myapp"]\nCMD ["/myapp"]\nHEALTHCHECK CMD ["/myapp"]\nCOPY <<EOF /a.txt\nHello, World!\nEOF\nENTRYPOINT ["/myotherapp"]\nCMD ["/myotherapp"]\nHEALTHCHECK CMD ["/myotherapp"]\n',
    warnings: [
      w('MultipleInstructionsDisallowed', 3, 'Multiple ENTRYPOINT instructions should not be used in the same stage because only the last one will be used'),
      w('MultipleInstructionsDisallowed', 4, 'Multiple CMD instructions should not be used in the same stage because only the last one will be used'),
      w('MultipleInstructionsDisallowed', 5, 'Multiple HEALTHCHECK instructions should not be used in the same stage because only the last one will be used'),
    ],
  },
  {
    name: 'one of each per stage',
    dockerfile: '\nFROM scratch AS a\nENTRYPOINT ["/myapp"]\nCMD ["/myapp"]\nHEALTHCHECK CMD ["/myapp"]\n\nFROM a AS b\nENTRYPOINT ["/myotherapp"]\nCMD ["/myotherapp"]\nHEALTHCHECK CMD ["/myotherapp"]\n',
    warnings: [],
  },
  // testLegacyKeyValueFormat
  {
    name: 'legacy ENV and LABEL',
    dockerfile: '\nFROM scratch\nENV testkey value\nLABEL key value\n',
    warnings: [
      w('LegacyKeyValueFormat', 3, '"ENV key=value" should be used instead of legacy "ENV key value" format'),
      w('LegacyKeyValueFormat', 4, '"LABEL key=value" should be used instead of legacy "LABEL key value" format'),
    ],
  },
  { name: 'key=value ENV and LABEL', dockerfile: '\nFROM scratch\nENV testkey=value\nLABEL key=value\n', warnings: [] },
  {
    name: 'legacy form in a stage the target does not need',
    dockerfile: '\nFROM scratch AS a\n\nFROM a AS b\nENV testkey value\nLABEL key value\n\nFROM a AS c\n',
    warnings: [
      w('LegacyKeyValueFormat', 5, '"ENV key=value" should be used instead of legacy "ENV key value" format'),
      w('LegacyKeyValueFormat', 6, '"LABEL key=value" should be used instead of legacy "LABEL key value" format'),
    ],
  },
  // testRedundantTargetPlatform
  {
    name: '$TARGETPLATFORM',
    dockerfile: '\nFROM --platform=$TARGETPLATFORM scratch\n',
    warnings: [w('RedundantTargetPlatform', 2, 'Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior')],
  },
  {
    name: '${TARGETPLATFORM}',
    dockerfile: '\nFROM --platform=${TARGETPLATFORM} scratch\n',
    warnings: [w('RedundantTargetPlatform', 2, 'Setting platform to predefined ${TARGETPLATFORM} in FROM is redundant as this is the default behavior')],
  },
  // testSecretsUsedInArgOrEnv
  {
    name: 'secrets in ARG and ENV',
    dockerfile: '\nFROM scratch\nARG SECRET_PASSPHRASE\nENV SUPER_Secret=foo\nENV password=bar secret=baz\nARG super_duper_secret_token=foo auth=bar\nENV apikey=bar sunflower=foo\nENV git_key=\nENV PUBLIC_KEY=\nARG public_token\n',
    warnings: [
      w('SecretsUsedInArgOrEnv', 3, 'Do not use ARG or ENV instructions for sensitive data (ARG "SECRET_PASSPHRASE")'),
      w('SecretsUsedInArgOrEnv', 4, 'Do not use ARG or ENV instructions for sensitive data (ENV "SUPER_Secret")'),
      w('SecretsUsedInArgOrEnv', 5, 'Do not use ARG or ENV instructions for sensitive data (ENV "password")'),
      w('SecretsUsedInArgOrEnv', 5, 'Do not use ARG or ENV instructions for sensitive data (ENV "secret")'),
      w('SecretsUsedInArgOrEnv', 6, 'Do not use ARG or ENV instructions for sensitive data (ARG "super_duper_secret_token")'),
      w('SecretsUsedInArgOrEnv', 6, 'Do not use ARG or ENV instructions for sensitive data (ARG "auth")'),
      w('SecretsUsedInArgOrEnv', 7, 'Do not use ARG or ENV instructions for sensitive data (ENV "apikey")'),
      w('SecretsUsedInArgOrEnv', 8, 'Do not use ARG or ENV instructions for sensitive data (ENV "git_key")'),
    ],
  },
  // testInvalidDefaultArgInFrom
  {
    name: 'tag from an ARG without default',
    dockerfile: '\nARG VERSION\nFROM busybox:$VERSION\n',
    buildArgs: { VERSION: 'latest' },
    warnings: [w('InvalidDefaultArgInFrom', 3, 'Default value for ARG busybox:$VERSION results in empty or invalid base image name')],
  },
  {
    name: 'image from an ARG without default',
    dockerfile: '\nARG IMAGE\nFROM $IMAGE\n',
    buildArgs: { IMAGE: 'busybox:latest' },
    warnings: [w('InvalidDefaultArgInFrom', 3, 'Default value for ARG $IMAGE results in empty or invalid base image name')],
  },
  {
    name: 'default leaves an empty tag',
    dockerfile: '\nARG SFX="box:"\nFROM busy${SFX}\n',
    buildArgs: { SFX: 'box:latest' },
    warnings: [w('InvalidDefaultArgInFrom', 3, 'Default value for ARG busy${SFX} results in empty or invalid base image name')],
  },
  { name: 'valid default', dockerfile: '\nARG VERSION="latest"\nFROM busybox:${VERSION}\n', buildArgs: { VERSION: 'latest' }, warnings: [] },
  { name: 'empty default suffix', dockerfile: '\nARG BUSYBOX_VARIANT=""\nFROM busybox:stable${BUSYBOX_VARIANT}\n', buildArgs: { BUSYBOX_VARIANT: '-musl' }, warnings: [] },
  { name: 'no default suffix', dockerfile: '\n\tARG BUSYBOX_VARIANT\n\tFROM busybox:stable${BUSYBOX_VARIANT}\n\t', buildArgs: { BUSYBOX_VARIANT: '-musl' }, warnings: [] },
  // testFromPlatformFlagConstDisallowed
  {
    name: 'constant platform',
    dockerfile: '\nFROM --platform=linux/amd64 scratch\n',
    warnings: [w('FromPlatformFlagConstDisallowed', 2, 'FROM --platform flag should not use constant value "linux/amd64"')],
  },
  { name: 'constant platform named by the stage (arch)', dockerfile: '\nFROM --platform=linux/amd64 scratch AS my_amd64_stage\n', warnings: [] },
  { name: 'constant platform named by the stage (os)', dockerfile: '\nFROM --platform=linux/amd64 scratch AS linux\n', warnings: [] },
  // testCopyIgnoredFiles (CopyIgnoredFile is no longer experimental in BuildKit's current rule set)
  {
    name: 'COPY and ADD of an ignored file',
    dockerfile: '\nFROM scratch\nCOPY Dockerfile .\nADD Dockerfile /windy\n',
    dockerignore: '\nDockerfile\n',
    warnings: [
      w('CopyIgnoredFile', 3, 'Attempting to Copy file "Dockerfile" that is excluded by .dockerignore'),
      w('CopyIgnoredFile', 4, 'Attempting to Add file "Dockerfile" that is excluded by .dockerignore'),
    ],
  },
  {
    name: 'skip=all does not skip an experimental rule asked for',
    dockerfile: '# check=skip=all;experimental=InvalidDefinitionDescription\n# bar this is the bar\nARG foo=bar\nFROM scratch\nCOPY Dockerfile .\n',
    dockerignore: '\nDockerfile\n',
    warnings: [w('InvalidDefinitionDescription', 3, 'Comment for ARG should follow the format: `# foo <description>`')],
  },
  {
    name: 'COPY --from a stage is not the context',
    dockerfile: '\nFROM scratch AS base\nCOPY Dockerfile /foobar\nADD Dockerfile /windy\n\nFROM base\nCOPY --from=base /foobar /Dockerfile\n',
    dockerignore: '\nfoobar\n',
    warnings: [],
  },
  // testDefinitionDescription
  {
    name: 'description comments that follow the format',
    dockerfile: '# check=experimental=InvalidDefinitionDescription\n# foo this is the foo\nARG foo=bar\n\n# base this is the base image\nFROM scratch AS base\n\n# version this is the version number\nARG version=latest\n\n# baz this is the baz\nARG foo=baz bar=qux baz=quux\n#\nARG bit=bat\n\n# comment for something other than ARG or FROM\nCOPY Dockerfile .\n',
    warnings: [],
  },
  {
    name: 'description comments that do not',
    dockerfile: '# check=experimental=InvalidDefinitionDescription\n# bar this is the bar\nARG foo=bar\n# BasE this is the BasE image\nFROM scratch AS base\n# definitely a bad comment\nARG version=latest\n# definitely a bad comment\nARG foo=baz bar=qux baz=quux\n',
    warnings: [
      w('InvalidDefinitionDescription', 3, 'Comment for ARG should follow the format: `# foo <description>`'),
      w('InvalidDefinitionDescription', 5, 'Comment for FROM should follow the format: `# base <description>`'),
      w('InvalidDefinitionDescription', 7, 'Comment for ARG should follow the format: `# version <description>`'),
      w('InvalidDefinitionDescription', 9, 'Comment for ARG should follow the format: `# <arg_key> <description>`'),
    ],
  },
  {
    name: 'experimental rule not asked for',
    dockerfile: '# bar this is the bar\nARG foo=bar\nFROM scratch\n',
    warnings: [],
  },
  // The EXPOSE rules (docs/rules/expose-proto-casing.md, expose-invalid-format.md)
  {
    name: 'EXPOSE protocol casing',
    dockerfile: 'FROM scratch\nEXPOSE 80/TcP 53/udp\n',
    warnings: [w('ExposeProtoCasing', 2, "Defined protocol '80/TcP' in EXPOSE instruction should be lowercase")],
  },
  {
    name: 'EXPOSE with an address and a host port',
    dockerfile: 'FROM scratch\nEXPOSE 127.0.0.1:80:80 8080:80/tcp 80\n',
    warnings: [
      w('ExposeInvalidFormat', 2, "EXPOSE instruction should not define an IP address or host-port mapping, found '127.0.0.1:80:80'"),
      w('ExposeInvalidFormat', 2, "EXPOSE instruction should not define an IP address or host-port mapping, found '8080:80/tcp'"),
    ],
  },
  // A `# check=` comment right above an instruction applies to it alone.
  {
    name: 'check comment above one instruction',
    dockerfile: 'FROM scratch\n# check=skip=JSONArgsRecommended\nCMD one\nENTRYPOINT two\n',
    warnings: [w('JSONArgsRecommended', 4, 'JSON arguments recommended for ENTRYPOINT to prevent unintended behavior related to OS signals')],
  },
];
