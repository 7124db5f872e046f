/** The pure parts of container configuration: Docker's CMD/ENTRYPOINT, env, flags, commit changes. */
import { describe, expect, it } from 'vitest';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  capabilitySet,
  composeCommand,
  DEFAULT_CAPABILITIES,
  mergeEnv,
  parseTmpfs,
  parseUlimit,
  resolveEnvFlags,
} from '../../src/containers/spec.js';
import { applyChanges } from '../../src/containers/commit.js';
import { validateName } from '../../src/containers/ids.js';

describe('container spec composition', () => {
  it('composes ENTRYPOINT and CMD as Docker does', () => {
    expect(composeCommand({ Cmd: ['sh'] }, {}).argv).toEqual(['sh']);
    expect(composeCommand({ Entrypoint: ['/init'], Cmd: ['--x'] }, {}).argv).toEqual(['/init', '--x']);
    expect(composeCommand({ Entrypoint: ['/init'], Cmd: ['--x'] }, { cmd: ['run'] }).argv).toEqual(['/init', 'run']);
    // --entrypoint drops the image CMD
    expect(composeCommand({ Entrypoint: ['/init'], Cmd: ['--x'] }, { entrypoint: 'echo' }).argv).toEqual(['echo']);
    expect(composeCommand({ Entrypoint: ['/init'], Cmd: ['--x'] }, { entrypoint: '', cmd: ['ls'] }).argv).toEqual(['ls']);
    expect(() => composeCommand({}, {})).toThrow(/no command specified/);
  });

  it('merges env by key, later wins, first position kept', () => {
    expect(mergeEnv(['A=1', 'B=2'], ['B=3', 'C=4'])).toEqual(['A=1', 'B=3', 'C=4']);
    expect(resolveEnvFlags(['X=1', 'HOSTVAR', 'UNSET'], { HOSTVAR: 'h' })).toEqual(['X=1', 'HOSTVAR=h']);
    expect(() => resolveEnvFlags(['=bad'], {})).toThrow(/invalid environment/);
  });

  it('computes capabilities: defaults, drop, add, ALL', () => {
    expect(capabilitySet([], [])).toEqual(expect.arrayContaining([...DEFAULT_CAPABILITIES]));
    expect(capabilitySet([], ['chown'])).not.toContain('CAP_CHOWN');
    expect(capabilitySet(['NET_ADMIN'], [])).toContain('CAP_NET_ADMIN');
    expect(capabilitySet([], ['ALL'])).toEqual([]);
    expect(capabilitySet(['CAP_KILL'], ['ALL'])).toEqual(['CAP_KILL']);
    expect(capabilitySet(['ALL'], []).length).toBeGreaterThan(38);
    expect(() => capabilitySet(['FLY'], [])).toThrow(/unknown capability/);
  });

  it('parses --tmpfs, --ulimit and names', () => {
    expect(parseTmpfs('/run:size=1m')).toEqual({ destination: '/run', options: ['nosuid', 'nodev', 'size=1m'] });
    expect(() => parseTmpfs('rel')).toThrow(/absolute/);
    expect(parseUlimit('nofile=10:20')).toEqual({ type: 'RLIMIT_NOFILE', soft: 10, hard: 20 });
    expect(parseUlimit('nproc=5')).toEqual({ type: 'RLIMIT_NPROC', soft: 5, hard: 5 });
    expect(() => parseUlimit('bogus=1')).toThrow(/invalid --ulimit/);
    expect(() => parseUlimit('nofile=20:10')).toThrow(/soft limit above hard/);
    expect(validateName('/web-1')).toBe('web-1');
    expect(() => validateName('a')).toThrow(/invalid container name/);
    expect(() => validateName('bad name')).toThrow(/invalid container name/);
  });

  it('applies commit --change instructions', () => {
    const c = applyChanges({ Env: ['A=1'], Cmd: ['sh'] }, [
      'CMD ["echo", "hi"]',
      'ENTRYPOINT /bin/run --fast',
      'ENV A=2 B="two words"',
      'ENV LEGACY some value',
      'LABEL k=v',
      'EXPOSE 80 53/udp',
      'WORKDIR /srv',
      'USER nobody',
      'STOPSIGNAL SIGINT',
      'VOLUME /data',
    ]);
    expect(c).toMatchObject({
      Cmd: ['echo', 'hi'],
      Entrypoint: ['/bin/sh', '-c', '/bin/run --fast'],
      Env: ['A=2', 'B=two words', 'LEGACY=some value'],
      Labels: { k: 'v' },
      ExposedPorts: { '80/tcp': {}, '53/udp': {} },
      WorkingDir: '/srv',
      User: 'nobody',
      StopSignal: 'SIGINT',
      Volumes: { '/data': {} },
    });
    expect(() => applyChanges({}, ['RUN rm -rf /'])).toThrow(/not supported/);
  });
});
