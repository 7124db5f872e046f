/** `-v` and `--mount` read as docker's CLI and moby's Linux parser read them, with their error texts. */
import { describe, expect, it } from 'vitest';
import { checkDuplicates, parseMountFlag, parseVolumeFlag } from '../../src/containers/mounts.js';
import { imageVolumeRequests } from '../../src/containers/volumes.js';
import { checkDriverOptions, checkVolumeName, volumeMountOf } from '../../src/volumes/local-driver.js';
import { volumeFilter, type VolumeUsage } from '../../src/volumes/store.js';

const exists = (p: string): boolean => p === '/host' || p === '/srv';
const mount = (s: string) => parseMountFlag(s, { exists, cwd: '/work' });

describe('-v', () => {
  it('tells binds, named volumes and anonymous volumes apart', () => {
    expect(parseVolumeFlag('/host:/data:ro')).toEqual({ type: 'bind', source: '/host', destination: '/data', readOnly: true, mode: 'ro', propagation: 'rprivate' });
    expect(parseVolumeFlag('/host:/x/../y:rshared')).toMatchObject({ type: 'bind', destination: '/y', propagation: 'rshared', readOnly: false });
    expect(parseVolumeFlag('./rel:/d', '/work')).toMatchObject({ type: 'bind', source: '/work/rel' });
    expect(parseVolumeFlag('myvol:/data')).toEqual({ type: 'volume', source: 'myvol', destination: '/data', readOnly: false, mode: 'z' });
    expect(parseVolumeFlag('myvol:/data:ro,nocopy')).toMatchObject({ type: 'volume', readOnly: true, mode: 'ro,nocopy', noCopy: true });
    expect(parseVolumeFlag('/data')).toEqual({ type: 'volume', source: '', destination: '/data', readOnly: false, mode: '' });
  });

  it("fails with moby's texts", () => {
    expect(() => parseVolumeFlag('/data:ro')).toThrow("invalid volume specification: '/data:ro'");
    expect(() => parseVolumeFlag(':/data')).toThrow("invalid volume specification: ':/data'");
    expect(() => parseVolumeFlag('a:b:c:d')).toThrow("invalid volume specification: 'a:b:c:d'");
    expect(() => parseVolumeFlag('/host:/d:rx')).toThrow(/^invalid mode: rx$/);
    expect(() => parseVolumeFlag('/host:/d:ro,rw')).toThrow(/^invalid mode: ro,rw$/);
    expect(() => parseVolumeFlag('/host:relative')).toThrow(
      "invalid volume specification: '/host:relative': invalid mount config for type \"bind\": invalid mount path: 'relative' mount path must be absolute",
    );
    expect(() => parseVolumeFlag('/host:/')).toThrow("invalid volume specification: '/host:/': invalid mount config for type \"bind\": invalid specification: destination can't be '/'");
    expect(() => parseVolumeFlag('vol:/d:rshared')).toThrow(/field BindOptions must not be specified/);
  });
});

describe('--mount', () => {
  it("takes docker's keys", () => {
    expect(mount('type=bind,src=/host,dst=/d,readonly,bind-propagation=rslave')).toEqual({
      type: 'bind', source: '/host', destination: '/d', readOnly: true, mode: '', propagation: 'rslave',
    });
    expect(mount('source=v1,target=/data,volume-opt=type=tmpfs,volume-opt=device=tmpfs,volume-label=a=b,volume-nocopy')).toEqual({
      type: 'volume', source: 'v1', destination: '/data', readOnly: false, mode: '', noCopy: true,
      volumeOptions: { type: 'tmpfs', device: 'tmpfs' }, volumeLabels: { a: 'b' },
    });
    expect(mount('type=volume,destination=/anon').source).toBe('');
    expect(mount('type=tmpfs,dst=/t,tmpfs-size=64m,tmpfs-mode=1770').tmpfsOptions).toEqual(['nosuid', 'nodev', 'noexec', 'mode=1770', 'size=64m']);
    expect(mount('type=tmpfs,dst=/t,tmpfs-size=1000').tmpfsOptions).toContain('size=1000');
    expect(mount('type=bind,"src=/srv",dst=/d,ro=false').readOnly).toBe(false);
  });

  it("fails with docker's texts", () => {
    expect(() => mount('type=volume')).toThrow('invalid argument "type=volume" for "--mount" flag: target is required');
    expect(() => mount('dst=/d,bogus')).toThrow(`invalid argument "dst=/d,bogus" for "--mount" flag: invalid field 'bogus' must be a key=value pair`);
    expect(() => mount('dst=/d,colour=red')).toThrow(`unexpected key 'colour' in 'colour=red'`);
    expect(() => mount('type=bind,src=/host,dst=/d,volume-nocopy')).toThrow(`cannot mix 'volume-*' options with mount type 'bind'`);
    expect(() => mount('type=volume,dst=/d,bind-propagation=shared')).toThrow(`cannot mix 'bind-*' options with mount type 'volume'`);
    expect(() => mount('type=bind,src=/host,dst=/d,tmpfs-size=1m')).toThrow(`cannot mix 'tmpfs-*' options with mount type 'bind'`);
    expect(() => mount('type=tmpfs,dst=/d,tmpfs-size=lots')).toThrow('invalid value for tmpfs-size: lots');
    expect(() => mount('type=tmpfs,dst=/d,tmpfs-mode=999')).toThrow('invalid value for tmpfs-mode: 999');
    expect(() => mount('type=bind,src=/nope,dst=/d')).toThrow('invalid mount config for type "bind": bind source path does not exist: /nope');
    expect(() => mount('type=bind,dst=/d')).toThrow('invalid mount config for type "bind": field Source must not be empty');
    expect(() => mount('type=tmpfs,src=x,dst=/d')).toThrow('invalid mount config for type "tmpfs": field Source must not be specified');
    expect(() => mount('type=volume,dst=/d,readonly')).toThrow('invalid mount config for type "volume": must not set ReadOnly mode when using anonymous volumes');
    expect(() => mount('type=weird,dst=/d')).toThrow('invalid mount config for type "weird": mount type unknown');
    expect(() => mount('type=bind,src=/host,dst=/d,bind-propagation=sideways')).toThrow('invalid mount config for type "bind": invalid propagation mode: sideways');
    expect(() => mount('type=volume,src=v,dst=rel')).toThrow(`invalid mount config for type "volume": invalid mount path: 'rel' mount path must be absolute`);
  });

  it('finds two mounts on one destination', () => {
    expect(() => checkDuplicates(['/a', '/b/../a'])).toThrow(/^Duplicate mount point: \/a$/);
    expect(() => checkDuplicates(['/a', '/a/b'])).not.toThrow();
  });
});

