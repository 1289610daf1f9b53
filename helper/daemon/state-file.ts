import { existsSync, readFileSync } from 'node:fs';
import { writeFileDurably } from '../leases/durable-file.js';
import type { Incarnation } from '../format/index.js';
import type { LeaseLocation } from '../vms/lease-location.js';

/**
 * What a helper must remember across its own restart (SPEC section 3,
 * "Helper restart"): its incarnation, the generation it holds in each
 * lockspace, and every registered VM with the leases it holds and its
 * processes (pid + start time). Written durably (temporary file, fsync,
 * rename, directory fsync) after every change; read once at start. A damaged
 * file stops the helper: guessing could hand running VMs' leases away.
 */

export const STATE_VERSION = 1;
export const STATE_BYTES_MAX = 16 * 1024 * 1024;

export interface PersistedProcess {
  readonly pid: number;
  readonly startTime: string;
  readonly uid: number;
  readonly sessionId: number;
}

export interface PersistedLease {
  readonly path: string;
  readonly offset: number;
  readonly lver: number;
  readonly mode: 'exclusive' | 'shared';
}

export interface PersistedVm {
  readonly uuid: string;
  readonly uid: number;
  readonly gid: number;
  readonly leases: readonly LeaseLocation[];
  readonly held: readonly PersistedLease[];
  readonly supervisor: PersistedProcess | null;
  readonly child: PersistedProcess | null;
  readonly libvirtDomain: string | null;
  /** SHA-256 (hex) of the one-time secret while unused, else null. */
  readonly secretHash: string | null;
}

export interface PersistedLockspace {
  readonly name: string;
  readonly path: string;
  readonly offset: number;
  readonly generation: number;
}

export interface HelperState {
  readonly version: typeof STATE_VERSION;
  readonly helper: { readonly pid: number; readonly startTime: string };
  readonly incarnation: Incarnation;
  readonly lockspaces: readonly PersistedLockspace[];
  readonly vms: readonly PersistedVm[];
}

export class StateFileError extends Error {
  override readonly name = 'StateFileError';
}

function check(condition: unknown, path: string, what: string): asserts condition {
  if (!condition) throw new StateFileError(`state file ${path} is damaged: ${what} (move it away only after making sure no VM of this host still runs)`);
}

const isInt = (v: unknown, min = 0) => typeof v === 'number' && Number.isSafeInteger(v) && v >= min;
const isText = (v: unknown) => typeof v === 'string' && v.length > 0 && v.length <= 4096;

function checkProcess(p: unknown, path: string, what: string): void {
  if (p === null) return;
  // Session 0: the session leader lives outside our pid namespace (containers, CI runners).
  const o = p as Record<string, unknown>;
  check(typeof p === 'object' && isInt(o.pid, 1) && typeof o.startTime === 'string' && /^[0-9]{1,20}$/.test(o.startTime) && isInt(o.uid, 1) && isInt(o.sessionId, 0), path, `${what} is not a process`);
}

function checkVm(vm: unknown, path: string, index: number): void {
  const o = vm as Record<string, unknown>;
  check(typeof vm === 'object' && vm !== null && isText(o.uuid) && isInt(o.uid, 1) && isInt(o.gid) && Array.isArray(o.leases) && Array.isArray(o.held), path, `vms[${index}] is malformed`);
  for (const l of o.leases as unknown[]) {
    const lease = l as Record<string, unknown>;
    check(isText(lease.lockspace) && isText(lease.resource) && isText(lease.path) && isInt(lease.offset) && (lease.mode === 'exclusive' || lease.mode === 'shared'), path, `vms[${index}].leases is malformed`);
  }
  for (const h of o.held as unknown[]) {
    const held = h as Record<string, unknown>;
    check(isText(held.path) && isInt(held.offset) && isInt(held.lver, 1) && (held.mode === 'exclusive' || held.mode === 'shared'), path, `vms[${index}].held is malformed`);
  }
  check(o.libvirtDomain === null || (typeof o.libvirtDomain === 'string' && /^[^/.\s][^/\s]{0,254}$/.test(o.libvirtDomain)), path, `vms[${index}].libvirtDomain is malformed`);
  check(o.secretHash === null || (typeof o.secretHash === 'string' && /^[0-9a-f]{64}$/.test(o.secretHash)), path, `vms[${index}].secretHash is malformed`);
  checkProcess(o.supervisor, path, `vms[${index}].supervisor`);
  checkProcess(o.child, path, `vms[${index}].child`);
}

export function parseState(path: string, text: string): HelperState {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    check(false, path, 'not JSON');
  }
  const o = value as Record<string, unknown>;
  check(typeof value === 'object' && value !== null && o.version === STATE_VERSION, path, `not version ${STATE_VERSION}`);
  const helper = o.helper as Record<string, unknown>;
  check(typeof helper === 'object' && helper !== null && isInt(helper.pid, 1) && typeof helper.startTime === 'string', path, 'helper is malformed');
  const inc = o.incarnation as Record<string, unknown>;
  check(typeof inc === 'object' && inc !== null && typeof inc.hostName === 'string' && /^[0-9a-f]{32}$/.test(String(inc.bootId)) && /^[0-9a-f]{16}$/.test(String(inc.nonce)), path, 'incarnation is malformed');
  check(Array.isArray(o.lockspaces) && Array.isArray(o.vms), path, 'lockspaces or vms missing');
  for (const ls of o.lockspaces as unknown[]) {
    const l = ls as Record<string, unknown>;
    check(isText(l.name) && isText(l.path) && isInt(l.offset) && isInt(l.generation, 1), path, 'lockspaces is malformed');
  }
  (o.vms as unknown[]).forEach((vm, index) => checkVm(vm, path, index));
  return value as HelperState;
}

export function readState(path: string): HelperState | undefined {
  if (!existsSync(path)) return undefined;
  const bytes = readFileSync(path);
  check(bytes.byteLength <= STATE_BYTES_MAX, path, `larger than ${STATE_BYTES_MAX} bytes`);
  return parseState(path, bytes.toString('utf8'));
}

export function writeState(path: string, state: HelperState): void {
  writeFileDurably(path, `${JSON.stringify(state)}\n`);
}
