import assert from 'node:assert/strict';
import {
  encodeDeltaRecord,
  hostSector,
  identityOf,
  parseLockspaceArea,
  specBytes,
  type DeltaRecord,
  type Incarnation,
  type LockspaceSpec,
} from '../format/index.js';
import type { BrokenRules } from './broken-rules.js';
import { HostTable, type HostStatus } from './host-table.js';
import { IoIds, type Effects, type IoId, type IoRequest, type IoResult } from './io.js';
import { deriveTiming, hostDeadAfterMs, type Timing, type TimingOptions } from './timing.js';

/**
 * The delta lease of one host id in one lockspace (Chockler & Malkhi), as a
 * pure state machine. Join: read; if held, wait until a live holder must have
 * renewed (the record unchanged for host_dead); write; wait; re-read; own it
 * only if unchanged. Renew every 2N by reading the whole area (the host
 * table, and a check that our record is still ours) and rewriting our
 * timestamp. Renewal I/O is one read and one write per interval, whatever
 * the number of leases held. The first renewal, due as the join is
 * confirmed, writes on the strength of the verify read that just confirmed it.
 */

export interface DeltaConfig {
  readonly lockspace: LockspaceSpec;
  readonly hostId: number;
  readonly incarnation: Incarnation;
  readonly watchdogFireTimeoutMs: number;
  readonly takeoverWithoutWatchdog: boolean;
  readonly ownerFeatures: number;
  readonly timingOptions?: TimingOptions;
  /** Test only (simulator): rules broken on purpose. */
  readonly brokenRules?: BrokenRules;
}

export type DeltaEvent =
  | { readonly type: 'join'; readonly nowMs: number; readonly previousIncarnationGone?: Incarnation }
  | { readonly type: 'leave'; readonly nowMs: number }
  /** Adopt our record at `generation`, left by a previous helper of this same incarnation (a helper restart). */
  | { readonly type: 'resume'; readonly nowMs: number; readonly generation: number }
  | { readonly type: 'io'; readonly nowMs: number; readonly result: IoResult }
  | { readonly type: 'tick'; readonly nowMs: number };

export type DeltaFailure = 'storage' | 'in-use' | 'held-without-watchdog' | 'taken-concurrently' | 'fail-deadline' | 'record-taken' | 'busy' | 'resume-mismatch';

export type DeltaOutcome =
  | { readonly type: 'joined'; readonly generation: number; readonly validUntilMs: number }
  | { readonly type: 'join-failed'; readonly code: DeltaFailure; readonly reason: string }
  | { readonly type: 'renewed'; readonly renewedAtMs: number; readonly validUntilMs: number; readonly latencyMs: number }
  | { readonly type: 'renew-error'; readonly reason: string }
  | { readonly type: 'renew-warning'; readonly lastRenewedAtMs: number }
  | { readonly type: 'lost'; readonly code: DeltaFailure; readonly reason: string }
  | { readonly type: 'left'; readonly clean: boolean; readonly reason: string };

type Phase = 'idle' | 'joining' | 'held' | 'leaving' | 'lost' | 'left';
type Purpose = 'join-read' | 'aging-read' | 'join-write' | 'verify-read' | 'renew-read' | 'renew-write' | 'leave-write' | 'resume-read';

interface Inflight {
  readonly purpose: Purpose;
  readonly submittedAtMs: number;
}