describe('image VOLUMEs and the local driver', () => {
  it('makes anonymous volumes of the VOLUMEs no mount covers', () => {
    const r = imageVolumeRequests({ '/data': {}, '/logs/': {}, '/covered': {} }, ['/covered']);
    expect(r.map((m) => [m.destination, m.source, m.mode])).toEqual([['/data', '', ''], ['/logs', '', '']]);
  });

  it("checks names and options as moby's local driver does", () => {
    expect(() => checkVolumeName('a')).toThrow('create a: volume name is too short, names should be at least two alphanumeric characters');
    expect(() => checkVolumeName('bad/name')).toThrow(/"bad\/name" includes invalid characters for a local volume name, only "\[a-zA-Z0-9\]\[a-zA-Z0-9_.-\]" are allowed/);
    expect(() => checkVolumeName('ok_name-1.2')).not.toThrow();
    expect(() => checkDriverOptions('v', { foo: 'x' })).toThrow('create v: invalid option: "foo"');
    expect(() => checkDriverOptions('v', { type: 'tmpfs' })).toThrow('create v: missing required option: "device"');
    expect(() => checkDriverOptions('v', { o: 'size=1m', device: 'tmpfs' })).toThrow('create v: missing required option: "type"');
    expect(() => checkDriverOptions('v', { type: 'nfs', device: ':/x' })).toThrow(/not supported/);
    expect(volumeMountOf('/d', {})).toEqual({ type: 'bind', source: '/d' });
    expect(volumeMountOf('/d', { type: 'tmpfs', device: 'tmpfs', o: 'size=1m,uid=1000' })).toEqual({ type: 'tmpfs', options: ['size=1m', 'uid=1000'] });
    expect(volumeMountOf('/d', { type: 'none', device: '/srv/x', o: 'bind' })).toEqual({ type: 'bind', source: '/srv/x' });
  });

  it('filters as volume ls --filter does (one key: any; several keys: all)', () => {
    const v = (Name: string, Labels: Record<string, string>, users: string[]): VolumeUsage => ({
      Name, Labels, users, Driver: 'local', Mountpoint: '', CreatedAt: '', Options: {}, Scope: 'local', size: 0,
    });
    const vols = [v('alpha', { env: 'prod' }, []), v('beta', { env: 'dev' }, ['c1']), v('gamma', {}, [])];
    const names = (f: string[]): string[] => vols.filter(volumeFilter(f)).map((x) => x.Name);
    expect(names(['dangling=true'])).toEqual(['alpha', 'gamma']);
    expect(names(['dangling=false'])).toEqual(['beta']);
    expect(names(['label=env'])).toEqual(['alpha', 'beta']);
    expect(names(['label=env=dev', 'label=env=prod'])).toEqual(['alpha', 'beta']);
    expect(names(['label=env', 'dangling=true'])).toEqual(['alpha']);
    expect(names(['name=mm'])).toEqual(['gamma']);
    expect(() => volumeFilter(['colour=red'])).toThrow("invalid filter 'colour'");
    expect(() => volumeFilter(['dangling=maybe'])).toThrow("invalid filter 'dangling=maybe'");
  });
});
