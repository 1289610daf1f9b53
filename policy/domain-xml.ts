import { ADMIN_LEASES_MAX, LIBVIRT_DOMAIN_PATTERN, uuidProblem } from '../protocol/admin-messages.js';
import { ID_MAX } from '../protocol/limits.js';
import { parseDisk, type DomainDisk } from './domain-disk.js';
import { parseLease, type DomainLease } from './domain-lease.js';
import { PolicyRefused, PolicyRule, refuse, shown, type PolicyRefusal } from './refusal.js';
import { childrenNamed, onlyChild, parseXmlTree, type XmlElement } from './xml-tree.js';

/**
 * A libvirt domain definition, read once from untrusted XML into exactly
 * what the lease policy uses. Everything else in the XML is ignored.
 */

/** A DAC `<seclabel>` label: numeric ids as libvirt writes them for a running domain (`+107:+107`), or names a user gave. */
export type DacLabel =
  | { readonly kind: 'ids'; readonly uid: number; readonly gid: number }
  | { readonly kind: 'names'; readonly user: string; readonly group: string };

export interface DomainDescription {
  /** Lowercase canonical. */
  readonly uuid: string;
  readonly name: string;
  /** `<devices><emulator>`; undefined lets libvirt pick its default. */
  readonly emulator: string | undefined;
  readonly dac: DacLabel | undefined;
  /** In document order. */
  readonly disks: readonly DomainDisk[];
  /** In document order. */
  readonly leases: readonly DomainLease[];
  /** The first qemu passthrough element (`<qemu:commandline>`, `<qemu:override>`), whose arguments can add drives no <disk> shows. */
  readonly qemuPassthrough: string | undefined;
}

export type DomainXmlResult = { readonly ok: true; readonly domain: DomainDescription } | { readonly ok: false; readonly refusal: PolicyRefusal };

/** Disks the policy reads per domain; each may need a lease, and those must fit one register request. */
export const DOMAIN_DISKS_MAX = 256;
/** `<lease>` elements per domain: every one becomes a lease of the register request. */
export const DOMAIN_LEASES_MAX = ADMIN_LEASES_MAX;
const EMULATOR_BYTES_MAX = 4096;
const DAC_IDS = /^\+?([0-9]{1,10}):\+?([0-9]{1,10})$/;
const DAC_NAMES = /^([A-Za-z0-9_][A-Za-z0-9_.-]{0,31}\$?):([A-Za-z0-9_][A-Za-z0-9_.-]{0,31}\$?)$/;

function uuidOf(domain: XmlElement): string {
  const uuid = onlyChild(domain, 'uuid', '<domain>')?.text;
  if (uuid === undefined || uuid === '') return refuse(PolicyRule.noUuid, '<domain>', 'has no <uuid> (the VM is registered by its uuid)');
  if (uuidProblem(uuid) !== undefined) refuse(PolicyRule.uuid, '<uuid>', `${shown(uuid)} is not a lowercase canonical UUID (libvirt writes uuids so)`);
  return uuid;
}

function nameOf(domain: XmlElement): string {
  const name = onlyChild(domain, 'name', '<domain>')?.text;
  if (name === undefined || name === '') return refuse(PolicyRule.name, '<domain>', 'has no <name>');
  if (Buffer.byteLength(name) > 255 || !LIBVIRT_DOMAIN_PATTERN.test(name)) refuse(PolicyRule.name, '<name>', `${shown(name)} is not a libvirt domain name (1..255 bytes, no '/', no white space, no leading '.')`);
  return name;
}

function emulatorOf(devices: XmlElement | undefined): string | undefined {
  if (devices === undefined) return undefined;
  const emulator = onlyChild(devices, 'emulator', '<devices>')?.text;
  if (emulator !== undefined && Buffer.byteLength(emulator) > EMULATOR_BYTES_MAX) refuse(PolicyRule.xml, '<emulator>', `is longer than ${EMULATOR_BYTES_MAX} bytes`);
  return emulator;
}