export class DeltaEngine {
  readonly timing: Timing;
  private readonly ids = new IoIds();
  private readonly inflight = new Map<IoId, Inflight>();
  private readonly table: HostTable;
  private phase: Phase = 'idle';
  /** Our record as last submitted for writing; what the own-record check expects. */
  private written: DeltaRecord | undefined;
  private joinTimestampMs = 0;
  private resumeGeneration: number | undefined;
  private previousGone: Incarnation | undefined;
  /** While waiting for a held record to age out: the value and when it was first seen. */
  private aging: { record: DeltaRecord; seenAtMs: number; deadAfterMs: number; nextReadAtMs: number } | undefined;
  private settleUntilMs: number | undefined;
  /** T of the last successful write of our record (the join write, then renewals). */
  private lastGoodMs: number | undefined;
  private nextRenewAtMs: number | undefined;
  private renewAttemptAtMs = 0;
  /** The verify read that confirmed the join: the first renewal writes on its strength while it is fresh. */
  private verifyRead: { records: ReturnType<DeltaEngine['parse']>; submittedAtMs: number } | undefined;
  private warned = false;
  private outcomes: DeltaOutcome[] = [];
  private ios: IoRequest[] = [];

  constructor(readonly config: DeltaConfig) {
    assert.ok(config.hostId >= 1 && config.hostId <= config.lockspace.hostsMax, `host id ${config.hostId} outside 1..${config.lockspace.hostsMax}`);
    this.timing = deriveTiming(config.lockspace.ioTimeoutMs, config.watchdogFireTimeoutMs, config.timingOptions);
    this.table = new HostTable(this.timing, config.takeoverWithoutWatchdog, config.timingOptions, config.brokenRules);
  }

  get generation(): number | undefined {
    return this.phase === 'held' || this.phase === 'leaving' ? this.written?.generation : undefined;
  }

  get held(): boolean {
    return this.phase === 'held';
  }

  /** Until when our leases are valid: T + 8N of the last successful renewal. */
  get validUntilMs(): number | undefined {
    return this.lastGoodMs === undefined || !this.held ? undefined : this.lastGoodMs + this.timing.failMs;
  }

  /** Our lease at `generation` is held and before its fail deadline at `nowMs`. */
  ownLeaseValid(generation: number, nowMs: number): boolean {
    const validUntil = this.validUntilMs;
    return this.held && this.written?.generation === generation && validUntil !== undefined && nowMs < validUntil;
  }

  hostStatus(hostId: number, nowMs: number): HostStatus {
    return this.table.status(hostId, nowMs);
  }

  ownerGone(hostId: number, generation: number, nowMs: number): boolean {
    if (hostId === this.config.hostId && this.generation !== undefined && generation < this.generation) return true;
    return this.table.ownerGone(hostId, generation, nowMs);
  }

  /**
   * When a join in progress should complete, for progress displays only:
   * after the record being waited out is dead (if any), a write, the settle
   * wait and a verify read (each I/O taken as N).
   */
  joinEtaMs(nowMs: number): number | undefined {
    if (this.phase !== 'joining') return undefined;
    const n = this.timing.ioTimeoutMs;
    if (this.settleUntilMs !== undefined) return Math.max(nowMs, this.settleUntilMs) + n;
    const writeFrom = this.aging ? Math.max(nowMs, this.aging.seenAtMs + this.aging.deadAfterMs) + n : nowMs + n;
    return writeFrom + n + this.timing.joinSettleMs + n;
  }

  step(event: DeltaEvent): Effects<DeltaOutcome> {
    this.outcomes = [];
    this.ios = [];
    switch (event.type) {
      case 'join':
        this.onJoin(event.nowMs, event.previousIncarnationGone);
        break;
      case 'leave':
        this.onLeave(event.nowMs);
        break;
      case 'resume':
        this.onResume(event.nowMs, event.generation);
        break;
      case 'io':
        this.onIo(event.result, event.nowMs);
        break;
      case 'tick':
        break;
    }
    this.checkDeadlines(event.nowMs);
    return { ios: this.ios, outcomes: this.outcomes, wakeAtMs: this.nextWake() };
  }

  // ---- join ----

  private onJoin(nowMs: number, previousGone: Incarnation | undefined): void {
    if (this.phase !== 'idle' && this.phase !== 'left' && this.phase !== 'lost') {
      this.outcomes.push({ type: 'join-failed', code: 'busy', reason: `cannot join while ${this.phase}` });
      return;
    }
    this.phase = 'joining';
    this.previousGone = previousGone;
    this.aging = undefined;
    // A rejoin after 'lost' starts clean: the old generation's deadlines do not apply.
    this.lastGoodMs = undefined;
    this.settleUntilMs = undefined;
    this.verifyRead = undefined;
    this.readArea('join-read', nowMs);
  }

