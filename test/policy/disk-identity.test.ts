import { describe, expect, it } from 'vitest';
import { diskIdentity, type BlockIdentity, type DiskFacts, type DiskSource, type DiskType, type DomainDisk, type NetworkHost, type PathFacts } from '../../dist/policy/index.js';
import { factsOf, file, hostPolicy, LV_UUID, SHARED_ROOTS, VG_UUID } from './support.js';

const AUTO = hostPolicy().autoDiskLeases;
const ROOT_IMAGE = '/srv/nfs/vms/web-01/root.qcow2';

function disk(source: DiskSource, type: DiskType = 'file'): DomainDisk {
  return { type, device: 'disk', target: 'vda', source, cache: 'none', readonly: false, shareable: false };
}

function identityOfPath(written: string, facts: PathFacts, sharedRoots = SHARED_ROOTS): ReturnType<typeof diskIdentity> {
  return diskIdentity(disk({ kind: 'path', path: written }), AUTO, factsOf({ [written]: facts }, sharedRoots));
}

function block(identities: BlockIdentity[], resolvedPath = '/dev/dm-3'): PathFacts {
  return { kind: 'block', resolvedPath, rdev: '253:3', identities };
}

function network(protocol: string, name: string, hosts: Partial<NetworkHost>[]): ReturnType<typeof diskIdentity> {
  const full = hosts.map((h) => ({ name: h.name ?? '', port: h.port, transport: h.transport ?? 'tcp', socket: h.socket }));
  return diskIdentity(disk({ kind: 'network', protocol, name, hosts: full }, 'network'), AUTO, factsOf({}));
}

