import { describe, expect, it } from 'vitest';
import { ADMIN_LEASES_MAX } from '../../dist/protocol/admin-messages.js';
import { decideLeases, pathsToInspect, type DiskFacts, type DomainDescription, type HostPolicy, type PathFacts, type PolicyDecision } from '../../dist/policy/index.js';
import { domainOf, expectRefusal, factsOf, file, fixture, hostPolicy, LEASE_ROOTS, LV_UUID, SHIM, VG_UUID } from './support.js';

const POLICY = hostPolicy();
const UUID = '8f2c6a3e-51b7-4c1d-9e0a-2b7d4f6c8a10';
const DISKS = '/var/lib/vmlease/leases/disks';

function domainXml(devices: string, emulator = SHIM): string {
  return `<domain type='kvm'><name>vm</name><uuid>${UUID}</uuid><devices><emulator>${emulator}</emulator>${devices}</devices></domain>`;
}

function fileDisk(target: string, path: string, extra = "<driver name='qemu' cache='none'/>"): string {
  return `<disk type='file' device='disk'>${extra}<source file='${path}'/><target dev='${target}'/></disk>`;
}

function lease(key: string, path: string, offset = 0, lockspace = 'cluster'): string {
  return `<lease><lockspace>${lockspace}</lockspace><key>${key}</key><target path='${path}' offset='${offset}'/></lease>`;
}

function accepted(decision: PolicyDecision): Extract<PolicyDecision, { ok: true }> {
  if (!decision.ok) throw new Error(`refused: ${decision.refusal.message}`);
  return decision;
}

function refused(decision: PolicyDecision): Extract<PolicyDecision, { ok: false }>['refusal'] {
  if (decision.ok) throw new Error('the domain was accepted');
  return decision.refusal;
}

function decide(xml: string, facts: DiskFacts, policy: HostPolicy = POLICY): PolicyDecision {
  return decideLeases(policy, domainOf(xml), facts);
}

function autoLease(resource: string, target: string, identity: string, mode: 'exclusive' | 'shared' = 'exclusive', targets = target) {
  return {
    lockspace: 'cluster',
    resource,
    path: `${DISKS}/${resource}.lease`,
    offset: 0,
    mode,
    reason: `${mode === 'shared' ? 'shareable' : 'writable'} disk ${targets} (identity ${JSON.stringify(identity)})`,
    origin: { kind: 'auto-disk', target, identity },
  };
}

function wholeDiskLease(resource: string, targets: string, identity: string, target = targets) {
  return {
    lockspace: 'cluster',
    resource,
    path: `${DISKS}/${resource}.lease`,
    offset: 0,
    mode: 'shared',
    reason: `partition disk ${targets} on whole disk (identity ${JSON.stringify(identity)}): shared, so the whole disk cannot be leased exclusively meanwhile`,
    origin: { kind: 'auto-disk', target, identity },
  };
}

const WEB_FACTS = factsOf({
  '/srv/nfs/vms/web-01/root.qcow2': file('/srv/nfs/vms/web-01/root.qcow2'),
  '/srv/nfs/vms/web-01/data.raw': file('/srv/nfs/vms/web-01/data.raw'),
  '/srv/nfs/iso/debian-12.5.0-amd64-netinst.iso': file('/srv/nfs/iso/debian-12.5.0-amd64-netinst.iso'),
  '/srv/nfs/vms/shared/tools.img': file('/srv/nfs/vms/shared/tools.img'),
});