  private onJoinRead(records: ReturnType<DeltaEngine['parse']>, readSubmittedAtMs: number, nowMs: number, purpose: 'join-read' | 'aging-read'): void {
    const own = records[this.config.hostId - 1]!;
    if (!own.ok) return this.failJoin('storage', own.error.message);
    const record = own.value;
    // A decision to write must rest on a fresh read: if more than N passed since it was
    // submitted (a stall, a pause), another host may have written meanwhile. Read again.
    const fresh = nowMs - readSubmittedAtMs <= this.timing.ioTimeoutMs;
    if (record.timestampMs === 0 || this.isPreviousIncarnation(record)) {
      if (fresh) return this.writeJoin(record, nowMs);
      return this.readArea('join-read', nowMs);
    }
    if (purpose === 'join-read' || !this.aging) {
      const deadAfterMs = hostDeadAfterMs({
        own: this.timing,
        ownerIoTimeoutMs: record.ownerIoTimeoutMs,
        ownerWatchdogFireTimeoutMs: record.ownerWatchdogFireTimeoutMs,
        takeoverWithoutWatchdog: this.config.takeoverWithoutWatchdog,
        ...(this.config.timingOptions ? { options: this.config.timingOptions } : {}),
      });
      if (deadAfterMs === undefined) {
        return this.failJoin('held-without-watchdog', `host id ${this.config.hostId} is held by ${describe(record)}, which runs without a watchdog; it cannot be proven gone by waiting`);
      }
      this.aging = { record, seenAtMs: nowMs, deadAfterMs, nextReadAtMs: 0 };
      this.scheduleAgingRead(nowMs);
      return;
    }
    if (record.timestampMs !== this.aging.record.timestampMs || record.generation !== this.aging.record.generation || record.owner.nonce !== this.aging.record.owner.nonce) {
      return this.failJoin('in-use', `host id ${this.config.hostId} is in use by a live host: ${describe(record)} renewed it`);
    }
    // The read that ends the wait must have been submitted after the deadline.
    if (readSubmittedAtMs >= this.aging.seenAtMs + this.aging.deadAfterMs && fresh) this.writeJoin(record, nowMs);
    else this.scheduleAgingRead(nowMs);
  }

  /** Re-read every renewal interval, and once more right when the record would be dead. */
  private scheduleAgingRead(nowMs: number): void {
    const a = this.aging!;
    a.nextReadAtMs = Math.min(nowMs + this.timing.renewIntervalMs, a.seenAtMs + a.deadAfterMs);
  }

  private isPreviousIncarnation(record: DeltaRecord): boolean {
    const gone = this.previousGone;
    return gone !== undefined && gone.hostName === record.owner.hostName && gone.bootId === record.owner.bootId && gone.nonce === record.owner.nonce;
  }

  private writeJoin(current: DeltaRecord, nowMs: number): void {
    this.aging = undefined;
    this.joinTimestampMs = Math.max(1, nowMs);
    this.written = this.ourRecord(current.generation + 1, this.joinTimestampMs, current.requests);
    this.lastGoodMs = undefined;
    this.writeOwn('join-write', nowMs);
  }

  private onJoinWritten(submittedAtMs: number, nowMs: number): void {
    this.lastGoodMs = submittedAtMs;
    this.settleUntilMs = nowMs + this.timing.joinSettleMs;
  }

