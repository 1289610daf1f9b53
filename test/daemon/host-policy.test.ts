import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../dist/helper/config/config-error.js';
import { EMULATOR_SHIM_DEFAULT, LEASE_ROOTS_MAX, loadHostPolicy, parseHostPolicy, POLICY_BYTES_MAX } from '../../dist/policy/host-policy.js';
import { workDir } from '../support/tmp.js';

const FILE = '/etc/vmlease/policy.json';

function refusal(action: () => unknown): ConfigError {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('the policy was accepted');
}

function expectRefused(document: unknown, key: string, reason: RegExp): void {
  const error = refusal(() => parseHostPolicy(FILE, document));
  expect(error.file).toBe(FILE);
  expect(error.key).toBe(key);
  expect(error.reason).toMatch(reason);
}

describe('parseHostPolicy', () => {
  it('keeps the lease roots in order', () => {
    expect(parseHostPolicy(FILE, { leaseRoots: ['/var/lib/vmlease/leases', '/dev/disk/by-id'] })).toEqual({
      file: FILE,
      leaseRoots: ['/var/lib/vmlease/leases', '/dev/disk/by-id'],
      autoDiskLeases: { enabled: false, lockspace: '', directory: '', requireForWritableDisks: false, sharedFileRoots: [], allowLocalDirectory: false },
      onLockFailure: 'kill',
      emulatorShim: EMULATOR_SHIM_DEFAULT,
    });
  });

  it('requires leaseRoots, as a non-empty array', () => {
    expectRefused({}, 'leaseRoots', /^is required$/);
    expectRefused({ leaseRoots: [] }, 'leaseRoots', /^is empty: no lease could ever be registered$/);
    expectRefused({ leaseRoots: '/var/lib/vmlease' }, 'leaseRoots', /must be a JSON array/);
    expectRefused({ leaseRoots: null }, 'leaseRoots', /must be a JSON array/);
    expectRefused([], '', /must be a JSON object/);
  });

  it('refuses a root that is not a string, not absolute or not normalised, naming its index', () => {
    expectRefused({ leaseRoots: ['/a', 5] }, 'leaseRoots[1]', /must be a string, not 5/);
    expectRefused({ leaseRoots: ['/a', 'var/lib/leases'] }, 'leaseRoots[1]', /"var\/lib\/leases" is not an absolute path/);
    expectRefused({ leaseRoots: ['/var/lib/leases/'] }, 'leaseRoots[0]', /is not normalised/);
    expectRefused({ leaseRoots: ['/var/lib/../leases'] }, 'leaseRoots[0]', /is not normalised/);
    expectRefused({ leaseRoots: ['/var//leases'] }, 'leaseRoots[0]', /is not normalised/);
    expectRefused({ leaseRoots: ['/a', '/var/./leases'] }, 'leaseRoots[1]', /is not normalised/);
  });

  it("refuses '/' as a lease root", () => {
    expectRefused({ leaseRoots: ['/var/lib/leases', '/'] }, 'leaseRoots[1]', /^the whole file system cannot be a lease root$/);
  });

  it('refuses unknown keys', () => {
    expectRefused({ leaseRoots: ['/a'], leaseroots: ['/b'] }, 'leaseroots', /^is not a known key$/);
    expectRefused({ leaseRoots: ['/a'], cacheModes: ['none'] }, 'cacheModes', /^is not a known key$/);
  });

  it('refuses more roots than the limit', () => {
    const roots = Array.from({ length: LEASE_ROOTS_MAX + 1 }, (_, i) => `/leases/${i}`);
    expectRefused({ leaseRoots: roots }, 'leaseRoots', new RegExp(`has ${LEASE_ROOTS_MAX + 1} entries, at most ${LEASE_ROOTS_MAX}`));
    expect(parseHostPolicy(FILE, { leaseRoots: roots.slice(0, LEASE_ROOTS_MAX) }).leaseRoots).toHaveLength(LEASE_ROOTS_MAX);
  });
});