describe('decideLeases on realistic domains', () => {
  it('leases each writable file disk exclusively, and neither the cdrom nor the read-only disk', () => {
    expect(decide(fixture('file-disks'), WEB_FACTS)).toEqual({
      ok: true,
      vm: { uuid: UUID, name: 'web-01' },
      leases: [
        autoLease('disk-20e07363eb501c06a3114db70da0339f35846db7', 'vda', 'file:vmstore/web-01/root.qcow2'),
        autoLease('disk-d887edba5c69b1a375ed99d15db22c6901f7f4d5', 'vdb', 'file:vmstore/web-01/data.raw'),
      ],
      unleasedDisks: [],
    });
  });

  it('leases an LVM volume by its uuids, a shareable LUN shared by its WWN, a partition by its serial', () => {
    const facts = factsOf({
      '/dev/vg_shared/db-02-root': { kind: 'block', resolvedPath: '/dev/dm-4', rdev: '253:4', identities: [{ kind: 'lvm', vgUuid: VG_UUID, lvUuid: LV_UUID }] },
      '/dev/disk/by-id/wwn-0x600a0b80002a3b4c0000123456789abc': { kind: 'block', resolvedPath: '/dev/sdb', rdev: '8:16', identities: [{ kind: 'wwn', value: '0x600A0B80002A3B4C0000123456789ABC' }] },
      '/dev/disk/by-id/virtio-BACKUP-7731-part1': { kind: 'block', resolvedPath: '/dev/vdc1', rdev: '252:33', identities: [{ kind: 'partition', of: { kind: 'serial', value: 'BACKUP-7731' }, number: 1 }] },
    });
    expect(accepted(decide(fixture('block-disks'), facts)).leases).toEqual([
      autoLease('disk-20ce98110a9bbc056ad202c8fe2a2b7d2b203a59', 'sdb', 'wwn:0x600a0b80002a3b4c0000123456789abc', 'shared'),
      autoLease('disk-e5b6d8f5fc159118e768954047bd8a68ed31d684', 'vda', `lvm:${VG_UUID}/${LV_UUID}`),
      autoLease('disk-977c3f81484fffeb27d0922f0fcc7b03049ecdec', 'vdc', 'serial:BACKUP-7731-part1'),
      wholeDiskLease('disk-5b7b0ec1883ac665827971c9a3d0c65f946e2ec4', 'vdc', 'serial:BACKUP-7731'),
    ]);
  });

  it('gives a partition a shared lease on its whole disk, the resource a VM on the whole disk holds exclusively', () => {
    const sdc = (partition: number | undefined): PathFacts => ({
      kind: 'block',
      resolvedPath: partition === undefined ? '/dev/sdc' : `/dev/sdc${partition}`,
      rdev: `8:${32 + (partition ?? 0)}`,
      identities: partition === undefined ? [{ kind: 'wwn', value: '0x5000C500A1B2C3D4' }] : [{ kind: 'partition', of: { kind: 'wwn', value: '0x5000C500A1B2C3D4' }, number: partition }],
    });
    const blockDisk = (target: string, path: string): string => `<disk type='block' device='disk'><driver cache='none'/><source dev='${path}'/><target dev='${target}'/></disk>`;
    const whole = accepted(decide(domainXml(blockDisk('vda', '/dev/sdc')), factsOf({ '/dev/sdc': sdc(undefined) }))).leases;
    expect(whole).toEqual([autoLease('disk-7ba0854e1a3c05f7c23eab74542e12ffd9e3131a', 'vda', 'wwn:0x5000c500a1b2c3d4')]);
    const part = accepted(decide(domainXml(blockDisk('vda', '/dev/sdc1')), factsOf({ '/dev/sdc1': sdc(1) }))).leases;
    expect(part).toEqual([
      autoLease('disk-eae921551e874c9a3f3075628515d7356a3626f0', 'vda', 'wwn:0x5000c500a1b2c3d4-part1'),
      wholeDiskLease('disk-7ba0854e1a3c05f7c23eab74542e12ffd9e3131a', 'vda', 'wwn:0x5000c500a1b2c3d4'),
    ]);
    // Two partitions of one disk in one domain: one shared lease on the disk.
    const both = accepted(decide(domainXml(blockDisk('vda', '/dev/sdc1') + blockDisk('vdb', '/dev/sdc2')), factsOf({ '/dev/sdc1': sdc(1), '/dev/sdc2': sdc(2) }))).leases;
    expect(both).toEqual([
      autoLease('disk-eae921551e874c9a3f3075628515d7356a3626f0', 'vda', 'wwn:0x5000c500a1b2c3d4-part1'),
      autoLease('disk-54eb3e2abb149acbab5f72273ce48ded5e35a14f', 'vdb', 'wwn:0x5000c500a1b2c3d4-part2'),
      wholeDiskLease('disk-7ba0854e1a3c05f7c23eab74542e12ffd9e3131a', 'vda, vdb', 'wwn:0x5000c500a1b2c3d4', 'vda'),
    ]);
    // A disk and a partition of it in one domain: two drives writing one disk.
    const overlap = domainXml(blockDisk('vda', '/dev/sdc') + blockDisk('vdb', '/dev/sdc1'));
    expectRefusal(refused(decide(overlap, factsOf({ '/dev/sdc': sdc(undefined), '/dev/sdc1': sdc(1) }))), 'POLICY_DISK_DUPLICATE', "<disk target='vdb'>", `is a partition of disk vda's disk (identity "wwn:0x5000c500a1b2c3d4"), and not every one of them is <shareable/>`);
  });

  it('leases iSCSI, RBD and NBD disks, not the read-only HTTPS cdrom', () => {
    expect(accepted(decide(fixture('network-disks'), factsOf({}))).leases).toEqual([
      autoLease('disk-cf92e4e36f7e9dca3a8480810888b163e94dddd8', 'vda', 'net:iscsi:*:iqn.2013-07.com.example:storage.app/1'),
      autoLease('disk-bb8ca03865bd776d0c24a8de93294d42a94551b6', 'vdb', 'net:rbd:*:vms/app-03-data'),
      autoLease('disk-69a9054c7032a7c212f043bb942e6d6558f54e5c', 'vdc', 'net:nbd:[fd00::5]:10810,nbd1.example.com:10809:scratch'),
    ]);
  });

  it('puts the <lease> elements first, exclusive, then the disk leases', () => {
    const facts = factsOf({
      '/srv/nfs/vms/legacy-04/root.qcow2': file('/srv/nfs/vms/legacy-04/root.qcow2'),
      '/var/lib/vmlease/leases/vms/legacy-04.lease': file('/var/lib/vmlease/leases/vms/legacy-04.lease', { device: '8:2' }),
      '/dev/vg_leases/app-leases': { kind: 'block', resolvedPath: '/dev/dm-9', rdev: '253:9', identities: [] },
    });
    expect(accepted(decide(fixture('explicit-leases'), facts)).leases).toEqual([
      { lockspace: 'cluster', resource: 'legacy-04-vm', path: '/var/lib/vmlease/leases/vms/legacy-04.lease', offset: 0, mode: 'exclusive', reason: "<lease key='legacy-04-vm'> of the domain (lockspace cluster)", origin: { kind: 'lease-element', index: 0 } },
      { lockspace: 'san', resource: 'legacy-04-app', path: '/dev/vg_leases/app-leases', offset: 1048576, mode: 'exclusive', reason: "<lease key='legacy-04-app'> of the domain (lockspace san)", origin: { kind: 'lease-element', index: 1 } },
      autoLease('disk-06c94fe40f719c6b21c35e797f3dc168d8ca3a75', 'vda', 'file:vmstore/legacy-04/root.qcow2'),
    ]);
  });
});

