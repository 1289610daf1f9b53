import { describe, expect, it } from 'vitest';
import { DOMAIN_DISKS_MAX, DOMAIN_LEASES_MAX, XML_BYTES_MAX, XML_ELEMENTS_MAX, parseDomainXml } from '../../dist/policy/index.js';
import { domainOf, expectRefusal, fixture, refusalOf } from './support.js';

const UUID = '8f2c6a3e-51b7-4c1d-9e0a-2b7d4f6c8a10';

function domainXml(devices: string, head = `<name>vm</name><uuid>${UUID}</uuid>`): string {
  return `<domain type='kvm'>${head}<devices>${devices}</devices></domain>`;
}

function fileDisk(target: string, extra = ''): string {
  return `<disk type='file' device='disk'><driver name='qemu' cache='none'/><source file='/srv/nfs/vms/${target}.img'/><target dev='${target}'/>${extra}</disk>`;
}

describe('parseDomainXml on realistic domains', () => {
  it('reads file disks, a cdrom and a read-only disk, ignoring the backing chain and every other element', () => {
    expect(domainOf(fixture('file-disks'))).toEqual({
      uuid: UUID,
      name: 'web-01',
      emulator: '/usr/local/libexec/vmlease/qemu-shim',
      dac: { kind: 'ids', uid: 107, gid: 107 },
      disks: [
        { type: 'file', device: 'disk', target: 'vda', source: { kind: 'path', path: '/srv/nfs/vms/web-01/root.qcow2' }, cache: 'none', readonly: false, shareable: false },
        { type: 'file', device: 'disk', target: 'vdb', source: { kind: 'path', path: '/srv/nfs/vms/web-01/data.raw' }, cache: 'directsync', readonly: false, shareable: false },
        { type: 'file', device: 'cdrom', target: 'sda', source: { kind: 'path', path: '/srv/nfs/iso/debian-12.5.0-amd64-netinst.iso' }, cache: undefined, readonly: true, shareable: false },
        { type: 'file', device: 'disk', target: 'vdc', source: { kind: 'path', path: '/srv/nfs/vms/shared/tools.img' }, cache: undefined, readonly: true, shareable: false },
      ],
      leases: [],
      qemuPassthrough: undefined,
    });
  });

  it('reads block disks, a shareable LUN, and a dynamic DAC label', () => {
    const domain = domainOf(fixture('block-disks'));
    expect(domain.dac).toEqual({ kind: 'ids', uid: 64055, gid: 64055 });
    expect(domain.disks.map((d) => [d.type, d.device, d.target, d.source, d.cache, d.shareable])).toEqual([
      ['block', 'disk', 'vda', { kind: 'path', path: '/dev/vg_shared/db-02-root' }, 'none', false],
      ['block', 'lun', 'sdb', { kind: 'path', path: '/dev/disk/by-id/wwn-0x600a0b80002a3b4c0000123456789abc' }, 'directsync', true],
      ['block', 'disk', 'vdc', { kind: 'path', path: '/dev/disk/by-id/virtio-BACKUP-7731-part1' }, 'none', false],
    ]);
  });

  it('reads network disks with their hosts as written', () => {
    const domain = domainOf(fixture('network-disks'));
    expect(domain.dac).toBeUndefined();
    expect(domain.disks.map((d) => d.source)).toEqual([
      { kind: 'network', protocol: 'iscsi', name: 'iqn.2013-07.com.example:storage.app/1', hosts: [{ name: 'SAN-A.example.com', port: '3260', transport: 'tcp', socket: undefined }, { name: 'san-b.example.com', port: undefined, transport: 'tcp', socket: undefined }] },
      { kind: 'network', protocol: 'rbd', name: 'vms/app-03-data', hosts: ['10.0.0.11', '10.0.0.12', '10.0.0.13'].map((name) => ({ name, port: '6789', transport: 'tcp', socket: undefined })) },
      { kind: 'network', protocol: 'nbd', name: 'scratch', hosts: [{ name: 'NBD1.example.com', port: undefined, transport: 'tcp', socket: undefined }, { name: 'nbd1.example.com', port: '10809', transport: 'tcp', socket: undefined }, { name: 'fd00::5', port: '10810', transport: 'tcp', socket: undefined }] },
      { kind: 'network', protocol: 'https', name: '/isos/rescue.iso', hosts: [{ name: 'mirror.example.com', port: '443', transport: 'tcp', socket: undefined }] },
    ]);
  });

  it('reads <lease> elements in order, the offset defaulting to 0', () => {
    expect(domainOf(fixture('explicit-leases')).leases).toEqual([
      { index: 0, lockspace: 'cluster', key: 'legacy-04-vm', path: '/var/lib/vmlease/leases/vms/legacy-04.lease', offset: 0 },
      { index: 1, lockspace: 'san', key: 'legacy-04-app', path: '/dev/vg_leases/app-leases', offset: 1048576 },
    ]);
  });

  it('reads the same domain from bytes as from text', () => {
    const xml = fixture('explicit-leases');
    expect(parseDomainXml(new TextEncoder().encode(xml))).toEqual(parseDomainXml(xml));
  });

  it('decodes entities and character references in text and attributes', () => {
    const domain = domainOf(domainXml(`<emulator>/opt/q&#101;mu/&#x62;in/shim</emulator><disk type='file' device='disk'><source file='/srv/nfs/vms/a&amp;b &apos;c&apos;.img'/><target dev='vda'/></disk>`, `<name>vm&lt;1&gt;</name><uuid>${UUID}</uuid>`));
    expect([domain.name, domain.emulator, domain.disks[0]?.source]).toEqual(['vm<1>', '/opt/qemu/bin/shim', { kind: 'path', path: "/srv/nfs/vms/a&b 'c'.img" }]);
  });

  it('keeps attribute values exactly as written, spaces included, and trims element text', () => {
    const domain = domainOf(domainXml(`<emulator>\n  /usr/local/libexec/vmlease/qemu-shim\n</emulator><disk type='file'><source file='/srv/nfs/vms/a.img '/><target dev='vda'/></disk>`));
    expect([domain.emulator, domain.disks[0]?.source]).toEqual(['/usr/local/libexec/vmlease/qemu-shim', { kind: 'path', path: '/srv/nfs/vms/a.img ' }]);
  });

  it('keeps CDATA as written, without decoding it', () => {
    expect(domainOf(domainXml('', `<name><![CDATA[vm&amp;x]]></name><uuid>${UUID}</uuid>`)).name).toBe('vm&amp;x');
  });

  it('reads an empty cdrom drive as a disk without a source, and a domain without devices', () => {
    expect(domainOf(domainXml(`<disk type='file' device='cdrom'><target dev='hdc'/><readonly/></disk>`)).disks).toEqual([
      { type: 'file', device: 'cdrom', target: 'hdc', source: { kind: 'empty' }, cache: undefined, readonly: true, shareable: false },
    ]);
    expect(domainOf(`<domain><name>vm</name><uuid>${UUID}</uuid></domain>`)).toEqual({ uuid: UUID, name: 'vm', emulator: undefined, dac: undefined, disks: [], leases: [], qemuPassthrough: undefined });
  });

  it('describes the disk types it gives no identity', () => {
    const domain = domainOf(
      domainXml(
        `<disk type='volume' device='disk'><source pool='default' volume='v1'/><target dev='vda'/></disk>` +
          `<disk type='dir' device='floppy'><source dir='/srv/floppy'/><target dev='fda'/></disk>` +
          `<disk type='nvme' device='disk'><source type='pci' managed='yes' namespace='1'><address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/></source><target dev='vdb'/></disk>` +
          `<disk type='vhostuser' device='disk'><source type='unix' path='/run/vhost.sock'/><target dev='vdc'/></disk>`,
      ),
    );
    expect(domain.disks.map((d) => d.source)).toEqual([
      { kind: 'unsupported', what: 'storage pool volume "default"/"v1"' },
      { kind: 'unsupported', what: 'directory "/srv/floppy" (a virtual FAT disk)' },
      { kind: 'unsupported', what: 'NVMe controller passed through' },
      { kind: 'unsupported', what: 'vhost-user socket "/run/vhost.sock"' },
    ]);
  });

  it('notes qemu passthrough elements, whatever their namespace prefix', () => {
    const commandline = `<domain xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><name>vm</name><uuid>${UUID}</uuid><qemu:commandline><qemu:arg value='-drive'/><qemu:arg value='file=/srv/nfs/vms/other.img,if=virtio'/></qemu:commandline></domain>`;
    expect(domainOf(commandline).qemuPassthrough).toBe('<qemu:commandline>');
    expect(domainOf(`<domain><name>vm</name><uuid>${UUID}</uuid><override xmlns='http://libvirt.org/schemas/domain/qemu/1.0'/></domain>`).qemuPassthrough).toBe('<override>');
  });

  it('reads DAC labels given as names, and ignores other models', () => {
    const head = `<name>vm</name><uuid>${UUID}</uuid><seclabel type='dynamic' model='selinux'><label>system_u:system_r:svirt_t:s0:c1,c2</label></seclabel><seclabel type='static' model='dac'><label>qemu:kvm</label></seclabel>`;
    expect(domainOf(domainXml('', head)).dac).toEqual({ kind: 'names', user: 'qemu', group: 'kvm' });
  });
});

