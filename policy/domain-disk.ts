import { PolicyRule, refuse, shown } from './refusal.js';
import { childrenNamed, onlyChild, type XmlElement } from './xml-tree.js';

/**
 * One libvirt `<disk>` element read into an exact shape: what it is, where
 * its data lives (the source as written: facts are keyed by it), and the
 * attributes the lease policy depends on. `<backingStore>` is not read: a
 * backing chain is opened read-only, and the top image carries the writes.
 */

export const DISK_TYPES = ['file', 'block', 'network', 'volume', 'dir', 'nvme', 'vhostuser'] as const;
export const DISK_DEVICES = ['disk', 'cdrom', 'floppy', 'lun'] as const;
export type DiskType = (typeof DISK_TYPES)[number];
export type DiskDevice = (typeof DISK_DEVICES)[number];
/** libvirt's network transports; tcp is its default. */
export const TRANSPORTS = ['tcp', 'rdma', 'unix'] as const;
export type Transport = (typeof TRANSPORTS)[number];

export interface NetworkHost {
  /** As written (the identity lowercases it). Empty for a Unix socket. */
  readonly name: string;
  /** Decimal 1..65535 as written, or undefined for the protocol's default. */
  readonly port: string | undefined;
  readonly transport: Transport;
  /** The socket path when transport is `unix`. */
  readonly socket: string | undefined;
}

export type DiskSource =
  /** No medium (an empty cdrom or floppy drive). */
  | { readonly kind: 'empty' }
  /** A file or block device path, exactly as written. */
  | { readonly kind: 'path'; readonly path: string }
  | { readonly kind: 'network'; readonly protocol: string; readonly name: string; readonly hosts: readonly NetworkHost[] }
  /** volume, dir, nvme and vhostuser sources: described, never given an identity. */
  | { readonly kind: 'unsupported'; readonly what: string };

export interface DomainDisk {
  readonly type: DiskType;
  readonly device: DiskDevice;
  /** `<target dev=...>`: unique within the domain. */
  readonly target: string;
  readonly source: DiskSource;
  /** `<driver cache=...>`; undefined means libvirt's default (writeback). */
  readonly cache: string | undefined;
  readonly readonly: boolean;
  readonly shareable: boolean;
}

export const PATH_BYTES_MAX = 4096;
export const NETWORK_HOSTS_MAX = 32;
const HOST_NAME_CHARS_MAX = 255;
const TARGET = /^[A-Za-z0-9_-]{1,32}$/;
const PROTOCOL = /^[a-z0-9+.-]{1,16}$/;
const CACHE = /^[a-z]{1,16}$/;
const PORT = /^[1-9][0-9]{0,4}$/;
const PORT_MAX = 65_535;

/** How a disk is named in messages before its target is known: its 1-based position. */
export function diskLabel(target: string | number): string {
  return typeof target === 'number' ? `<disk #${target}>` : `<disk target='${target}'>`;
}

function oneOf<T extends string>(value: string | undefined, allowed: readonly T[], label: string, what: string): T {
  if (value !== undefined && (allowed as readonly string[]).includes(value)) return value as T;
  if (value === undefined) return refuse(PolicyRule.disk, label, `has no ${what} (one of ${allowed.join(', ')})`);
  return refuse(PolicyRule.disk, label, `has ${what} ${shown(value)}, not one of ${allowed.join(', ')}`);
}

/**
 * A name of a file, an image or a socket: bounded, and without control
 * characters. libxml2 turns a tab or newline written in an attribute into a
 * space and we would not, so such a path could name one file to libvirt and
 * another to the policy; no real disk needs one.
 */
function checkedName(value: string, label: string, what: string): string {
  if (Buffer.byteLength(value) > PATH_BYTES_MAX) refuse(PolicyRule.disk, label, `has a ${what} longer than ${PATH_BYTES_MAX} bytes`);
  if (/[\x00-\x1f\x7f]/.test(value)) refuse(PolicyRule.disk, label, `has ${what} ${shown(value)}, which holds a control character`);
  return value;
}

function pathOf(source: XmlElement, attribute: string, label: string): DiskSource {
  const path = source.attributes.get(attribute);
  if (path === undefined || path === '') return { kind: 'empty' };
  if (!path.startsWith('/')) refuse(PolicyRule.disk, label, `has source ${attribute} ${shown(path)}, which is not an absolute path`);
  return { kind: 'path', path: checkedName(path, label, `source ${attribute}`) };
}