  private onVerifyRead(records: ReturnType<DeltaEngine['parse']>, submittedAtMs: number, nowMs: number): void {
    const own = records[this.config.hostId - 1]!;
    if (!own.ok) return this.failJoin('storage', own.error.message);
    if (!this.isOurs(own.value)) return this.failJoin('taken-concurrently', `host id ${this.config.hostId} was written by ${describe(own.value)} while we joined`);
    // A verify that ends after T+8N (a paused helper) proves a lease that has already expired.
    if (nowMs >= this.lastGoodMs! + this.timing.failMs) return this.failJoin('fail-deadline', 'the join was confirmed only after its fail deadline');
    this.phase = 'held';
    this.warned = false;
    this.nextRenewAtMs = Math.max(nowMs, this.lastGoodMs! + this.timing.renewIntervalMs);
    this.verifyRead = { records, submittedAtMs };
    this.outcomes.push({ type: 'joined', generation: this.written!.generation, validUntilMs: this.validUntilMs! });
  }

  private failJoin(code: DeltaFailure, reason: string): void {
    this.phase = 'idle';
    this.aging = undefined;
    this.settleUntilMs = undefined;
    this.lastGoodMs = undefined;
    this.outcomes.push({ type: 'join-failed', code, reason });
  }

  // ---- resume (helper restart, same incarnation) ----

  private onResume(nowMs: number, generation: number): void {
    if (this.phase !== 'idle') {
      this.outcomes.push({ type: 'join-failed', code: 'busy', reason: `cannot resume while ${this.phase}` });
      return;
    }
    this.phase = 'joining';
    this.resumeGeneration = generation;
    this.readArea('resume-read', nowMs);
  }

  /**
   * Our record must still be this incarnation's at that generation. Its
   * timestamp is the previous helper's T (the monotonic time, shared by every
   * process of this boot, just before it submitted that write); one ms less
   * is taken, so the fail deadline never moves later than the truth.
   */
  private onResumeRead(records: ReturnType<DeltaEngine['parse']>, nowMs: number): void {
    const own = records[this.config.hostId - 1]!;
    if (!own.ok) return this.failJoin('storage', own.error.message);
    const record = own.value;
    const inc = this.config.incarnation;
    const ours = record.owner.hostName === inc.hostName && record.owner.bootId === inc.bootId && record.owner.nonce === inc.nonce;
    if (!ours || record.generation !== this.resumeGeneration || record.timestampMs === 0) {
      return this.failJoin('resume-mismatch', `host id ${this.config.hostId} holds ${describe(record)}, not this incarnation at generation ${this.resumeGeneration}`);
    }
    const lastGoodMs = record.timestampMs - 1;
    if (nowMs >= lastGoodMs + this.timing.failMs) return this.failJoin('fail-deadline', 'the record to resume is past its fail deadline');
    this.written = record;
    this.joinTimestampMs = 1;
    this.lastGoodMs = lastGoodMs;
    this.phase = 'held';
    this.warned = false;
    this.nextRenewAtMs = nowMs;
    this.outcomes.push({ type: 'joined', generation: record.generation, validUntilMs: this.validUntilMs! });
  }

  // ---- renew ----

  private startRenewal(nowMs: number): void {
    this.renewAttemptAtMs = nowMs;
    this.nextRenewAtMs = nowMs + this.timing.renewIntervalMs;
    // Like a join write, a renewal write must rest on a read submitted at most N ago.
    const verify = this.verifyRead;
    this.verifyRead = undefined;
    if (verify && nowMs - verify.submittedAtMs <= this.timing.ioTimeoutMs) return this.onRenewRead(verify.records, nowMs);
    this.readArea('renew-read', nowMs);
  }

  private onRenewRead(records: ReturnType<DeltaEngine['parse']>, nowMs: number): void {
    const own = records[this.config.hostId - 1]!;
    if (!own.ok) {
      this.outcomes.push({ type: 'renew-error', reason: own.error.message });
      return;
    }
    // Another host configured with our host id fences us at once (and the log names both).
    if (!this.isOurs(own.value)) return this.lose('record-taken', `host id ${this.config.hostId} now belongs to ${describe(own.value)}, not to us (${describeIncarnation(this.config.incarnation)})`);
    const timestampMs = Math.max(nowMs, this.written!.timestampMs + 1);
    this.written = { ...this.written!, timestampMs, requests: own.value.requests };
    this.writeOwn('renew-write', nowMs);
  }