function dacLabelOf(label: string): DacLabel {
  const ids = DAC_IDS.exec(label);
  if (ids !== null) {
    const [uid, gid] = [Number(ids[1]), Number(ids[2])];
    if (uid > ID_MAX || gid > ID_MAX) refuse(PolicyRule.seclabel, "<seclabel model='dac'>", `has label ${shown(label)} with an id above ${ID_MAX}`);
    return { kind: 'ids', uid, gid };
  }
  const names = DAC_NAMES.exec(label);
  if (names === null) return refuse(PolicyRule.seclabel, "<seclabel model='dac'>", `has label ${shown(label)}, not +UID:+GID or USER:GROUP`);
  return { kind: 'names', user: names[1] ?? '', group: names[2] ?? '' };
}

/** The domain-level DAC label; per-disk seclabels (inside <source>) are not the VM's identity and are not read. */
function dacOf(domain: XmlElement): DacLabel | undefined {
  const dac = childrenNamed(domain, 'seclabel').filter((s) => s.attributes.get('model') === 'dac');
  if (dac.length > 1) refuse(PolicyRule.seclabel, "<seclabel model='dac'>", `appears ${dac.length} times, at most once is read`);
  const label = dac[0] === undefined ? undefined : onlyChild(dac[0], 'label', "<seclabel model='dac'>")?.text;
  return label === undefined || label === '' ? undefined : dacLabelOf(label);
}

function disksOf(devices: XmlElement | undefined): DomainDisk[] {
  const elements = devices === undefined ? [] : childrenNamed(devices, 'disk');
  if (elements.length > DOMAIN_DISKS_MAX) refuse(PolicyRule.tooManyDisks, '<devices>', `has ${elements.length} <disk> elements, at most ${DOMAIN_DISKS_MAX} are supported`);
  const disks = elements.map((d, i) => parseDisk(d, i + 1));
  disks.forEach((disk, i) => {
    if (disks.findIndex((o) => o.target === disk.target) !== i) refuse(PolicyRule.disk, `<disk target='${disk.target}'>`, `uses target ${disk.target}, which an earlier disk already uses`);
  });
  return disks;
}

function leasesOf(devices: XmlElement | undefined): DomainLease[] {
  const elements = devices === undefined ? [] : childrenNamed(devices, 'lease');
  if (elements.length > DOMAIN_LEASES_MAX) refuse(PolicyRule.tooManyLeases, '<devices>', `has ${elements.length} <lease> elements, at most ${DOMAIN_LEASES_MAX} fit one register request`);
  return elements.map((l, i) => parseLease(l, i));
}

/**
 * Matched by local name whatever the prefix: libvirt finds these by the
 * qemu namespace's URI, and no core domain element has these names.
 */
function qemuPassthroughOf(domain: XmlElement): string | undefined {
  const passthrough = domain.children.find((c) => /^(?:[^:]+:)?(?:commandline|override)$/.test(c.name));
  return passthrough === undefined ? undefined : `<${passthrough.name.slice(0, 64)}>`;
}

function domainOf(root: XmlElement): DomainDescription {
  if (root.name !== 'domain') refuse(PolicyRule.notDomain, `<${root.name.slice(0, 64)}>`, 'is the root element, not <domain>');
  const devices = onlyChild(root, 'devices', '<domain>');
  return { uuid: uuidOf(root), name: nameOf(root), emulator: emulatorOf(devices), dac: dacOf(root), disks: disksOf(devices), leases: leasesOf(devices), qemuPassthrough: qemuPassthroughOf(root) };
}

/** Parses libvirt domain XML (a hook's stdin: bytes, or text already decoded). */
export function parseDomainXml(xml: string | Uint8Array): DomainXmlResult {
  try {
    return { ok: true, domain: domainOf(parseXmlTree(xml)) };
  } catch (error) {
    if (error instanceof PolicyRefused) return { ok: false, refusal: error.refusal };
    throw error;
  }
}
