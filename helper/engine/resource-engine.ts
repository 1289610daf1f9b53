import assert from 'node:assert/strict';
import {
  decodeLeaderRecord,
  encodeHostBlock,
  FormatError,
  encodeLeaderRecord,
  identityOf,
  parseResourceArea,
  RECORD_BYTES,
  specBytes,
  type HostBlock,
  type LeaderRecord,
  type ResourceArea,
  type ResourceSpec,
} from '../format/index.js';
import { nextBallot } from './ballot.js';
import type { BrokenRules } from './broken-rules.js';
import type { HostStatus } from './host-table.js';
import { IoIds, type Effects, type IoId, type IoRequest, type IoResult } from './io.js';

/**
 * One host's view of one resource lease (Gafni & Lamport's Disk Paxos on one
 * disk with a block per host), as a pure state machine.
 *
 * Acquire: read the area (leader + every host block); if the leader names a
 * live owner, busy. Otherwise run a ballot for lver+1: write our block with
 * a new ballot number (phase 1), read every block, adopt the highest-balloted
 * value of this lver, write it (phase 2), read every block again; then commit
 * owner = (host id, generation) and lver into the leader. 3 reads + 3 writes.
 * Release: read the leader sector, write it free, then mark our block released
 * (so that a host meeting our value under a rolled-back leader need not wait
 * for us). 1 read + 2 writes.
 *
 * No helping commits: a host never writes the leader for another owner. After
 * its ballot decides a value that is finished (its owner gone, or marked
 * released in its own block), it ballots for the next lver directly.
 *
 * Shared mode: win the leader by a ballot, set the shared bit in our own
 * block, write the leader free; an exclusive acquirer is busy while any live
 * host's shared bit is set for its current generation. No host ever writes
 * another host's block.
 *
 * After phase 2 has started, an I/O failure never lets the host forget the
 * lease: the engine resolves that lver in the background (re-running the
 * ballot; if the decided value is ours, writing the leader free). A contended
 * ballot whose phase 2 wrote our own value keeps balloting that lver until it
 * learns the decided value (ours: acquired; another's: busy or the next lver),
 * and resolves it in the background if that takes more than ballotAttemptsMax.
 */

export type LeaseMode = 'exclusive' | 'shared';

/** What the resource engine needs from the lockspace's delta lease engine. */
export interface Liveness {
  ownerGone(hostId: number, generation: number, nowMs: number): boolean;
  hostStatus(hostId: number, nowMs: number): HostStatus;
  /** Our own delta lease at this generation is still valid (before T + 8N of its last renewal). */
  ownLeaseValid(generation: number, nowMs: number): boolean;
}

export interface ResourceConfig {
  readonly resource: ResourceSpec;
  readonly hostId: number;
  /** Pause before retrying a contended ballot or resolving an uncertain one. */
  readonly retryDelayMs: number;
  /** Contended ballots retried within one acquire before it gives up. */
  readonly ballotAttemptsMax: number;
  /** Test only (simulator): rules broken on purpose. */
  readonly brokenRules?: BrokenRules;
}

export type ResourceEvent =
  | { readonly type: 'acquire'; readonly nowMs: number; readonly mode: LeaseMode; readonly generation: number; readonly ballotFloor: number }
  | { readonly type: 'release'; readonly nowMs: number }
  /** Adopt the lease a previous helper of this same incarnation held at `lver` (a helper restart). */
  | { readonly type: 'resume'; readonly nowMs: number; readonly generation: number; readonly lver: number; readonly mode: LeaseMode }
  | { readonly type: 'io'; readonly nowMs: number; readonly result: IoResult }
  | { readonly type: 'tick'; readonly nowMs: number }
  /** Our delta lease is gone: leases of that generation are void; stop resolving. */
  | { readonly type: 'generation-ended'; readonly nowMs: number };

export interface Holder {
  readonly hostId: number;
  readonly generation: number;
  readonly mode: LeaseMode;
  readonly status: HostStatus;
}

export type ResourceOutcome =
  | { readonly type: 'acquired'; readonly lver: number; readonly mode: LeaseMode }
  | {
      readonly type: 'busy';
      readonly holder: Holder;
      readonly reason: string;
      /**
       * Set when our own value had reached phase 2 at this lver: the engine knows how that lver ended
       * (another value was decided, or ours was and is committed free) and holds nothing of it.
       */
      readonly resolvedLver?: number;
    }
  | {
      readonly type: 'acquire-failed';
      readonly code: 'storage' | 'contended' | 'not-free' | 'identity' | 'lockspace-lost' | 'resume-mismatch';
      readonly reason: string;
      readonly resolving: boolean;
      /** As for busy: our phase-2 value at this lver is settled and nothing of it is ours. */
      readonly resolvedLver?: number;
    }
  | { readonly type: 'resolved'; readonly lver: number; readonly wasOurs: boolean }
  | { readonly type: 'released'; readonly lver: number; readonly note: string | undefined }
  | { readonly type: 'release-failed'; readonly reason: string };

type Phase = 'free' | 'acquiring' | 'held' | 'releasing' | 'resolving';
type Step = 'resume-read' | 'read' | 'p1-write' | 'p1-read' | 'p2-write' | 'p2-read' | 'commit' | 'shared-mark' | 'shared-leader-free' | 'shared-clear' | 'release-read' | 'release-write' | 'release-mark';

