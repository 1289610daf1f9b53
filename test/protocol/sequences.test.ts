import { describe, expect, it } from 'vitest';
import {
  ProtocolErrorCode,
  RequestSequence,
  StatementSequence,
  type StatementBody,
  type WelcomeStatement,
} from '../../dist/protocol/index.js';
import { expectProtocolError, INCARNATION, NONCE, OTHER_VM, SESSION, statementBodies, VM } from './support.js';

describe('RequestSequence (helper side)', () => {
  it('accepts 1, 2, 3 in order', () => {
    const seq = new RequestSequence();
    for (const n of [1, 2, 3]) seq.accept(n);
    expect(seq.lastSeq).toBe(3);
  });

  it('refuses a first request other than 1', () => {
    expectProtocolError(() => new RequestSequence().accept(2), ProtocolErrorCode.badSeq);
    expectProtocolError(() => new RequestSequence().accept(0), ProtocolErrorCode.badSeq);
  });

  it('refuses a replayed, reordered or skipping seq, and a refusal does not move the sequence', () => {
    const seq = new RequestSequence();
    seq.accept(1);
    seq.accept(2);
    expectProtocolError(() => seq.accept(2), ProtocolErrorCode.badSeq); // replay
    expectProtocolError(() => seq.accept(1), ProtocolErrorCode.badSeq); // reorder
    expectProtocolError(() => seq.accept(4), ProtocolErrorCode.badSeq); // skip
    expect(seq.lastSeq).toBe(2);
    seq.accept(3);
    expect(seq.lastSeq).toBe(3);
  });
});

describe('StatementSequence (supervisor side)', () => {
  const [welcome, granted, validUntil, lost] = statementBodies() as [WelcomeStatement, StatementBody, StatementBody, StatementBody];
  const start = () => StatementSequence.fromWelcome(welcome, { incarnation: INCARNATION, nonce: NONCE });

  it('starts from a welcome that echoes our nonce, with its incarnation and session', () => {
    const seq = start();
    expect({ incarnation: seq.incarnation, sessionId: seq.sessionId, lastSeq: seq.lastSeq }).toEqual({ incarnation: INCARNATION, sessionId: SESSION, lastSeq: 0 });
    expectProtocolError(() => StatementSequence.fromWelcome(welcome, { incarnation: INCARNATION, nonce: Buffer.alloc(32).toString('base64') }), ProtocolErrorCode.wrongNonce);
    expectProtocolError(() => StatementSequence.fromWelcome(welcome, { incarnation: 'inc-other', nonce: NONCE }), ProtocolErrorCode.wrongIncarnation);
  });

  it('accepts strictly increasing statementSeq, gaps allowed', () => {
    const seq = start();
    seq.accept(granted, VM);
    seq.accept({ ...validUntil, statementSeq: 5 } as StatementBody, VM);
    expect(seq.lastSeq).toBe(5);
  });

  it('refuses a replayed or reordered statement', () => {
    const seq = start();
    seq.accept(granted, VM);
    seq.accept(validUntil, VM);
    expectProtocolError(() => seq.accept(validUntil, VM), ProtocolErrorCode.stale);
    expectProtocolError(() => seq.accept(granted, VM), ProtocolErrorCode.stale);
    expect(seq.lastSeq).toBe(2);
    seq.accept(lost, VM);
    expect(seq.lastSeq).toBe(3);
  });

  it('refuses statements of another incarnation, session or VM, and a second welcome', () => {
    const seq = start();
    expectProtocolError(() => seq.accept({ ...granted, incarnation: 'inc-other' } as StatementBody, VM), ProtocolErrorCode.wrongIncarnation);
    expectProtocolError(() => seq.accept({ ...granted, sessionId: 'session-8' } as StatementBody, VM), ProtocolErrorCode.wrongSession);
    expectProtocolError(() => seq.accept(granted, OTHER_VM), ProtocolErrorCode.wrongVm);
    expectProtocolError(() => seq.accept(welcome, VM), ProtocolErrorCode.wrongKind);
    expect(seq.lastSeq).toBe(0);
  });
});