describe('parseHostPolicy: auto disk leases, lock failure, emulator shim', () => {
  const roots = ['/var/lib/vmlease/leases'];
  const auto = (fields: Record<string, unknown>) => ({ leaseRoots: roots, autoDiskLeases: fields });
  const spec = { enabled: true, lockspace: 'cluster', directory: '/var/lib/vmlease/leases/disks', requireForWritableDisks: true };

  it('reads the SPEC example, with shared file roots', () => {
    const policy = parseHostPolicy(FILE, {
      leaseRoots: ['/var/lib/vmlease/leases', '/dev/vg_leases'],
      autoDiskLeases: { ...spec, sharedFileRoots: [{ name: 'images', path: '/var/lib/libvirt/images' }] },
      onLockFailure: 'kill',
      emulatorShim: '/opt/vmlease/qemu-shim',
    });
    expect(policy).toEqual({
      file: FILE,
      leaseRoots: ['/var/lib/vmlease/leases', '/dev/vg_leases'],
      autoDiskLeases: { ...spec, sharedFileRoots: [{ name: 'images', path: '/var/lib/libvirt/images' }], allowLocalDirectory: false },
      onLockFailure: 'kill',
      emulatorShim: '/opt/vmlease/qemu-shim',
    });
  });

  it('refuses a lease directory on a local file system unless allowLocalDirectory is true (default false)', () => {
    expect(parseHostPolicy(FILE, auto(spec)).autoDiskLeases.allowLocalDirectory).toBe(false);
    expect(parseHostPolicy(FILE, auto({ ...spec, allowLocalDirectory: false })).autoDiskLeases.allowLocalDirectory).toBe(false);
    expect(parseHostPolicy(FILE, auto({ ...spec, allowLocalDirectory: true })).autoDiskLeases.allowLocalDirectory).toBe(true);
    expectRefused(auto({ ...spec, allowLocalDirectory: 'yes' }), 'autoDiskLeases.allowLocalDirectory', /^must be true or false, not "yes"$/);
    // With auto disk leases off the key is accepted and means nothing.
    expect(parseHostPolicy(FILE, auto({ enabled: false, allowLocalDirectory: true })).autoDiskLeases).toEqual({ enabled: false, lockspace: '', directory: '', requireForWritableDisks: false, sharedFileRoots: [], allowLocalDirectory: false });
  });

  it('refuses requireForWritableDisks without enabled, and a directory outside the lease roots', () => {
    expectRefused(auto({ enabled: false, requireForWritableDisks: true }), 'autoDiskLeases.requireForWritableDisks', /^needs "enabled": true/);
    expectRefused(auto({ ...spec, directory: '/srv/disks' }), 'autoDiskLeases.directory', /^\/srv\/disks is not below a lease root \(\/var\/lib\/vmlease\/leases\)$/);
    expectRefused(auto({ ...spec, directory: '/var/lib/vmlease/leases' }), 'autoDiskLeases.directory', /is not below a lease root/);
    expectRefused(auto({ ...spec, lockspace: 'a b' }), 'autoDiskLeases.lockspace', /outside printable ASCII/);
    expectRefused(auto({ enabled: true, directory: spec.directory }), 'autoDiskLeases.lockspace', /^is required$/);
    expectRefused(auto({ ...spec, lockSpace: 'x' }), 'autoDiskLeases.lockSpace', /^is not a known key$/);
  });

  it('refuses shared file roots with a bad or repeated name, or that overlap', () => {
    const withRoots = (sharedFileRoots: unknown) => auto({ ...spec, sharedFileRoots });
    expectRefused(withRoots([{ name: '-x', path: '/a' }]), 'autoDiskLeases.sharedFileRoots[0].name', /is not 1\.\.32 letters/);
    expectRefused(withRoots([{ name: 'a', path: '/a' }, { name: 'a', path: '/b' }]), 'autoDiskLeases.sharedFileRoots[1].name', /^"a" is used twice$/);
    expectRefused(withRoots([{ name: 'a', path: '/srv' }, { name: 'b', path: '/srv/images' }]), 'autoDiskLeases.sharedFileRoots[1].path', /overlaps shared root "a" \(\/srv\)/);
    expectRefused(withRoots([{ name: 'a', path: '/' }]), 'autoDiskLeases.sharedFileRoots[0].path', /the whole file system/);
    expectRefused(withRoots([{ name: 'a', path: '/a', extra: 1 }]), 'autoDiskLeases.sharedFileRoots[0].extra', /^is not a known key$/);
  });

  it('accepts only "kill" on lock failure, and an absolute emulator shim path', () => {
    expectRefused({ leaseRoots: roots, onLockFailure: 'pause' }, 'onLockFailure', /^"pause" is not supported: only "kill"/);
    expectRefused({ leaseRoots: roots, emulatorShim: 'qemu-shim' }, 'emulatorShim', /is not an absolute path/);
  });
});

describe('loadHostPolicy', () => {
  let dir: ReturnType<typeof workDir>;
  beforeAll(() => {
    dir = workDir('host-policy');
  });
  afterAll(() => dir.remove());

  const write = (name: string, content: string | Buffer) => {
    const path = join(dir.path, name);
    writeFileSync(path, content);
    return path;
  };

  it('loads a file', () => {
    const path = write('policy.json', JSON.stringify({ leaseRoots: ['/srv/leases'] }));
    expect(loadHostPolicy(path)).toMatchObject({ file: path, leaseRoots: ['/srv/leases'], autoDiskLeases: { enabled: false } });
  });

  it('refuses a file that is not JSON, that is missing or too large, naming the file', () => {
    const broken = write('broken.json', '{"leaseRoots": [');
    const notJson = refusal(() => loadHostPolicy(broken));
    expect([notJson.file, notJson.key]).toEqual([broken, '']);
    expect(notJson.reason).toMatch(/^cannot be read as JSON: /);

    const missing = join(dir.path, 'missing.json');
    expect(refusal(() => loadHostPolicy(missing)).reason).toMatch(/^cannot be read as JSON: .*ENOENT/);

    const big = write('big.json', Buffer.alloc(POLICY_BYTES_MAX + 1, 0x20));
    const tooBig = refusal(() => loadHostPolicy(big));
    expect([tooBig.file, tooBig.key, tooBig.reason]).toEqual([big, '', `is ${POLICY_BYTES_MAX + 1} bytes, at most ${POLICY_BYTES_MAX} are allowed`]);
  });

  it('refuses a bad root in a file with the file and the key path', () => {
    const path = write('root.json', JSON.stringify({ leaseRoots: ['/'] }));
    const error = refusal(() => loadHostPolicy(path));
    expect(error.message).toBe(`${path}: leaseRoots[0]: the whole file system cannot be a lease root`);
  });

  it('keeps a refusal of a file that is not JSON on one line', () => {
    const path = write('multiline.json', '{\n  "leaseRoots":\n  yes\n}\n');
    const error = refusal(() => loadHostPolicy(path));
    expect(error.message).not.toMatch(/[\r\n]/);
  });
});