interface Attempt {
  readonly mode: LeaseMode;
  readonly generation: number;
  /** True while resolving an uncertain lver rather than acquiring. */
  readonly resolving: boolean;
  lver: number;
  mbal: number;
  value: { hostId: number; generation: number } | undefined;
  /** Phase 2 has started: from here an I/O failure must not forget the lease. */
  phase2: boolean;
  /** The lver at which phase 2 wrote our own value, until we learn whether it was decided there. */
  ownValueLver: number | undefined;
  /** An lver at which our phase-2 value was learned not to be decided (reported with busy). */
  resolvedLver: number | undefined;
  attempts: number;
  /** Contended ballots run to learn the value at ownValueLver. */
  learnAttempts: number;
  /** Resolving learnt that the value of its lver was ours (and wrote it free). */
  decidedOurs: boolean;
  ownBlock: HostBlock | undefined;
  /** The blocks of the attempt's first read (only a broken rule uses them). */
  firstBlocks: readonly HostBlock[];
  /** A live shared holder seen after our value was decided: we committed the leader free instead. */
  sharedConflict: HostBlock | undefined;
}

export class ResourceEngine {
  private readonly ids = new IoIds();
  private readonly inflight = new Map<IoId, { step: Step; epoch: number; leader?: { lver: number; generation: number } }>();
  /** Bumped by every acquire, release and generation end: results of older I/O are ignored. */
  private epoch = 0;
  /**
   * Versions this engine itself committed for us, at one generation (a leader naming an older
   * generation of ours names a gone owner), so that a leader naming us at one is explained.
   */
  private known = { generation: 0, lvers: new Set<number>() };
  private phase: Phase = 'free';
  private attempt: Attempt | undefined;
  private held: { lver: number; mode: LeaseMode; generation: number; ownBlock: HostBlock } | undefined;
  private ballotFloor = 0;
  private retryAtMs: number | undefined;
  private outcomes: ResourceOutcome[] = [];
  private ios: IoRequest[] = [];
  private persist: number | undefined;
  private nowMs = 0;

  constructor(
    readonly config: ResourceConfig,
    private readonly liveness: Liveness,
  ) {
    assert.ok(config.hostId >= 1 && config.hostId <= config.resource.hostsMax, `host id ${config.hostId} outside 1..${config.resource.hostsMax}`);
    assert.ok(config.ballotAttemptsMax >= 1 && config.retryDelayMs >= 1, 'retry limits must be positive');
  }

  /** I/O of the current attempt or release is unfinished (older I/O no longer matters). */
  private ioPending(): boolean {
    for (const entry of this.inflight.values()) if (entry.epoch === this.epoch) return true;
    return false;
  }

  get state(): Phase {
    return this.phase;
  }

  /** The lease we hold, if any. */
  get holding(): { lver: number; mode: LeaseMode } | undefined {
    return this.held && (this.phase === 'held' || this.phase === 'releasing') ? { lver: this.held.lver, mode: this.held.mode } : undefined;
  }

  step(event: ResourceEvent): Effects<ResourceOutcome> {
    this.outcomes = [];
    this.ios = [];
    this.persist = undefined;
    this.nowMs = event.nowMs;
    switch (event.type) {
      case 'acquire':
        this.onAcquire(event.mode, event.generation, event.ballotFloor);
        break;
      case 'release':
        this.onRelease();
        break;
      case 'resume':
        this.onResume(event.generation, event.lver, event.mode);
        break;
      case 'io':
        this.onIo(event.result);
        break;
      case 'tick':
        if (this.retryAtMs !== undefined && event.nowMs >= this.retryAtMs && !this.ioPending()) {
          this.retryAtMs = undefined;
          if (this.attempt && !this.liveness.ownLeaseValid(this.attempt.generation, event.nowMs)) this.leaseInvalid();
          else this.readArea();
        }
        break;
      case 'generation-ended':
        this.onGenerationEnded();
        break;
    }
    const effects: Effects<ResourceOutcome> = { ios: this.ios, outcomes: this.outcomes, wakeAtMs: this.ioPending() ? undefined : this.retryAtMs };
    return this.persist === undefined ? effects : { ...effects, persistBallotFloor: this.persist };
  }

  // ---- resume (helper restart, same incarnation) ----

  private resuming: { generation: number; lver: number; mode: LeaseMode } | undefined;

  /** Reads the whole area back before adopting the lease: the leader (exclusive) or our block (shared) must name us. */
  private onResume(generation: number, lver: number, mode: LeaseMode): void {
    if (this.phase !== 'free') {
      this.outcomes.push({ type: 'acquire-failed', code: 'not-free', reason: `cannot resume while ${this.phase}`, resolving: false });
      return;
    }
    this.epoch++;
    this.phase = 'acquiring';
    this.resuming = { generation, lver, mode };
    const id = this.ids.take();
    this.inflight.set(id, { step: 'resume-read', epoch: this.epoch });
    this.ios.push({ kind: 'read', id, offset: 0, length: specBytes(this.config.resource) });
  }

