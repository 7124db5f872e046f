/**
 * `build --check`, `--call=check[,format=json]`, the `# check=` directive and
 * `BUILDKIT_DOCKERFILE_CHECK` through the real CLI: the report buildx prints on stdout, exit
 * status 0 when clean and 1 with findings, nothing built and no store made; and a real build that
 * prints BuildKit's `WARN:` lines and goes on, or stops in one line under `error=true`.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { makeTmp } from '../helpers/tmp.js';
import { runCli, expectOneLineError } from '../helpers/cli.js';
import { ensureBusybox } from '../helpers/base-image.js';
import { writeContext } from '../helpers/context.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let root: string;

beforeAll(async () => {
  tmp = await makeTmp('imgbuild-e2e-check-');
  root = join(tmp.dir, 'root');
  await ensureBusybox(root);
}, 120_000);
afterAll(async () => {
  await tmp.cleanup();
});

let n = 0;
async function ctxOf(files: Record<string, string>): Promise<string> {
  return writeContext(tmp.dir, `ctx${++n}`, files);
}

const imgbuild = (args: string[], r = root) => runCli(args, { root: r });

describe('build --check', () => {
  it('a clean Dockerfile: exit 0, buildx\'s one line, no store made', async () => {
    const dir = await ctxOf({ Dockerfile: 'FROM busybox\nCOPY a /a\nCMD ["cat", "/a"]\n', a: 'a\n' });
    const fresh = join(tmp.dir, 'fresh-root');
    const r = await imgbuild(['build', '--check', dir], fresh);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('Check complete, no warnings found.\n');
    expect(r.code).toBe(0);
    expect(existsSync(fresh)).toBe(false);
  });

  it('findings: exit 1, each with its rule, URL, message and Dockerfile:LINE:COL', async () => {
    const dir = await ctxOf({ Dockerfile: 'FROM busybox as base\nENV PATH=$PAHT:/x\nCMD echo hi\n' });
    const r = await imgbuild(['build', '--check', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n').slice(0, 12)).toEqual([
      'Check complete, 3 warnings have been found!',
      '',
      'WARNING: FromAsCasing - https://docs.docker.com/go/dockerfile/rule/from-as-casing/',
      "'as' and 'FROM' keywords' casing do not match",
      'Dockerfile:1:1',
      '--------------------',
      '   1 | >>> FROM busybox as base',
      '   2 |     ENV PATH=$PAHT:/x',
      '   3 |     CMD echo hi',
      '--------------------',
      '',
      'WARNING: UndefinedVar - https://docs.docker.com/go/dockerfile/rule/undefined-var/',
    ]);
    expect(r.stdout).toContain("Usage of undefined variable '$PAHT' (did you mean $PATH?)\nDockerfile:2:1\n");
    expect(r.stdout).toContain('WARNING: JSONArgsRecommended - https://docs.docker.com/go/dockerfile/rule/json-args-recommended/\n');
    // Nothing was built: the store has busybox alone.
    const images = await imgbuild(['images', '-q']);
    expect(images.stdout.trim().split('\n')).toHaveLength(1);
  });

  it('--call=check,format=json prints BuildKit\'s lint result; --format json with --check too', async () => {
    const dir = await ctxOf({ Dockerfile: 'FROM busybox\nMAINTAINER me\n' });
    for (const args of [['--call=check,format=json'], ['--check', '--format', 'json']]) {
      const r = await imgbuild(['build', ...args, dir]);
      expect(r.code).toBe(1);
      const j = JSON.parse(r.stdout) as { warnings: { ruleName: string; detail: string; url: string; location: { ranges: { start: { line: number } }[] } }[]; sources: { filename: string; data: string }[] };
      expect(j.warnings.map((w) => [w.ruleName, w.detail, w.url, w.location.ranges[0]!.start.line])).toEqual([
        ['MaintainerDeprecated', 'Maintainer instruction is deprecated in favor of using label', 'https://docs.docker.com/go/dockerfile/rule/maintainer-deprecated/', 2],
      ]);
      expect(j.sources[0]!.filename).toBe('Dockerfile');
      expect(Buffer.from(j.sources[0]!.data, 'base64').toString()).toBe('FROM busybox\nMAINTAINER me\n');
    }
  });

  it('the directive skips rules; BUILDKIT_DOCKERFILE_CHECK replaces it', async () => {
    const dir = await ctxOf({ Dockerfile: '# check=skip=JSONArgsRecommended,MaintainerDeprecated\nFROM busybox\nMAINTAINER me\nCMD x\n' });
    expect((await imgbuild(['build', '--check', dir])).code).toBe(0);
    const r = await imgbuild(['build', '--check', '--build-arg', 'BUILDKIT_DOCKERFILE_CHECK=skip=MaintainerDeprecated', dir]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^Check complete, 1 warning has been found!\n\nWARNING: JSONArgsRecommended /);
    const all = await ctxOf({ Dockerfile: '# check=skip=all\nfrom busybox AS X\nMAINTAINER me\n' });
    expect(await imgbuild(['build', '--check', all])).toMatchObject({ code: 0, stdout: 'Check complete, no warnings found.\n' });
  });

  it('error=true: the report, then one error line naming the rules; a Dockerfile that cannot build fails after its warnings', async () => {
    const dir = await ctxOf({ Dockerfile: '# check=error=true\nFROM busybox AS Base\n' });
    const r = await imgbuild(['build', '--check', dir]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^Check complete, 1 warning has been found!\n\nWARNING: StageNameCasing /);
    expectOneLineError(r, /^imgbuild: FAILED_PRECONDITION: Dockerfile:2:1: lint violation found for rules: StageNameCasing$/);
    const bad = await ctxOf({ Dockerfile: 'FROM busybox AS Bad\nMAINTAINER me\nBADCMD\n' });
    const b = await imgbuild(['build', '--check', bad]);
    expect(b.code).toBe(1);
    expect(b.stdout).toContain('WARNING: StageNameCasing');
    expect(b.stdout).toContain('WARNING: MaintainerDeprecated');
    expectOneLineError(b, /Dockerfile:3:1: unknown instruction: BADCMD/);
  });

  it('CopyIgnoredFile reads the context\'s .dockerignore', async () => {
    const dir = await ctxOf({ Dockerfile: 'FROM busybox\nCOPY secret.txt /s\n', 'secret.txt': 's\n', '.dockerignore': 'secret.txt\n' });
    const r = await imgbuild(['build', '--check', dir]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('WARNING: CopyIgnoredFile - https://docs.docker.com/go/dockerfile/rule/copy-ignored-file/\nAttempting to Copy file "secret.txt" that is excluded by .dockerignore\n');
  });

  it('refuses what it does not do', async () => {
    expectOneLineError(await imgbuild(['build', '--call=outline', '.']), /unsupported method "outline"/);
    expectOneLineError(await imgbuild(['build', '--check', '--call=build', '.']), /contradict/);
    expectOneLineError(await imgbuild(['build', '--format', 'json', '.']), /--format must be oci or docker/);
    const dir = await ctxOf({ Dockerfile: '# check=error=maybe\nFROM busybox\n' });
    expectOneLineError(await imgbuild(['build', '--check', dir]), /failed to parse check options: failed to parse check option "error=maybe"/);
  });
});

describe('a build with findings', () => {
  it('prints WARN lines as BuildKit does and builds', async () => {
    const dir = await ctxOf({ Dockerfile: 'FROM busybox AS Build\nMAINTAINER me\nRUN true\n' });
    const r = await imgbuild(['build', '--progress=plain', '-t', 'warned', dir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("WARN: StageNameCasing: Stage name 'Build' should be lowercase (line 1)\n");
    expect(r.stderr).toMatch(/#\d+ WARN: MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label \(line 2\)\n/);
    expect(r.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    // buildx's summary at the end.
    expect(r.stderr).toMatch(/\n 2 warnings found \(use --check to expand\):\n - StageNameCasing: Stage name 'Build' should be lowercase \(line 1\)\n - MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label \(line 2\)\n$/);
  });

  it('error=true stops it before any step, in one line, with a build failure\'s status', async () => {
    const dir = await ctxOf({ Dockerfile: '# check=error=true\nFROM busybox\nRUN touch /ran\nCMD x\n' });
    const r = await imgbuild(['build', '-q', '-t', 'stopped', dir]);
    expectOneLineError(r, /^imgbuild: FAILED_PRECONDITION: \S*Dockerfile:4:1: lint violation found for rules: JSONArgsRecommended$/);
    expect(r.code).toBe(1);
    expect((await imgbuild(['image', 'inspect', 'stopped'])).code).not.toBe(0);
    // The build argument lifts it, as in BuildKit.
    const ok = await imgbuild(['build', '-q', '--build-arg', 'BUILDKIT_DOCKERFILE_CHECK=error=false', dir]);
    expect(ok.code, ok.stderr).toBe(0);
  });
});
