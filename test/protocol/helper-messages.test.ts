import { describe, expect, it } from 'vitest';
import { createIncarnationKey, signStatement } from '../../dist/protocol/incarnation-key.js';
import {
  encodeHelperMessage,
  expectReplyResult,
  parseHelperMessage,
  ProtocolErrorCode,
  STATEMENT_BODY_BYTES_MAX,
  SUPERVISOR_FRAME_BYTES_MAX,
  type HelperMessage,
  type ProtocolErrorCode as Code,
  type Signed,
} from '../../dist/protocol/index.js';
import { expectProtocolError, INCARNATION, statementBodies, VM } from './support.js';

const key = await createIncarnationKey(INCARNATION);
const [welcomeBody, grantedBody, validUntilBody] = statementBodies();
const welcome = signStatement(key, welcomeBody!);
const granted = signStatement(key, grantedBody!);
const validUntil = signStatement(key, validUntilBody!);

const holder = { hostId: 2, hostName: 'host-b', state: 'FAIL', sinceIso: '2024-01-31T12:00:00.000Z', takeoverPossibleIso: '2024-01-31T12:01:20.000Z' };

function validMessages(): Record<string, Record<string, unknown>> {
  return {
    welcome: { type: 'welcome', statement: welcome },
    statement: { type: 'statement', statement: validUntil },
    goodbye: { type: 'goodbye', code: 'PROTO_BAD_SEQ', reason: 'request seq 3 is not 2' },
    replyBound: { type: 'reply', seq: 2, ok: true, result: { vm: VM } },
    replyGranted: { type: 'reply', seq: 3, ok: true, result: { statement: granted } },
    replyNothingHeld: { type: 'reply', seq: 6, ok: true, result: { statement: null } },
    replyEmpty: { type: 'reply', seq: 5, ok: true, result: {} },
    replyError: { type: 'reply', seq: 3, ok: false, error: { code: 'NOT_REGISTERED', message: 'no such VM' } },
    replyBusy: { type: 'reply', seq: 3, ok: false, error: { code: 'BUSY', message: 'lease cluster:vm-disk-1 is held', holder } },
    replyBusyLive: {
      type: 'reply', seq: 3, ok: false,
      error: { code: 'BUSY', message: 'held', holder: { ...holder, hostName: '', state: 'LIVE', sinceIso: null, takeoverPossibleIso: null } },
    },
  };
}

const reject = (value: unknown, code: Code) => expectProtocolError(() => parseHelperMessage(JSON.stringify(value)), code);
const msgs = validMessages();
const busyWith = (h: Record<string, unknown>) => ({ ...msgs.replyBusy, error: { code: 'BUSY', message: 'held', holder: { ...holder, ...h } } });

describe('helper messages: round trips', () => {
  it.each(Object.entries(validMessages()))('%s: encode then parse gives the same message', (_name, wire) => {
    const message = parseHelperMessage(Buffer.from(JSON.stringify(wire)));
    expect(message).toEqual(wire);
    const text = encodeHelperMessage(message);
    expect(JSON.parse(text)).toEqual(wire);
    expect(parseHelperMessage(text)).toEqual(message);
  });

  it('fits any statement body up to its cap in one frame, however its characters escape', () => {
    // '\\' and '"' double when the body is embedded in the frame: the worst case.
    for (const ch of ['\\', '"', 'a']) {
      const statement: Signed = { body: ch.repeat(STATEMENT_BODY_BYTES_MAX), sig: granted.sig };
      const message: HelperMessage = { type: 'reply', seq: Number.MAX_SAFE_INTEGER, ok: true, result: { statement } };
      const text = encodeHelperMessage(message);
      expect(Buffer.byteLength(text)).toBeLessThanOrEqual(SUPERVISOR_FRAME_BYTES_MAX);
      expect(parseHelperMessage(text)).toEqual(message);
    }
  });

  it('fits the largest granted statement (16 leases, names of 48 escaping characters, largest numbers) in one frame', () => {
    const name = '"\\'.repeat(24);
    const leases = Array.from({ length: 16 }, (_v, i) => ({
      lockspace: name, resource: `${name.slice(0, 46)}${String(i).padStart(2, '0')}`, mode: 'exclusive' as const, lver: Number.MAX_SAFE_INTEGER,
    }));
    const big = signStatement(key, {
      kind: 'granted', incarnation: INCARNATION, sessionId: 's'.repeat(64), statementSeq: Number.MAX_SAFE_INTEGER,
      vm: VM, leases, validUntilMs: Number.MAX_SAFE_INTEGER,
    });
    expect(Buffer.byteLength(big.body)).toBeLessThanOrEqual(STATEMENT_BODY_BYTES_MAX);
    const text = encodeHelperMessage({ type: 'reply', seq: 3, ok: true, result: { statement: big } });
    expect(parseHelperMessage(text)).toEqual({ type: 'reply', seq: 3, ok: true, result: { statement: big } });
  });
});

