import assert from 'node:assert/strict';
import { checksumWithHostId, recordChecksum, storedChecksum } from './checksum.js';
import { nameProblem } from './fields.js';
import { encodeHeader } from './header.js';
import type { HostBlock } from './host-block.js';
import {
  FEATURES_COMPAT_KNOWN,
  FEATURES_INCOMPAT_KNOWN,
  HEADER,
  HOST_BLOCK,
  HOSTS_MAX_LIMIT,
  MODE_FLAGS_KNOWN,
  MODE_RELEASED,
  MODE_SHARED,
  RECORD_BYTES,
  REQUEST_FLAGS_KNOWN,
  hostSector,
  isSectorSize,
} from './layout.js';

/**
 * The host blocks of a resource area, checked in bulk. Every ballot read
 * checks every block (up to 2000), so checking one must cost little more
 * than hashing it. The checks are decodeHostBlock's, made cheaper:
 *
 * - The header: the words of a block's header must equal those of a header
 *   prepared once per area (magic, version, host-id count, sector size,
 *   feature bits, the raw name bytes), with the checksum and the block host
 *   id (compared on its own) left out. Equal words pass every header check
 *   by construction, as the template holds what the area's own writer writes
 *   and is only prepared for a spec whose names and sizes are valid.
 * - The checksum: one native CRC call per record (see checksum.ts).
 * - The body: every field range, read through one DataView over the area.
 * - A block that equals the block before it (already checked, in this same
 *   read) in every byte but its checksum and block host id, and whose
 *   checksum is the one the host id change gives, is that block with another
 *   host id: every check passes alike, so it is not decoded again. In an
 *   area where most hosts never wrote their block this is most blocks. Only
 *   the last checked block is kept, for the length of one scan.
 *
 * Whatever these fast checks do not pass (a damaged block, a record this
 * build writes differently, an unaligned buffer) goes to the full decode,
 * which accepts or refuses it with its own error and message, so the result
 * is always exactly decodeHostBlock's.
 */

export type HostBlockOutcome<E extends { readonly ok: false }> = { readonly ok: true; readonly value: HostBlock } | E;

/** The 32 header words every host block of one area carries, checksum and block host id zero. */
interface Template {
  readonly lockspaceName: string;
  readonly resourceName: string;
  readonly hostsMax: number;
  readonly sectorSize: number;
  readonly header: Int32Array;
}

interface ScannedSpec {
  readonly lockspaceName: string;
  readonly resourceName: string;
  readonly hostsMax: number;
  readonly sectorSize: number;
}

const HEADER_WORDS = HEADER.end / 4;
const RECORD_WORDS = RECORD_BYTES / 4;
// headerDiff leaves out word 3 (the checksum) and word 6 (bytes 24..27: the block host id, checked
// on its own, and two reserved bytes).
assert.ok(HEADER.checksum === 12 && HEADER.blockHostId === 24 && HEADER_WORDS === 32, 'header layout changed: update headerDiff');
const ZERO_NONCE = '0'.repeat(16);

/** Per spec object: a few hundred bytes, gone with the spec. */
const templates = new WeakMap<object, Template>();

function templateOf(spec: ScannedSpec): Template | undefined {
  const known = templates.get(spec);
  if (known && known.lockspaceName === spec.lockspaceName && known.resourceName === spec.resourceName && known.hostsMax === spec.hostsMax && known.sectorSize === spec.sectorSize) return known;
  // Only a spec that the full decode would accept in a header may have a template.
  if (nameProblem(spec.lockspaceName) || nameProblem(spec.resourceName)) return undefined;
  if (!isSectorSize(spec.sectorSize) || !Number.isInteger(spec.hostsMax) || spec.hostsMax < 1 || spec.hostsMax > HOSTS_MAX_LIMIT) return undefined;
  const record = new Uint8Array(HEADER.end);
  encodeHeader(record, {
    kind: 'hostBlock',
    sectorSize: spec.sectorSize,
    hostsMax: spec.hostsMax,
    lockspaceName: spec.lockspaceName,
    resourceName: spec.resourceName,
    featuresIncompat: FEATURES_INCOMPAT_KNOWN,
    featuresCompat: FEATURES_COMPAT_KNOWN,
    blockHostId: 0,
  });
  const template: Template = { lockspaceName: spec.lockspaceName, resourceName: spec.resourceName, hostsMax: spec.hostsMax, sectorSize: spec.sectorSize, header: new Int32Array(record.buffer) };
  templates.set(spec, template);
  return template;
}

