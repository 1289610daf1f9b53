/**
 * Fuzzing the edge: thousands of random and mutated inputs to both parsers
 * (and the statement body parser). Whatever comes in, the result is either a
 * ProtocolError with a known code or a value that survives encode -> parse
 * unchanged. Set PROTOCOL_FUZZ_SEED to replay a failure; the seed is in every
 * failure message.
 */
import { describe, expect, it } from 'vitest';
import { createIncarnationKey, signStatement } from '../../dist/protocol/incarnation-key.js';
import {
  encodeHelperMessage,
  encodeStatementBody,
  encodeSupervisorRequest,
  parseHelperMessage,
  parseStatementBody,
  parseSupervisorRequest,
  ProtocolError,
  ProtocolErrorCode,
  type HelperMessage,
  type SupervisorRequest,
} from '../../dist/protocol/index.js';
import { Rng } from '../../dist/test/sim/rng.js';
import { byteMutation, pick, structuralMutation } from '../support/fuzz-mutations.js';
import { INCARNATION, statementBodies, validRequests, VM } from './support.js';

const ITERATIONS = 4000;
const CODES = new Set<string>(Object.values(ProtocolErrorCode));
const seeds = [1, 0xdecafbad, Number(process.env.PROTOCOL_FUZZ_SEED ?? Date.now() % 0x1_0000_0000)];

const key = await createIncarnationKey(INCARNATION);
const signed = statementBodies().map((b) => signStatement(key, b));
const requestCorpus = Object.values(validRequests()).map((r) => JSON.stringify(r));
const messageCorpus = [
  { type: 'welcome', statement: signed[0] },
  { type: 'statement', statement: signed[2] },
  { type: 'goodbye', code: 'PROTO_BAD_SEQ', reason: 'out of order' },
  { type: 'reply', seq: 3, ok: true, result: { statement: signed[1] } },
  { type: 'reply', seq: 2, ok: true, result: { vm: VM } },
  { type: 'reply', seq: 6, ok: true, result: { statement: null } },
  { type: 'reply', seq: 5, ok: true, result: {} },
  {
    type: 'reply', seq: 3, ok: false,
    error: { code: 'BUSY', message: 'held', holder: { hostId: 2, hostName: 'b', state: 'FAIL', sinceIso: '2024-01-31T12:00:00.000Z', takeoverPossibleIso: null } },
  },
].map((m) => JSON.stringify(m));
const bodyCorpus = signed.map((s) => s.body);

const PALETTE: unknown[] = [
  null, true, false, 0, 1, -1, 1.5, 2, 1e21, 2 ** 53, Number.MAX_SAFE_INTEGER, 4_194_304, 4_194_305, '', 'x', ' ', '\n', '\u0000', '\u0085',
  'é', '"', '\\', 'A'.repeat(49), 'A'.repeat(1025), VM, VM.toUpperCase(), '18446744073709551616', '2024-01-31T12:00:00.000Z',
  'hello', 'bind', 'acquire', 'claim', 'report-child', 'release', 'inquire', 'welcome', 'reply', 'statement', 'goodbye',
  'granted', 'valid-until', 'lost', 'exclusive', 'shared', 'LIVE', [], [1], {}, { a: 1 }, signed[0], signed[1]!.body, signed[1]!.sig,
];
const KEYS = ['type', 'seq', 'ok', 'result', 'error', 'statement', 'body', 'sig', 'vm', 'secret', 'nonce', 'pid', 'startTime', '__proto__', 'constructor', 'kind', 'leases', 'holder', 'extra'];




function input(rng: Rng, corpus: readonly string[]): Buffer | string {
  const base = pick(rng, corpus);
  switch (rng.int(0, 4)) {
    case 0: return Buffer.from(Array.from({ length: rng.int(0, 64) }, () => rng.int(0, 255)));
    case 1: {
      let bytes: Buffer = Buffer.from(base);
      for (let n = rng.int(1, 4); n > 0; n--) bytes = byteMutation(rng, bytes);
      return bytes;
    }
    default: {
      let text = base;
      for (let n = rng.int(1, 3); n > 0; n--) text = structuralMutation(rng, text, PALETTE, KEYS);
      return rng.chance(0.5) ? text : Buffer.from(text);
    }
  }
}

/** The oracle: a ProtocolError with a known code, or a value that round-trips unchanged. */
function check<T>(seed: number, i: number, data: Buffer | string, parse: (d: Buffer | string) => T, encode: (v: T) => string): 'parsed' | 'refused' {
  const where = `seed ${seed} (PROTOCOL_FUZZ_SEED=${seed}), iteration ${i}, input ${JSON.stringify(data.toString())}`;
  let value: T;
  try {
    value = parse(data);
  } catch (error) {
    if (!(error instanceof ProtocolError) || !CODES.has(error.code)) expect.fail(`${where}: threw ${String(error)}`);
    return 'refused';
  }
  let again: T | undefined;
  try {
    again = parse(encode(value));
  } catch (error) {
    expect.fail(`${where}: parsed, but its encoding does not parse: ${String(error)}`);
  }
  if (JSON.stringify(again) !== JSON.stringify(value)) expect.fail(`${where}: round trip changed the value`);
  return 'parsed';
}

function run<T>(seed: number, corpus: readonly string[], parse: (d: Buffer | string) => T, encode: (v: T) => string): Record<string, number> {
  const rng = new Rng(seed);
  const counts: Record<string, number> = { parsed: 0, refused: 0 };
  for (let i = 0; i < ITERATIONS; i++) counts[check(seed, i, input(rng, corpus), parse, encode)]! += 1;
  return counts;
}

describe.each(seeds)('fuzz with seed %i', (seed) => {
  it('parseSupervisorRequest: only ProtocolErrors or round-tripping values', () => {
    const counts = run<SupervisorRequest>(seed, requestCorpus, (d) => parseSupervisorRequest(d), encodeSupervisorRequest);
    // Both outcomes must occur, or the fuzzer is only exercising one path.
    expect(counts.parsed, `seed ${seed}`).toBeGreaterThan(ITERATIONS / 200);
    expect(counts.refused, `seed ${seed}`).toBeGreaterThan(ITERATIONS / 2);
  });

  it('parseHelperMessage: only ProtocolErrors or round-tripping values', () => {
    const counts = run<HelperMessage>(seed, messageCorpus, (d) => parseHelperMessage(d), encodeHelperMessage);
    expect(counts.parsed, `seed ${seed}`).toBeGreaterThan(ITERATIONS / 200);
    expect(counts.refused, `seed ${seed}`).toBeGreaterThan(ITERATIONS / 2);
  });

  it('parseStatementBody: only ProtocolErrors or canonical bodies', () => {
    const counts = run(seed, bodyCorpus, (d) => parseStatementBody(d.toString()), encodeStatementBody);
    expect(counts.refused, `seed ${seed}`).toBeGreaterThan(ITERATIONS / 2);
  });
});
