/**
 * Typed errors for records that fail their checks. The codes are stable: tools,
 * tests and operators match on them. A record that fails a check is never
 * treated as free; the caller gets one of these instead.
 */

export const FormatErrorCode = {
  /** Every byte of the record is zero: the area was never initialised here. */
  uninitialised: 'FORMAT_UNINITIALISED',
  /** The magic number is not one of ours. */
  magic: 'FORMAT_MAGIC',
  /** The magic is ours but names another record kind (a resource where a lockspace was expected). */
  kind: 'FORMAT_KIND',
  /** The format version is not one this build reads. */
  version: 'FORMAT_VERSION',
  /** The checksum does not match the record's bytes. */
  checksum: 'FORMAT_CHECKSUM',
  /** The record's sector size is not the one the area is read with. */
  sectorSize: 'FORMAT_SECTOR_SIZE',
  /** The record needs a feature this build does not know. */
  features: 'FORMAT_FEATURES',
  /** The record's host-id count differs from the area's. */
  hosts: 'FORMAT_HOSTS',
  /** The record sits in another host id's block. */
  blockHostId: 'FORMAT_BLOCK_HOST_ID',
  /** The record belongs to another lockspace. */
  lockspaceName: 'FORMAT_LOCKSPACE_NAME',
  /** The record belongs to another resource. */
  resourceName: 'FORMAT_RESOURCE_NAME',
  /** A delta record's lockspace io timeout differs from the one the lockspace was initialised with. */
  ioTimeout: 'FORMAT_IO_TIMEOUT',
  /** A field holds a value outside its allowed range. */
  fieldRange: 'FORMAT_FIELD_RANGE',
  /** The storage ends before the area does. */
  truncated: 'FORMAT_TRUNCATED',
} as const;

export type FormatErrorCode = (typeof FormatErrorCode)[keyof typeof FormatErrorCode];

/** Where a record lives, for messages: "lockspace cluster at /l/cluster.ls:0", "host 3 (sector 2)". */
export interface RecordPlace {
  readonly area: string;
  readonly block: string;
}

export class FormatError extends Error {
  override readonly name = 'FormatError';

  constructor(
    readonly code: FormatErrorCode,
    readonly place: RecordPlace,
    readonly reason: string,
  ) {
    super(`${place.area}: ${place.block}: ${reason}`);
  }
}