  private onResumeRead(area: ResourceArea): void {
    const r = this.resuming!;
    const read = usable(area);
    if (typeof read === 'string') return this.resumeFailed('storage', read);
    if (!this.liveness.ownLeaseValid(r.generation, this.nowMs)) return this.resumeFailed('lockspace-lost', `our delta lease at generation ${r.generation} is not valid`);
    const leader = read.leader;
    const own = read.blocks[this.config.hostId - 1]!;
    const ours =
      r.mode === 'exclusive'
        ? leader.ownerHostId === this.config.hostId && leader.ownerGeneration === r.generation && leader.lver === r.lver
        : own.shared && own.sharedGeneration === r.generation;
    if (!ours) {
      return this.resumeFailed('resume-mismatch', r.mode === 'exclusive' ? `the leader names host ${leader.ownerHostId} generation ${leader.ownerGeneration} at lver ${leader.lver}, not us at lver ${r.lver}` : 'our block holds no shared mark of this generation');
    }
    this.knowLver(r.generation, r.lver);
    this.held = { lver: r.lver, mode: r.mode, generation: r.generation, ownBlock: own };
    this.resuming = undefined;
    this.phase = 'held';
    this.outcomes.push({ type: 'acquired', lver: r.lver, mode: r.mode });
  }

  private resumeFailed(code: 'storage' | 'lockspace-lost' | 'resume-mismatch', reason: string): void {
    this.resuming = undefined;
    this.phase = 'free';
    this.outcomes.push({ type: 'acquire-failed', code, reason, resolving: false });
  }

  // ---- acquire ----

  private onAcquire(mode: LeaseMode, generation: number, ballotFloor: number): void {
    if (this.phase !== 'free') {
      this.outcomes.push({ type: 'acquire-failed', code: 'not-free', reason: `cannot acquire while ${this.phase}`, resolving: this.phase === 'resolving' });
      return;
    }
    this.ballotFloor = Math.max(this.ballotFloor, ballotFloor);
    this.epoch++;
    this.phase = 'acquiring';
    this.attempt = {
      mode,
      generation,
      resolving: false,
      lver: 0,
      mbal: 0,
      value: undefined,
      phase2: false,
      ownValueLver: undefined,
      resolvedLver: undefined,
      attempts: 1,
      learnAttempts: 0,
      decidedOurs: false,
      ownBlock: undefined,
      firstBlocks: [],
      sharedConflict: undefined,
    };
    this.readArea();
  }

  /** The first read of a ballot: decide whether to run one, and for which lver. */
  private onAreaRead(area: ResourceArea): void {
    const a = this.attempt!;
    const read = usable(area);
    // After phase 2 an unusable read must not forget the lease either.
    if (typeof read === 'string') return this.ioTrouble(read);
    const leader = read.leader;
    const blocks = this.visible(read.blocks);
    a.ownBlock = read.blocks[this.config.hostId - 1]!;
    a.firstBlocks = blocks;
    if (a.resolving) {
      if (leader.lver >= a.lver) return this.resolvedByLeader(leader);
    } else if (a.ownValueLver === undefined || this.settledNotOurs(leader, blocks)) {
      if (!this.chooseInstance(leader, blocks)) return;
    }
    // (While our phase-2 value may be decided at a.lver, ballot it again whatever the leader says:
    // a rolled-back leader may name a live owner of an older version.)
    this.startBallot(blocks);
  }

  /**
   * A fresh ballot of an acquire: busy (false) while a live host holds the lease or is deciding
   * the lver we would ballot; otherwise sets a.lver and returns true.
   */
  private chooseInstance(leader: LeaderRecord, blocks: readonly HostBlock[]): boolean {
    const a = this.attempt!;
    if (leader.ownerHostId !== 0) {
      // The leader may name us at this generation although we hold nothing: a late commit of a
      // lease this engine already released or resolved; then ballot past it. A version of ours
      // we never knew means another helper writes with our host id and generation: refuse.
      const namesUs = leader.ownerHostId === this.config.hostId && leader.ownerGeneration === a.generation;
      if (namesUs && !this.knows(a.generation, leader.lver)) {
        this.failAttempt('identity', `the leader names our host id ${this.config.hostId} and generation ${a.generation} at lver ${leader.lver}, which this helper never held: is another host configured with host id ${this.config.hostId}?`);
        return false;
      }
      if (!namesUs && !this.finished({ hostId: leader.ownerHostId, generation: leader.ownerGeneration }, leader.lver, blocks)) {
        this.busy(leader.ownerHostId, leader.ownerGeneration, 'exclusive', `held by host ${leader.ownerHostId} generation ${leader.ownerGeneration} at lver ${leader.lver}`);
        return false;
      }
    }
    const shared = a.mode === 'exclusive' ? this.liveSharedHolder(blocks) : undefined;
    if (shared) {
      this.busy(shared.hostId, shared.sharedGeneration, 'shared', `held in shared mode by host ${shared.hostId}`);
      return false;
    }
    a.lver = this.nextInstance(leader, blocks, a.generation);
    // A live host's value accepted at this lver and not committed: that host is deciding it
    // (acquiring or resolving). A ballot of ours would only learn it and end busy, and its higher
    // number would make that host's ballot start over: under contention, a livelock.
    const pending = bestAccepted(blocks, a.lver)?.inp;
    if (pending && !this.isOurs(pending, a) && !this.finished(pending, a.lver, blocks)) {
      this.busy(pending.hostId, pending.generation, 'exclusive', `host ${pending.hostId} generation ${pending.generation} is deciding lver ${a.lver}`);
      return false;
    }
    return true;
  }

