/** Shared fixtures for the protocol tests: valid messages to start from, and an exact error matcher. */
import { expect } from 'vitest';
import { ProtocolError, type ProtocolErrorCode, type StatementBody } from '../../dist/protocol/index.js';

export const VM = '0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0';
export const OTHER_VM = 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee';
export const NONCE = Buffer.alloc(32, 0xab).toString('base64');
export const SECRET = Buffer.alloc(32, 0xfb).toString('base64url');
export const INCARNATION = 'inc-20240131.1';
export const SESSION = 'session-7';

/** Runs fn and returns the ProtocolError it threw, failing unless it threw exactly one with this code. */
export function expectProtocolError(fn: () => unknown, code: ProtocolErrorCode): ProtocolError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(ProtocolError);
  const error = caught as ProtocolError;
  expect({ code: error.code, reason: error.reason }).toEqual({ code, reason: expect.any(String) });
  return error;
}

/** One valid request of each type, as plain wire objects. */
export function validRequests(): Record<string, Record<string, unknown>> {
  return {
    hello: { type: 'hello', seq: 1, protocol: 1, nonce: NONCE },
    bind: { type: 'bind', seq: 2, vm: VM },
    bindWithSecret: { type: 'bind', seq: 2, vm: VM, secret: SECRET },
    acquire: { type: 'acquire', seq: 3 },
    claim: { type: 'claim', seq: 3 },
    reportChild: { type: 'report-child', seq: 4, pid: 4242, startTime: '123456789' },
    release: { type: 'release', seq: 5 },
    inquire: { type: 'inquire', seq: 6 },
  };
}

export function statementBodies(): StatementBody[] {
  const header = { incarnation: INCARNATION, sessionId: SESSION };
  return [
    { kind: 'welcome', ...header, statementSeq: 0, nonce: NONCE, peerPid: 31337, peerUid: 107, peerGid: 36 },
    {
      kind: 'granted', ...header, statementSeq: 1, vm: VM, validUntilMs: 123_456_789,
      leases: [
        { lockspace: 'cluster', resource: 'vm-disk-1', mode: 'exclusive', lver: 7 },
        { lockspace: 'cluster', resource: 'shared:iso', mode: 'shared', lver: 2 },
      ],
    },
    { kind: 'valid-until', ...header, statementSeq: 2, vm: VM, validUntilMs: 123_466_789 },
    { kind: 'lost', ...header, statementSeq: 3, vm: VM, reason: 'lockspace cluster: renewal failed for 80 s' },
  ];
}
