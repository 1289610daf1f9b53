/**
 * Helper side: a session's requests must be numbered 1, 2, 3, ... with no gap.
 * Anything else is a replayed, reordered or forged request, and ends the session.
 */
import { ProtocolError, ProtocolErrorCode } from './errors.js';

export class RequestSequence {
  private last = 0;

  /** The seq of the last request accepted; 0 before the first. */
  get lastSeq(): number {
    return this.last;
  }

  accept(seq: number): void {
    if (seq !== this.last + 1) {
      throw new ProtocolError(ProtocolErrorCode.badSeq, `request seq ${seq} is not ${this.last + 1} (the last was ${this.last})`);
    }
    this.last = seq;
  }
}
