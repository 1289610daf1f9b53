/**
 * Fuzzing the admin request decoder (parseAdminRequest): thousands of seeded
 * random and mutated inputs. Whatever comes in, the result is either a
 * ProtocolError with a known code or a request of the exact shape (every
 * field checked again here, independently of the parser). Set
 * ADMIN_FUZZ_SEED to replay a failure; the seed is in every failure message.
 */
import { describe, expect, it } from 'vitest';
import { ADMIN_FRAME_BYTES_MAX, parseAdminRequest, type AdminRequest } from '../../dist/protocol/admin-messages.js';
import { ProtocolError, ProtocolErrorCode } from '../../dist/protocol/errors.js';
import { Rng } from '../../dist/test/sim/rng.js';
import { byteMutation, pick, structuralMutation } from '../support/fuzz-mutations.js';

const ITERATIONS = 5000;
const CODES = new Set<string>(Object.values(ProtocolErrorCode));
const seeds = [7, 0x5eed_ad31, Number(process.env.ADMIN_FUZZ_SEED ?? Date.now() % 0x1_0000_0000)];
const VM = '0e5a1f0c-3b7d-4c59-9a2e-5d0f6b7c8d9e';
const LEASE = { lockspace: 'cluster', resource: 'vm-1', path: '/var/lib/vmlease/leases/vm-1.res', offset: 1_048_576, mode: 'exclusive' };

const corpus = [
  { type: 'register', seq: 1, vm: VM, uid: 107, gid: 107, leases: [LEASE, { ...LEASE, resource: 'disk-2', offset: 0, mode: 'shared' }], domainXml: null, acquire: true, libvirtDomain: null },
  { type: 'register', seq: 3, vm: VM, uid: 65534, gid: 0, leases: [LEASE], domainXml: null, acquire: false, libvirtDomain: 'web-1' },
  { type: 'register', seq: 6, vm: VM, uid: 107, gid: 107, leases: [], domainXml: `<domain type='kvm'>\n\t<uuid>${VM}</uuid>\r\n</domain>`, acquire: true, libvirtDomain: 'web-1' },
  { type: 'add-lockspace', seq: 4, lockspace: 'ls-2', path: '/var/lib/vmlease/leases/ls2', offset: 4096 },
  { type: 'remove-lockspace', seq: 5, lockspace: 'ls-2' },
  { type: 'unregister', seq: 2, vm: VM },
  { type: 'status', seq: 1 },
  { type: 'hosts', seq: 9, lockspace: 'cluster' },
].map((r) => JSON.stringify(r));

const PALETTE: unknown[] = [
  null, true, false, 0, 1, -1, 1.5, 2 ** 32, 2 ** 32 - 1, 2 ** 32 - 2, 2 ** 53, Number.MAX_SAFE_INTEGER, 1e308, '', 'x', ' ', '\n', '\u0000', '\u007f', '\u0085',
  'é', '"', '\\', '/', '/etc/passwd', 'relative/path', `/${'a'.repeat(5000)}`, 'A'.repeat(49), VM, VM.toUpperCase(), 'register', 'unregister', 'status', 'hosts',
  'exclusive', 'shared', 'constructor', '__proto__', 'hasOwnProperty', [], [1], {}, { a: 1 }, LEASE, Array.from({ length: 65 }, () => LEASE),
];
const KEYS = ['type', 'seq', 'vm', 'uid', 'gid', 'leases', 'domainXml', 'acquire', 'libvirtDomain', 'lockspace', 'resource', 'path', 'offset', 'mode', '__proto__', 'constructor', 'toString', 'extra'];




