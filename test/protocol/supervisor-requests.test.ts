import { describe, expect, it } from 'vitest';
import {
  encodeSupervisorRequest,
  parseSupervisorRequest,
  ProtocolErrorCode,
  type ProtocolErrorCode as Code,
  type SupervisorRequest,
} from '../../dist/protocol/index.js';
import { expectProtocolError, NONCE, SECRET, validRequests, VM } from './support.js';

const reject = (value: unknown, code: Code) => expectProtocolError(() => parseSupervisorRequest(JSON.stringify(value)), code);
const with_ = (base: Record<string, unknown>, patch: Record<string, unknown>) => ({ ...base, ...patch });
const without = (base: Record<string, unknown>, key: string) => Object.fromEntries(Object.entries(base).filter(([k]) => k !== key));

describe('supervisor requests: round trips', () => {
  it.each(Object.entries(validRequests()))('%s: encode then parse gives the same request, from bytes and from a string', (_name, wire) => {
    const request = parseSupervisorRequest(Buffer.from(JSON.stringify(wire)));
    expect(request).toEqual(wire);
    const text = encodeSupervisorRequest(request);
    expect(JSON.parse(text)).toEqual(wire);
    expect(parseSupervisorRequest(text)).toEqual(request);
  });

  it('accepts the edges of every range', () => {
    const r = validRequests();
    for (const [pid, startTime] of [[2, '0'], [4_194_304, '18446744073709551615']] as const) {
      expect(parseSupervisorRequest(JSON.stringify(with_(r.reportChild!, { pid, startTime })))).toEqual(with_(r.reportChild!, { pid, startTime }));
    }
    expect(parseSupervisorRequest(JSON.stringify(with_(r.release!, { seq: Number.MAX_SAFE_INTEGER })))).toEqual(with_(r.release!, { seq: Number.MAX_SAFE_INTEGER }));
  });

  it('does not send stray runtime properties, and refuses to encode what it would not accept', () => {
    const sneaky = { type: 'acquire', seq: 3, vm: VM, pid: 1 } as unknown as SupervisorRequest;
    expect(JSON.parse(encodeSupervisorRequest(sneaky))).toEqual({ type: 'acquire', seq: 3 });
    expect(() => encodeSupervisorRequest({ type: 'report-child', seq: 4, pid: 1, startTime: '5' })).toThrow(/refuses/);
  });
});

describe('supervisor requests: rejections', () => {
  it.each(Object.entries(validRequests()))('%s: refuses any extra key, and any missing one', (_name, wire) => {
    reject(with_(wire, { extra: 1 }), ProtocolErrorCode.badShape);
    for (const key of Object.keys(wire).filter((k) => k !== 'type' && k !== 'secret')) {
      // hello reads its version first: without it the version is what is wrong.
      reject(without(wire, key), ProtocolErrorCode.badShape);
    }
  });

  it('refuses a __proto__ key rather than letting it vanish into the prototype', () => {
    expectProtocolError(() => parseSupervisorRequest('{"type":"acquire","seq":3,"__proto__":{"seq":1}}'), ProtocolErrorCode.badShape);
  });

  it('refuses wrong JSON types', () => {
    const r = validRequests();
    reject([r.acquire], ProtocolErrorCode.badShape);
    reject(null, ProtocolErrorCode.badShape);
    reject(3, ProtocolErrorCode.badShape);
    reject(with_(r.acquire!, { type: 7 }), ProtocolErrorCode.badShape);
    reject(with_(r.acquire!, { seq: '3' }), ProtocolErrorCode.badShape);
    reject(with_(r.acquire!, { seq: 3.5 }), ProtocolErrorCode.badShape);
    reject(with_(r.bind!, { vm: 5 }), ProtocolErrorCode.badShape);
    reject(with_(r.bind!, { secret: null }), ProtocolErrorCode.badShape);
    reject(with_(r.reportChild!, { pid: '4242' }), ProtocolErrorCode.badShape);
    reject(with_(r.reportChild!, { startTime: 123 }), ProtocolErrorCode.badShape);
    reject(with_(r.hello!, { nonce: [1, 2] }), ProtocolErrorCode.badShape);
    reject(with_(r.hello!, { protocol: '1' }), ProtocolErrorCode.badShape);
  });

  it('refuses integers out of range', () => {
    const r = validRequests();
    for (const seq of [0, -1, 2 ** 53]) reject(with_(r.inquire!, { seq }), ProtocolErrorCode.badShape);
    for (const pid of [1, 0, 4_194_305]) reject(with_(r.reportChild!, { pid }), ProtocolErrorCode.badShape);
  });

  it('refuses malformed or oversize strings', () => {
    const r = validRequests();
    for (const vm of [VM.toUpperCase(), `${VM}0`, VM.replace(/-/g, ''), `{${VM}}`, '']) reject(with_(r.bind!, { vm }), ProtocolErrorCode.badShape);
    for (const startTime of ['', '012', '-1', '1.5', ' 1', '18446744073709551616', '1'.repeat(21)]) {
      reject(with_(r.reportChild!, { startTime }), ProtocolErrorCode.badShape);
    }
    const nonces = [
      Buffer.alloc(31).toString('base64'),
      Buffer.alloc(33).toString('base64'),
      Buffer.alloc(32, 0xfb).toString('base64url'), // base64url alphabet where base64 is required
      NONCE.replace(/=$/, ''), // padding dropped
      `${NONCE.slice(0, 20)}\n${NONCE.slice(20)}`, // Node would skip the newline
      `${NONCE.slice(0, 42)}x=`, // non-zero spare bits: two spellings of one value
    ];
    for (const nonce of nonces) reject(with_(r.hello!, { nonce }), ProtocolErrorCode.badShape);
    for (const secret of [Buffer.alloc(32).toString('base64'), Buffer.alloc(31).toString('base64url'), `${SECRET}A`]) {
      reject(with_(r.bindWithSecret!, { secret }), ProtocolErrorCode.badShape);
    }
  });

  it('tells an unknown type from a malformed one', () => {
    reject({ type: 'shutdown', seq: 2 }, ProtocolErrorCode.unknownType);
    reject({ type: 'x'.repeat(33), seq: 2 }, ProtocolErrorCode.badShape);
    reject({ seq: 2 }, ProtocolErrorCode.badShape);
  });

  it('hello: only seq 1, only protocol version 1, and another version is told apart from a bad shape', () => {
    const hello = validRequests().hello!;
    reject(with_(hello, { seq: 2 }), ProtocolErrorCode.badSeq);
    const v2 = reject({ type: 'hello', seq: 1, protocol: 2, nonce: NONCE, features: ['x'] }, ProtocolErrorCode.unsupportedVersion);
    expect(v2.reason).toMatch(/2.*1/);
    reject(with_(hello, { protocol: 0 }), ProtocolErrorCode.badShape);
  });
});