describe('file disk identities', () => {
  it('name the shared root and the path below it', () => {
    expect(identityOfPath(ROOT_IMAGE, file(ROOT_IMAGE))).toEqual({ ok: true, identity: 'file:vmstore/web-01/root.qcow2' });
  });

  it('are the same through a symlink inside the share, a path written unnormalised, and a share mounted elsewhere on this host', () => {
    const expected = { ok: true, identity: 'file:vmstore/web-01/root.qcow2' };
    expect(identityOfPath('/srv/nfs/vms/web-01/current.qcow2', file(ROOT_IMAGE))).toEqual(expected);
    expect(identityOfPath('/srv/nfs/vms//web-01/./root.qcow2', file(ROOT_IMAGE))).toEqual(expected);
    expect(identityOfPath(ROOT_IMAGE, file('/mnt/filer-3/vms/web-01/root.qcow2'), { ...SHARED_ROOTS, '/srv/nfs/vms': '/mnt/filer-3/vms' })).toEqual(expected);
  });

  it('are refused for a file with hard links: each of its names would be an identity of its own', () => {
    expect(identityOfPath(ROOT_IMAGE, file(ROOT_IMAGE, { links: 2 }))).toEqual({ ok: false, reason: `"${ROOT_IMAGE}" has 2 hard links: each of its names would get a lease of its own` });
  });

  it('are refused for a file on another file system than its shared root (one mounted inside the share on this host)', () => {
    expect(identityOfPath(ROOT_IMAGE, file(ROOT_IMAGE, { device: '8:3' }))).toEqual({
      ok: false,
      reason: "it lies on device 8:3, not on shared file root vmstore's device 0:52: a file system mounted inside the share is local to this host",
    });
  });

  it('are refused for a symlink leaving the share', () => {
    expect(identityOfPath('/srv/nfs/vms/web-01/root.qcow2', file('/var/lib/libvirt/images/root.qcow2'))).toEqual({
      ok: false,
      reason: 'it resolves to "/var/lib/libvirt/images/root.qcow2", outside shared file root vmstore (/srv/nfs/vms)',
    });
  });

  it('are refused for a path not written below a shared root, even one that leads into a share', () => {
    const reason = (written: string): string => `"${written}" is not below a shared file root (vmstore /srv/nfs/vms, iso /srv/nfs/iso): a local path names different files on different hosts`;
    expect(identityOfPath('/var/lib/libvirt/images/root.qcow2', file(ROOT_IMAGE))).toEqual({ ok: false, reason: reason('/var/lib/libvirt/images/root.qcow2') });
    expect(identityOfPath('/srv/nfs/vms/../local/root.qcow2', file('/srv/nfs/local/root.qcow2'))).toEqual({ ok: false, reason: reason('/srv/nfs/vms/../local/root.qcow2') });
    expect(identityOfPath('/srv/nfs/vms', file('/srv/nfs/vms'))).toEqual({ ok: false, reason: reason('/srv/nfs/vms') });
  });

  it('are refused when no shared root is declared, or the root cannot be resolved here', () => {
    const auto = hostPolicy().autoDiskLeases;
    const facts = factsOf({ [ROOT_IMAGE]: file(ROOT_IMAGE) });
    expect(diskIdentity(disk({ kind: 'path', path: ROOT_IMAGE }), { ...auto, sharedFileRoots: [] }, facts)).toEqual({
      ok: false,
      reason: `"${ROOT_IMAGE}" is not below a shared file root (none is declared): a local path names different files on different hosts`,
    });
    expect(identityOfPath(ROOT_IMAGE, file(ROOT_IMAGE), { '/srv/nfs/vms': undefined })).toEqual({ ok: false, reason: 'shared file root vmstore (/srv/nfs/vms) cannot be resolved on this host' });
  });

  it('are refused when the path does not exist or is not a disk image', () => {
    expect(identityOfPath(ROOT_IMAGE, { kind: 'missing', reason: 'ENOENT: no such file or directory' })).toStrictEqual({ ok: false, reason: `"${ROOT_IMAGE}" does not exist on this host: ENOENT: no such file or directory` });
    expect(identityOfPath(ROOT_IMAGE, { kind: 'other', resolvedPath: ROOT_IMAGE, what: 'directory' })).toStrictEqual({ ok: false, reason: `"${ROOT_IMAGE}" is a directory, not a disk image` });
  });

  it('are undetermined, not absent, when the facts could not be found out', () => {
    expect(identityOfPath(ROOT_IMAGE, { kind: 'unknown', reason: 'EIO: i/o error' })).toStrictEqual({ ok: false, reason: `"${ROOT_IMAGE}" could not be inspected on this host: EIO: i/o error`, undetermined: true });
    expect(diskIdentity(disk({ kind: 'path', path: ROOT_IMAGE }), AUTO, factsOf({}))).toStrictEqual({ ok: false, reason: `no facts were gathered for "${ROOT_IMAGE}"`, undetermined: true });
  });
});