  /** Phase 1 of a ballot for a.lver: our block with a new ballot number, keeping a value we accepted at that lver. */
  private startBallot(blocks: readonly HostBlock[]): void {
    const a = this.attempt!;
    let seen = this.ballotFloor;
    for (const b of blocks) if (b.mbal > seen) seen = b.mbal;
    a.mbal = nextBallot(this.config.hostId, this.config.resource.hostsMax, this.broken.reuseBallotNumber ? 0 : seen);
    this.ballotFloor = a.mbal;
    this.persist = a.mbal;
    const own = a.ownBlock!;
    const sameInstance = own.inp.lver === a.lver;
    this.writeOwnBlock('p1-write', {
      ...own,
      mbal: a.mbal,
      bal: sameInstance ? own.bal : 0,
      inp: sameInstance ? own.inp : { hostId: 0, generation: 0, lver: a.lver, timestampMs: 0 },
      writerGeneration: a.generation,
      released: false,
    });
  }

  /**
   * While learning: the area alone shows that the value decided at our phase-2 lver K is not ours.
   * A leader at K or later was committed by the owner of K's value, or by a host that ballots past K
   * only once K's value is finished: never ours while we are live and hold nothing. The same holds
   * for another host's block balloting past K.
   */
  private settledNotOurs(leader: LeaderRecord, blocks: readonly HostBlock[]): boolean {
    const a = this.attempt!;
    const k = a.ownValueLver!;
    const later = leader.lver >= k || blocks.some((b) => b.hostId !== this.config.hostId && b.inp.lver > k);
    if (later) this.learnedNotOurs();
    return later;
  }

  /** The value decided at our phase-2 lver is known not to be ours. */
  private learnedNotOurs(): void {
    const a = this.attempt!;
    a.resolvedLver = a.ownValueLver;
    a.ownValueLver = undefined;
  }

  /**
   * The lver to ballot for: past the leader and past every version any block (ours included,
   * phase 1 only or not) has balloted for. A late leader write can roll the leader back behind
   * them; balloting the highest such version learns its value. Only when that value is a version
   * of ours this engine already finished is the next version the one to take.
   */
  private nextInstance(leader: LeaderRecord, blocks: readonly HostBlock[], generation: number): number {
    let top = leader.lver + 1;
    for (const b of blocks) if (b.inp.lver > top) top = b.inp.lver;
    const best = bestAccepted(blocks, top);
    const finishedOurs = best !== undefined && best.inp.hostId === this.config.hostId && best.inp.generation === generation && (this.knows(generation, top) || this.releasedBy(best.inp, top, blocks));
    return finishedOurs ? top + 1 : top;
  }

  /** Phase 1 or 2 read: abort if a higher ballot or a later instance is seen. */
  private onBallotRead(area: ResourceArea, step: 'p1-read' | 'p2-read'): void {
    const a = this.attempt!;
    const read = usable(area);
    if (typeof read === 'string') return this.ioTrouble(read);
    const leader = read.leader;
    const blocks = this.visible(read.blocks);
    if (leader.lver >= a.lver) return a.resolving ? this.resolvedByLeader(leader) : this.retryContended(`lver ${a.lver} was committed by host ${leader.writerHostId} meanwhile`);
    // Our own block must read back as we last wrote it: a late write of a previous incarnation (or
    // corruption) that lowered it would hide our promise or our accepted value from the others.
    const own = blockOf(blocks, this.config.hostId);
    const last = this.lastOwnBlock;
    if (!own || !last || own.mbal !== last.mbal || own.bal !== last.bal || own.inp.hostId !== last.inp.hostId || own.inp.generation !== last.inp.generation || own.inp.lver !== last.inp.lver) {
      return this.retryContended(`our own block does not read back as written (mbal ${own?.mbal}, expected ${last?.mbal})`);
    }
    for (const b of blocks) {
      if (b.inp.lver > a.lver) return this.retryContended(`host ${b.hostId} is balloting for lver ${b.inp.lver}`);
      if (b.inp.lver === a.lver && b.mbal > a.mbal) return this.retryContended(`host ${b.hostId} has a higher ballot ${b.mbal} than ours ${a.mbal}`);
    }
    if (step === 'p1-read') return this.startPhase2(blocks);
    this.decided(blocks);
  }

  private startPhase2(blocks: readonly HostBlock[]): void {
    const a = this.attempt!;
    const best = bestAccepted(blocks, a.lver);
    a.value = best ? { hostId: best.inp.hostId, generation: best.inp.generation } : { hostId: this.config.hostId, generation: a.generation };
    a.phase2 = true;
    // Another value with the highest bal proves ours was not decided here: a decided value is the
    // one every higher accepted ballot carries.
    if (this.isOurs(a.value, a)) a.ownValueLver = a.lver;
    else if (a.ownValueLver === a.lver) this.learnedNotOurs();
    this.writeOwnBlock('p2-write', {
      ...a.ownBlock!,
      mbal: a.mbal,
      bal: a.mbal,
      inp: { hostId: a.value.hostId, generation: a.value.generation, lver: a.lver, timestampMs: this.nowMs },
      writerGeneration: a.generation,
      released: false,
    });
  }

