import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decideLeases, parseDomainXml, type DiskFacts, type PathFacts, type PolicyDecision } from '../../dist/policy/index.js';
import { factsOf, hostPolicy, SHARED_ROOTS, SHIM } from './support.js';
import { el, render, seededStyle, textEl, type XmlNode } from './xml-render.js';

const POLICY = hostPolicy({ requireForWritableDisks: false });
const UUID = 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d';
const RUNS = 150;

type DiskKind = 'file' | 'lvm' | 'iscsi' | 'rbd' | 'nbd' | 'local' | 'volume';

interface DiskSpec {
  readonly kind: DiskKind;
  readonly device: 'disk' | 'cdrom' | 'lun';
  readonly cache: 'none' | 'directsync' | 'writeback' | undefined;
  readonly readonly: boolean;
  readonly shareable: boolean;
}

const diskSpec: fc.Arbitrary<DiskSpec> = fc.record({
  kind: fc.constantFrom<DiskKind>('file', 'lvm', 'iscsi', 'rbd', 'nbd', 'local', 'volume'),
  device: fc.constantFrom<DiskSpec['device']>('disk', 'disk', 'cdrom', 'lun'),
  // Mostly direct I/O, so most domains are accepted and their lease sets compared.
  cache: fc.constantFrom<DiskSpec['cache']>('none', 'none', 'directsync', 'writeback', undefined),
  readonly: fc.boolean(),
  shareable: fc.boolean(),
});

function pad32(text: string): string {
  return text.replace(/[^A-Za-z0-9]/g, '').padEnd(32, '0').slice(0, 32);
}

/** The disk element and the facts of its source, for the disk with target TARGET. Names include '&' and quotes to exercise escaping. */
function diskOf(spec: DiskSpec, target: string): { node: XmlNode; facts: Record<string, PathFacts> } {
  const extras = [...(spec.readonly ? [el('readonly')] : []), ...(spec.shareable ? [el('shareable')] : [])];
  const driver = el('driver', spec.cache === undefined ? { name: 'qemu' } : { name: 'qemu', cache: spec.cache });
  const disk = (type: string, source: XmlNode): XmlNode => el('disk', { type, device: spec.device }, driver, source, el('target', { dev: target, bus: 'virtio' }), ...extras);
  switch (spec.kind) {
    case 'file': {
      const path = `/srv/nfs/vms/r&d's "lab"/${target}.qcow2`;
      return { node: disk('file', el('source', { file: path })), facts: { [path]: { kind: 'file', resolvedPath: path, device: '0:52', inode: `1${target.length}${target.charCodeAt(2)}`, links: 1, directories: [] } } };
    }
    case 'local': {
      const path = `/var/lib/libvirt/images/${target}.img`;
      return { node: disk('file', el('source', { file: path })), facts: { [path]: { kind: 'file', resolvedPath: path, device: '8:1', inode: `2${target.charCodeAt(2)}`, links: 1, directories: [] } } };
    }
    case 'lvm': {
      const path = `/dev/vg_shared/${target}`;
      return { node: disk('block', el('source', { dev: path })), facts: { [path]: { kind: 'block', resolvedPath: `/dev/dm-${target.charCodeAt(2)}`, rdev: `253:${target.charCodeAt(2)}`, identities: [{ kind: 'lvm', vgUuid: pad32('vgshared'), lvUuid: pad32(`lv${target}`) }] } } };
    }
    case 'iscsi':
      return { node: disk('network', el('source', { protocol: 'iscsi', name: `iqn.2024-01.com.example:${target}/0` }, el('host', { name: 'san.example.com', port: '3260' }))), facts: {} };
    case 'rbd':
      return { node: disk('network', el('source', { protocol: 'rbd', name: `pool/${target}` }, el('host', { name: '10.0.0.1' }), el('host', { name: '10.0.0.2' }))), facts: {} };
    case 'nbd':
      return { node: disk('network', el('source', { protocol: 'nbd', name: target }, el('host', { name: 'NBD.example.com' }))), facts: {} };
    case 'volume':
      return { node: disk('volume', el('source', { pool: 'default', volume: target })), facts: {} };
  }
}

interface Built {
  readonly disks: XmlNode[];
  readonly leases: XmlNode[];
  readonly facts: Record<string, PathFacts>;
}

function built(specs: readonly DiskSpec[], leaseCount: number): Built {
  const parts = specs.map((spec, i) => diskOf(spec, `vd${String.fromCharCode(97 + (i % 26))}${Math.floor(i / 26)}`));
  const leases = Array.from({ length: leaseCount }, (_, i) =>
    el('lease', {}, textEl('lockspace', 'cluster'), textEl('key', `app-${i}`), el('target', { path: `/var/lib/vmlease/leases/app&co/${i}.lease`, offset: String(i * 4096) })),
  );
  return { disks: parts.map((p) => p.node), leases, facts: Object.assign({}, ...parts.map((p) => p.facts)) as Record<string, PathFacts> };
}

