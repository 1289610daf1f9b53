import type { RecordPlace } from './errors.js';
import { writeU16, writeU64 } from './fields.js';
import type { AreaIdentity, RecordExpectation } from './header.js';
import { HOST_BLOCK, MODE_FLAGS_KNOWN, MODE_RELEASED, MODE_SHARED, REQUEST_FLAGS_KNOWN } from './layout.js';
import { encodeRecord, readerFor, writeFlags, writeHex64 } from './record-io.js';

/** The value a Disk Paxos ballot proposes: an owner and the lease version it would hold. */
export interface BallotInput {
  /** 0 = no value proposed yet. */
  readonly hostId: number;
  readonly generation: number;
  readonly lver: number;
  readonly timestampMs: number;
}

/** A migration hand-off request: "after lver, hand the lease to me at this generation". */
export interface MigrationRequest {
  /** 0 = no request. */
  readonly lver: number;
  readonly generation: number;
  /** 16 lowercase hex digits. */
  readonly nonce: string;
  readonly flags: number;
}

/** One host id's block of a resource area; only that host id ever writes it. */
export interface HostBlock {
  readonly hostId: number;
  readonly mbal: number;
  readonly bal: number;
  readonly inp: BallotInput;
  readonly writerGeneration: number;
  /** The host holds the resource in shared mode at `sharedGeneration`. */
  readonly shared: boolean;
  readonly sharedGeneration: number;
  /**
   * Host h, at writerGeneration, holds no exclusive lease of this resource at any lver up to
   * inp.lver: it released it (or never used it). Every ballot write of h clears it.
   */
  readonly released: boolean;
  readonly request: MigrationRequest;
}

export function emptyHostBlock(hostId: number): HostBlock {
  return {
    hostId,
    mbal: 0,
    bal: 0,
    inp: { hostId: 0, generation: 0, lver: 0, timestampMs: 0 },
    writerGeneration: 0,
    shared: false,
    sharedGeneration: 0,
    released: false,
    request: { lver: 0, generation: 0, nonce: '0'.repeat(16), flags: 0 },
  };
}

export function encodeHostBlock(identity: AreaIdentity, block: HostBlock): Uint8Array {
  return encodeRecord('hostBlock', identity, block.hostId, (_bytes, v) => {
    writeU64(v, HOST_BLOCK.mbal, block.mbal);
    writeU64(v, HOST_BLOCK.bal, block.bal);
    writeU16(v, HOST_BLOCK.inpHostId, block.inp.hostId);
    writeU64(v, HOST_BLOCK.inpGeneration, block.inp.generation);
    writeU64(v, HOST_BLOCK.inpLver, block.inp.lver);
    writeU64(v, HOST_BLOCK.inpTimestampMs, block.inp.timestampMs);
    writeU64(v, HOST_BLOCK.writerGeneration, block.writerGeneration);
    writeFlags(v, HOST_BLOCK.modeFlags, (block.shared ? MODE_SHARED : 0) | (block.released ? MODE_RELEASED : 0), MODE_FLAGS_KNOWN);
    writeU64(v, HOST_BLOCK.sharedGeneration, block.sharedGeneration);
    writeU64(v, HOST_BLOCK.requestLver, block.request.lver);
    writeU64(v, HOST_BLOCK.requestGeneration, block.request.generation);
    writeHex64(v, HOST_BLOCK.requestNonce, block.request.nonce);
    writeFlags(v, HOST_BLOCK.requestFlags, block.request.flags, REQUEST_FLAGS_KNOWN);
  }, decodeHostBlock);
}

export function decodeHostBlock(bytes: Uint8Array, expect: RecordExpectation, place: RecordPlace): HostBlock {
  const r = readerFor(bytes, { ...expect, kind: 'hostBlock' }, place);
  const mode = r.flags(HOST_BLOCK.modeFlags, 'mode flags', MODE_FLAGS_KNOWN);
  return {
    hostId: expect.blockHostId,
    mbal: r.u64(HOST_BLOCK.mbal, 'mbal'),
    bal: r.u64(HOST_BLOCK.bal, 'bal'),
    inp: {
      hostId: r.hostId(HOST_BLOCK.inpHostId, 'proposed owner host id', expect.hostsMax, true),
      generation: r.u64(HOST_BLOCK.inpGeneration, 'proposed owner generation'),
      lver: r.u64(HOST_BLOCK.inpLver, 'proposed lver'),
      timestampMs: r.u64(HOST_BLOCK.inpTimestampMs, 'proposal timestamp'),
    },
    writerGeneration: r.u64(HOST_BLOCK.writerGeneration, 'writer generation'),
    shared: (mode & MODE_SHARED) !== 0,
    sharedGeneration: r.u64(HOST_BLOCK.sharedGeneration, 'shared generation'),
    released: (mode & MODE_RELEASED) !== 0,
    request: {
      lver: r.u64(HOST_BLOCK.requestLver, 'request lver'),
      generation: r.u64(HOST_BLOCK.requestGeneration, 'request generation'),
      nonce: r.hex64(HOST_BLOCK.requestNonce),
      flags: r.flags(HOST_BLOCK.requestFlags, 'request flags', REQUEST_FLAGS_KNOWN),
    },
  };
}