describe('parseDomainXml refusals', () => {
  it('refuses XML that is not well-formed', () => {
    expectRefusal(refusalOf(fixture('malformed')), 'POLICY_XML', '<?xml>', "is not well-formed: line 8 column 3: Expected closing tag 'disk' (opened in line 5, col 5) instead of closing tag 'devices'.");
    expectRefusal(refusalOf('<!-- nothing but a comment -->'), 'POLICY_XML', '<?xml>', 'is not well-formed: Start tag expected.');
    expectRefusal(refusalOf(`<domain/><domain/>`), 'POLICY_XML', '<?xml>', 'has 2 root elements, one is allowed');
    expectRefusal(refusalOf(`<domain a='1' a='2'/>`), 'POLICY_XML', '<?xml>', "is not well-formed: line 1 column 15: Attribute 'a' is repeated.");
  });

  it('refuses any DOCTYPE: an <!ATTLIST> default attribute libvirt would see, entities, even an empty one', () => {
    const doctype = 'has a DOCTYPE (libvirt never writes one; its declarations could give elements attributes the policy would not see)';
    // libxml2 gives <source> the default file='/local/evil.img'; the policy would see a source without a file.
    const attlist = `<!DOCTYPE domain [<!ATTLIST source file CDATA "/local/evil.img">]>` + domainXml(`<disk type='file' device='disk'><driver cache='none'/><source/><target dev='vda'/></disk>`);
    expectRefusal(refusalOf(attlist), 'POLICY_XML', '<?xml>', doctype);
    expectRefusal(refusalOf(`<!DOCTYPE domain [<!ENTITY a "aaaa">]><domain><name>&a;</name></domain>`), 'POLICY_XML', '<?xml>', doctype);
    expectRefusal(refusalOf(`\uFEFF<?xml version='1.0'?>\n<!-- a comment -->\n<?pi x?> <!DOCTYPE domain><domain/>`), 'POLICY_XML', '<?xml>', doctype);
  });

  it('refuses namespace-prefixed attributes and elements the policy reads, which libvirt reads by their local name', () => {
    const prefixedAttribute = domainXml(`<disk type='file' device='disk' xmlns:x='urn:x'><driver cache='none'/><source x:file='/local/evil.img' file='/srv/nfs/vms/ok.img'/><target dev='vda'/></disk>`);
    expectRefusal(refusalOf(prefixedAttribute), 'POLICY_XML', '<source>', 'has the namespace-prefixed attribute "x:file": libvirt reads attributes by local name, ignoring namespaces, and could read another value than the policy');
    const prefixedElement = domainXml(`<disk type='file' device='disk' xmlns:x='urn:x'><driver cache='none'/><x:source file='/local/evil.img'/><target dev='vda'/></disk>`);
    expectRefusal(refusalOf(prefixedElement), 'POLICY_XML', '<x:source>', 'is a prefixed element libvirt reads as <source> (it ignores namespaces) and the policy would not');
    // Namespace declarations, and prefixed attributes in elements the policy does not read (metadata), are kept.
    const metadata = `<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><name>vm</name><uuid>${UUID}</uuid><metadata><app:info xmlns:app='urn:app' app:owner='ops'/></metadata><devices>${fileDisk('vda')}</devices></domain>`;
    expect(domainOf(metadata).disks.map((d) => d.source)).toEqual([{ kind: 'path', path: '/srv/nfs/vms/vda.img' }]);
  });

  it('refuses unknown entities and bare ampersands', () => {
    expectRefusal(refusalOf(`<domain><name>&nbsp;</name></domain>`), 'POLICY_XML', '<?xml>', 'has the reference "&nbsp;", which is not an XML entity or character');
    expectRefusal(refusalOf(`<domain><name>&#0;</name></domain>`), 'POLICY_XML', '<?xml>', 'has the reference "&#0;", which is not an XML entity or character');
    expectRefusal(refusalOf(`<domain a='&#xD800;'/>`), 'POLICY_XML', '<?xml>', 'has the reference "&#xD800;", which is not an XML entity or character');
    expectRefusal(refusalOf(`<domain a='x & y'/>`), 'POLICY_XML', '<?xml>', `has a bare '&' in "x & y"`);
  });

  it('refuses input over its size, element and depth limits, and bytes that are not UTF-8', () => {
    const big = `<domain><name>${'x'.repeat(XML_BYTES_MAX)}</name></domain>`;
    expectRefusal(refusalOf(big), 'POLICY_XML', '<?xml>', `is ${big.length} bytes, at most ${XML_BYTES_MAX} are read`);
    expectRefusal(refusalOf(`<domain>${'<x/>'.repeat(XML_ELEMENTS_MAX)}</domain>`), 'POLICY_XML', '<?xml>', `has more than ${XML_ELEMENTS_MAX} elements`);
    expectRefusal(refusalOf(`<domain>${'<x>'.repeat(40)}${'</x>'.repeat(40)}</domain>`), 'POLICY_XML', '<?xml>', 'cannot be parsed: Maximum nested tags exceeded');
    expectRefusal(refusalOf(new Uint8Array([0x3c, 0x64, 0xff, 0x3e])), 'POLICY_XML', '<?xml>', 'is not valid UTF-8');
  });

  it('refuses a root that is not <domain>', () => {
    expectRefusal(refusalOf(`<network><name>default</name></network>`), 'POLICY_NOT_DOMAIN', '<network>', 'is the root element, not <domain>');
  });

  it('refuses a missing, malformed or repeated uuid', () => {
    expectRefusal(refusalOf(fixture('no-uuid')), 'POLICY_NO_UUID', '<domain>', 'has no <uuid> (the VM is registered by its uuid)');
    expectRefusal(refusalOf(domainXml('', '<name>vm</name><uuid>8F2C6A3E-51B7-4C1D-9E0A-2B7D4F6C8A10</uuid>')), 'POLICY_UUID', '<uuid>', '"8F2C6A3E-51B7-4C1D-9E0A-2B7D4F6C8A10" is not a lowercase canonical UUID (libvirt writes uuids so)');
    expectRefusal(refusalOf(domainXml('', `<uuid>${UUID}</uuid><uuid>${UUID}</uuid>`)), 'POLICY_XML', '<domain>', 'has 2 <uuid> elements, at most one is read');
  });

  it('refuses a missing or invalid name', () => {
    expectRefusal(refusalOf(domainXml('', `<uuid>${UUID}</uuid>`)), 'POLICY_NAME', '<domain>', 'has no <name>');
    expectRefusal(refusalOf(domainXml('', `<name>../etc</name><uuid>${UUID}</uuid>`)), 'POLICY_NAME', '<name>', `"../etc" is not a libvirt domain name (1..255 bytes, no '/', no white space, no leading '.')`);
  });

  it('refuses DAC labels it cannot read', () => {
    const seclabel = (label: string): string => `<name>vm</name><uuid>${UUID}</uuid><seclabel type='static' model='dac'><label>${label}</label></seclabel>`;
    expectRefusal(refusalOf(domainXml('', seclabel('+107'))), 'POLICY_SECLABEL', "<seclabel model='dac'>", 'has label "+107", not +UID:+GID or USER:GROUP');
    expectRefusal(refusalOf(domainXml('', seclabel('+4294967296:+107'))), 'POLICY_SECLABEL', "<seclabel model='dac'>", 'has label "+4294967296:+107" with an id above 4294967294');
    const twice = `<name>vm</name><uuid>${UUID}</uuid><seclabel model='dac'/><seclabel model='dac'/>`;
    expectRefusal(refusalOf(domainXml('', twice)), 'POLICY_SECLABEL', "<seclabel model='dac'>", 'appears 2 times, at most once is read');
  });

  it('refuses disks it cannot read', () => {
    const cases: [string, string, string, string][] = [
      [`<disk type='file' device='disk'><source file='/a.img'/></disk>`, 'POLICY_DISK', '<disk #1>', 'has no <target dev=...>'],
      [`<disk type='file'><target dev='vd a'/></disk>`, 'POLICY_DISK', '<disk #1>', `has target "vd a", not 1..32 letters, digits, '_' or '-'`],
      [`<disk type='floppy-image'><target dev='vda'/></disk>`, 'POLICY_DISK', "<disk target='vda'>", 'has type "floppy-image", not one of file, block, network, volume, dir, nvme, vhostuser'],
      [`<disk device='disk'><target dev='vda'/></disk>`, 'POLICY_DISK', "<disk target='vda'>", 'has no type (one of file, block, network, volume, dir, nvme, vhostuser)'],
      [`<disk type='file' device='tape'><target dev='vda'/></disk>`, 'POLICY_DISK', "<disk target='vda'>", 'has device "tape", not one of disk, cdrom, floppy, lun'],
      [`<disk type='file'><source file='images/a.img'/><target dev='vda'/></disk>`, 'POLICY_DISK', "<disk target='vda'>", 'has source file "images/a.img", which is not an absolute path'],
      [`<disk type='network'><source name='x'/><target dev='vda'/></disk>`, 'POLICY_DISK', "<disk target='vda'>", 'has no network protocol'],
      [`<disk type='network'><source protocol='nbd'><host name='a' transport='udp'/></source><target dev='vda'/></disk>`, 'POLICY_DISK', "<disk target='vda'>", 'has source host transport "udp", not one of tcp, rdma, unix'],
      [`<disk type='file'><source file='/srv/nfs/vms/a\tb.img'/><target dev='vda'/></disk>`, 'POLICY_DISK', "<disk target='vda'>", 'has source file "/srv/nfs/vms/a\\tb.img", which holds a control character'],
      [`<disk type='network'><source protocol='rbd' name='pool/${'i'.repeat(4096)}'/><target dev='vda'/></disk>`, 'POLICY_DISK', "<disk target='vda'>", 'has a source name longer than 4096 bytes'],
      [`<disk type='network'><source protocol='nbd'><host name='a' port='70000'/></source><target dev='vda'/></disk>`, 'POLICY_DISK', "<disk target='vda'>", 'has source host port "70000", not 1..65535'],
      [`<disk type='network'><source protocol='nbd'><host port='10809'/></source><target dev='vda'/></disk>`, 'POLICY_DISK', "<disk target='vda'>", 'has a source <host> without a name'],
      [`<disk type='file'><driver cache='No Ne'/><target dev='vda'/></disk>`, 'POLICY_DISK', "<disk target='vda'>", 'has cache mode "No Ne"'],
      [`<disk type='file'><source file='/a'/><source file='/b'/><target dev='vda'/></disk>`, 'POLICY_XML', "<disk target='vda'>", 'has 2 <source> elements, at most one is read'],
      [fileDisk('vda') + fileDisk('vda'), 'POLICY_DISK', "<disk target='vda'>", 'uses target vda, which an earlier disk already uses'],
    ];
    for (const [devices, rule, element, why] of cases) expectRefusal(refusalOf(domainXml(devices)), rule, element, why);
  });

  it('refuses leases it cannot read, or whose offset the helper would refuse', () => {
    const lease = (inner: string): string => `<lease>${inner}</lease>`;
    const cases: [string, string, string, string][] = [
      [lease(`<lockspace>ls</lockspace><target path='/var/lib/vmlease/leases/a'/>`), 'POLICY_LEASE', '<lease #1>', "has no <key> (vmlease needs every lease's key named)"],
      [lease(`<key>r1</key><target path='/var/lib/vmlease/leases/a'/>`), 'POLICY_LEASE', "<lease key='r1'>", "has no <lockspace> (vmlease needs every lease's lockspace named)"],
      [lease(`<lockspace>ls</lockspace><key>${'k'.repeat(49)}</key>`), 'POLICY_LEASE', '<lease #1>', `has <key> "${'k'.repeat(49)}", which is 49 bytes long, at most 48 are allowed`],
      [lease(`<lockspace>ls</lockspace><key>r1</key>`), 'POLICY_LEASE', "<lease key='r1'>", 'has no <target path=...>'],
      [lease(`<lockspace>ls</lockspace><key>r1</key><target path='/var/lib/vmlease/leases/../../../etc/shadow'/>`), 'POLICY_LEASE', "<lease key='r1'>", `has target path "/var/lib/vmlease/leases/../../../etc/shadow", which is not normalised (empty, '.' or '..' parts, or a trailing '/')`],
      [lease(`<lockspace>ls</lockspace><key>r1</key><target path='leases/a'/>`), 'POLICY_LEASE', "<lease key='r1'>", 'has target path "leases/a", which is not an absolute path'],
      [lease(`<lockspace>ls</lockspace><key>r1</key><target path='/var/lib/vmlease/leases/a&#13;'/>`), 'POLICY_LEASE', "<lease key='r1'>", 'has target path "/var/lib/vmlease/leases/a\\r", which holds a control character'],
      [lease(`<lockspace>ls</lockspace><key>r1</key><target path='/var/lib/vmlease/leases/a' offset='0x1000'/>`), 'POLICY_LEASE', "<lease key='r1'>", 'has offset "0x1000", not a decimal number of bytes'],
      [lease(`<lockspace>ls</lockspace><key>r1</key><target path='/var/lib/vmlease/leases/a' offset='512'/>`), 'POLICY_LEASE_OFFSET', "<lease key='r1'>", 'has offset 512, not a multiple of 4096 (lease areas start on 4096-byte boundaries)'],
    ];
    for (const [devices, rule, element, why] of cases) expectRefusal(refusalOf(domainXml(devices)), rule, element, why);
  });

  it('refuses more disks or leases than it reads', () => {
    const disks = Array.from({ length: DOMAIN_DISKS_MAX + 1 }, (_, i) => fileDisk(`vd${i}`)).join('');
    expectRefusal(refusalOf(domainXml(disks)), 'POLICY_TOO_MANY_DISKS', '<devices>', `has ${DOMAIN_DISKS_MAX + 1} <disk> elements, at most ${DOMAIN_DISKS_MAX} are supported`);
    const leases = Array.from({ length: DOMAIN_LEASES_MAX + 1 }, (_, i) => `<lease><lockspace>ls</lockspace><key>r${i}</key><target path='/var/lib/vmlease/leases/r${i}'/></lease>`).join('');
    expectRefusal(refusalOf(domainXml(leases)), 'POLICY_TOO_MANY_LEASES', '<devices>', `has ${DOMAIN_LEASES_MAX + 1} <lease> elements, at most ${DOMAIN_LEASES_MAX} fit one register request`);
  });

  it('keeps a message on one line whatever the XML holds', () => {
    const refusal = refusalOf(domainXml(`<disk type='file'><source file='relative&#10;line'/><target dev='vda'/></disk>`));
    expect(refusal.message).toBe(`POLICY_DISK: <disk target='vda'> has source file "relative\\nline", which is not an absolute path`);
  });
});
