import { createHash } from 'node:crypto';

/**
 * The resource name of a disk's auto lease, derived from its identity alone
 * so every host and every domain name the same disk's lease alike.
 *
 * `disk-` and the first 40 hex digits (160 bits) of SHA-256 of the identity:
 * 45 characters, within the 48 a name may have. Two different disks share a
 * name only if their hashes collide: among N disks that chance is about
 * N^2 / 2^161, below 10^-30 for a billion disks. A collision would only make
 * two disks share a lease (a start refused), never let two writers in.
 */

export const RESOURCE_PREFIX = 'disk-';
export const RESOURCE_HASH_HEX_CHARS = 40;

export function diskResourceName(identity: string): string {
  return RESOURCE_PREFIX + createHash('sha256').update(identity, 'utf8').digest('hex').slice(0, RESOURCE_HASH_HEX_CHARS);
}
