import { describe, expect, it } from 'vitest';
import { parseDockerfile } from '../../src/builder/frontend/parse.js';
import { buildStageGraph, resolveMetaArgs, StageNotFoundError } from '../../src/builder/frontend/stages.js';
import { BuildError } from '../../src/builder/errors.js';
import {
  formatPlatform,
  hostPlatformOf,
  isProxyArg,
  normalizePlatform,
  parsePlatformSpec,
  predefinedPlatformArgs,
  proxyArgsFrom,
} from '../../src/builder/frontend/platform.js';

const amd64 = { os: 'linux', architecture: 'amd64' };
const arm64 = { os: 'linux', architecture: 'arm64' };

const MULTI = `
ARG BASE=alpine
ARG TAG=3.19
FROM \${BASE}:\${TAG} AS deps
RUN echo deps
FROM golang AS tools
RUN echo tools
FROM deps AS build
COPY --from=tools /go/bin/x /usr/bin/x
RUN --mount=type=cache,target=/c,from=cachesrc true
FROM scratch AS cachesrc
FROM busybox AS unused
FROM build AS final
COPY --from=0 /a /a
COPY --from=docker.io/library/hello-world:latest /hello /hello
`;

describe('stage graph', () => {
  it('resolves bases, dependencies, needed stages and levels', () => {
    const df = parseDockerfile(MULTI);
    const g = buildStageGraph(df, { platform: amd64, buildPlatform: amd64 });
    expect(g.stages.map((s) => [s.index, s.name, s.base])).toEqual([
      [0, 'deps', { kind: 'image', ref: 'alpine:3.19' }],
      [1, 'tools', { kind: 'image', ref: 'golang' }],
      [2, 'build', { kind: 'stage', index: 0 }],
      [3, 'cachesrc', { kind: 'scratch' }],
      [4, 'unused', { kind: 'image', ref: 'busybox' }],
      [5, 'final', { kind: 'stage', index: 2 }],
    ]);
    // `from=cachesrc` in stage 2 names a LATER stage: buildkit then treats it as an image name.
    expect(g.stages[2]!.deps.map((d) => [d.via, d.source])).toEqual([
      ['from', { kind: 'stage', index: 0 }],
      ['copy', { kind: 'stage', index: 1 }],
      ['mount', { kind: 'image', ref: 'cachesrc' }],
    ]);
    expect(g.stages[5]!.stageDeps).toEqual([0, 2]);
    expect(g.target).toBe(5);
    expect(g.needed).toEqual([0, 1, 2, 5]);
    expect(g.levels).toEqual([[0, 1], [2], [5]]);
    expect(g.images).toEqual(['alpine:3.19', 'golang', 'cachesrc', 'docker.io/library/hello-world:latest']);
  });

  it('--target selects a stage (case-insensitive) and prunes the rest', () => {
    const df = parseDockerfile(MULTI);
    const g = buildStageGraph(df, { target: 'TOOLS' });
    expect(g.target).toBe(1);
    expect(g.needed).toEqual([1]);
    expect(g.levels).toEqual([[1]]);
    expect(() => buildStageGraph(df, { target: 'nope' })).toThrow(StageNotFoundError);
    expect(() => buildStageGraph(df, { target: 'nope' })).toThrow(/target stage "nope" could not be found \(stages: deps, tools/);
  });

  it('build args override meta ARG defaults; defaults see earlier meta ARGs and platform args', () => {
    const df = parseDockerfile('ARG A=x\nARG B=${A}-y\nARG P=$TARGETARCH\nARG UNSET\nFROM img-$A-$B-$P$UNSET\n');
    expect(buildStageGraph(df, { platform: arm64, buildPlatform: amd64 }).stages[0]!.base).toEqual({ kind: 'image', ref: 'img-x-x-y-arm64' });
    expect(buildStageGraph(df, { buildArgs: { A: 'z', UNSET: '!' }, platform: amd64 }).stages[0]!.base).toEqual({
      kind: 'image',
      ref: 'img-z-z-y-amd64!',
    });
    const meta = resolveMetaArgs(df, new Map(), predefinedPlatformArgs(amd64, amd64));
    expect(meta.has('UNSET')).toBe(false);
    expect(meta.get('BUILDPLATFORM')).toBe('linux/amd64');
  });

  it('FROM --platform is expanded with meta args', () => {
    const df = parseDockerfile('FROM --platform=$BUILDPLATFORM alpine AS b\nFROM --platform=$TARGETPLATFORM scratch\n');
    const g = buildStageGraph(df, { platform: { os: 'linux', architecture: 'arm', variant: 'v7' }, buildPlatform: amd64 });
    expect(g.stages.map((s) => s.platform)).toEqual(['linux/amd64', 'linux/arm/v7']);
  });

  it('COPY --from can use stage-local ARGs', () => {
    const df = parseDockerfile('ARG SRC=one\nFROM alpine AS one\nFROM alpine AS two\nARG SRC\nCOPY --from=$SRC /a /a\n');
    expect(buildStageGraph(df).stages[1]!.stageDeps).toEqual([0]);
    // A name that is not an earlier stage (here: the stage itself) is an image reference.
    expect(buildStageGraph(df, { buildArgs: { SRC: 'two' } }).stages[1]!.deps.at(-1)!.source).toEqual({ kind: 'image', ref: 'two' });
  });

  it('errors carry the instruction location', () => {
    const blank = parseDockerfile('ARG X\nFROM $X\n', { file: 'Dockerfile' });
    expect(() => buildStageGraph(blank)).toThrow(/^Dockerfile:2:1: base name \(\$X\) should not be blank$/);
    const future = parseDockerfile('FROM a\nCOPY --from=1 /x /y\nFROM b\n', { file: 'Dockerfile' });
    expect(() => buildStageGraph(future)).toThrow(/^Dockerfile:2:1: invalid from flag value 1: refers to current or future build stage$/);
    const bad = parseDockerfile('ARG X="${Y:?need Y}"\nFROM a\n', { file: 'Dockerfile' });
    expect(() => buildStageGraph(bad)).toThrow(BuildError);
    expect(() => buildStageGraph(bad)).toThrow(/^Dockerfile:1:1: .*Y: need Y/);
  });

  it('independent stages share a level', () => {
    const df = parseDockerfile('FROM a AS x\nFROM b AS y\nFROM c AS z\nFROM scratch\nCOPY --from=x / /\nCOPY --from=y / /\nCOPY --from=z / /\n');
    expect(buildStageGraph(df).levels).toEqual([[0, 1, 2], [3]]);
  });
});

describe('platform', () => {
  it('parses and normalises platform specs', () => {
    expect(parsePlatformSpec('linux/amd64')).toEqual(amd64);
    expect(parsePlatformSpec('linux/arm64/v8')).toEqual(arm64);
    expect(parsePlatformSpec('linux/aarch64')).toEqual(arm64);
    expect(parsePlatformSpec('linux/arm')).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' });
    expect(parsePlatformSpec('linux/arm/v6')).toEqual({ os: 'linux', architecture: 'arm', variant: 'v6' });
    expect(parsePlatformSpec('x86_64')).toEqual(amd64);
    expect(parsePlatformSpec('Linux/AMD64')).toEqual(amd64);
    expect(() => parsePlatformSpec('linux/')).toThrow(/invalid platform "linux\/"/);
    expect(() => parsePlatformSpec('a/b/c/d')).toThrow(/invalid platform/);
    expect(formatPlatform({ os: 'linux', architecture: 'arm', variant: 'v7' })).toBe('linux/arm/v7');
    expect(normalizePlatform({ os: 'linux', architecture: 'armhf' })).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' });
    expect(hostPlatformOf('x64')).toEqual(amd64);
  });
  it('predefined platform args', () => {
    expect(Object.fromEntries(predefinedPlatformArgs({ os: 'linux', architecture: 'arm', variant: 'v7' }, amd64))).toEqual({
      TARGETPLATFORM: 'linux/arm/v7',
      TARGETOS: 'linux',
      TARGETARCH: 'arm',
      TARGETVARIANT: 'v7',
      BUILDPLATFORM: 'linux/amd64',
      BUILDOS: 'linux',
      BUILDARCH: 'amd64',
      BUILDVARIANT: '',
    });
  });
  it('proxy args', () => {
    expect(isProxyArg('https_proxy')).toBe(true);
    expect(isProxyArg('HTTP_PROXY')).toBe(true);
    expect(isProxyArg('PROXY')).toBe(false);
    expect(Object.fromEntries(proxyArgsFrom(new Map([['no_proxy', 'x'], ['OTHER', 'y']])))).toEqual({ no_proxy: 'x' });
  });
});