  private onRenewWritten(submittedAtMs: number, nowMs: number): void {
    this.lastGoodMs = submittedAtMs;
    this.warned = false;
    this.outcomes.push({ type: 'renewed', renewedAtMs: submittedAtMs, validUntilMs: this.validUntilMs!, latencyMs: nowMs - this.renewAttemptAtMs });
  }

  /** Our record on disk is ours if it names our incarnation and generation and a timestamp we wrote. */
  private isOurs(record: DeltaRecord): boolean {
    const w = this.written!;
    const inc = this.config.incarnation;
    return (
      record.generation === w.generation &&
      record.owner.hostName === inc.hostName &&
      record.owner.bootId === inc.bootId &&
      record.owner.nonce === inc.nonce &&
      record.timestampMs >= this.joinTimestampMs &&
      record.timestampMs <= w.timestampMs
    );
  }

  // ---- leave ----

  private onLeave(nowMs: number): void {
    if (this.phase !== 'held') {
      this.outcomes.push({ type: 'left', clean: false, reason: `not held (${this.phase})` });
      if (this.phase !== 'joining') this.phase = 'left';
      return;
    }
    if ([...this.inflight.values()].some((i) => i.purpose === 'renew-write')) {
      // Our sector has a write that may still land: a free write now could be overtaken by it.
      this.phase = 'left';
      this.outcomes.push({ type: 'left', clean: false, reason: 'a renewal write is unfinished; the record will age out instead of being written free' });
      return;
    }
    this.phase = 'leaving';
    this.written = { ...this.written!, timestampMs: 0 };
    this.writeOwn('leave-write', nowMs);
  }

  // ---- I/O plumbing ----

  private onIo(result: IoResult, nowMs: number): void {
    const inflight = this.inflight.get(result.id);
    assert.ok(inflight, `delta engine got a result for unknown I/O ${result.id}`);
    this.inflight.delete(result.id);
    const { purpose, submittedAtMs } = inflight;
    if (!result.ok) return this.onIoFailed(purpose, `${purpose} ${result.reason}: ${result.detail}`);
    if (purpose === 'join-write') return this.phase === 'joining' ? this.onJoinWritten(submittedAtMs, nowMs) : undefined;
    if (purpose === 'renew-write') return this.phase === 'held' ? this.onRenewWritten(submittedAtMs, nowMs) : undefined;
    if (purpose === 'leave-write') {
      this.phase = 'left';
      this.outcomes.push({ type: 'left', clean: true, reason: 'record written free' });
      return;
    }
    assert.ok(result.data, 'read completed without data');
    const records = this.parse(result.data);
    this.table.observe(records, submittedAtMs, nowMs);
    if ((purpose === 'join-read' || purpose === 'aging-read') && this.phase === 'joining') this.onJoinRead(records, submittedAtMs, nowMs, purpose);
    else if (purpose === 'verify-read' && this.phase === 'joining') this.onVerifyRead(records, submittedAtMs, nowMs);
    else if (purpose === 'renew-read' && this.phase === 'held') this.onRenewRead(records, nowMs);
    else if (purpose === 'resume-read' && this.phase === 'joining') this.onResumeRead(records, nowMs);
  }

  private onIoFailed(purpose: Purpose, reason: string): void {
    if (purpose === 'leave-write') {
      this.phase = 'left';
      this.outcomes.push({ type: 'left', clean: false, reason });
    } else if (this.phase === 'joining') {
      this.failJoin('storage', reason);
    } else if (this.phase === 'held') {
      this.outcomes.push({ type: 'renew-error', reason });
    }
  }

