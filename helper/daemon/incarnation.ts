import { readFileSync } from 'node:fs';
import type { Incarnation } from '../format/index.js';

/**
 * A helper incarnation: host name + kernel boot id + a random nonce per
 * start (SPEC section 3). Two helpers configured with one host id, or a
 * restarted helper, never look like the same owner on disk.
 */

/** The kernel's boot id as 32 lowercase hex digits. */
export function readBootId(path = '/proc/sys/kernel/random/boot_id'): string {
  const text = readFileSync(path, 'utf8').trim().replaceAll('-', '').toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(text)) throw new Error(`${path} does not hold a boot id: ${JSON.stringify(text.slice(0, 40))}`);
  return text;
}

export function newIncarnation(hostName: string, bootId: string, randomBytes: (n: number) => Uint8Array): Incarnation {
  return { hostName, bootId, nonce: Buffer.from(randomBytes(8)).toString('hex') };
}

export function incarnationName(incarnation: Incarnation): string {
  return `${incarnation.hostName}/${incarnation.bootId.slice(0, 8)}/${incarnation.nonce}`;
}

/** The incarnation's name on the supervisor channel (letters, digits, '.', '-'; unique per helper start). */
export function incarnationId(incarnation: Incarnation): string {
  return `${incarnation.bootId}.${incarnation.nonce}`;
}