/**
 * Checks the host blocks of a resource area held in `bytes` (from the area's
 * start, possibly short). `full(hostId)` is the full check of one block; it
 * gives the result for every block the fast checks do not pass.
 */
export function scanHostBlocks<E extends { readonly ok: false }>(bytes: Uint8Array, spec: ScannedSpec, full: (hostId: number) => HostBlockOutcome<E>): HostBlockOutcome<E>[] {
  const hosts: HostBlockOutcome<E>[] = [];
  const template = templateOf(spec);
  if (!template || bytes.byteOffset % 4 !== 0) {
    for (let hostId = 1; hostId <= spec.hostsMax; hostId++) hosts.push(full(hostId));
    return hosts;
  }
  const words = new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tpl = template.header;
  const sectorSize = spec.sectorSize;
  const sectorsPresent = Math.floor(bytes.byteLength / sectorSize);
  // The last block that passed its checks in this scan (-1: none).
  let refWord = -1;
  let refBlock: HostBlock | undefined;
  let refChecksum = 0;
  let refHostId = 0;
  for (let hostId = 1; hostId <= spec.hostsMax; hostId++) {
    const sector = hostSector('resource', hostId);
    if (sector >= sectorsPresent) {
      hosts.push(full(hostId));
      continue;
    }
    const start = sector * sectorSize;
    const w = start >>> 2;
    const checksum = storedChecksum(bytes, start);
    let block: HostBlock | undefined;
    if ((bytes[start + HEADER.blockHostId]! | (bytes[start + HEADER.blockHostId + 1]! << 8)) === hostId) {
      if (refBlock !== undefined && sameButHostId(words, bytes, w, refWord) && checksum === checksumWithHostId(refChecksum, refHostId, hostId)) {
        block = withHostId(refBlock, hostId);
      } else if (headerMatches(words, w, tpl) && checksum === recordChecksum(bytes, start)) {
        block = decodeBody(dv, start, hostId, spec.hostsMax);
      }
    }
    const outcome: HostBlockOutcome<E> = block ? { ok: true, value: block } : full(hostId);
    hosts.push(outcome);
    if (outcome.ok) {
      refWord = w;
      refBlock = outcome.value;
      refChecksum = checksum;
      refHostId = hostId;
    }
  }
  return hosts;
}

/** The record at word w equals the one at word r in every byte but the checksum and the block host id. */
function sameButHostId(words: Int32Array, bytes: Uint8Array, w: number, r: number): boolean {
  // The body first, where blocks that differ mostly differ; xor-or eight words at a time, as a
  // word-by-word loop spends most of its time on its own overhead.
  for (let j = HEADER_WORDS; j < RECORD_WORDS; j += 8) {
    const a = w + j;
    const b = r + j;
    const d =
      (words[a]! ^ words[b]!) | (words[a + 1]! ^ words[b + 1]!) | (words[a + 2]! ^ words[b + 2]!) | (words[a + 3]! ^ words[b + 3]!) |
      (words[a + 4]! ^ words[b + 4]!) | (words[a + 5]! ^ words[b + 5]!) | (words[a + 6]! ^ words[b + 6]!) | (words[a + 7]! ^ words[b + 7]!);
    if (d !== 0) return false;
  }
  const d = headerDiff(words, w, words, r);
  const s = w * 4 + HEADER.blockHostId + 2;
  const rs = r * 4 + HEADER.blockHostId + 2;
  return d === 0 && bytes[s] === bytes[rs] && bytes[s + 1] === bytes[rs + 1];
}

/** The header at word w is the area's template, its checksum and block host id word aside. */
function headerMatches(words: Int32Array, w: number, tpl: Int32Array): boolean {
  return headerDiff(words, w, tpl, 0) === 0;
}

