/**
 * Limit flags are parsed exactly (no float on the way: nothing like `1e+29` can reach a cgroup
 * file) and checked against Docker's and the kernel's ranges, with errors naming flag and value.
 */
import { describe, it, expect } from 'vitest';
import { MIN_MEMORY, parseCpuShares, parseCpus, parseMemoryLimit, parsePidsLimit, parseUlimit } from '../../src/host/limits.js';
import { cpuWeight } from '../../src/host/cgroups.js';

describe('--memory', () => {
  it('reads sizes with binary units exactly, as Docker does', () => {
    expect(parseMemoryLimit('64m')).toBe(64 * 1024 ** 2);
    expect(parseMemoryLimit('1.5g')).toBe(1.5 * 1024 ** 3);
    expect(parseMemoryLimit('512MiB')).toBe(512 * 1024 ** 2);
    expect(parseMemoryLimit('100 MB')).toBe(100 * 1024 ** 2);
    expect(parseMemoryLimit('6291456')).toBe(MIN_MEMORY);
    expect(parseMemoryLimit('7340033b')).toBe(7340033);
    // Fractions of a byte are dropped, never rounded up through a float.
    expect(parseMemoryLimit('0.0123456789t')).toBe(Number((1024n ** 4n * 123456789n) / 10n ** 10n));
    expect(parseMemoryLimit('1p')).toBe(1024 ** 5);
    expect(parseMemoryLimit('0')).toBeUndefined(); // no limit
  });

  it('refuses what Docker refuses, and what no number here can hold', () => {
    expect(() => parseMemoryLimit('1k')).toThrow('invalid --memory "1k": Minimum memory limit allowed is 6MB');
    expect(() => parseMemoryLimit('6291455')).toThrow(/Minimum memory limit allowed is 6MB/);
    expect(() => parseMemoryLimit('99999999999999999999g')).toThrow('invalid --memory "99999999999999999999g": larger than the largest limit, 8 PiB');
    expect(() => parseMemoryLimit('8193t')).toThrow(/8 PiB/);
    for (const bad of ['1e9', '1e+29', '-1', '-64m', '64x', 'lots', '', '0x10', '1.', '.5g', '64m64', 'Infinity', 'NaN']) {
      expect(() => parseMemoryLimit(bad), bad).toThrow(/^invalid --memory/);
    }
    expect(() => parseMemoryLimit('1k', '--shm-size')).toThrow(/^invalid --shm-size "1k"/);
  });
});

describe('--cpus', () => {
  it('reads decimals exactly, up to nine places', () => {
    expect(parseCpus('0.5', 2)).toBe(0.5);
    expect(parseCpus('.25', 2)).toBe(0.25);
    expect(parseCpus('2', 2)).toBe(2);
    expect(parseCpus('2.000000000', 2)).toBe(2);
    expect(parseCpus('0.01', 2)).toBe(0.01);
    expect(parseCpus('0.123456789', 2)).toBe(0.123456789);
    expect(parseCpus('0', 2)).toBeUndefined(); // no limit
  });

  it('refuses exponents, too much precision and what is out of Docker\'s range', () => {
    expect(() => parseCpus('0.0000000001', 2)).toThrow('invalid --cpus "0.0000000001": value is too precise (at most 9 decimals)');
    expect(() => parseCpus('0.001', 2)).toThrow('invalid --cpus "0.001": range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available');
    expect(() => parseCpus('3', 2)).toThrow(/from 0\.01 to 2\.00/);
    expect(() => parseCpus('1e400', 2)).toThrow(/^invalid --cpus "1e400": expected a decimal/);
    for (const bad of ['1e-1', '-1', '', '.', 'one', '1/2', '0x1', 'Infinity', '99999999999999999999999']) {
      expect(() => parseCpus(bad, 2), bad).toThrow(/^invalid --cpus/);
    }
  });
});

describe('--cpu-shares', () => {
  it('reads a whole weight, 0 as the default, and moves one outside 2..262144 to the nearest end (as Docker)', () => {
    expect(parseCpuShares('512')).toBe(512);
    expect(parseCpuShares('0')).toBeUndefined();
    expect(parseCpuShares('1')).toBe(2);
    expect(parseCpuShares('999999999999999999999')).toBe(262144);
    expect(() => parseCpuShares('-5')).toThrow(/^invalid --cpu-shares "-5": expected a whole number/);
    expect(() => parseCpuShares('1.5')).toThrow(/expected a whole number/);
  });

  it('converts to cgroup v2 cpu.weight as runc does', () => {
    expect([2, 1024, 512, 2048, 262144].map(cpuWeight)).toEqual([1, 39, 20, 79, 10000]);
  });
});

describe('--pids-limit', () => {
  it('takes whole numbers up to the kernel\'s maximum; 0 and -1 mean no limit', () => {
    expect(parsePidsLimit('1')).toBe(1);
    expect(parsePidsLimit('4194304')).toBe(4194304);
    expect(parsePidsLimit('0')).toBeUndefined();
    expect(parsePidsLimit('-1')).toBeUndefined();
    expect(() => parsePidsLimit('4194305')).toThrow('invalid --pids-limit "4194305": the kernel allows at most 4194304');
    for (const bad of ['1.5', '1e3', '-2', '', 'x', '99999999999999999999999']) {
      expect(() => parsePidsLimit(bad), bad).toThrow(/^invalid --pids-limit/);
    }
  });
});

describe('--ulimit', () => {
  it('takes Docker\'s names, whole numbers and -1 for unlimited', () => {
    expect(parseUlimit('nofile=1024:2048')).toEqual({ type: 'RLIMIT_NOFILE', soft: 1024, hard: 2048 });
    expect(parseUlimit('nproc=5')).toEqual({ type: 'RLIMIT_NPROC', soft: 5, hard: 5 });
    expect(parseUlimit('core=-1')).toEqual({ type: 'RLIMIT_CORE', soft: -1, hard: -1 });
    expect(parseUlimit('core=0:-1')).toEqual({ type: 'RLIMIT_CORE', soft: 0, hard: -1 });
  });

  it('refuses other values with a line naming the flag and value', () => {
    expect(() => parseUlimit('nofile=20:10')).toThrow('invalid --ulimit "nofile=20:10": soft limit above hard limit (20 > 10)');
    expect(() => parseUlimit('nofile=-1:10')).toThrow(/soft limit above hard limit \(unlimited > 10\)/);
    expect(() => parseUlimit('nofile=99999999999999999999')).toThrow(/^invalid --ulimit "nofile=99999999999999999999": 99999999999999999999 is larger than/);
    expect(() => parseUlimit('nofile=1e3')).toThrow(/"1e3" is not a whole number/);
    expect(() => parseUlimit('nofile=-2')).toThrow(/-2 is negative/);
    expect(() => parseUlimit('nofile=abc')).toThrow(/^invalid --ulimit "nofile=abc"/);
    expect(() => parseUlimit('bogus=1')).toThrow(/^invalid --ulimit "bogus=1": expected name=soft\[:hard\]/);
    expect(() => parseUlimit('nofile')).toThrow(/^invalid --ulimit/);
    expect(() => parseUlimit('nofile=')).toThrow(/^invalid --ulimit/);
    expect(() => parseUlimit('nofile=1:2:3')).toThrow(/^invalid --ulimit/);
  });
});
