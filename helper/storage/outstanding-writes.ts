import assert from 'node:assert/strict';

/**
 * Writes that may still land, per storage identity, for the whole process.
 *
 * "At most one outstanding write per sector" must hold for the storage, not
 * for one DirectStorage object: a storage reopened after a timed-out write
 * and a timed-out close must still refuse to write where the old write may
 * land. So the record is process-wide, keyed by what the kernel says the
 * storage is (block device number, or device and inode of a file). Two
 * different paths to one device (a loop device and its backing file, a dm
 * device and its underlying disk) are not recognised as one.
 */

export interface WriteRange {
  readonly identity: string;
  readonly start: number;
  readonly end: number;
}

const ranges = new Map<string, Set<WriteRange>>();

export function overlapsOutstandingWrite(identity: string, start: number, end: number): boolean {
  for (const range of ranges.get(identity) ?? []) {
    if (range.start < end && start < range.end) return true;
  }
  return false;
}

export function addOutstandingWrite(identity: string, start: number, end: number): WriteRange {
  assert.ok(start < end, `empty write range ${start}..${end}`);
  const range: WriteRange = { identity, start, end };
  let set = ranges.get(identity);
  if (!set) ranges.set(identity, (set = new Set()));
  set.add(range);
  return range;
}

export function removeOutstandingWrite(range: WriteRange): void {
  const set = ranges.get(range.identity);
  assert.ok(set !== undefined && set.delete(range), `write range ${range.start}..${range.end} of ${range.identity} is not outstanding`);
  if (set.size === 0) ranges.delete(range.identity);
}
