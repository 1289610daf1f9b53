/**
 * Supervisor side: which verified statements to act on. A session starts with
 * its welcome (statementSeq 0, echoing our nonce); every later statement must
 * be of the same incarnation and session, about our VM, with a statementSeq
 * above the last one. A replayed or reordered statement (an old validUntil, a
 * 'granted' from before a 'lost') is refused instead of believed.
 */
import { ProtocolError, ProtocolErrorCode } from './errors.js';
import type { StatementBody, WelcomeStatement } from './statements.js';

export interface SessionExpectation {
  readonly incarnation: string;
  /** The nonce our hello carried. */
  readonly nonce: string;
}

export class StatementSequence {
  private last = 0;

  private constructor(
    readonly incarnation: string,
    readonly sessionId: string,
  ) {}

  static fromWelcome(welcome: WelcomeStatement, expected: SessionExpectation): StatementSequence {
    if (welcome.incarnation !== expected.incarnation) {
      throw new ProtocolError(ProtocolErrorCode.wrongIncarnation, 'welcome names another helper incarnation');
    }
    if (welcome.nonce !== expected.nonce) throw new ProtocolError(ProtocolErrorCode.wrongNonce, 'welcome does not echo our hello nonce');
    return new StatementSequence(welcome.incarnation, welcome.sessionId);
  }

  /** The statementSeq of the last statement accepted; 0 is the welcome. */
  get lastSeq(): number {
    return this.last;
  }

  /** Accepts a verified statement or throws; `vm` is the VM this session is bound to. */
  accept(body: StatementBody, vm: string): void {
    if (body.incarnation !== this.incarnation) throw new ProtocolError(ProtocolErrorCode.wrongIncarnation, 'statement names another helper incarnation');
    if (body.sessionId !== this.sessionId) throw new ProtocolError(ProtocolErrorCode.wrongSession, 'statement belongs to another session');
    if (body.kind === 'welcome') throw new ProtocolError(ProtocolErrorCode.wrongKind, 'a second welcome in one session');
    if (body.vm !== vm) throw new ProtocolError(ProtocolErrorCode.wrongVm, 'statement is about another VM');
    if (body.statementSeq <= this.last) {
      throw new ProtocolError(ProtocolErrorCode.stale, `statementSeq ${body.statementSeq} is not above the last accepted, ${this.last}`);
    }
    this.last = body.statementSeq;
  }
}