describe('helper messages: rejections', () => {
  it.each(Object.entries(validMessages()))('%s: refuses an extra key and each missing key', (_name, wire) => {
    reject({ ...wire, extra: true }, ProtocolErrorCode.badShape);
    for (const key of Object.keys(wire).filter((k) => k !== 'type')) {
      const { [key]: _dropped, ...rest } = wire;
      reject(rest, ProtocolErrorCode.badShape);
    }
  });

  it('refuses an unknown type, and a reply carrying both a result and an error', () => {
    reject({ type: 'promote', statement: welcome }, ProtocolErrorCode.unknownType);
    reject({ ...msgs.replyEmpty, error: { code: 'X', message: 'm' } }, ProtocolErrorCode.badShape);
    reject({ ...msgs.replyError, result: {} }, ProtocolErrorCode.badShape);
    reject({ ...msgs.replyEmpty, ok: 'true' }, ProtocolErrorCode.badShape);
  });

  it('refuses malformed results', () => {
    reject({ ...msgs.replyEmpty, result: { vm: VM, statement: null } }, ProtocolErrorCode.badShape);
    reject({ ...msgs.replyEmpty, result: { vm: null } }, ProtocolErrorCode.badShape);
    reject({ ...msgs.replyEmpty, result: { leases: [] } }, ProtocolErrorCode.badShape);
    reject({ ...msgs.replyEmpty, result: [] }, ProtocolErrorCode.badShape);
  });

  it('refuses malformed signed envelopes (the signature itself is checked by the verifier)', () => {
    const bad: Array<Record<string, unknown>> = [
      { body: welcome.body, sig: Buffer.alloc(63).toString('base64') },
      { body: welcome.body, sig: Buffer.alloc(64).toString('base64url') },
      { body: welcome.body },
      { body: welcome.body, sig: welcome.sig, alg: 'none' },
      { body: 'x'.repeat(STATEMENT_BODY_BYTES_MAX + 1), sig: welcome.sig },
      { body: '', sig: welcome.sig },
      { body: JSON.parse(welcome.body) as unknown, sig: welcome.sig },
    ];
    for (const statement of bad) reject({ type: 'statement', statement }, ProtocolErrorCode.badShape);
  });

  it('refuses malformed holders', () => {
    for (const h of [
      { hostId: 0 }, { hostId: 2001 }, { hostId: '2' },
      { hostName: 'é'.repeat(33) }, // 66 bytes of UTF-8
      { hostName: 'host\nb' },
      { state: 'ALIVE' }, { state: 'live' },
      { sinceIso: '2024-01-31T12:00:00Z' }, // not toISOString's spelling
      { sinceIso: '2024-02-30T00:00:00.000Z' }, // no such day
      { takeoverPossibleIso: 1706702480000 },
    ]) {
      reject(busyWith(h), ProtocolErrorCode.badShape);
    }
    const { takeoverPossibleIso: _t, ...lacking } = holder;
    reject({ ...msgs.replyBusy, error: { code: 'BUSY', message: 'held', holder: lacking } }, ProtocolErrorCode.badShape);
  });

  it('refuses bad codes and oversize or multi-line text', () => {
    for (const code of ['busy', '', '1BUSY', 'B'.repeat(65), 'BUSY-NOW']) reject({ ...msgs.goodbye, code }, ProtocolErrorCode.badShape);
    for (const reason of ['', 'r'.repeat(1025), 'line one\nline two', 'bell\u0007', 'c1\u0085']) {
      reject({ ...msgs.goodbye, reason }, ProtocolErrorCode.badShape);
    }
    expect(parseHelperMessage(JSON.stringify({ ...msgs.goodbye, reason: 'r'.repeat(1024) }))).toEqual({ ...msgs.goodbye, reason: 'r'.repeat(1024) });
  });
});

describe('expectReplyResult', () => {
  it('gives each request the result it gets, and refuses the others', () => {
    expect(expectReplyResult('acquire', { statement: granted })).toEqual({ statement: granted });
    expect(expectReplyResult('claim', { statement: granted })).toEqual({ statement: granted });
    expect(expectReplyResult('inquire', { statement: null })).toEqual({ statement: null });
    expect(expectReplyResult('bind', { vm: VM })).toEqual({ vm: VM });
    expect(expectReplyResult('release', {})).toEqual({});
    expectProtocolError(() => expectReplyResult('acquire', { statement: null }), ProtocolErrorCode.badShape);
    expectProtocolError(() => expectReplyResult('claim', {}), ProtocolErrorCode.badShape);
    expectProtocolError(() => expectReplyResult('bind', {}), ProtocolErrorCode.badShape);
    expectProtocolError(() => expectReplyResult('report-child', { vm: VM }), ProtocolErrorCode.badShape);
    expectProtocolError(() => expectReplyResult('inquire', { vm: VM }), ProtocolErrorCode.badShape);
  });
});

