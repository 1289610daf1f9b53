import type { Checked, DeltaRecord } from '../format/index.js';
import type { BrokenRules } from './broken-rules.js';
import { hostDeadAfterMs, hostFailAfterMs, type Timing, type TimingOptions } from './timing.js';

/**
 * What one host knows of the other hosts of a lockspace, from the delta
 * records it reads at each renewal. Other hosts' timestamps are compared only
 * for change, against this host's own monotonic clock (SPEC section 3).
 */

export type HostState = 'UNKNOWN' | 'LIVE' | 'FAIL' | 'DEAD' | 'FREE';

export interface HostStatus {
  readonly hostId: number;
  readonly state: HostState;
  readonly record: DeltaRecord | undefined;
  /** Observer time when the current record value was first seen (t_obs). */
  readonly sinceMs: number | undefined;
  /** Observer time from which the host counts as DEAD; undefined if it cannot on timing alone. */
  readonly deadAtMs: number | undefined;
  /** Why the record cannot be used, when it failed its check. */
  readonly problem: string | undefined;
}

interface Entry {
  record: DeltaRecord | undefined;
  problem: string | undefined;
  /** Completion time of the read that first showed this value (t_obs, taken late: conservative). */
  seenAtMs: number;
  /** Submit time of the latest read that still showed this value. */
  confirmedAtMs: number;
  everChanged: boolean;
}

function sameValue(a: DeltaRecord, b: DeltaRecord): boolean {
  return a.timestampMs === b.timestampMs && a.generation === b.generation && a.owner.nonce === b.owner.nonce && a.owner.bootId === b.owner.bootId && a.owner.hostName === b.owner.hostName;
}

export class HostTable {
  private readonly entries = new Map<number, Entry>();

  constructor(
    private readonly own: Timing,
    private readonly takeoverWithoutWatchdog: boolean,
    private readonly timingOptions: TimingOptions | undefined,
    private readonly broken: BrokenRules = {},
  ) {}

  /** Folds in one read of the whole area, submitted at `submittedAtMs` and completed at `nowMs`. */
  observe(records: readonly Checked<DeltaRecord>[], submittedAtMs: number, nowMs: number): void {
    records.forEach((checked, index) => {
      const hostId = index + 1;
      const previous = this.entries.get(hostId);
      if (!checked.ok) {
        // A record that fails its check is never free and never ages into DEAD.
        this.entries.set(hostId, { record: undefined, problem: checked.error.message, seenAtMs: nowMs, confirmedAtMs: submittedAtMs, everChanged: false });
        return;
      }
      const record = checked.value;
      if (previous?.record && sameValue(previous.record, record)) {
        previous.record = record;
        previous.confirmedAtMs = Math.max(previous.confirmedAtMs, submittedAtMs);
        return;
      }
      this.entries.set(hostId, { record, problem: undefined, seenAtMs: nowMs, confirmedAtMs: submittedAtMs, everChanged: previous?.record !== undefined });
    });
  }

  status(hostId: number, nowMs: number): HostStatus {
    const entry = this.entries.get(hostId);
    const base = { hostId, record: entry?.record, sinceMs: entry?.seenAtMs, problem: entry?.problem };
    if (!entry || !entry.record) return { ...base, state: 'UNKNOWN', deadAtMs: undefined };
    const record = entry.record;
    if (record.timestampMs === 0) return { ...base, state: 'FREE', deadAtMs: undefined };
    const deadAfter = hostDeadAfterMs({
      own: this.own,
      ownerIoTimeoutMs: record.ownerIoTimeoutMs,
      ownerWatchdogFireTimeoutMs: record.ownerWatchdogFireTimeoutMs,
      takeoverWithoutWatchdog: this.takeoverWithoutWatchdog,
      ...(this.timingOptions ? { options: this.timingOptions } : {}),
    });
    const deadAtMs = deadAfter === undefined ? undefined : entry.seenAtMs + (this.broken.takeoverBeforeHostDead ? Math.floor(hostFailAfterMs(this.own, record.ownerIoTimeoutMs) / 4) : deadAfter);
    const silentMs = nowMs - entry.seenAtMs;
    // DEAD needs a read submitted after the deadline that still shows the old value: elapsed time
    // alone is not enough when our own reads of the lockspace have been failing.
    if (deadAtMs !== undefined && nowMs >= deadAtMs && entry.confirmedAtMs >= deadAtMs) return { ...base, state: 'DEAD', deadAtMs };
    if (silentMs >= hostFailAfterMs(this.own, record.ownerIoTimeoutMs)) return { ...base, state: 'FAIL', deadAtMs };
    return { ...base, state: entry.everChanged ? 'LIVE' : 'UNKNOWN', deadAtMs };
  }

  /**
   * Whether a lease owned by (hostId, generation) may be taken: its owner's
   * delta lease is free at that generation, re-acquired by a newer
   * generation, or DEAD at that generation. A record of an older generation
   * says nothing about a newer one we have not read yet: not gone.
   */
  ownerGone(hostId: number, generation: number, nowMs: number): boolean {
    const status = this.status(hostId, nowMs);
    const record = status.record;
    if (!record) return false;
    if (record.generation > generation) return true;
    return record.generation === generation && (record.timestampMs === 0 || status.state === 'DEAD');
  }
}
