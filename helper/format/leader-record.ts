import type { RecordPlace } from './errors.js';
import { writeU16, writeU64 } from './fields.js';
import type { AreaIdentity, RecordExpectation } from './header.js';
import { LEADER, LEADER_FLAGS_KNOWN } from './layout.js';
import { encodeRecord, readerFor, writeFlags } from './record-io.js';

/**
 * The leader record of a resource: the last committed owner. Disk Paxos
 * decides; the leader only publishes the decision, and can roll back when a
 * late commit from another host lands, so readers never treat it as the
 * decision itself.
 */
export interface LeaderRecord {
  /** Lease version; 0 = never acquired. */
  readonly lver: number;
  /** 0 = free. */
  readonly ownerHostId: number;
  readonly ownerGeneration: number;
  /** Writer's monotonic clock at commit; for humans, never compared across hosts. */
  readonly timestampMs: number;
  /** 0 only in the record written by `init-resource`. */
  readonly writerHostId: number;
  readonly writerGeneration: number;
  readonly flags: number;
}

export const LEADER_AT_INIT: LeaderRecord = {
  lver: 0,
  ownerHostId: 0,
  ownerGeneration: 0,
  timestampMs: 0,
  writerHostId: 0,
  writerGeneration: 0,
  flags: 0,
};

export function encodeLeaderRecord(identity: AreaIdentity, record: LeaderRecord): Uint8Array {
  return encodeRecord('leader', identity, 0, (_bytes, v) => {
    writeU64(v, LEADER.lver, record.lver);
    writeU16(v, LEADER.ownerHostId, record.ownerHostId);
    writeU16(v, LEADER.writerHostId, record.writerHostId);
    writeFlags(v, LEADER.flags, record.flags, LEADER_FLAGS_KNOWN);
    writeU64(v, LEADER.ownerGeneration, record.ownerGeneration);
    writeU64(v, LEADER.timestampMs, record.timestampMs);
    writeU64(v, LEADER.writerGeneration, record.writerGeneration);
  }, decodeLeaderRecord);
}

export function decodeLeaderRecord(bytes: Uint8Array, expect: RecordExpectation, place: RecordPlace): LeaderRecord {
  const r = readerFor(bytes, { ...expect, kind: 'leader', blockHostId: 0 }, place);
  return {
    lver: r.u64(LEADER.lver, 'lver'),
    ownerHostId: r.hostId(LEADER.ownerHostId, 'owner host id', expect.hostsMax, true),
    ownerGeneration: r.u64(LEADER.ownerGeneration, 'owner generation'),
    timestampMs: r.u64(LEADER.timestampMs, 'timestamp'),
    writerHostId: r.hostId(LEADER.writerHostId, 'writer host id', expect.hostsMax, true),
    writerGeneration: r.u64(LEADER.writerGeneration, 'writer generation'),
    flags: r.flags(LEADER.flags, 'leader flags', LEADER_FLAGS_KNOWN),
  };
}