function hostOf(host: XmlElement, label: string): NetworkHost {
  const name = host.attributes.get('name') ?? '';
  const port = host.attributes.get('port');
  const transport = oneOf(host.attributes.get('transport') ?? 'tcp', TRANSPORTS, label, 'source host transport');
  const socket = host.attributes.get('socket');
  if (name.length > HOST_NAME_CHARS_MAX || /[\s/\x00-\x1f\x7f]/.test(name)) refuse(PolicyRule.disk, label, `has source host ${shown(name)}, which is not a host name`);
  if (port !== undefined && (!PORT.test(port) || Number(port) > PORT_MAX)) refuse(PolicyRule.disk, label, `has source host port ${shown(port)}, not 1..${PORT_MAX}`);
  if (transport !== 'unix' && name === '') refuse(PolicyRule.disk, label, `has a source <host> without a name`);
  return { name, port, transport, socket: socket === undefined ? undefined : checkedName(socket, label, 'source host socket') };
}

function networkOf(source: XmlElement, label: string): DiskSource {
  const protocol = source.attributes.get('protocol');
  if (protocol === undefined) return refuse(PolicyRule.disk, label, 'has no network protocol');
  if (!PROTOCOL.test(protocol)) refuse(PolicyRule.disk, label, `has network protocol ${shown(protocol)}`);
  const name = checkedName(source.attributes.get('name') ?? '', label, 'source name');
  const hostElements = childrenNamed(source, 'host');
  if (hostElements.length > NETWORK_HOSTS_MAX) refuse(PolicyRule.disk, label, `has ${hostElements.length} source hosts, at most ${NETWORK_HOSTS_MAX} are read`);
  return { kind: 'network', protocol, name, hosts: hostElements.map((h) => hostOf(h, label)) };
}

function unsupportedOf(type: DiskType, source: XmlElement): DiskSource {
  const a = (key: string): string => shown(source.attributes.get(key) ?? '');
  switch (type) {
    case 'volume':
      return { kind: 'unsupported', what: `storage pool volume ${a('pool')}/${a('volume')}` };
    case 'dir':
      return { kind: 'unsupported', what: `directory ${a('dir')} (a virtual FAT disk)` };
    case 'nvme':
      return { kind: 'unsupported', what: 'NVMe controller passed through' };
    default:
      return { kind: 'unsupported', what: `vhost-user socket ${a('path')}` };
  }
}

function sourceOf(type: DiskType, disk: XmlElement, label: string): DiskSource {
  const source = onlyChild(disk, 'source', label);
  if (source === undefined) return { kind: 'empty' };
  if (type === 'file') return pathOf(source, 'file', label);
  if (type === 'block') return pathOf(source, 'dev', label);
  if (type === 'network') return networkOf(source, label);
  return unsupportedOf(type, source);
}

function targetOf(disk: XmlElement, position: number): string {
  const target = onlyChild(disk, 'target', diskLabel(position))?.attributes.get('dev');
  if (target === undefined) return refuse(PolicyRule.disk, diskLabel(position), 'has no <target dev=...>');
  if (!TARGET.test(target)) refuse(PolicyRule.disk, diskLabel(position), `has target ${shown(target)}, not 1..32 letters, digits, '_' or '-'`);
  return target;
}

function cacheOf(disk: XmlElement, label: string): string | undefined {
  const cache = onlyChild(disk, 'driver', label)?.attributes.get('cache');
  if (cache !== undefined && !CACHE.test(cache)) refuse(PolicyRule.disk, label, `has cache mode ${shown(cache)}`);
  return cache;
}

/** Reads the disk at 1-based POSITION among the domain's disks. */
export function parseDisk(disk: XmlElement, position: number): DomainDisk {
  const target = targetOf(disk, position);
  const label = diskLabel(target);
  const type = oneOf(disk.attributes.get('type'), DISK_TYPES, label, 'type');
  // libvirt writes device always; its default is disk.
  const device = oneOf(disk.attributes.get('device') ?? 'disk', DISK_DEVICES, label, 'device');
  return {
    type,
    device,
    target,
    source: sourceOf(type, disk, label),
    cache: cacheOf(disk, label),
    readonly: onlyChild(disk, 'readonly', label) !== undefined,
    shareable: onlyChild(disk, 'shareable', label) !== undefined,
  };
}

/** qemu may write the disk: it has a medium, is not read-only, and is not a cdrom (libvirt makes those read-only). */
export function isWritable(disk: DomainDisk): boolean {
  return disk.source.kind !== 'empty' && disk.device !== 'cdrom' && !disk.readonly;
}

/** The file or device path of a file or block disk, as written. */
export function sourcePath(disk: DomainDisk): string | undefined {
  return disk.source.kind === 'path' ? disk.source.path : undefined;
}
