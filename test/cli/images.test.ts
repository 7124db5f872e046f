import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { makeTmp } from '../helpers/tmp.js';
import { runCli, expectOneLineError } from '../helpers/cli.js';
import { ensureBusybox } from '../helpers/base-image.js';
import { goTimeString } from '../../src/cli/rows.js';

let tmp: Awaited<ReturnType<typeof makeTmp>>;
let root: string;
beforeEach(async () => {
  tmp = await makeTmp();
  root = join(tmp.dir, 'store');
});
afterEach(async () => tmp.cleanup());

describe('imgbuild images', () => {
  it('prints only the header for an empty store', async () => {
    const r = await runCli(['images'], { root });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n');
  });

  it('lists images like docker, with -q, --digests, --format json and a repository filter', async () => {
    await ensureBusybox(root);
    expect((await runCli(['tag', 'busybox', 'localhost:5000/a/b:t'], { root })).code).toBe(0);
    const r = await runCli(['images'], { root });
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^REPOSITORY\s{3,}TAG\s{3,}IMAGE ID\s{3,}CREATED\s{3,}SIZE$/);
    expect(lines).toHaveLength(3);
    const row = lines.find((l) => l.startsWith('busybox '))!;
    expect(row).toMatch(/^busybox\s+latest\s+[0-9a-f]{12}\s+\d+ years? ago\s+2\.\d\dMB$/);
    expect(lines.some((l) => /^localhost:5000\/a\/b\s+t\s+/.test(l))).toBe(true);
    // columns line up: every row has IMAGE ID at the header's offset
    const at = lines[0]!.indexOf('IMAGE ID');
    for (const l of lines.slice(1)) expect(l.slice(at, at + 12)).toMatch(/^[0-9a-f]{12}$/);

    const q = await runCli(['images', '-q'], { root });
    expect(q.stdout).toMatch(/^[0-9a-f]{12}\n$/); // one image, two tags: one id

    const d = await runCli(['images', '--digests'], { root });
    expect(d.stdout.split('\n')[0]).toMatch(/TAG\s+DIGEST\s+IMAGE ID/);
    // No registry served it (it was loaded): Docker's <none> (test/e2e/pull-on-run.test.ts has pushed ones).
    expect(d.stdout).toMatch(/busybox\s+latest\s+<none>\s+[0-9a-f]{12}/);

    const j = await runCli(['images', '--format', 'json'], { root });
    const objs = j.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, string>);
    expect(objs).toHaveLength(2);
    expect(objs.find((o) => o.Repository === 'busybox')).toMatchObject({ Tag: 'latest', CreatedAt: goTimeString('2023-11-14T22:13:20Z') });
    expect(objs[0]!.ID).toMatch(/^[0-9a-f]{12}$/);

    const f = await runCli(['images', 'localhost:5000/a/b'], { root });
    expect(f.stdout.trim().split('\n')).toHaveLength(2);
    expect(f.stdout).toContain('localhost:5000/a/b');
    const none = await runCli(['images', 'busybox:nope'], { root });
    expect(none.stdout.trim().split('\n')).toHaveLength(1);
    const full = await runCli(['images', '-q', '--no-trunc'], { root });
    expect(full.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
  });

  it('filters on dangling=, reference=', async () => {
    await ensureBusybox(root);
    await runCli(['tag', 'busybox', 'app:1'], { root });
    await runCli(['import', '-', 'ignored-name-none'], { root, input: Buffer.alloc(1024) }); // an empty tar, tagged
    await runCli(['import', '-'], { root, input: Buffer.alloc(1024) }); // the same empty layer, untagged
    const dangling = await runCli(['images', '-f', 'dangling=true'], { root });
    expect(dangling.stdout.trim().split('\n').slice(1)).toHaveLength(1);
    expect(dangling.stdout).toMatch(/\n<none>\s+<none>\s/);
    const named = await runCli(['images', '-f', 'dangling=false', '--format', 'json'], { root });
    expect(named.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { Repository: string }).Repository).sort()).toEqual(['app', 'busybox', 'ignored-name-none']);
    const ref = await runCli(['images', '-f', 'reference=busy*', '-f', 'reference=app:1'], { root });
    expect(ref.stdout.trim().split('\n').slice(1).map((l) => l.split(/\s+/)[0]).sort()).toEqual(['app', 'busybox']);
    expectOneLineError(await runCli(['images', '-f', 'foo=x'], { root }), /INVALID_ARGUMENT: Invalid filter 'foo'$/);
  });

  it('refuses a store from a newer imgbuild with a one-line error', async () => {
    await ensureBusybox(root);
    await writeFile(join(root, 'imgbuild.json'), JSON.stringify({ version: 99 }));
    expectOneLineError(await runCli(['images'], { root }), /format version 99, newer than this imgbuild supports/);
    expectOneLineError(await runCli(['inspect', 'busybox'], { root }), /format version 99/);
  });

  it('reports a corrupt index.json with one line naming it', async () => {
    await ensureBusybox(root);
    await writeFile(join(root, 'index.json'), '{"schemaVersion":2,"manif');
    expectOneLineError(await runCli(['images'], { root }), /corrupt store file .*index\.json: not valid JSON/);
  });

  it('refuses a --format template that does not parse', async () => {
    expectOneLineError(await runCli(['images', '--format', '{{.Repository'], { root }), /template parsing error: template: :1: unclosed action$/);
  });
});
