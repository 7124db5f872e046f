/**
 * BuildKit's lint cases (cases.ts) run through lintDockerfile as `--check` runs it: every stage,
 * base images known as the store would know them (alpine and busybox with Docker Hub's PATH), the
 * findings compared with BuildKit's rule names, messages and lines, and each finding's URL and
 * description with BuildKit's rule table.
 */
import { describe, expect, it } from 'vitest';
import { lintDockerfile, violationOf, type BaseImage } from '../../../src/builder/lint/lint.js';
import { createMatcher, parseIgnoreFile } from '../../../src/builder/frontend/dockerignore.js';
import { parseCheckOptions } from '../../../src/builder/lint/config.js';
import { RULES } from '../../../src/builder/lint/rules.js';
import { CASES } from './cases.js';

const PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const known = async (ref: string): Promise<BaseImage | undefined> =>
  /^docker\.io\/library\/(alpine|busybox)(:|$)/.test(ref) || /^(alpine|busybox)(:|$)/.test(ref) ? { env: [PATH], shell: false } : undefined;

describe('BuildKit lint cases', () => {
  it('has the cases', () => expect(CASES.length).toBeGreaterThanOrEqual(60));
  for (const c of CASES) {
    it(c.name, async () => {
      const r = await lintDockerfile(c.dockerfile, {
        file: 'Dockerfile',
        scope: 'check',
        platform: 'linux/amd64',
        buildArgs: new Map(Object.entries(c.buildArgs ?? {})),
        baseImage: known,
        ...(c.dockerignore !== undefined ? { ignore: createMatcher(parseIgnoreFile(c.dockerignore)) } : {}),
      });
      const got = r.warnings.map((w) => ({ rule: w.rule, detail: w.detail, line: w.range.start.line }));
      const sort = <T extends { line: number; detail: string }>(a: T[]) => [...a].sort((x, y) => x.line - y.line || (x.detail < y.detail ? -1 : 1));
      expect(sort(got)).toEqual(sort(c.warnings));
      for (const w of r.warnings) {
        const rule = RULES[w.rule as keyof typeof RULES];
        expect(w.description).toBe(rule.description);
        expect(w.url).toBe('url' in rule ? rule.url : undefined);
      }
      if (c.error) expect(r.error?.message).toMatch(c.error);
      else expect(r.error).toBeUndefined();
    });
  }
});

describe('check options', () => {
  it('reads skip, experimental and error as BuildKit does', () => {
    const c = parseCheckOptions(' skip = A, B ; error = true;experimental=all');
    expect([...c.skip]).toEqual(['A', 'B']);
    expect(c.error).toBe(true);
    expect(c.experimentalAll).toBe(true);
    expect(parseCheckOptions('skip=all').skipAll).toBe(true);
    expect(parseCheckOptions('').error).toBe(false);
  });
  it('refuses what BuildKit refuses', () => {
    expect(() => parseCheckOptions('skip')).toThrow('invalid check option "skip"');
    expect(() => parseCheckOptions('bogus=1')).toThrow('invalid check option "bogus"');
    expect(() => parseCheckOptions('error=maybe')).toThrow(/failed to parse check option "error=maybe"/);
  });
  it('a bad directive fails the lint; the build argument is named when it is the bad one', async () => {
    await expect(lintDockerfile('# check=error=maybe\nFROM scratch\n', { scope: 'check' })).rejects.toThrow(/failed to parse check options/);
    await expect(lintDockerfile('FROM scratch\n', { scope: 'check', buildArgs: new Map([['BUILDKIT_DOCKERFILE_CHECK', 'nope']]) })).rejects.toThrow(
      /failed to parse BUILDKIT_DOCKERFILE_CHECK: invalid check option "nope"/,
    );
  });
  it('error=true: one violation naming the rules and the first place', async () => {
    const r = await lintDockerfile('#check=skip=ConsistentInstructionCasing;error=true\nFROM scratch as base\ncopy Dockerfile .\nMAINTAINER me\n', { file: 'Dockerfile', scope: 'check' });
    const v = violationOf(r);
    expect(v?.message).toBe('Dockerfile:2:1: lint violation found for rules: FromAsCasing, MaintainerDeprecated');
    expect(v?.code).toBe('FAILED_PRECONDITION');
    expect(violationOf(await lintDockerfile('#check=error=true\nFROM scratch\n', { scope: 'check' }))).toBeUndefined();
  });
});