  /** The value of lver is decided. Commit it to the leader (or, when we may not use it, free). */
  private decided(blocks: readonly HostBlock[]): void {
    const a = this.attempt!;
    const ours = this.isOurs(a.value!, a);
    // A value of ours that we may not use (resolving, or a live shared holder appeared) is committed free.
    a.sharedConflict = ours && !a.resolving && a.mode === 'exclusive' ? this.liveSharedHolder(blocks) : undefined;
    if (!ours) {
      // Another host's value: only it commits its lease. A helping commit could land late, after
      // that host released, and roll the leader back onto a live owner that holds nothing.
      if (a.resolving) return this.finishResolving(a.lver, false);
      if (!this.finished(a.value!, a.lver, blocks)) {
        return this.busy(a.value!.hostId, a.value!.generation, 'exclusive', `lver ${a.lver} was decided for host ${a.value!.hostId} generation ${a.value!.generation}`);
      }
      return this.ballotPast(blocks);
    }
    const owner = a.resolving || a.sharedConflict ? { hostId: 0, generation: 0 } : a.value!;
    this.knowLver(a.generation, a.lver);
    this.writeLeader('commit', { lver: a.lver, ownerHostId: owner.hostId, ownerGeneration: owner.generation, timestampMs: this.nowMs, writerHostId: this.config.hostId, writerGeneration: a.generation, flags: 0 });
  }

  private onCommitted(): void {
    const a = this.attempt!;
    const ours = this.isOurs(a.value!, a);
    assert.ok(ours, 'only our own value is ever committed');
    if (a.resolving) return this.finishResolving(a.lver, true);
    if (a.mode === 'exclusive') {
      const conflict = a.sharedConflict;
      if (conflict) {
        // Our value was decided and committed free: this lver is settled, nothing of it is ours.
        a.resolvedLver = a.lver;
        a.ownValueLver = undefined;
        return this.busy(conflict.hostId, conflict.sharedGeneration, 'shared', `held in shared mode by host ${conflict.hostId}`);
      }
      return this.acquiredExclusive(a.lver, a, this.lastOwnBlock!);
    }
    // The leader is written free next: our exclusive claim at this lver is given up (released).
    this.writeOwnBlock('shared-mark', { ...this.lastOwnBlock!, shared: true, sharedGeneration: a.generation, released: true });
  }

  private isOurs(value: { hostId: number; generation: number }, a: Attempt): boolean {
    return value.hostId === this.config.hostId && value.generation === a.generation;
  }

  /** The owner of a value decided at lver is done with it: its generation is gone, or it marked it released. */
  private finished(value: { hostId: number; generation: number }, lver: number, blocks: readonly HostBlock[]): boolean {
    return this.releasedBy(value, lver, blocks) || this.liveness.ownerGone(value.hostId, value.generation, this.nowMs);
  }

  /** The owner's own block says it holds nothing exclusively at this lver (MODE_RELEASED, same generation). */
  private releasedBy(value: { hostId: number; generation: number }, lver: number, blocks: readonly HostBlock[]): boolean {
    const block = blockOf(blocks, value.hostId);
    return block !== undefined && block.released && block.writerGeneration === value.generation && block.inp.lver >= lver;
  }

  /**
   * Our ballot decided a finished value at a.lver: ballot for the next lver at once, without
   * committing that value for its owner (no helping commits) and without reading again.
   */
  private ballotPast(blocks: readonly HostBlock[]): void {
    const a = this.attempt!;
    if (a.mode === 'exclusive') {
      const shared = this.liveSharedHolder(blocks);
      if (shared) return this.busy(shared.hostId, shared.sharedGeneration, 'shared', `held in shared mode by host ${shared.hostId}`);
    }
    a.lver++;
    a.value = undefined;
    a.phase2 = false;
    a.ownBlock = this.lastOwnBlock;
    this.startBallot(blocks);
  }

  /** Our block as we last wrote it. */
  private lastOwnBlock: HostBlock | undefined;

  private knowLver(generation: number, lver: number): void {
    if (this.known.generation !== generation) this.known = { generation, lvers: new Set() };
    this.known.lvers.add(lver);
  }

  private knows(generation: number, lver: number): boolean {
    return this.known.generation === generation && this.known.lvers.has(lver);
  }

  /**
   * A leader write of ours completed. No host writes the leader for another (no helping commits)
   * and our leader writes never overlap (one outstanding write per sector), so no write of ours
   * naming an older version can still land: a leader naming us there would be another writer's.
   */
  private leaderWritten(generation: number, lver: number): void {
    if (this.known.generation !== generation) return;
    for (const old of this.known.lvers) if (old < lver) this.known.lvers.delete(old);
  }

  private acquiredExclusive(lver: number, a: Attempt, ownBlock: HostBlock): void {
    this.knowLver(a.generation, lver);
    this.phase = 'held';
    this.held = { lver, mode: 'exclusive', generation: a.generation, ownBlock };
    this.attempt = undefined;
    this.outcomes.push({ type: 'acquired', lver, mode: 'exclusive' });
  }