/** Non-zero when the header words at x[i] and y[j] differ outside the checksum and block host id words (3 and 6). */
function headerDiff(x: Int32Array, i: number, y: Int32Array, j: number): number {
  let d = (x[i]! ^ y[j]!) | (x[i + 1]! ^ y[j + 1]!) | (x[i + 2]! ^ y[j + 2]!) | (x[i + 4]! ^ y[j + 4]!) | (x[i + 5]! ^ y[j + 5]!) | (x[i + 7]! ^ y[j + 7]!);
  for (let k = 8; k < HEADER_WORDS; k += 8) {
    d |=
      (x[i + k]! ^ y[j + k]!) | (x[i + k + 1]! ^ y[j + k + 1]!) | (x[i + k + 2]! ^ y[j + k + 2]!) | (x[i + k + 3]! ^ y[j + k + 3]!) |
      (x[i + k + 4]! ^ y[j + k + 4]!) | (x[i + k + 5]! ^ y[j + k + 5]!) | (x[i + k + 6]! ^ y[j + k + 6]!) | (x[i + k + 7]! ^ y[j + k + 7]!);
  }
  return d;
}

function withHostId(b: HostBlock, hostId: number): HostBlock {
  // inp and request are read-only values: the two blocks can share them.
  return { hostId, mbal: b.mbal, bal: b.bal, inp: b.inp, writerGeneration: b.writerGeneration, shared: b.shared, sharedGeneration: b.sharedGeneration, released: b.released, request: b.request };
}

/** A u64 field, or -1 when it is above 2^53 (never a value we wrote). */
function u64(dv: DataView, at: number): number {
  const high = dv.getUint32(at + 4, true);
  return high > 0x1fffff ? -1 : high * 0x100000000 + dv.getUint32(at, true);
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

/** The body of a block whose header and checksum passed; undefined when a field is out of range. */
function decodeBody(dv: DataView, s: number, hostId: number, hostsMax: number): HostBlock | undefined {
  const mode = dv.getUint32(s + HOST_BLOCK.modeFlags, true);
  const requestFlags = dv.getUint32(s + HOST_BLOCK.requestFlags, true);
  const inpHostId = dv.getUint16(s + HOST_BLOCK.inpHostId, true);
  if ((mode & ~MODE_FLAGS_KNOWN) !== 0 || (requestFlags & ~REQUEST_FLAGS_KNOWN) !== 0 || inpHostId > hostsMax) return undefined;
  const mbal = u64(dv, s + HOST_BLOCK.mbal);
  const bal = u64(dv, s + HOST_BLOCK.bal);
  const inpGeneration = u64(dv, s + HOST_BLOCK.inpGeneration);
  const inpLver = u64(dv, s + HOST_BLOCK.inpLver);
  const inpTimestampMs = u64(dv, s + HOST_BLOCK.inpTimestampMs);
  const writerGeneration = u64(dv, s + HOST_BLOCK.writerGeneration);
  const sharedGeneration = u64(dv, s + HOST_BLOCK.sharedGeneration);
  const requestLver = u64(dv, s + HOST_BLOCK.requestLver);
  const requestGeneration = u64(dv, s + HOST_BLOCK.requestGeneration);
  if (mbal < 0 || bal < 0 || inpGeneration < 0 || inpLver < 0 || inpTimestampMs < 0 || writerGeneration < 0 || sharedGeneration < 0 || requestLver < 0 || requestGeneration < 0) return undefined;
  const nonceLow = dv.getUint32(s + HOST_BLOCK.requestNonce, true);
  const nonceHigh = dv.getUint32(s + HOST_BLOCK.requestNonce + 4, true);
  return {
    hostId,
    mbal,
    bal,
    inp: { hostId: inpHostId, generation: inpGeneration, lver: inpLver, timestampMs: inpTimestampMs },
    writerGeneration,
    shared: (mode & MODE_SHARED) !== 0,
    sharedGeneration,
    released: (mode & MODE_RELEASED) !== 0,
    request: { lver: requestLver, generation: requestGeneration, nonce: nonceLow === 0 && nonceHigh === 0 ? ZERO_NONCE : hex8(nonceHigh) + hex8(nonceLow), flags: requestFlags },
  };
}