  private checkDeadlines(nowMs: number): void {
    if (this.phase === 'joining') this.advanceJoin(nowMs);
    if (this.phase !== 'held') return;
    const validUntil = this.validUntilMs!;
    if (nowMs >= validUntil) return this.lose('fail-deadline', `no successful renewal since ${this.lastGoodMs} ms (fail deadline ${validUntil} ms passed)`);
    if (!this.warned && nowMs >= this.lastGoodMs! + this.timing.renewWarnMs) {
      this.warned = true;
      this.outcomes.push({ type: 'renew-warning', lastRenewedAtMs: this.lastGoodMs! });
    }
    if (this.nextRenewAtMs !== undefined && nowMs >= this.nextRenewAtMs && this.inflight.size === 0) this.startRenewal(nowMs);
  }

  private advanceJoin(nowMs: number): void {
    if (this.inflight.size > 0) return;
    if (this.lastGoodMs !== undefined && nowMs >= this.lastGoodMs + this.timing.failMs) return this.failJoin('fail-deadline', 'joining took longer than the fail time');
    if (this.settleUntilMs !== undefined && nowMs >= this.settleUntilMs) {
      this.settleUntilMs = undefined;
      this.readArea('verify-read', nowMs);
    } else if (this.aging && nowMs >= this.aging.nextReadAtMs) {
      this.readArea('aging-read', nowMs);
    }
  }

  private nextWake(): number | undefined {
    const candidates: number[] = [];
    if (this.phase === 'held') {
      candidates.push(this.validUntilMs!);
      if (!this.warned) candidates.push(this.lastGoodMs! + this.timing.renewWarnMs);
      // A renewal waits for unfinished I/O; its completion is the next event then.
      if (this.nextRenewAtMs !== undefined && this.inflight.size === 0) candidates.push(this.nextRenewAtMs);
    }
    if (this.phase === 'joining' && this.inflight.size === 0) {
      if (this.settleUntilMs !== undefined) candidates.push(this.settleUntilMs);
      if (this.aging) candidates.push(this.aging.nextReadAtMs);
    }
    return candidates.length === 0 ? undefined : Math.min(...candidates);
  }

  private lose(code: DeltaFailure, reason: string): void {
    this.phase = 'lost';
    this.outcomes.push({ type: 'lost', code, reason });
  }

  private readArea(purpose: Purpose, nowMs: number): void {
    const id = this.ids.take();
    this.inflight.set(id, { purpose, submittedAtMs: nowMs });
    this.ios.push({ kind: 'read', id, offset: 0, length: specBytes(this.config.lockspace) });
  }

  private writeOwn(purpose: Purpose, nowMs: number): void {
    const id = this.ids.take();
    this.inflight.set(id, { purpose, submittedAtMs: nowMs });
    const offset = hostSector('lockspace', this.config.hostId) * this.config.lockspace.sectorSize;
    this.ios.push({ kind: 'write', id, offset, data: encodeDeltaRecord(identityOf(this.config.lockspace), this.written!) });
  }

  private ourRecord(generation: number, timestampMs: number, requests: readonly number[]): DeltaRecord {
    return {
      hostId: this.config.hostId,
      generation,
      timestampMs,
      ownerIoTimeoutMs: this.config.lockspace.ioTimeoutMs,
      ownerWatchdogFireTimeoutMs: this.config.watchdogFireTimeoutMs,
      areaIoTimeoutMs: this.config.lockspace.ioTimeoutMs,
      ownerFeatures: this.config.ownerFeatures,
      owner: this.config.incarnation,
      requests,
    };
  }

  private parse(data: Uint8Array) {
    return parseLockspaceArea(data, this.config.lockspace, `lockspace ${JSON.stringify(this.config.lockspace.lockspaceName)}`).hosts;
  }
}

export function describeIncarnation(incarnation: Incarnation): string {
  return `${incarnation.hostName}/${incarnation.bootId.slice(0, 8)}/${incarnation.nonce.slice(0, 8)}`;
}

function describe(record: DeltaRecord): string {
  return `${describeIncarnation(record.owner)} generation ${record.generation}`;
}