  private busy(hostId: number, generation: number, mode: LeaseMode, reason: string): void {
    const resolvedLver = this.attempt?.resolvedLver;
    assert.ok(this.attempt?.ownValueLver === undefined, 'busy while our phase-2 value may be decided');
    this.phase = 'free';
    this.attempt = undefined;
    const holder = { hostId, generation, mode, status: this.liveness.hostStatus(hostId, this.nowMs) };
    this.outcomes.push(resolvedLver === undefined ? { type: 'busy', holder, reason } : { type: 'busy', holder, reason, resolvedLver });
  }

  private get broken(): BrokenRules {
    return this.config.brokenRules ?? {};
  }

  /** Every block of the area, except the one a broken rule skips. */
  private visible(blocks: HostBlock[]): HostBlock[] {
    if (!this.broken.skipHostBlockInBallotRead) return blocks;
    const skipped = blocks.filter((b) => b.hostId !== this.config.hostId).at(-1);
    return blocks.filter((b) => b !== skipped);
  }

  private liveSharedHolder(blocks: readonly HostBlock[]): HostBlock | undefined {
    return blocks.find((b) => b.hostId !== this.config.hostId && b.shared && !this.liveness.ownerGone(b.hostId, b.sharedGeneration, this.nowMs));
  }

  // ---- failures, retries and resolving ----

  /**
   * A ballot lost to another or saw the leader move. Resolving retries until it learns; a ballot
   * whose phase 2 wrote our value retries ballotAttemptsMax times to learn, then resolves in the
   * background; any other attempt gives up after ballotAttemptsMax ballots.
   */
  private retryContended(reason: string): void {
    const a = this.attempt!;
    if (this.broken.forgetContendedPhase2) a.ownValueLver = undefined;
    if (!a.resolving && a.ownValueLver !== undefined) {
      if (++a.learnAttempts > this.config.ballotAttemptsMax) return this.startResolving('contended', `${reason}; resolving lver ${a.lver} in the background`);
    } else if (!a.resolving && a.attempts++ >= this.config.ballotAttemptsMax) {
      return this.failAttempt('contended', reason);
    }
    this.retryAtMs = this.nowMs + this.config.retryDelayMs;
  }

  /** An I/O failed or a read was unusable. Before phase 2 the attempt simply fails; after, it must be resolved. */
  private ioTrouble(reason: string): void {
    const a = this.attempt!;
    if ((!a.phase2 || this.broken.forgetAfterPhase2Error) && !a.resolving) return this.failAttempt('storage', reason);
    if (!a.resolving) return this.startResolving('storage', `${reason}; resolving lver ${a.lver} in the background`);
    this.retryAtMs = this.nowMs + this.config.retryDelayMs;
  }

  /** Reports the acquire failed and keeps resolving its lver in the background. */
  private startResolving(code: 'storage' | 'contended' | 'lockspace-lost', reason: string): void {
    const a = this.attempt!;
    this.outcomes.push({ type: 'acquire-failed', code, reason, resolving: true });
    this.phase = 'resolving';
    this.attempt = { ...a, resolving: true, attempts: 1 };
    this.retryAtMs = this.nowMs + this.config.retryDelayMs;
  }

  /**
   * Our delta lease is not valid now (expired during a pause, or not yet renewed again). Before
   * phase 2 the attempt is simply dropped. After it, the lease may be decided for us: keep it and
   * resolve once the lease is valid again (or drop it when the generation ends).
   */
  private leaseInvalid(): void {
    const a = this.attempt!;
    const reason = `our delta lease at generation ${a.generation} is not valid now`;
    if (!a.phase2 && !a.resolving) return this.failAttempt('lockspace-lost', reason);
    if (!a.resolving) return this.startResolving('lockspace-lost', `${reason}; resolving lver ${a.lver} once it is`);
    this.retryAtMs = this.nowMs + this.config.retryDelayMs;
  }

  private failAttempt(code: 'storage' | 'contended' | 'identity' | 'lockspace-lost', reason: string): void {
    const resolvedLver = this.attempt?.resolvedLver;
    this.phase = 'free';
    this.attempt = undefined;
    const failed = { type: 'acquire-failed', code, reason, resolving: false } as const;
    this.outcomes.push(resolvedLver === undefined ? failed : { ...failed, resolvedLver });
  }

  private resolvedByLeader(leader: LeaderRecord): void {
    const a = this.attempt!;
    if (leader.lver === a.lver && leader.ownerHostId === this.config.hostId && leader.ownerGeneration === a.generation) {
      // The uncertain ballot was decided for us and committed: release it.
      a.value = { hostId: this.config.hostId, generation: a.generation };
      this.writeLeader('commit', { ...leader, ownerHostId: 0, ownerGeneration: 0, timestampMs: this.nowMs, writerHostId: this.config.hostId, writerGeneration: a.generation });
      return;
    }
    this.finishResolving(a.lver, false);
  }