function domain(disks: readonly XmlNode[], leases: readonly XmlNode[]): XmlNode {
  return el('domain', { type: 'kvm' }, textEl('name', 'prop-vm'), textEl('uuid', UUID), el('devices', {}, textEl('emulator', SHIM), ...disks, ...leases));
}

function decide(xml: string, facts: DiskFacts): PolicyDecision {
  const parsed = parseDomainXml(xml);
  if (!parsed.ok) throw new Error(`generated XML refused: ${parsed.refusal.message}`);
  return decideLeases(POLICY, parsed.domain, facts);
}

const domainShape = fc.record({ specs: fc.array(diskSpec, { minLength: 1, maxLength: 12 }), leaseCount: fc.integer({ min: 0, max: 3 }) });

describe('the lease set', () => {
  it('does not depend on the order of the disks', () => {
    fc.assert(
      fc.property(domainShape, fc.integer(), ({ specs, leaseCount }, seed) => {
        const { disks, leases, facts } = built(specs, leaseCount);
        const shuffled = fc.sample(fc.shuffledSubarray(disks, { minLength: disks.length, maxLength: disks.length }), { seed, numRuns: 1 })[0] ?? disks;
        const allFacts = factsOf(facts);
        expect(decide(render(domain(shuffled, leases)), allFacts)).toEqual(decide(render(domain(disks, leases)), allFacts));
      }),
      { numRuns: RUNS },
    );
  });

  it('does not depend on white space, quotes, attribute order, comments or how characters are escaped', () => {
    fc.assert(
      fc.property(domainShape, fc.integer(), ({ specs, leaseCount }, seed) => {
        const { disks, leases, facts } = built(specs, leaseCount);
        const tree = domain(disks, leases);
        const styled = render(tree, seededStyle(seed));
        expect(parseDomainXml(styled)).toEqual(parseDomainXml(render(tree)));
        expect(decide(styled, factsOf(facts))).toEqual(decide(render(tree), factsOf(facts)));
      }),
      { numRuns: RUNS },
    );
  });
});

/** Path spellings and per-host names that all lead to one disk. */
const segment = fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,11}$/).filter((s) => s !== '.' && s !== '..');

function autoLeaseOf(decision: PolicyDecision): unknown {
  if (!decision.ok) throw new Error(`refused: ${decision.refusal.message}`);
  expect(decision.leases).toHaveLength(1);
  const [lease] = decision.leases;
  return { ...lease, origin: undefined };
}

function oneDisk(type: 'file' | 'block', path: string): string {
  const source = type === 'file' ? el('source', { file: path }) : el('source', { dev: path });
  return render(domain([el('disk', { type, device: 'disk' }, el('driver', { cache: 'none' }), source, el('target', { dev: 'vda' }))], []));
}

describe('one disk reached by different names', () => {
  it('gets one lease through any symlink or spelling inside the share, wherever the share is mounted', () => {
    fc.assert(
      fc.property(fc.array(segment, { minLength: 1, maxLength: 4 }), fc.array(fc.tuple(fc.array(segment, { minLength: 1, maxLength: 3 }), fc.constantFrom('', '/.', '//'), fc.constantFrom('/srv/nfs/vms', '/mnt/a', '/net/filer/export/vms')), { minLength: 2, maxLength: 4 }), (real, spellings) => {
        const leases = spellings.map(([link, noise, mountedAt]) => {
          const written = `/srv/nfs/vms${noise}/${link.join('/')}`;
          const facts = factsOf({ [written]: { kind: 'file', resolvedPath: `${mountedAt}/${real.join('/')}`, device: '0:52', inode: '99', links: 1, directories: [] } }, { ...SHARED_ROOTS, '/srv/nfs/vms': mountedAt });
          return autoLeaseOf(decide(oneDisk('file', written), facts));
        });
        for (const lease of leases) expect(lease).toEqual(leases[0]);
      }),
      { numRuns: RUNS },
    );
  });

  it('gets one lease through any device path and per-host device name of an LVM volume', () => {
    const lvm = { kind: 'lvm', vgUuid: pad32('vgshared'), lvUuid: pad32('lvdata') } as const;
    const devicePath = fc.oneof(fc.constant('/dev/vg_shared/data'), fc.constant('/dev/mapper/vg_shared-data'), segment.map((s) => `/dev/disk/by-id/dm-uuid-LVM-${s}`), fc.integer({ min: 0, max: 255 }).map((n) => `/dev/dm-${n}`));
    fc.assert(
      fc.property(fc.array(fc.tuple(devicePath, fc.integer({ min: 0, max: 255 })), { minLength: 2, maxLength: 4 }), (names) => {
        const leases = names.map(([path, minor]) => autoLeaseOf(decide(oneDisk('block', path), factsOf({ [path]: { kind: 'block', resolvedPath: `/dev/dm-${minor}`, rdev: `253:${minor}`, identities: [lvm] } }))));
        for (const lease of leases) expect(lease).toEqual(leases[0]);
      }),
      { numRuns: RUNS },
    );
  });
});