describe('decideLeases refusals', () => {
  it('refuses a <lease> outside the lease roots', () => {
    expectRefusal(refused(decide(fixture('lease-outside-roots'), factsOf({}))), 'POLICY_LEASE_OUTSIDE_ROOTS', "<lease key='passwd'>", 'targets "/etc/passwd", which is not below a lease root (/var/lib/vmlease/leases, /dev/vg_leases)');
    const atRoot = domainXml(lease('r1', '/var/lib/vmlease/leases'));
    expectRefusal(refused(decide(atRoot, factsOf({}))), 'POLICY_LEASE_OUTSIDE_ROOTS', "<lease key='r1'>", 'targets "/var/lib/vmlease/leases", which is not below a lease root (/var/lib/vmlease/leases, /dev/vg_leases)');
  });

  it('refuses a <lease> on a disk image: the same file reached through a hard link or bind mount', () => {
    const image = { device: '0:52', inode: '77321' };
    const facts = factsOf({ '/srv/nfs/vms/evil-06/root.raw': file('/srv/nfs/vms/evil-06/root.raw', image), '/var/lib/vmlease/leases/evil-06/root.raw': file('/var/lib/vmlease/leases/evil-06/root.raw', image) });
    expectRefusal(refused(decide(fixture('lease-on-disk'), facts)), 'POLICY_LEASE_ON_DISK', "<lease key='root-image'>", `targets "/var/lib/vmlease/leases/evil-06/root.raw", the same file 0:52:77321 as disk vda's source "/srv/nfs/vms/evil-06/root.raw"`);
  });

  it('refuses a <lease> on a disk: the same path, or the same block device', () => {
    const samePath = domainXml(fileDisk('vda', '/var/lib/vmlease/leases/../leases/x.img') + lease('x', '/var/lib/vmlease/leases/x.img'));
    expectRefusal(refused(decide(samePath, factsOf({}))), 'POLICY_LEASE_ON_DISK', "<lease key='x'>", 'targets "/var/lib/vmlease/leases/x.img", the source of disk vda');
    const device = { kind: 'block', resolvedPath: '/dev/dm-2', rdev: '253:2', identities: [] } as const;
    const sameDevice = domainXml(`<disk type='block' device='disk'><driver cache='none'/><source dev='/dev/mapper/vg_shared-db'/><target dev='vdb'/></disk>` + lease('db', '/dev/vg_leases/db'));
    expectRefusal(refused(decide(sameDevice, factsOf({ '/dev/mapper/vg_shared-db': device, '/dev/vg_leases/db': device }))), 'POLICY_LEASE_ON_DISK', "<lease key='db'>", `targets "/dev/vg_leases/db", the same block device 253:2 as disk vdb's source "/dev/mapper/vg_shared-db"`);
  });

  it('refuses a disk in a lease root, as written or as resolved on this host', () => {
    const written = domainXml(fileDisk('vda', '/dev/vg_leases/stolen', "<driver cache='none'/>"));
    expectRefusal(refused(decide(written, factsOf({}))), 'POLICY_DISK_IN_LEASE_ROOT', "<disk target='vda'>", 'has source "/dev/vg_leases/stolen" in lease root /dev/vg_leases: qemu must never open lease storage');
    const resolved = domainXml(fileDisk('vda', '/srv/nfs/vms/x.img'));
    const facts = factsOf({ '/srv/nfs/vms/x.img': file('/var/lib/vmlease/leases/disks/disk-1.lease') });
    expectRefusal(refused(decide(resolved, facts)), 'POLICY_DISK_IN_LEASE_ROOT', "<disk target='vda'>", 'has source "/srv/nfs/vms/x.img" (resolved on this host to "/var/lib/vmlease/leases/disks/disk-1.lease") in lease root /var/lib/vmlease/leases: qemu must never open lease storage');
  });

  it('refuses a writable disk whose facts could not be found out, even when leases are not required, and leaves one that does not exist unleased', () => {
    const optional = hostPolicy({ requireForWritableDisks: false });
    const xml = domainXml(fileDisk('vda', '/srv/nfs/vms/x.img'));
    const timedOut = factsOf({ '/srv/nfs/vms/x.img': { kind: 'unknown', reason: 'lstat /srv/nfs/vms/x.img did not answer within 10000 ms (it may still complete)' } });
    expectRefusal(refused(decide(xml, timedOut, optional)), 'POLICY_DISK_FACTS', "<disk target='vda'>", 'has source "/srv/nfs/vms/x.img", which could not be inspected on this host, so it cannot be kept out of the lease roots: lstat /srv/nfs/vms/x.img did not answer within 10000 ms (it may still complete)');
    const rootUnknown = factsOf({ '/srv/nfs/vms/x.img': file('/srv/nfs/vms/x.img') }, { '/srv/nfs/vms': { unknown: 'it cannot be resolved: EIO: i/o error' }, '/srv/nfs/iso': '/srv/nfs/iso' });
    expectRefusal(refused(decide(xml, rootUnknown, optional)), 'POLICY_DISK_FACTS', "<disk target='vda'>", 'is writable and its identity could not be determined: shared file root vmstore (/srv/nfs/vms) could not be looked at on this host: it cannot be resolved: EIO: i/o error');
    const notGathered = factsOf({});
    expectRefusal(refused(decide(xml, notGathered, optional)), 'POLICY_DISK_FACTS', "<disk target='vda'>", 'is writable and its identity could not be determined: no facts were gathered for "/srv/nfs/vms/x.img"');
    const absent = factsOf({ '/srv/nfs/vms/x.img': { kind: 'missing', reason: "ENOENT: no such file or directory, lstat '/srv/nfs/vms/x.img'" } });
    expect(accepted(decide(xml, absent, optional)).unleasedDisks).toEqual([{ target: 'vda', reason: `"/srv/nfs/vms/x.img" does not exist on this host: ENOENT: no such file or directory, lstat '/srv/nfs/vms/x.img'` }]);
  });

  it('refuses shared roots that resolve on this host to one directory or one inside the other', () => {
    const xml = domainXml(fileDisk('vda', '/srv/nfs/iso/x.img'));
    const nested = factsOf({ '/srv/nfs/iso/x.img': file('/srv/nfs/vms/iso/x.img') }, { '/srv/nfs/vms': '/srv/nfs/vms', '/srv/nfs/iso': '/srv/nfs/vms/iso' });
    expectRefusal(refused(decide(xml, nested)), 'POLICY_SHARED_ROOTS', 'sharedFileRoots iso', '(/srv/nfs/iso) resolves on this host to "/srv/nfs/vms/iso", inside shared file root vmstore (/srv/nfs/vms, resolved to "/srv/nfs/vms"): a file there would have two identities');
    const same = factsOf({ '/srv/nfs/iso/x.img': file('/mnt/share/x.img') }, { '/srv/nfs/vms': '/mnt/share', '/srv/nfs/iso': '/mnt/share' });
    expectRefusal(refused(decide(xml, same)), 'POLICY_SHARED_ROOTS', 'sharedFileRoots vmstore', '(/srv/nfs/vms) resolves on this host to "/mnt/share", the same directory as shared file root iso (/srv/nfs/iso, resolved to "/mnt/share"): a file there would have two identities');
  });

  it('refuses one file named twice through names that resolve apart (a bind mount), by its device and inode', () => {
    const image = { device: '0:52', inode: '4242' };
    const xml = domainXml(fileDisk('vda', '/srv/nfs/vms/a/x.img') + fileDisk('vdb', '/srv/nfs/vms/b/x.img'));
    const facts = factsOf({ '/srv/nfs/vms/a/x.img': file('/srv/nfs/vms/a/x.img', image), '/srv/nfs/vms/b/x.img': file('/srv/nfs/vms/b/x.img', image) });
    expectRefusal(refused(decide(xml, facts)), 'POLICY_DISK_DUPLICATE', "<disk target='vdb'>", 'is the same disk as vda (identity "file:vmstore/a/x.img"), and not every one of its disks is <shareable/>');
  });

  it('leaves a hard-linked writable file without a lease, and refuses it when leases are required', () => {
    const xml = domainXml(fileDisk('vda', '/srv/nfs/vms/a.img'));
    const facts = factsOf({ '/srv/nfs/vms/a.img': file('/srv/nfs/vms/a.img', { links: 2 }) });
    expectRefusal(refused(decide(xml, facts)), 'POLICY_DISK_UNLEASED', "<disk target='vda'>", 'is writable but gets no lease: "/srv/nfs/vms/a.img" has 2 hard links: each of its names would get a lease of its own');
    expect(accepted(decide(xml, facts, hostPolicy({ requireForWritableDisks: false }))).unleasedDisks).toEqual([{ target: 'vda', reason: '"/srv/nfs/vms/a.img" has 2 hard links: each of its names would get a lease of its own' }]);
  });

  it('refuses a disk that is a block device a lease root holds, whatever name leads to it', () => {
    const lockspace = { kind: 'block', resolvedPath: '/dev/dm-4', rdev: '253:4', identities: [{ kind: 'lvm', vgUuid: VG_UUID, lvUuid: LV_UUID }] } as const;
    const roots = { ...LEASE_ROOTS, '/dev/vg_leases': { resolvedPath: '/dev/vg_leases', blockDevices: ['253:4', '253:9'] } };
    for (const path of ['/dev/mapper/vg_leases-cluster', '/dev/dm-4']) {
      const xml = domainXml(`<disk type='block' device='disk'><driver cache='none'/><source dev='${path}'/><target dev='vda'/></disk>`);
      expectRefusal(refused(decide(xml, factsOf({ [path]: lockspace }, undefined, roots))), 'POLICY_DISK_IN_LEASE_ROOT', "<disk target='vda'>", `has source "${path}", block device 253:4, which lease root /dev/vg_leases holds: qemu must never open lease storage`);
    }
  });

  it('refuses a disk below a lease root as resolved on this host (the root a symlink)', () => {
    const roots = { ...LEASE_ROOTS, '/var/lib/vmlease/leases': { resolvedPath: '/data/leases', blockDevices: [] } };
    const xml = domainXml(fileDisk('vda', '/srv/nfs/vms/x.img', "<driver cache='none'/>"));
    const facts = factsOf({ '/srv/nfs/vms/x.img': file('/data/leases/disks/disk-1.lease') }, undefined, roots);
    expectRefusal(refused(decide(xml, facts)), 'POLICY_DISK_IN_LEASE_ROOT', "<disk target='vda'>", 'has source "/srv/nfs/vms/x.img" (resolved on this host to "/data/leases/disks/disk-1.lease") in lease root /var/lib/vmlease/leases (which resolves on this host to /data/leases): qemu must never open lease storage');
  });

  it('refuses a disk below a lease root bind-mounted elsewhere, by the root directory\'s device and inode', () => {
    const roots = { ...LEASE_ROOTS, '/var/lib/vmlease/leases': { resolvedPath: '/var/lib/vmlease/leases', directory: '64769:5521', blockDevices: [] } };
    const xml = domainXml(fileDisk('vda', '/srv/nfs/vms/x.img', "<driver cache='none'/>"));
    // /srv/nfs/vms/x.img is /var/lib/vmlease/leases/disks/disk-1.lease, the root bind-mounted at /srv/nfs/vms: realpath does not see it.
    const facts = factsOf({ '/srv/nfs/vms/x.img': file('/srv/nfs/vms/x.img', { directories: ['64769:6001', '64769:5521', '40:2', '64768:2'] }) }, undefined, roots);
    expectRefusal(refused(decide(xml, facts)), 'POLICY_DISK_IN_LEASE_ROOT', "<disk target='vda'>", 'has source "/srv/nfs/vms/x.img", resolved on this host to "/srv/nfs/vms/x.img", below directory 64769:5521, which is lease root /var/lib/vmlease/leases mounted elsewhere (a bind mount): qemu must never open lease storage');
  });

  it('refuses a disk when a lease root could not be looked at', () => {
    const roots = { ...LEASE_ROOTS, '/dev/vg_leases': { resolvedPath: '/dev/vg_leases', blockDevices: [], unknown: 'its entries cannot be listed: readdir /dev/vg_leases did not answer within 10000 ms' } };
    const xml = domainXml(fileDisk('vda', '/srv/nfs/vms/x.img', "<driver cache='none'/>"));
    const facts = factsOf({ '/srv/nfs/vms/x.img': file('/srv/nfs/vms/x.img') }, undefined, roots);
    expectRefusal(refused(decide(xml, facts)), 'POLICY_DISK_FACTS', "<disk target='vda'>", 'cannot be checked against lease root /dev/vg_leases: its entries cannot be listed: readdir /dev/vg_leases did not answer within 10000 ms');
    const { '/dev/vg_leases': _dropped, ...notGathered } = LEASE_ROOTS;
    expectRefusal(refused(decide(xml, factsOf({ '/srv/nfs/vms/x.img': file('/srv/nfs/vms/x.img') }, undefined, notGathered))), 'POLICY_DISK_FACTS', "<disk target='vda'>", 'cannot be checked against lease root /dev/vg_leases: no facts were gathered for the root');
  });

  it('refuses a leased writable disk that uses the host page cache', () => {
    const facts = factsOf({ '/srv/nfs/vms/cached-07/root.qcow2': file('/srv/nfs/vms/cached-07/root.qcow2') });
    const why = (mode: string): string => `is writable and leased but its cache mode ${mode} uses the host page cache: writes could reach the disk after the lease is lost; use cache='none' or cache='directsync'`;
    expectRefusal(refused(decide(fixture('page-cache'), facts)), 'POLICY_PAGE_CACHE', "<disk target='vda'>", why('writeback'));
    const noCache = domainXml(fileDisk('vda', '/srv/nfs/vms/cached-07/root.qcow2', "<driver name='qemu' type='qcow2'/>"));
    expectRefusal(refused(decide(noCache, facts)), 'POLICY_PAGE_CACHE', "<disk target='vda'>", why("writeback (libvirt's default: no cache attribute)"));
    const unsafe = domainXml(fileDisk('vda', '/srv/nfs/vms/cached-07/root.qcow2', "<driver cache='unsafe'/>"));
    expectRefusal(refused(decide(unsafe, facts)), 'POLICY_PAGE_CACHE', "<disk target='vda'>", why('unsafe'));
  });

  it('refuses a VM with leases whose emulator is not the shim', () => {
    const why = `, not the vmlease shim ${SHIM}: only the shim starts qemu under a supervisor that holds the VM's leases`;
    const qemu = domainXml(lease('r1', '/var/lib/vmlease/leases/r1'), '/usr/bin/qemu-system-x86_64');
    expectRefusal(refused(decide(qemu, factsOf({}))), 'POLICY_EMULATOR', '<emulator>', `is "/usr/bin/qemu-system-x86_64"${why}`);
    const none = `<domain><name>vm</name><uuid>${UUID}</uuid></domain>`;
    expectRefusal(refused(decide(none, factsOf({}))), 'POLICY_EMULATOR', '<emulator>', `is missing (libvirt would start its default emulator)${why}`);
  });

  it('accepts any emulator for a VM without leases when leases are not required', () => {
    const plain = domainXml(fileDisk('vda', '/var/lib/libvirt/images/a.qcow2'), '/usr/bin/qemu-system-x86_64');
    expect(decide(plain, factsOf({}), hostPolicy({ enabled: false }))).toEqual({
      ok: true,
      vm: { uuid: UUID, name: 'vm' },
      leases: [],
      unleasedDisks: [{ target: 'vda', reason: 'auto disk leases are off in the host policy' }],
    });
  });

  it('refuses a writable disk without identity when leases are required, and lists it otherwise', () => {
    const xml = domainXml(fileDisk('vdb', '/var/lib/libvirt/images/local.qcow2') + `<disk type='volume' device='disk'><driver cache='none'/><source pool='default' volume='v1'/><target dev='vdc'/></disk>`);
    const facts = factsOf({ '/var/lib/libvirt/images/local.qcow2': file('/var/lib/libvirt/images/local.qcow2', { device: '8:1' }) });
    const local = '"/var/lib/libvirt/images/local.qcow2" is not below a shared file root (vmstore /srv/nfs/vms, iso /srv/nfs/iso): a local path names different files on different hosts';
    expectRefusal(refused(decide(xml, facts)), 'POLICY_DISK_UNLEASED', "<disk target='vdb'>", `is writable but gets no lease: ${local}`);
    expect(accepted(decide(xml, facts, hostPolicy({ requireForWritableDisks: false }))).unleasedDisks).toEqual([
      { target: 'vdb', reason: local },
      { target: 'vdc', reason: 'it is a volume disk (storage pool volume "default"/"v1"), for which the policy derives no identity' },
    ]);
  });

  it('gives one shared lease to a disk named twice when both are shareable, and refuses it otherwise', () => {
    const image = file('/srv/nfs/vms/quorum.img');
    const facts = factsOf({ '/srv/nfs/vms/quorum.img': image, '/srv/nfs/vms/links/quorum.img': image });
    const twice = (shareable: string): string => domainXml(fileDisk('vdb', '/srv/nfs/vms/quorum.img', `<driver cache='none'/>${shareable}`) + fileDisk('vdc', '/srv/nfs/vms/links/quorum.img', "<driver cache='none'/><shareable/>"));
    const identity = 'file:vmstore/quorum.img';
    expect(accepted(decide(twice('<shareable/>'), facts)).leases).toEqual([autoLease('disk-66c4e1f5f454ecedc4d4450249c4ac78786f264d', 'vdb', identity, 'shared', 'vdb, vdc')]);
    expectRefusal(refused(decide(twice(''), facts)), 'POLICY_DISK_DUPLICATE', "<disk target='vdc'>", `is the same disk as vdb (identity "${identity}"), and not every one of its disks is <shareable/>`);
  });

  it('refuses a <lease> named twice, two leases on one area, and a <lease> on a disk lease the policy derives', () => {
    const sameKey = domainXml(lease('r1', '/var/lib/vmlease/leases/a') + lease('r1', '/var/lib/vmlease/leases/b'));
    expectRefusal(refused(decide(sameKey, factsOf({}))), 'POLICY_LEASE_DUPLICATE', "<lease key='r1'>", 'names lockspace cluster resource r1 a second time');
    const sameArea = domainXml(lease('r1', '/var/lib/vmlease/leases/a', 8192) + lease('r2', '/var/lib/vmlease/leases/a', 8192, 'other'));
    expectRefusal(refused(decide(sameArea, factsOf({}))), 'POLICY_LEASE_DUPLICATE', "<lease key='r2'>", `targets "/var/lib/vmlease/leases/a" offset 8192, the area of <lease key='r1'>`);
    const resource = 'disk-20e07363eb501c06a3114db70da0339f35846db7';
    const onAuto = domainXml(fileDisk('vda', '/srv/nfs/vms/web-01/root.qcow2') + lease('mine', `${DISKS}/${resource}.lease`));
    const facts = factsOf({ '/srv/nfs/vms/web-01/root.qcow2': file('/srv/nfs/vms/web-01/root.qcow2') });
    expectRefusal(refused(decide(onAuto, facts)), 'POLICY_LEASE_DUPLICATE', "<lease key='mine'>", `names the lease of disk vda (cluster:${resource} at "${DISKS}/${resource}.lease"), which the policy derives itself`);
  });

  it('refuses qemu command-line passthrough when every writable disk must be leased', () => {
    const xml = `<domain xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><name>vm</name><uuid>${UUID}</uuid><devices><emulator>${SHIM}</emulator></devices><qemu:commandline><qemu:arg value='-drive'/><qemu:arg value='file=/srv/nfs/vms/other.img'/></qemu:commandline></domain>`;
    expectRefusal(refused(decide(xml, factsOf({}))), 'POLICY_QEMU_PASSTHROUGH', '<qemu:commandline>', 'passes arguments straight to qemu, which can open drives no <disk> shows, while the host policy requires a lease for every writable disk');
    expect(decide(xml, factsOf({}), hostPolicy({ requireForWritableDisks: false }))).toEqual({ ok: true, vm: { uuid: UUID, name: 'vm' }, leases: [], unleasedDisks: [] });
  });

  it('refuses more leases than one register request carries', () => {
    const leases = Array.from({ length: ADMIN_LEASES_MAX }, (_, i) => lease(`r${i}`, `/var/lib/vmlease/leases/r${i}`)).join('');
    const xml = domainXml(leases + fileDisk('vda', '/srv/nfs/vms/web-01/root.qcow2'));
    const facts = factsOf({ '/srv/nfs/vms/web-01/root.qcow2': file('/srv/nfs/vms/web-01/root.qcow2') });
    expectRefusal(refused(decide(xml, facts)), 'POLICY_TOO_MANY_LEASES', '<devices>', `needs ${ADMIN_LEASES_MAX + 1} leases (${ADMIN_LEASES_MAX} from <lease> elements, 1 for disks), at most ${ADMIN_LEASES_MAX} fit one register request`);
  });
});

describe('pathsToInspect', () => {
  it('lists every disk source path and every lease target once, in document order', () => {
    const domain: DomainDescription = domainOf(fixture('file-disks'));
    expect(pathsToInspect(domain, POLICY)).toEqual(['/srv/nfs/vms/web-01/root.qcow2', '/srv/nfs/vms/web-01/data.raw', '/srv/nfs/iso/debian-12.5.0-amd64-netinst.iso', '/srv/nfs/vms/shared/tools.img']);
    expect(pathsToInspect(domainOf(fixture('explicit-leases')), POLICY)).toEqual(['/srv/nfs/vms/legacy-04/root.qcow2', '/var/lib/vmlease/leases/vms/legacy-04.lease', '/dev/vg_leases/app-leases']);
    expect(pathsToInspect(domainOf(fixture('network-disks')), POLICY)).toEqual([]);
    const same = domainOf(domainXml(fileDisk('vda', '/srv/nfs/vms/a.img') + fileDisk('vdb', '/srv/nfs/vms/a.img')));
    expect(pathsToInspect(same, POLICY)).toEqual(['/srv/nfs/vms/a.img']);
  });
});
