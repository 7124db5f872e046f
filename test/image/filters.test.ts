/** The matchers behind `--filter`: Docker's label lists and Go's `path.Match` globs. */
import { describe, expect, it } from 'vitest';
import { matchLabels, pathMatchRegExp } from '../../src/image/filters.js';

describe('matchLabels (Docker Args.MatchKVList)', () => {
  const labels = { tier: 'front', 'com.example.x': 'a=b', empty: '' };
  it('needs every k or k=v', () => {
    expect(matchLabels(undefined, labels)).toBe(true);
    expect(matchLabels([], {})).toBe(true);
    expect(matchLabels(['tier'], labels)).toBe(true);
    expect(matchLabels(['tier=front'], labels)).toBe(true);
    expect(matchLabels(['tier=back'], labels)).toBe(false);
    expect(matchLabels(['tier', 'nope'], labels)).toBe(false);
    expect(matchLabels(['com.example.x=a=b'], labels)).toBe(true);
    expect(matchLabels(['empty='], labels)).toBe(true);
    expect(matchLabels(['empty=x'], labels)).toBe(false);
    expect(matchLabels(['tier'], {})).toBe(false);
    expect(matchLabels(['tier'], undefined)).toBe(false);
  });
});

describe('pathMatchRegExp (Go path.Match)', () => {
  const m = (p: string, s: string): boolean => pathMatchRegExp(p).test(s);
  it('keeps * and ? inside one path element', () => {
    expect(m('busy*', 'busybox')).toBe(true);
    expect(m('busy*', 'busybox:latest')).toBe(true);
    expect(m('*', 'library/busybox')).toBe(false);
    expect(m('*/*', 'library/busybox')).toBe(true);
    expect(m('b?sybox', 'busybox')).toBe(true);
    expect(m('b?sybox', 'bsybox')).toBe(false);
    expect(m('*:latest', 'busybox:latest')).toBe(true);
    expect(m('*:1.*', 'app:1.2')).toBe(true);
    expect(m('*:1.*', 'app:132')).toBe(false);
  });
  it('reads classes and escapes', () => {
    expect(m('[ab]pp', 'app')).toBe(true);
    expect(m('[^ab]pp', 'app')).toBe(false);
    expect(m('[a-c]pp', 'bpp')).toBe(true);
    expect(m('a\\*', 'a*')).toBe(true);
    expect(m('a\\*', 'ab')).toBe(false);
    expect(m('a+b', 'a+b')).toBe(true);
    expect(m('a+b', 'aab')).toBe(false);
  });
});