describe('block disk identities', () => {
  const lvm: BlockIdentity = { kind: 'lvm', vgUuid: VG_UUID, lvUuid: LV_UUID };

  it('prefer the LVM uuids, then the WWN, then the serial, whatever order the facts list them in', () => {
    const serial: BlockIdentity = { kind: 'serial', value: 'S3Z9NX0K123456' };
    const wwn: BlockIdentity = { kind: 'wwn', value: '0x5002538E40A1B2C3' };
    expect(identityOfPath('/dev/vg_shared/db', block([serial, wwn, lvm]))).toEqual({ ok: true, identity: `lvm:${VG_UUID}/${LV_UUID}` });
    expect(identityOfPath('/dev/sdb', block([serial, wwn]))).toEqual({ ok: true, identity: 'wwn:0x5002538e40a1b2c3' });
    expect(identityOfPath('/dev/vdb', block([serial]))).toEqual({ ok: true, identity: 'serial:S3Z9NX0K123456' });
  });

  it('skip a malformed name for the next one', () => {
    expect(identityOfPath('/dev/sdb', block([{ kind: 'lvm', vgUuid: 'short', lvUuid: LV_UUID }, { kind: 'serial', value: ' SER-1 ' }]))).toEqual({ ok: true, identity: 'serial:SER-1' });
    expect(identityOfPath('/dev/sdb', block([{ kind: 'lvm', vgUuid: 'short', lvUuid: LV_UUID }, { kind: 'serial', value: 'bad\u0001name' }]))).toEqual({
      ok: false,
      reason: `its LVM uuids "short"/"${LV_UUID}" are not 32 letters and digits each; its serial "bad\\u0001name" is not 1..256 printable characters`,
    });
    expect(identityOfPath('/dev/sdb', block([{ kind: 'serial', value: 'x'.repeat(257) }]))).toEqual({ ok: false, reason: `its serial ${JSON.stringify('x'.repeat(160) + '...')} is not 1..256 printable characters` });
  });

  it('collapse whitespace inside a name to one _, as the shell keeps it', () => {
    expect(identityOfPath('/dev/sdb', block([{ kind: 'wwn', value: 't10.ATA     QEMU HARDDISK                           QM00001\n' }]))).toEqual({ ok: true, identity: 'wwn:t10.ata_qemu_harddisk_qm00001' });
    expect(identityOfPath('/dev/sdb', block([{ kind: 'serial', value: ' two\twords ' }]))).toEqual({ ok: true, identity: 'serial:two_words' });
    expect(identityOfPath('/dev/sdb', block([{ kind: 'serial', value: 'y'.repeat(256) }]))).toEqual({ ok: true, identity: `serial:${'y'.repeat(256)}` });
  });

  it('give a partition its disk identity with -partN', () => {
    expect(identityOfPath('/dev/disk/by-id/wwn-0x5000-part2', block([{ kind: 'partition', of: { kind: 'wwn', value: '0x5000C500A1B2C3D4' }, number: 2 }], '/dev/sdc2'))).toStrictEqual({ ok: true, identity: 'wwn:0x5000c500a1b2c3d4-part2', wholeDisk: 'wwn:0x5000c500a1b2c3d4' });
    expect(identityOfPath('/dev/sdc', block([{ kind: 'wwn', value: '0x5000C500A1B2C3D4' }], '/dev/sdc'))).toStrictEqual({ ok: true, identity: 'wwn:0x5000c500a1b2c3d4' });
    expect(identityOfPath('/dev/sdc0', block([{ kind: 'partition', of: lvm, number: 0 }]))).toEqual({ ok: false, reason: 'its partition number 0 is not 1..4096' });
  });

  it('treat a loop device as the file behind it', () => {
    expect(identityOfPath('/dev/loop4', block([{ kind: 'loop', backingFile: ROOT_IMAGE }], '/dev/loop4'))).toEqual({ ok: true, identity: 'file:vmstore/web-01/root.qcow2' });
    expect(identityOfPath('/dev/loop4', block([{ kind: 'loop', backingFile: '/tmp/scratch.img' }], '/dev/loop4'))).toEqual({ ok: false, reason: 'it is a loop device backed by "/tmp/scratch.img", which is not below a shared file root' });
  });

  it('never fall back to the per-host device name', () => {
    expect(identityOfPath('/dev/vg_local/scratch', block([], '/dev/dm-7'))).toEqual({ ok: false, reason: 'block device "/dev/dm-7" has no stable name (no LVM uuid, WWN or serial), and its device name differs between hosts' });
  });
});