  private finishResolving(lver: number, wasOurs: boolean): void {
    const a = this.attempt!;
    const last = this.lastOwnBlock;
    // A retry after a failed mark write finds the leader already free: it was ours all the same.
    a.decidedOurs ||= wasOurs;
    if (last && (a.decidedOurs || (a.mode === 'shared' && last.shared))) {
      // A shared bit that may have landed is cleared, or it would block exclusive acquirers for our
      // whole generation; a version of ours just written free is marked released.
      this.writeOwnBlock('shared-clear', { ...last, shared: false, sharedGeneration: 0, released: a.decidedOurs || last.released });
      return;
    }
    this.phase = 'free';
    this.attempt = undefined;
    this.outcomes.push({ type: 'resolved', lver, wasOurs: a.decidedOurs });
  }

  private onGenerationEnded(): void {
    // Leases of an ended generation are void for every other host once it is gone.
    this.epoch++;
    if (this.resuming) this.resumeFailed('lockspace-lost', 'our generation ended while resuming');
    if (this.phase !== 'free') {
      this.phase = 'free';
      this.attempt = undefined;
      this.held = undefined;
      this.retryAtMs = undefined;
    }
  }

  // ---- release ----

  private onRelease(): void {
    if (this.phase !== 'held' || !this.held) {
      this.outcomes.push({ type: 'release-failed', reason: `not held (${this.phase})` });
      return;
    }
    this.phase = 'releasing';
    this.epoch++;
    if (this.held.mode === 'shared') {
      this.writeOwnBlock('release-write', { ...this.held.ownBlock, shared: false, sharedGeneration: 0 });
      return;
    }
    const id = this.ids.take();
    this.inflight.set(id, { step: 'release-read', epoch: this.epoch });
    this.ios.push({ kind: 'read', id, offset: 0, length: Math.max(RECORD_BYTES, this.config.resource.sectorSize) });
  }

  private onReleaseRead(data: Uint8Array): void {
    const h = this.held!;
    let leader: LeaderRecord;
    try {
      // Only the leader sector was read: decode just it.
      leader = decodeLeaderRecord(data, { ...identityOf(this.config.resource), kind: 'leader', blockHostId: 0 }, { area: this.label(), block: 'leader (sector 0)' });
    } catch (error) {
      if (error instanceof FormatError) return this.releaseFailed(error.message);
      throw error;
    }
    if (leader.lver > h.lver) {
      this.releasedDone(`the leader is at lver ${leader.lver}, past ours (${h.lver}); not written`);
      return;
    }
    this.writeLeader('release-write', { lver: h.lver, ownerHostId: 0, ownerGeneration: 0, timestampMs: this.nowMs, writerHostId: this.config.hostId, writerGeneration: h.generation, flags: 0 });
  }

  private releasedDone(note: string | undefined): void {
    const lver = this.held!.lver;
    this.phase = 'free';
    this.held = undefined;
    this.outcomes.push({ type: 'released', lver, note });
  }

  private releaseFailed(reason: string): void {
    // Still ours on disk: the lease stays held until a release succeeds (or our generation ends).
    this.phase = 'held';
    this.outcomes.push({ type: 'release-failed', reason });
  }

  // ---- I/O plumbing ----

  private onIo(result: IoResult): void {
    const entry = this.inflight.get(result.id);
    assert.ok(entry, `resource engine got a result for unknown I/O ${result.id}`);
    this.inflight.delete(result.id);
    if (result.ok && entry.leader) this.leaderWritten(entry.leader.generation, entry.leader.lver);
    if (entry.epoch !== this.epoch) return; // from an attempt or release that has ended
    const step = entry.step;
    if (step === 'resume-read') {
      if (!result.ok) return this.resumeFailed('storage', `${step} ${result.reason}: ${result.detail}`);
      return this.onResumeRead(this.parse(result.data!));
    }
    if (step === 'release-read' || step === 'release-write' || step === 'release-mark') {
      if (!this.held) return; // our generation ended while the release ran
      // The leader is free once release-write succeeded: the mark only spares others a wait.
      if (step === 'release-mark') return this.releasedDone(result.ok ? undefined : `the released mark was not written (${result.reason}: ${result.detail})`);
      if (!result.ok) return this.releaseFailed(`${step} ${result.reason}: ${result.detail}`);
      if (step === 'release-read') return this.onReleaseRead(result.data!);
      // A shared release wrote our block (still marked released since the shared mark); an exclusive one marks it now.
      if (this.held.mode === 'shared') return this.releasedDone(undefined);
      return this.writeOwnBlock('release-mark', { ...this.held.ownBlock, released: true });
    }
    if (!this.attempt) return; // the attempt ended (generation ended) while the I/O ran
    // After a pause (a stopped helper, a slow event loop) our delta lease may have expired before
    // we noticed: nothing more may be written or reported for that generation. Its leases are
    // void for the other hosts once they see us gone, so forgetting the attempt is safe.
    if (!this.liveness.ownLeaseValid(this.attempt.generation, this.nowMs)) return this.leaseInvalid();
    if (!result.ok) {
      if (step === 'shared-mark' || step === 'shared-leader-free') return this.sharedTrouble(`${step} ${result.reason}: ${result.detail}`);
      if (step === 'shared-clear') {
        this.retryAtMs = this.nowMs + this.config.retryDelayMs;
        return;
      }
      return this.ioTrouble(`${step} ${result.reason}: ${result.detail}`);
    }
    switch (step) {
      case 'read':
        return this.onAreaRead(this.parse(result.data!));
      case 'p1-write':
        if (this.broken.skipPhase1Read) return this.startPhase2(this.attempt.firstBlocks);
        return this.readBallot('p1-read');
      case 'p2-write':
        return this.readBallot('p2-read');
      case 'p1-read':
      case 'p2-read':
        return this.onBallotRead(this.parse(result.data!), step);
      case 'commit':
        return this.onCommitted();
      case 'shared-mark':
        return this.writeLeader('shared-leader-free', { lver: this.attempt.lver, ownerHostId: 0, ownerGeneration: 0, timestampMs: this.nowMs, writerHostId: this.config.hostId, writerGeneration: this.attempt.generation, flags: 0 });
      case 'shared-leader-free':
        return this.acquiredShared();
      case 'shared-clear':
        this.phase = 'free';
        this.outcomes.push({ type: 'resolved', lver: this.attempt.lver, wasOurs: this.attempt.decidedOurs });
        this.attempt = undefined;
        return;
    }
  }

