import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  BootstrapWriter,
  Mode,
  MountFlags,
  RecordDecoder,
  Stage,
  Sync,
  Tag,
  parseMountOptions,
} from '../../src/sandbox/protocol.js';
import {
  DEFAULT_CAPABILITIES,
  capabilitiesFromMask,
  capabilityMask,
  capabilityName,
  capabilityNumber,
  normalizeCapability,
} from '../../src/sandbox/capabilities.js';
import { mapWaitStatus, recordToError } from '../../src/sandbox/native.js';
import { SandboxError } from '../../src/sandbox/errors.js';
import { repo } from './fixture.js';

/** `NAME = value,` entries of one `enum name { ... }` block of protocol.h. */
function headerEnum(text: string, name: string): Record<string, number> {
  const block = text.match(new RegExp(`enum ${name} \\{([\\s\\S]*?)\\};`))?.[1];
  if (!block) throw new Error(`enum ${name} not found in protocol.h`);
  const out: Record<string, number> = {};
  for (const m of block.replace(/\/\*[\s\S]*?\*\//g, '').matchAll(/([A-Z_0-9]+)\s*=\s*(0x[0-9a-fA-F]+|\d+)/g))
    out[m[1]!] = Number(m[2]);
  return out;
}

describe('protocol constants match native/protocol.h', () => {
  const h = readFileSync(join(repo, 'native', 'protocol.h'), 'utf8');
  it('bootstrap tags', () => {
    const tags = headerEnum(h, 'boot_tag');
    expect(Object.keys(tags).length).toBeGreaterThan(20);
    expect(Object.fromEntries(Object.entries(Tag).map(([k, v]) => [`TAG_${k}`, v]))).toEqual(tags);
  });
  it('modes, stages and sync bytes', () => {
    expect(Object.fromEntries(Object.entries(Mode).map(([k, v]) => [`MODE_${k}`, v]))).toEqual(headerEnum(h, 'mode'));
    const stages = headerEnum(h, 'stage');
    expect(Object.fromEntries(Object.entries(Stage).map(([k, v]) => [k.startsWith('REC_') ? k : `STAGE_${k}`, v]))).toEqual(stages);
    expect(Object.fromEntries(Object.entries(Sync).map(([k, v]) => [`SYNC_${k}`, v]))).toEqual(headerEnum(h, 'sync_msg'));
  });
});

describe('records', () => {
  it('encodes TLV records in order', () => {
    const b = new BootstrapWriter().u32(Tag.MODE, 2).str(Tag.ARGV, 'hé').finish();
    expect([...b]).toEqual([1, 0, 4, 0, 0, 0, 2, 0, 0, 0, 2, 0, 3, 0, 0, 0, 0x68, 0xc3, 0xa9]);
    expect(() => new BootstrapWriter().str(Tag.ARGV, 'a\0b')).toThrow(/NUL/);
    expect(() => new BootstrapWriter().u32(Tag.UID, -1)).toThrow(/u32/);
  });
  it('encodes a mount as flags, propagation and five NUL-terminated fields', () => {
    const b = new BootstrapWriter()
      .mount(Tag.MOUNT, { flags: 5, propagation: 7, type: 't', source: 's', destination: '/d', data: '', cwd: 'c' })
      .finish();
    expect(b.readUInt32LE(6)).toBe(5);
    expect(b.readUInt32LE(10)).toBe(7);
    expect(b.subarray(14).toString('latin1')).toBe('t\0s\0/d\0\0c\0');
  });
  it('decodes status records split across chunks', () => {
    const rec = Buffer.alloc(9 + 5);
    rec.writeUInt8(Stage.INIT, 0);
    rec.writeInt32LE(2, 1);
    rec.writeUInt32LE(5, 5);
    rec.write('mount', 9);
    const d = new RecordDecoder();
    expect(d.push(rec.subarray(0, 7))).toEqual([]);
    expect(d.push(rec.subarray(7))).toEqual([{ stage: Stage.INIT, value: 2, message: 'mount' }]);
    expect(d.pending).toBe(0);
  });
  it('turns an error record into a SandboxError', () => {
    const e = recordToError({ stage: Stage.INIT, value: 2, message: 'mount: rootfs overlay on /x' });
    expect(e).toBeInstanceOf(SandboxError);
    expect(e).toMatchObject({ stage: 'init', errno: 2, errnoCode: 'ENOENT', code: 'NOT_FOUND', syscall: 'mount' });
    expect(e.message).toContain('rootfs overlay on /x');
  });
  it('maps wait statuses', () => {
    expect(mapWaitStatus(3 << 8)).toEqual({ exitCode: 3 });
    expect(mapWaitStatus(9)).toEqual({ exitCode: 137, signal: 'SIGKILL' });
  });
});

describe('mount options', () => {
  it('splits flags, propagation and filesystem data', () => {
    expect(parseMountOptions('bind', ['rbind', 'ro', 'nosuid', 'rprivate'])).toEqual({
      flags: MountFlags.BIND | MountFlags.REC | MountFlags.RDONLY | MountFlags.NOSUID,
      propagation: MountFlags.PRIVATE | MountFlags.REC,
      data: '',
    });
    expect(parseMountOptions('tmpfs', ['nodev', 'mode=755', 'size=1m', 'rw'])).toEqual({
      flags: MountFlags.NODEV,
      propagation: 0,
      data: 'mode=755,size=1m',
    });
    expect(parseMountOptions('overlay', ['lowerdir=1/fs:2/fs', 'upperdir=3/fs', 'workdir=3/work']).data).toBe(
      'lowerdir=1/fs:2/fs,upperdir=3/fs,workdir=3/work',
    );
    expect(parseMountOptions('bind', []).flags).toBe(MountFlags.BIND);
  });
});

describe('capabilities', () => {
  it("Docker's default set is CapEff 00000000a80425fb", () => {
    expect(capabilityMask(DEFAULT_CAPABILITIES).toString(16)).toBe('a80425fb');
    expect(capabilitiesFromMask('00000000a80425fb').sort()).toEqual([...DEFAULT_CAPABILITIES].sort());
  });
  it('maps names and numbers', () => {
    expect(capabilityNumber('CAP_SYS_ADMIN')).toBe(21);
    expect(capabilityNumber('net_admin')).toBe(12);
    expect(capabilityName(40)).toBe('CAP_CHECKPOINT_RESTORE');
    expect(normalizeCapability('chown')).toBe('CAP_CHOWN');
    expect(() => normalizeCapability('CAP_FLY')).toThrow(/unknown capability/);
  });
});
