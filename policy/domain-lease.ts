import { AREA_ALIGNMENT_BYTES } from '../helper/areas/area-writer.js';
import { absolutePathProblem } from '../helper/config/json-fields.js';
import { nameProblem } from '../helper/format/fields.js';
import { PolicyRule, refuse, shown } from './refusal.js';
import { onlyChild, type XmlElement } from './xml-tree.js';

/**
 * One libvirt `<lease>` element:
 * `<lease><lockspace>LS</lockspace><key>RES</key><target path='P' offset='O'/></lease>`.
 * The checks are the helper's own (helper/vms/lease-location.ts), made here
 * so a domain is refused when it is defined or prepared, not at start.
 */

export interface DomainLease {
  /** 0-based position among the domain's `<lease>` elements. */
  readonly index: number;
  readonly lockspace: string;
  /** The resource name (libvirt calls it the key). */
  readonly key: string;
  /** Absolute and normalised, as the helper requires. */
  readonly path: string;
  /** Bytes; a multiple of the area alignment. libvirt's default is 0. */
  readonly offset: number;
}

const OFFSET = /^(0|[1-9][0-9]{0,15})$/;

export function leaseLabel(key: string | number): string {
  return typeof key === 'number' ? `<lease #${key + 1}>` : `<lease key='${key}'>`;
}

function nameOf(lease: XmlElement, element: 'lockspace' | 'key', label: string): string {
  const value = onlyChild(lease, element, label)?.text;
  if (value === undefined) return refuse(PolicyRule.lease, label, `has no <${element}> (vmlease needs every lease's ${element} named)`);
  const problem = nameProblem(value);
  if (problem !== undefined) refuse(PolicyRule.lease, label, `has <${element}> ${shown(value)}, which ${problem}`);
  return value;
}

function offsetOf(target: XmlElement, label: string): number {
  const text = target.attributes.get('offset') ?? '0';
  const offset = OFFSET.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(offset)) refuse(PolicyRule.lease, label, `has offset ${shown(text)}, not a decimal number of bytes`);
  if (offset % AREA_ALIGNMENT_BYTES !== 0) refuse(PolicyRule.leaseOffset, label, `has offset ${offset}, not a multiple of ${AREA_ALIGNMENT_BYTES} (lease areas start on ${AREA_ALIGNMENT_BYTES}-byte boundaries)`);
  return offset;
}

/** Reads the lease at 0-based INDEX among the domain's leases. */
export function parseLease(lease: XmlElement, index: number): DomainLease {
  const key = nameOf(lease, 'key', leaseLabel(index));
  const label = leaseLabel(key);
  const lockspace = nameOf(lease, 'lockspace', label);
  const target = onlyChild(lease, 'target', label);
  const path = target?.attributes.get('path');
  if (target === undefined || path === undefined) return refuse(PolicyRule.lease, label, 'has no <target path=...>');
  const problem = absolutePathProblem(path);
  // The shared check words its reason after the quoted path; drop that quote, the message shows the path once.
  if (problem !== undefined) refuse(PolicyRule.lease, label, `has target path ${shown(path)}, which ${problem.replace(`${JSON.stringify(path)} `, '')}`);
  // The helper walks this path; a control character in it is never a real lease file, and would make messages ambiguous.
  if (/[\x00-\x1f\x7f]/.test(path)) refuse(PolicyRule.lease, label, `has target path ${shown(path)}, which holds a control character`);
  return { index, lockspace, key, path, offset: offsetOf(target, label) };
}