describe('network disk identities', () => {
  it('are one identity however libvirt would read one name: iSCSI case and default LUN, IPv6 spellings, Gluster and NFS paths', () => {
    const lun0 = { ok: true, identity: 'net:iscsi:*:iqn.2013-07.com.example:t1/0' };
    for (const name of ['iqn.2013-07.com.example:t1', 'iqn.2013-07.com.example:t1/0', 'iqn.2013-07.com.Example:T1/0', 'iqn.2013-07.com.example:t1/00']) expect(network('iscsi', name, [{ name: 'san' }])).toEqual(lun0);
    expect(network('iscsi', 'iqn.2013-07.com.example:t1/1', [{ name: 'san' }])).toEqual({ ok: true, identity: 'net:iscsi:*:iqn.2013-07.com.example:t1/1' });
    const v6 = { ok: true, identity: 'net:nbd:[fd00::5]:10809:x' };
    for (const host of ['fd00::5', '[fd00::5]', 'FD00:0::5', 'fd00:0:0:0:0:0:0:5', '[FD00::0005]']) expect(network('nbd', 'x', [{ name: host, port: '10809' }])).toEqual(v6);
    const gluster = { ok: true, identity: 'net:gluster:*:vol/img' };
    for (const name of ['vol/img', 'vol//img', 'vol/./img', 'vol/dir/../img']) expect(network('gluster', name, [{ name: 'h' }])).toEqual(gluster);
    const nfs = { ok: true, identity: 'net:nfs:filer:2049:/export/vm.img' };
    for (const name of ['/export/vm.img', 'export/vm.img', '/export//./vm.img']) expect(network('nfs', name, [{ name: 'filer' }])).toEqual(nfs);
  });

  it('name iSCSI, RBD and Gluster disks by protocol and name alone: any portal or monitor reaches the same disk', () => {
    expect(network('iscsi', 'iqn.2013-07.com.example:storage.app/1', [{ name: 'SAN-A.example.com', port: '3260' }])).toEqual({ ok: true, identity: 'net:iscsi:*:iqn.2013-07.com.example:storage.app/1' });
    expect(network('rbd', 'vms/app-03-data', [{ name: '10.0.0.11' }, { name: '10.0.0.12', port: '3300' }])).toEqual({ ok: true, identity: 'net:rbd:*:vms/app-03-data' });
    expect(network('rbd', 'vms/app-03-data', [])).toEqual({ ok: true, identity: 'net:rbd:*:vms/app-03-data' });
    expect(network('gluster', 'gv0/vm.img', [{ name: 'gl1' }])).toEqual({ ok: true, identity: 'net:gluster:*:gv0/vm.img' });
  });

  it('normalise the hosts of other protocols: lowercase, default port spelled out, sorted, unique, IPv6 bracketed', () => {
    const nbd = network('nbd', 'scratch', [{ name: 'NBD1.example.com' }, { name: 'nbd1.example.com', port: '10809' }, { name: 'fd00::5', port: '10810' }]);
    expect(nbd).toEqual({ ok: true, identity: 'net:nbd:[fd00::5]:10810,nbd1.example.com:10809:scratch' });
    expect(network('nbd', 'scratch', [{ name: 'fd00::5', port: '10810' }, { name: 'nbd1.example.com' }])).toEqual(nbd);
  });

  it('are refused for a Unix socket, an unknown protocol, no host, or a cluster-named disk without a name', () => {
    expect(network('nbd', '', [{ transport: 'unix', socket: '/run/nbd.sock' }])).toEqual({ ok: false, reason: 'it reaches its server through the Unix socket "/run/nbd.sock", a name local to this host' });
    expect(network('gopher', 'x', [{ name: 'a' }])).toEqual({ ok: false, reason: 'its network protocol "gopher" is not one the policy knows' });
    expect(network('http', '/a.img', [])).toEqual({ ok: false, reason: 'its http source names no host' });
    expect(network('iscsi', 'iqn.2013-07.com.example:t1/lun0', [{ name: 'san' }])).toEqual({ ok: false, reason: 'its iscsi name "iqn.2013-07.com.example:t1/lun0" is not IQN or IQN/LUN with a decimal LUN' });
    expect(network('gluster', '/gv0/vm.img', [{ name: 'gl1' }])).toEqual({ ok: false, reason: 'its gluster name "/gv0/vm.img" is not VOLUME/PATH (libvirt refuses it)' });
    expect(network('iscsi', '', [{ name: 'san' }])).toEqual({ ok: false, reason: 'its iscsi source has no name, and the name is what identifies it' });
  });
});

describe('other disks', () => {
  it('get no identity, with a reason naming their type', () => {
    const facts: DiskFacts = factsOf({});
    expect(diskIdentity(disk({ kind: 'unsupported', what: 'storage pool volume "default"/"v1"' }, 'volume'), AUTO, facts)).toEqual({
      ok: false,
      reason: 'it is a volume disk (storage pool volume "default"/"v1"), for which the policy derives no identity',
    });
    expect(diskIdentity(disk({ kind: 'empty' }), AUTO, facts)).toEqual({ ok: false, reason: 'it has no source' });
  });
});