function networkDisk(protocol: string, name: string, host: string): string {
  const source = el('source', { protocol, name }, el('host', { name: host }));
  return render(domain([el('disk', { type: 'network', device: 'disk' }, el('driver', { cache: 'none' }), source, el('target', { dev: 'vda' }))], []));
}

/** Each letter of TEXT in upper or lower case, as BITS says. */
function cased(text: string, bits: readonly boolean[]): string {
  return [...text].map((c, i) => (bits[i % bits.length] ? c.toUpperCase() : c.toLowerCase())).join('');
}

describe('one network disk written different ways', () => {
  it('gets one lease whatever the case of its IQN and whether LUN 0 is written', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }), fc.constantFrom('', '/0', '/00')), { minLength: 2, maxLength: 4 }), (spellings) => {
        const leases = spellings.map(([bits, lun]) => autoLeaseOf(decide(networkDisk('iscsi', `${cased('iqn.2024-01.com.example:store.t1', bits)}${lun}`, 'san'), factsOf({}))));
        for (const lease of leases) expect(lease).toEqual(leases[0]);
      }),
      { numRuns: RUNS },
    );
  });

  it('gets one lease however its IPv6 server and its Gluster or NFS path are spelled', () => {
    const v6 = fc.tuple(fc.constantFrom('fd00::5', 'fd00:0::5', 'fd00:0:0:0:0:0:0:5', 'FD00::0005', 'fd00:0000::5'), fc.boolean()).map(([a, bracketed]) => (bracketed ? `[${a}]` : a));
    const noise = fc.constantFrom('/', '//', '/./', '/sub/../');
    fc.assert(
      fc.property(fc.array(fc.tuple(v6, noise), { minLength: 2, maxLength: 4 }), (spellings) => {
        const nbd = spellings.map(([host]) => autoLeaseOf(decide(networkDisk('nbd', 'scratch', host), factsOf({}))));
        for (const lease of nbd) expect(lease).toEqual(nbd[0]);
        const gluster = spellings.map(([, sep]) => autoLeaseOf(decide(networkDisk('gluster', `gv0${sep}vm.img`, 'gl1'), factsOf({}))));
        for (const lease of gluster) expect(lease).toEqual(gluster[0]);
        const nfs = spellings.map(([, sep]) => autoLeaseOf(decide(networkDisk('nfs', `export${sep}vm.img`, 'filer'), factsOf({}))));
        for (const lease of nfs) expect(lease).toEqual(nfs[0]);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('facts the policy cannot trust', () => {
  it('never lets a block device a lease root holds be a disk, whatever its name', () => {
    const lvm = { kind: 'lvm', vgUuid: pad32('vgleases'), lvUuid: pad32('lvcluster') } as const;
    const name = fc.oneof(segment.map((s) => `/dev/mapper/${s}`), fc.integer({ min: 0, max: 255 }).map((n) => `/dev/dm-${n}`), segment.map((s) => `/srv/nfs/vms/${s}`));
    fc.assert(
      fc.property(name, fc.integer({ min: 0, max: 255 }), fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 4 }), (path, minor, others) => {
        const rdev = `253:${minor}`;
        const roots = { '/var/lib/vmlease/leases': { resolvedPath: '/var/lib/vmlease/leases', blockDevices: [] }, '/dev/vg_leases': { resolvedPath: '/dev/vg_leases', blockDevices: [...others.map((o) => `253:${o}`), rdev] } };
        const decision = decide(oneDisk('block', path), factsOf({ [path]: { kind: 'block', resolvedPath: `/dev/dm-${minor}`, rdev, identities: [lvm] } }, undefined, roots));
        expect(decision.ok ? 'accepted' : decision.refusal.rule).toBe('POLICY_DISK_IN_LEASE_ROOT');
      }),
      { numRuns: RUNS },
    );
  });

  it('never leaves a writable disk whose facts are unknown unleased', () => {
    fc.assert(
      fc.property(fc.array(segment, { minLength: 1, maxLength: 3 }), fc.string({ minLength: 1, maxLength: 40 }), fc.boolean(), (parts, reason, rootUnknown) => {
        const path = `/srv/nfs/vms/${parts.join('/')}`;
        const facts = rootUnknown
          ? factsOf({ [path]: { kind: 'file', resolvedPath: path, device: '0:52', inode: '5', links: 1, directories: [] } }, { ...SHARED_ROOTS, '/srv/nfs/vms': { unknown: reason } })
          : factsOf({ [path]: { kind: 'unknown', reason } });
        const decision = decide(oneDisk('file', path), facts);
        expect(decision.ok ? 'accepted' : decision.refusal.rule).toBe('POLICY_DISK_FACTS');
      }),
      { numRuns: RUNS },
    );
  });
});