describe('what a build checks', () => {
  it('a build judges only the stages its target needs; the FROM lines and casing of all', async () => {
    const text = 'FROM scratch AS a\nENV k v\nfrom scratch as b\nENV k v\nFROM a\nCMD x\n';
    const r = await lintDockerfile(text, { scope: 'build', platform: 'linux/amd64' });
    expect(r.warnings.map((w) => `${w.range.start.line} ${w.rule}`)).toEqual([
      '2 LegacyKeyValueFormat',
      '3 ConsistentInstructionCasing',
      '6 JSONArgsRecommended',
    ]);
    const t = await lintDockerfile(text, { scope: 'check', target: 'b', platform: 'linux/amd64' });
    expect(t.warnings.map((w) => `${w.range.start.line} ${w.rule}`)).toEqual(['3 ConsistentInstructionCasing', '4 LegacyKeyValueFormat']);
  });
  it('a stage on an image lint does not know is not judged by UndefinedVar', async () => {
    const r = await lintDockerfile('FROM example.com/unknown\nCOPY $GOPATH/x /x\n', { scope: 'check', baseImage: known });
    expect(r.warnings).toEqual([]);
    const b = await lintDockerfile('FROM busybox\nCOPY $GOPATH/x /x\n', { scope: 'check', baseImage: known });
    expect(b.warnings.map((w) => w.detail)).toEqual(["Usage of undefined variable '$GOPATH' (did you mean $PATH?)"]);
  });
  it('InvalidBaseImagePlatform: the image in the store is for another architecture', async () => {
    const arm = async (): Promise<BaseImage> => ({ env: [PATH], shell: false, platform: { os: 'linux', architecture: 'arm64' } });
    const r = await lintDockerfile('FROM busybox\n', { scope: 'check', platform: 'linux/amd64', baseImage: arm });
    expect(r.warnings.map((w) => [w.rule, w.detail, w.url])).toEqual([
      ['InvalidBaseImagePlatform', 'Base image busybox was pulled with platform "linux/arm64", expected "linux/amd64" for current build', undefined],
    ]);
  });
  it('an image SHELL counts for JSONArgsRecommended', async () => {
    const shell = async (): Promise<BaseImage> => ({ env: [PATH], shell: true });
    expect((await lintDockerfile('FROM busybox\nCMD x\n', { scope: 'check', baseImage: shell })).warnings).toEqual([]);
  });
  it('every rule of BuildKit\'s current rule set is in the table', () => {
    expect(Object.keys(RULES).sort()).toEqual(
      [
        'StageNameCasing', 'FromAsCasing', 'NoEmptyContinuation', 'ConsistentInstructionCasing', 'DuplicateStageName', 'ReservedStageName',
        'JSONArgsRecommended', 'MaintainerDeprecated', 'UndefinedArgInFrom', 'WorkdirRelativePath', 'UndefinedVar', 'MultipleInstructionsDisallowed',
        'LegacyKeyValueFormat', 'InvalidBaseImagePlatform', 'RedundantTargetPlatform', 'SecretsUsedInArgOrEnv', 'InvalidDefaultArgInFrom',
        'FromPlatformFlagConstDisallowed', 'CopyIgnoredFile', 'InvalidDefinitionDescription', 'ExposeProtoCasing', 'ExposeInvalidFormat',
      ].sort(),
    );
  });
});
