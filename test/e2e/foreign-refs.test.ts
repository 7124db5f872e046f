/**
 * References other tools write into the store's OCI layout: `skopeo copy ... oci:<root>:tagonly`
 * leaves an index entry whose ref name is a bare `tagonly`. It names the image as the same word
 * typed on the command line does (`docker.io/library/tagonly:latest`): images lists it, and run,
 * inspect, tag and rmi take it.
 */
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tmpBusyboxStore } from '../helpers/base-image.js';
import { runCli, okOut } from '../helpers/cli.js';

let env: Awaited<ReturnType<typeof tmpBusyboxStore>>;
const cli = (args: string[]) => runCli(args, { root: env.root });

beforeAll(async () => {
  env = await tmpBusyboxStore('imgbuild-e2e-foreign-');
});
afterAll(async () => {
  await env.tmp.cleanup();
});

const refNames = async (): Promise<string[]> =>
  (JSON.parse(await readFile(join(env.root, 'index.json'), 'utf8')) as { manifests: { annotations?: Record<string, string> }[] }).manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name'] ?? '');

describe('ref names written by skopeo', () => {
  it('a bare tagonly is addressable as tagonly', async () => {
    const s = spawnSync('skopeo', ['copy', '-q', `oci:${env.root}:docker.io/library/busybox:latest`, `oci:${env.root}:tagonly`], { encoding: 'utf8' });
    expect(s.status, s.stderr).toBe(0);
    expect(await refNames()).toContain('tagonly');

    const images = await cli(['images']);
    expect(images.stdout).toMatch(/^tagonly\s+latest\s+[0-9a-f]{12}\s/m);
    const run = await cli(['run', '--rm', 'tagonly', 'echo', 'from tagonly']);
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe('from tagonly\n');
    const tags = JSON.parse(okOut(await cli(['inspect', '--format', '{{json .RepoTags}}', 'tagonly']))) as string[];
    expect(tags.sort()).toEqual(['busybox:latest', 'tagonly:latest']);
    expect((await cli(['inspect', 'docker.io/library/tagonly:latest'])).code).toBe(0);

    expect((await cli(['tag', 'tagonly', 'copied:1'])).code).toBe(0);
    // Tagging over it replaces skopeo's entry rather than adding a second one for the same name.
    expect((await cli(['tag', 'busybox', 'tagonly'])).code).toBe(0);
    expect((await refNames()).filter((n) => n === 'tagonly' || n === 'docker.io/library/tagonly:latest')).toHaveLength(1);

    const rmi = await cli(['rmi', 'tagonly']);
    expect(rmi.stdout).toBe('Untagged: tagonly:latest\n');
    expect((await refNames()).some((n) => n.includes('tagonly'))).toBe(false);
    expect((await cli(['images', '--format', '{{.Repository}}:{{.Tag}}'])).stdout.split('\n').filter(Boolean).sort()).toEqual(['busybox:latest', 'copied:1']);
    // What imgbuild wrote, skopeo still reads.
    const back = spawnSync('skopeo', ['inspect', '--raw', `oci:${env.root}:docker.io/library/copied:1`], { encoding: 'utf8' });
    expect(back.status, back.stderr).toBe(0);
  });
});