function randomText(rng: Rng): string {
  const length = rng.int(0, 64);
  let s = '';
  for (let i = 0; i < length; i++) s += String.fromCharCode(rng.chance(0.8) ? rng.int(0x20, 0x7e) : rng.int(0, 0xffff));
  return s;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const NAME = /^[\x21-\x7e]{1,48}$/;

/** The exact shape of an accepted request, checked here without the parser's helpers. */
function checkAccepted(request: AdminRequest, input: string | Buffer): void {
  const seqOk = Number.isSafeInteger(request.seq) && request.seq >= 1;
  expect(seqOk).toBe(true);
  const raw = JSON.parse(typeof input === 'string' ? input : input.toString('utf8')) as Record<string, unknown>;
  expect(raw).toEqual(request);
  switch (request.type) {
    case 'register':
      expect(Object.keys(request).sort()).toEqual(['acquire', 'domainXml', 'gid', 'leases', 'libvirtDomain', 'seq', 'type', 'uid', 'vm']);
      // Domain XML: XML text (tab, newline, carriage return the only control characters), bounded, and never together with leases.
      if (request.domainXml !== null) {
        expect(request.domainXml).not.toMatch(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\p{Cs}]/u);
        expect(Buffer.byteLength(request.domainXml)).toBeLessThanOrEqual(262_144);
        expect(request.leases).toEqual([]);
      }
      expect(request.libvirtDomain === null || (/^[^/.\s][^/\s]*$/.test(request.libvirtDomain) && Buffer.byteLength(request.libvirtDomain) <= 255)).toBe(true);
      expect(UUID.test(request.vm)).toBe(true);
      for (const id of [request.uid, request.gid]) expect(Number.isSafeInteger(id) && id >= 0 && id <= 4_294_967_294).toBe(true);
      expect(typeof request.acquire).toBe('boolean');
      expect(request.leases.length).toBeLessThanOrEqual(64);
      for (const lease of request.leases) {
        expect(Object.keys(lease).sort()).toEqual(['lockspace', 'mode', 'offset', 'path', 'resource']);
        expect(NAME.test(lease.lockspace) && NAME.test(lease.resource)).toBe(true);
        expect(lease.path.startsWith('/') && !/[\p{Cc}\p{Cs}]/u.test(lease.path) && Buffer.byteLength(lease.path) <= 4096).toBe(true);
        expect(Number.isSafeInteger(lease.offset) && lease.offset >= 0).toBe(true);
        expect(['exclusive', 'shared']).toContain(lease.mode);
      }
      return;
    case 'unregister':
      expect(Object.keys(request).sort()).toEqual(['seq', 'type', 'vm']);
      expect(UUID.test(request.vm)).toBe(true);
      return;
    case 'status':
      expect(Object.keys(request).sort()).toEqual(['seq', 'type']);
      return;
    case 'hosts':
    case 'remove-lockspace':
      expect(Object.keys(request).sort()).toEqual(['lockspace', 'seq', 'type']);
      expect(NAME.test(request.lockspace)).toBe(true);
      return;
    case 'add-lockspace':
      expect(Object.keys(request).sort()).toEqual(['lockspace', 'offset', 'path', 'seq', 'type']);
      expect(NAME.test(request.lockspace) && request.path.startsWith('/') && Number.isSafeInteger(request.offset) && request.offset >= 0).toBe(true);
      return;
    default:
      throw new Error(`accepted an unknown type ${JSON.stringify((request as { type: unknown }).type)}`);
  }
}

/** One input: a ProtocolError with a known code, or an exact request. Anything else fails with the seed. */
function probe(seed: number, iteration: number, input: string | Buffer, isBinary = false): 'accepted' | 'refused' {
  let request: AdminRequest;
  try {
    request = parseAdminRequest(input, isBinary);
  } catch (error) {
    if (!(error instanceof ProtocolError) || !CODES.has(error.code)) {
      throw new Error(`seed ${seed} iteration ${iteration}: ${String(error)} for input ${JSON.stringify(String(input).slice(0, 300))}`, { cause: error });
    }
    return 'refused';
  }
  try {
    checkAccepted(request, input);
  } catch (error) {
    throw new Error(`seed ${seed} iteration ${iteration}: accepted a bad request ${JSON.stringify(String(input).slice(0, 300))}: ${(error as Error).message}`, { cause: error });
  }
  return 'accepted';
}