  private acquiredShared(): void {
    const a = this.attempt!;
    this.phase = 'held';
    this.held = { lver: a.lver, mode: 'shared', generation: a.generation, ownBlock: this.lastOwnBlock! };
    this.attempt = undefined;
    this.outcomes.push({ type: 'acquired', lver: this.held.lver, mode: 'shared' });
  }

  /**
   * The leader names us exclusively but marking the shared bit or freeing the
   * leader failed: we hold it exclusively on disk. Report failure and release
   * it in the background as an uncertain lver.
   */
  private sharedTrouble(reason: string): void {
    const a = this.attempt!;
    this.outcomes.push({ type: 'acquire-failed', code: 'storage', reason: `${reason}; releasing lver ${a.lver} in the background`, resolving: true });
    this.phase = 'resolving';
    this.attempt = { ...a, resolving: true, attempts: 1, phase2: true };
    this.retryAtMs = this.nowMs + this.config.retryDelayMs;
  }

  private readArea(): void {
    const id = this.ids.take();
    this.inflight.set(id, { step: 'read', epoch: this.epoch });
    this.ios.push({ kind: 'read', id, offset: 0, length: specBytes(this.config.resource) });
  }

  private readBallot(step: 'p1-read' | 'p2-read'): void {
    const id = this.ids.take();
    this.inflight.set(id, { step, epoch: this.epoch });
    this.ios.push({ kind: 'read', id, offset: 0, length: specBytes(this.config.resource) });
  }

  private writeOwnBlock(step: Step, written: HostBlock): void {
    // Our mbal is a promise: no write of ours ever lowers it (a block read from disk may lag our last ballot).
    const block = { ...written, mbal: Math.max(written.mbal, this.ballotFloor) };
    this.lastOwnBlock = block;
    const id = this.ids.take();
    this.inflight.set(id, { step, epoch: this.epoch });
    const offset = this.config.hostId * this.config.resource.sectorSize;
    const data = encodeHostBlock(identityOf(this.config.resource), block);
    // A ballot's write is followed by the read of every block (readBallot) when it succeeds.
    const ballotWrite = step === 'p1-write' || step === 'p2-write';
    this.ios.push(ballotWrite ? { kind: 'write', id, offset, data, thenRead: { offset: 0, length: specBytes(this.config.resource) } } : { kind: 'write', id, offset, data });
  }

  private writeLeader(step: Step, leader: LeaderRecord): void {
    const id = this.ids.take();
    this.inflight.set(id, { step, epoch: this.epoch, leader: { lver: leader.lver, generation: leader.writerGeneration } });
    this.ios.push({ kind: 'write', id, offset: 0, data: encodeLeaderRecord(identityOf(this.config.resource), leader) });
  }

  private parse(data: Uint8Array): ResourceArea {
    return parseResourceArea(data, this.config.resource, this.label());
  }

  private label(): string {
    return `resource ${JSON.stringify(this.config.resource.resourceName)}`;
  }
}

/** The block holding the value accepted at the highest ballot for this lver, if any. */
function bestAccepted(blocks: readonly HostBlock[], lver: number): HostBlock | undefined {
  let best: HostBlock | undefined;
  for (const b of blocks) {
    if (b.inp.lver === lver && b.bal > 0 && b.inp.hostId !== 0 && (!best || b.bal > best.bal)) best = b;
  }
  return best;
}

/** The leader and every host block of a read (index i: host id i+1), or why the read is unusable: its first bad record. */
function usable(area: ResourceArea): { leader: LeaderRecord; blocks: HostBlock[] } | string {
  if (!area.leader.ok) return area.leader.error.message;
  // One plain pass: this runs on every ballot read, over up to 2000 blocks.
  const blocks: HostBlock[] = [];
  for (const checked of area.hosts) {
    if (!checked.ok) return checked.error.message;
    blocks.push(checked.value);
  }
  return { leader: area.leader.value, blocks };
}

/** The block of a host id: at its index, unless a broken rule (simulator) left a block out. */
function blockOf(blocks: readonly HostBlock[], hostId: number): HostBlock | undefined {
  const at = blocks[hostId - 1];
  return at !== undefined && at.hostId === hostId ? at : blocks.find((b) => b.hostId === hostId);
}
