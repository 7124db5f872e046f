/**
 * `ps`, `images` and `inspect` with Go templates and Docker's filters, on real containers and
 * images: a running container of an image built on busybox (with labels), two exited ones.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setupEnv, type Env } from './containers-env.js';
import { expectOneLineError } from '../helpers/cli.js';

let env: Env;
const ids: Record<string, string> = {};
const lines = (s: string): string[] => s.split('\n').filter(Boolean);

beforeAll(async () => {
  env = await setupEnv();
  const ctx = join(env.dir, 'ctx');
  await mkdir(ctx);
  await writeFile(join(ctx, 'Dockerfile'), 'FROM busybox\nRUN echo hi > /hi\nLABEL tier=front app=demo "com.example.some-thing"=x\n');
  const b = await env.cli(['build', '-q', '-t', 'labeled:1', ctx]);
  expect(b.code, b.stderr).toBe(0);
  const web = await env.cli(['run', '-d', '--name', 'web', 'labeled:1', 'sleep', '300']);
  expect(web.code, web.stderr).toBe(0);
  ids.web = web.stdout.trim();
  expect((await env.cli(['run', '--name', 'done', 'busybox', 'sh', '-c', 'exit 3'])).code).toBe(3);
  expect((await env.cli(['run', '--name', 'ok', 'busybox', 'true'])).code).toBe(0);
}, 120_000);
afterAll(async () => env?.cleanup());

const names = async (...args: string[]): Promise<string[]> => {
  const r = await env.cli(['ps', ...args, '--format', '{{.Names}}']);
  expect(r.code, r.stderr).toBe(0);
  return lines(r.stdout);
};

describe('ps --format', () => {
  it('prints the default table with docker\'s headers and spacing', async () => {
    const r = await env.cli(['ps']);
    const [head, row] = r.stdout.split('\n');
    expect(head).toMatch(/^CONTAINER ID {3}IMAGE {6,}COMMAND {4,}CREATED {5,}STATUS {4,}PORTS {5,}NAMES$/);
    expect(row).toMatch(new RegExp(`^${ids.web!.slice(0, 12)}   labeled:1   "sleep 300" +\\S.* ago +Up .+ web$`));
    expect(head!.indexOf('NAMES')).toBe(row!.indexOf('web'));
  });

  it('runs templates: fields, a label, table headers, json lines', async () => {
    expect((await env.cli(['ps', '--format', '{{.ID}} {{.Image}} {{.Command}} {{.State}} {{.Label "tier"}} {{.Labels}}'])).stdout).toBe(
      `${ids.web!.slice(0, 12)} labeled:1 "sleep 300" running front app=demo,com.example.some-thing=x,tier=front\n`,
    );
    const t = await env.cli(['ps', '-a', '--format', 'table {{.Names}}\\t{{.Label "com.example.some-thing"}}\\t{{.Status}}']);
    expect(lines(t.stdout)[0]).toBe('NAMES     some thing   STATUS');
    expect(lines(t.stdout).slice(1).map((l) => l.split(/ {3,}/)[0])).toEqual(['ok', 'done', 'web']);
    expect(t.stdout).toMatch(/\ndone {6}\s+Exited \(3\) /);
    const j = await env.cli(['ps', '-a', '--format', 'json']);
    const objs = lines(j.stdout).map((l) => JSON.parse(l) as Record<string, string>);
    expect(objs.map((o) => o.Names)).toEqual(['ok', 'done', 'web']);
    expect(Object.keys(objs[0]!)).toEqual([...Object.keys(objs[0]!)].sort());
    expect(objs[2]).toMatchObject({ ID: ids.web!.slice(0, 12), State: 'running', Image: 'labeled:1', Command: '"sleep 300"' });
    expect(objs[2]!.CreatedAt).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} \S+$/);
    expect((await env.cli(['ps', '--no-trunc', '--format', '{{.ID}}'])).stdout).toBe(`${ids.web}\n`);
  });

  it('measures sizes with -s or a format naming .Size: the writable layer, and with the image', async () => {
    expect((await env.cli(['exec', 'web', 'sh', '-c', 'head -c 5000 /dev/zero > /five-k'])).code).toBe(0);
    const s = await env.cli(['ps', '-s']);
    expect(lines(s.stdout)[0]).toMatch(/ {3}NAMES {3,}SIZE$/);
    expect(lines(s.stdout)[1]).toMatch(/ {3}web {7}\d+(\.\d+)?kB \(virtual \d+(\.\d+)?MB\)$/);
    const v = await env.cli(['ps', '--format', '{{.Names}} {{.Size}}']);
    expect(v.stdout).toMatch(/^web \d+(\.\d+)?kB \(virtual \d+(\.\d+)?MB\)\n$/);
    // json does not measure (docker prints 0B there too)
    expect(JSON.parse((await env.cli(['ps', '--format', 'json'])).stdout)).toMatchObject({ Size: '0B' });
  });

  it('fails on a bad template with docker\'s one line, even with nothing listed', async () => {
    expectOneLineError(await env.cli(['ps', '-f', 'name=nothing', '--format', 'table {{.Names}}\\t{{.Foo}}']), /INVALID_ARGUMENT: failed to execute template: template: :1:20: executing "" at <\.Foo>: can't evaluate field Foo in type \*formatter\.ContainerContext$/);
    const p = await env.cli(['ps', '--format', '{{.Names']);
    expectOneLineError(p, /failed to parse template: template: :1: unclosed action$/);
    expect(p.code).toBe(1);
    const q = await env.cli(['ps', '-q', '--format', '{{.Names}}']);
    expect(q.stdout).toBe(`${ids.web!.slice(0, 12)}\n`);
    expect(q.stderr).toBe('WARNING: Ignoring custom format, because both --format and --quiet are set.\n');
  });
});

describe('ps --filter', () => {
  it('status (implies -a), exited (needs -a), name and id as docker matches them', async () => {
    expect(await names('-f', 'status=exited')).toEqual(['ok', 'done']);
    expect(await names('-f', 'status=running', '-f', 'status=exited')).toEqual(['ok', 'done', 'web']);
    expect(await names('-f', 'exited=3')).toEqual([]);
    expect(await names('-a', '-f', 'exited=3')).toEqual(['done']);
    expect(await names('-a', '-f', 'exited=0', '-f', 'exited=3')).toEqual(['ok', 'done']);
    expect(await names('-a', '-f', 'name=^do')).toEqual(['done']);
    expect(await names('-a', '-f', 'name=^/do')).toEqual(['done']);
    expect(await names('-a', '-f', 'name=e')).toEqual(['done', 'web']);
    expect(await names('-a', '-f', `id=${ids.web!.slice(0, 8)}`)).toEqual(['web']);
    // different keys AND, same key ORs
    expect(await names('-f', 'status=exited', '-f', 'status=running', '-f', 'name=o')).toEqual(['ok', 'done']);
  });

  it('label=k and label=k=v (every one must hold)', async () => {
    expect(await names('-a', '-f', 'label=tier')).toEqual(['web']);
    expect(await names('-a', '-f', 'label=tier=front', '-f', 'label=app')).toEqual(['web']);
    expect(await names('-a', '-f', 'label=tier=back')).toEqual([]);
    expect(await names('-a', '-f', 'label=tier', '-f', 'label=nope')).toEqual([]);
  });

  it('ancestor= an image and what was built on it; before= and since= a container', async () => {
    expect(await names('-a', '-f', 'ancestor=busybox')).toEqual(['ok', 'done', 'web']);
    expect(await names('-a', '-f', 'ancestor=labeled:1')).toEqual(['web']);
    expect(await names('-a', '-f', 'ancestor=nosuchimage')).toEqual([]);
    expect(await names('-a', '-f', 'before=ok')).toEqual(['done', 'web']);
    expect(await names('-a', '-f', 'since=web')).toEqual(['ok', 'done']);
    expect(await names('-f', 'before=ok')).toEqual(['web']);
    // --last/--latest count stopped containers too, newest first
    expect(await names('-n', '2')).toEqual(['ok', 'done']);
    expect(await names('-l')).toEqual(['ok']);
    expect(await names('-n', '5', '-f', 'label=tier')).toEqual(['web']);
    expectOneLineError(await env.cli(['ps', '-f', 'before=nosuch']), /NOT_FOUND: No such container: nosuch/);
  });

  it('refuses unknown keys and bad values in one line', async () => {
    const r = await env.cli(['ps', '-f', 'foo=1']);
    expectOneLineError(r, /INVALID_ARGUMENT: Invalid filter 'foo'$/);
    expect(r.code).toBe(1);
    expectOneLineError(await env.cli(['ps', '-f', 'status=bogus']), /Invalid filter 'status=bogus'$/);
    expectOneLineError(await env.cli(['ps', '-f', 'exited=x']), /strconv\.Atoi: parsing "x": invalid syntax$/);
    expectOneLineError(await env.cli(['ps', '-f', 'noequals']), /bad format of filter \(expected name=value\)/);
  });
});

describe('images --format and --filter', () => {
  const imgs = async (...args: string[]): Promise<string[]> => {
    const r = await env.cli(['images', ...args, '--format', '{{.Repository}}:{{.Tag}}']);
    expect(r.code, r.stderr).toBe(0);
    return lines(r.stdout);
  };
  it('filters on label, before/since, reference and dangling', async () => {
    expect(await imgs()).toEqual(['labeled:1', 'busybox:latest']);
    expect(await imgs('-f', 'label=tier=front')).toEqual(['labeled:1']);
    expect(await imgs('-f', 'label=tier=back')).toEqual([]);
    expect(await imgs('-f', 'since=busybox')).toEqual(['labeled:1']);
    expect(await imgs('-f', 'before=labeled:1')).toEqual(['busybox:latest']);
    expect(await imgs('-f', 'reference=lab*')).toEqual(['labeled:1']);
    expect(await imgs('-f', 'reference=*:latest')).toEqual(['busybox:latest']);
    expect(await imgs('-f', 'dangling=true')).toEqual([]);
    expectOneLineError(await env.cli(['images', '-f', 'dangling=maybe']), /Invalid filter 'dangling=\[maybe\]'$/);
    expectOneLineError(await env.cli(['images', '-f', 'bogus=1']), /Invalid filter 'bogus'$/);
  });
  it('prints tables and json lines as docker does', async () => {
    const t = await env.cli(['images', '--format', 'table {{.Repository}}\\t{{.Tag}}\\t{{.Size}}']);
    expect(lines(t.stdout)[0]).toBe('REPOSITORY   TAG       SIZE');
    expect(lines(t.stdout)[1]).toMatch(/^labeled {6}1 {9}\d/);
    const j = lines((await env.cli(['images', '--format', 'json'])).stdout).map((l) => JSON.parse(l) as Record<string, string>);
    expect(j.map((o) => o.Repository)).toEqual(['labeled', 'busybox']);
    expect(Object.keys(j[0]!)).toEqual(['Containers', 'CreatedAt', 'CreatedSince', 'Digest', 'ID', 'Repository', 'SharedSize', 'Size', 'Tag', 'UniqueSize', 'VirtualSize']);
    expectOneLineError(await env.cli(['images', '--format', '{{.Nope}}']), /template parsing error: template: :1:2: executing "" at <\.Nope>: can't evaluate field Nope in type \*formatter\.imageContext$/);
  });
});

describe('inspect -f', () => {
  it('runs Go templates over containers and images', async () => {
    const c = await env.cli(['inspect', '-f', '{{.State.Status}} {{.Name}} {{json .Config.Labels}} {{index .Config.Labels "tier"}} {{len .Config.Env}}', 'web']);
    expect(c.stdout).toMatch(/^running \/web \{"app":"demo","com\.example\.some-thing":"x","tier":"front"\} front [1-9]\d*\n$/);
    const i = await env.cli(['inspect', '-f', '{{.Config.Labels.tier}} {{range $k, $v := .Config.Labels}}{{$k}};{{end}} {{if eq .Os "linux"}}linux{{end}}', 'labeled:1']);
    expect(i.stdout).toBe('front app;com.example.some-thing;tier; linux\n');
    expect((await env.cli(['inspect', '-f', '{{.State.ExitCode}}', 'done'])).stdout).toBe('3\n');
  });
  it('fails as docker does: a missing key exits 1, a template that does not parse 64', async () => {
    const m = await env.cli(['inspect', '-f', '{{.Nope}}', 'web']);
    expectOneLineError(m, /template parsing error: template: :1:2: executing "" at <\.Nope>: map has no entry for key "Nope"$/);
    expect(m.code).toBe(1);
    const p = await env.cli(['inspect', '-f', '{{.State.Status', 'web']);
    expectOneLineError(p, /template parsing error: template: :1: unclosed action$/);
    expect(p.code).toBe(64);
  });
});