describe('parseAdminRequest under fuzzing', () => {
  for (const seed of seeds) {
    it(`seed ${seed}: only ProtocolError or an exact request`, () => {
      const rng = new Rng(seed);
      const outcomes = { accepted: 0, refused: 0 };
      for (let i = 0; i < ITERATIONS; i++) {
        const base = pick(rng, corpus);
        let input: string | Buffer;
        switch (rng.int(0, 3)) {
          case 0: {
            let text = base;
            for (let n = rng.int(1, 3); n > 0; n--) text = structuralMutation(rng, text, PALETTE, KEYS);
            input = text;
            break;
          }
          case 1: {
            let bytes: Buffer = Buffer.from(base);
            for (let n = rng.int(1, 4); n > 0; n--) bytes = byteMutation(rng, bytes);
            input = bytes;
            break;
          }
          case 2:
            input = JSON.stringify({ type: pick(rng, ['register', 'unregister', 'status', 'hosts', 'add-lockspace', 'remove-lockspace', randomText(rng)]), seq: pick(rng, PALETTE), [pick(rng, KEYS)]: pick(rng, PALETTE) });
            break;
          default:
            input = randomText(rng);
        }
        outcomes[probe(seed, i, input)]++;
      }
      // Both outcomes occur: the corpus is valid and the mutations reach the checks.
      expect(outcomes.accepted).toBeGreaterThan(ITERATIONS / 100);
      expect(outcomes.refused).toBeGreaterThan(ITERATIONS / 2);
    });
  }

  it('every corpus entry parses to itself; binary, oversize and hostile edge cases are ProtocolErrors with the exact code', () => {
    for (const text of corpus) expect(parseAdminRequest(text)).toEqual(JSON.parse(text));
    const code = (input: string | Buffer, isBinary = false) => {
      try {
        parseAdminRequest(input, isBinary);
        return 'accepted';
      } catch (error) {
        if (error instanceof ProtocolError) return error.code;
        throw error;
      }
    };
    expect(code(corpus[3]!, true)).toBe('PROTO_NOT_TEXT');
    expect(code(Buffer.alloc(ADMIN_FRAME_BYTES_MAX + 1, 0x20))).toBe('PROTO_TOO_LARGE');
    expect(code(Buffer.from([0x7b, 0xc3, 0x28, 0x7d]))).toBe('PROTO_NOT_TEXT');
    expect(code('\ufeff{"type":"status","seq":1}')).toBe('PROTO_NOT_JSON');
    expect(code('['.repeat(200_000) + ']'.repeat(200_000))).toBe('PROTO_BAD_SHAPE');
    expect(code('{"type":"status","seq":1,"__proto__":{"vm":1}}')).toBe('PROTO_BAD_SHAPE');
    expect(code('{"type":"constructor","seq":1}')).toBe('PROTO_UNKNOWN_TYPE');
    expect(code('{"type":"toString","seq":1}')).toBe('PROTO_UNKNOWN_TYPE');
    expect(code('{"type":"status","seq":1,"type":"hosts"}')).toBe('PROTO_BAD_SHAPE');
    expect(code(JSON.stringify({ ...JSON.parse(corpus[1]!), uid: 2 ** 32 - 1 }))).toBe('PROTO_BAD_SHAPE');
    expect(code(JSON.stringify({ ...JSON.parse(corpus[1]!), leases: Array.from({ length: 65 }, (_, i) => ({ ...LEASE, offset: i * 1_048_576 })) }))).toBe('PROTO_BAD_SHAPE');
    expect(code(JSON.stringify({ ...JSON.parse(corpus[1]!), leases: [{ ...LEASE, path: 'relative' }] }))).toBe('PROTO_BAD_SHAPE');
    const xmlRequest = JSON.parse(corpus[2]!) as Record<string, unknown>;
    expect(code(JSON.stringify({ ...xmlRequest, leases: [LEASE] }))).toBe('PROTO_BAD_SHAPE');
    expect(code(JSON.stringify({ ...xmlRequest, domainXml: '' }))).toBe('PROTO_BAD_SHAPE');
    expect(code(JSON.stringify({ ...xmlRequest, domainXml: '<domain>\u0000</domain>' }))).toBe('PROTO_BAD_SHAPE');
    expect(code(JSON.stringify({ ...xmlRequest, domainXml: '<domain>\u001b</domain>' }))).toBe('PROTO_BAD_SHAPE');
    expect(code(JSON.stringify({ ...xmlRequest, domainXml: `<domain>${'x'.repeat(262_144)}</domain>` }))).toBe('PROTO_BAD_SHAPE');
    expect(code(JSON.stringify({ ...xmlRequest, domainXml: `<domain>${'é'.repeat(131_070)}</domain>` }))).toBe('PROTO_BAD_SHAPE');
    expect(parseAdminRequest(JSON.stringify({ ...xmlRequest, domainXml: `<a>${'é'.repeat(131_064)}</a>` }))).toMatchObject({ type: 'register', leases: [] });
  });
});
