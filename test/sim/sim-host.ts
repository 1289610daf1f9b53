import { DeltaEngine, type DeltaOutcome } from '../../helper/engine/delta-engine.js';
import type { BrokenRules } from '../../helper/engine/broken-rules.js';
import type { Effects, IoResult } from '../../helper/engine/io.js';
import { ResourceEngine, type LeaseMode, type ResourceOutcome } from '../../helper/engine/resource-engine.js';
import type { TimingOptions } from '../../helper/engine/timing.js';
import type { Incarnation, LockspaceSpec, ResourceSpec } from '../../helper/format/index.js';
import type { Checker } from './checker.js';
import type { EventQueue } from './event-queue.js';
import type { Rng } from './rng.js';
import type { SimDisk } from './sim-disk.js';

/**
 * One simulated host: a helper process running the real engines, its VMs'
 * use of the leases, a watchdog, a drifting monotonic clock. The helper can
 * crash and restart (a new incarnation; its in-flight writes still land),
 * pause (its VMs keep running; only the watchdog stops them), and lose its
 * path to the storage for a while.
 */

export interface HostSetup {
  /** The machine's name: unique, even when two machines are (mis)configured with one host id. */
  readonly name: string;
  readonly hostId: number;
  readonly lockspace: LockspaceSpec;
  readonly resources: readonly { readonly offset: number; readonly spec: ResourceSpec }[];
  readonly watchdogFireTimeoutMs: number;
  readonly watchdogErrorMs: number;
  readonly timingOptions: TimingOptions;
  readonly brokenRules: BrokenRules;
  /** Clock rate relative to real time, e.g. 1.0004. */
  readonly clockRate: number;
  readonly clockOffsetMs: number;
  /** How soon the host wants a resource again, and how long it holds it, in ms (uniform, inclusive). */
  readonly pace: Pace;
}

export interface Pace {
  readonly wantMs: readonly [number, number];
  readonly holdMs: readonly [number, number];
}

/** The usual pace: a VM now and then. */
export const CALM_PACE: Pace = { wantMs: [10, 400], holdMs: [50, 1500] };
/** High contention: every host wants the resource again at once and holds it briefly. */
export const CONTENDED_PACE: Pace = { wantMs: [0, 20], holdMs: [5, 60] };

interface Use {
  readonly mode: LeaseMode;
  readonly generation: number;
}

export class SimHost {
  private epoch = 0;
  private incarnation = 0;
  private up = false;
  private pausedUntil = 0;
  private deferred: (() => void)[] = [];
  stalledUntil = 0;
  private delta!: DeltaEngine;
  private resources: ResourceEngine[] = [];
  private readonly ballotFloors: number[];
  private readonly uses: (Use | undefined)[];
  private readonly wakeTokens = new Map<string, number>();
  private lastPetLocal = -Infinity;
  private watchdogArmed = false;
  stats = { joins: 0, crashes: 0, resets: 0, pauses: 0, acquisitions: 0, busy: 0, failures: 0 };

  constructor(
    readonly setup: HostSetup,
    private readonly queue: EventQueue,
    private readonly disk: SimDisk,
    private readonly rng: Rng,
    private readonly checker: Checker,
  ) {
    this.ballotFloors = setup.resources.map(() => 0);
    this.uses = setup.resources.map(() => undefined);
  }

  private get key(): string {
    return `${this.setup.name}.${this.incarnation}`;
  }

  private localNow(): number {
    return Math.floor(this.setup.clockOffsetMs + this.queue.now * this.setup.clockRate);
  }

  private realAt(localMs: number): number {
    return (localMs - this.setup.clockOffsetMs) / this.setup.clockRate + 0.001;
  }

  // ---- process life ----

  start(): void {
    this.epoch++;
    this.incarnation++;
    this.up = true;
    this.pausedUntil = 0;
    this.deferred = [];
    this.watchdogArmed = false;
    const s = this.setup;
    this.delta = new DeltaEngine({
      lockspace: s.lockspace,
      hostId: s.hostId,
      incarnation: { hostName: s.name, bootId: this.rng.hex(32), nonce: this.rng.hex(16) },
      watchdogFireTimeoutMs: s.watchdogFireTimeoutMs,
      takeoverWithoutWatchdog: false,
      ownerFeatures: 0,
      timingOptions: s.timingOptions,
      brokenRules: s.brokenRules,
    });
    this.resources = s.resources.map(
      (r) =>
        new ResourceEngine(
          { resource: r.spec, hostId: s.hostId, retryDelayMs: this.delta.timing.ioTimeoutMs, ballotAttemptsMax: 3, brokenRules: s.brokenRules },
          { ownerGone: (h, g, now) => this.delta.ownerGone(h, g, now), hostStatus: (h, now) => this.delta.hostStatus(h, now), ownLeaseValid: (g, now) => this.delta.ownLeaseValid(g, now) },
        ),
    );
    this.join(undefined);
    this.schedulePets(this.epoch);
  }

  /** The host resets (watchdog) or the helper's whole host crashes: its VMs stop now. */
  crash(why: 'crash' | 'reset'): void {
    if (!this.up) return;
    this.up = false;
    this.epoch++;
    this.stats[why === 'crash' ? 'crashes' : 'resets']++;
    this.uses.forEach((_, r) => this.endUse(r));
    for (const dying of [...this.dying]) this.killDying(dying);
  }

  pause(durationMs: number): void {
    if (!this.up || this.queue.now < this.pausedUntil) return;
    this.stats.pauses++;
    this.pausedUntil = this.queue.now + durationMs;
    const epoch = this.epoch;
    this.queue.schedule(this.pausedUntil, () => {
      if (epoch !== this.epoch) return;
      const work = this.deferred;
      this.deferred = [];
      for (const run of work) run();
    });
  }

  get isUp(): boolean {
    return this.up;
  }

  /** Runs `fn` as the helper process, unless it crashed meanwhile; a paused process runs it later. */
  private deliver(epoch: number, fn: () => void): void {
    if (epoch !== this.epoch || !this.up) return;
    if (this.queue.now < this.pausedUntil) {
      this.deferred.push(fn);
      return;
    }
    fn();
    this.pet();
  }

  private after(delayMs: number, fn: () => void): void {
    const epoch = this.epoch;
    this.queue.schedule(this.queue.now + delayMs, () => this.deliver(epoch, fn));
  }

  // ---- watchdog ----

  private pet(): void {
    const now = this.localNow();
    const valid = this.delta.validUntilMs;
    const holding = this.uses.some((u) => u !== undefined);
    const renewedInTime = valid !== undefined && now < valid - this.delta.timing.watchdogPetIntervalMs;
    if (!this.watchdogArmed || !(renewedInTime || !holding)) return;
    this.lastPetLocal = now;
    const petted = now;
    const epoch = this.epoch;
    const fireAt = this.realAt(petted + this.setup.watchdogFireTimeoutMs) + this.rng.float() * this.setup.watchdogErrorMs;
    this.queue.schedule(fireAt, () => {
      if (epoch === this.epoch && this.up && this.lastPetLocal === petted) this.crash('reset');
    });
  }

  private schedulePets(epoch: number): void {
    const interval = this.delta.timing.watchdogPetIntervalMs / this.setup.clockRate;
    this.queue.schedule(this.queue.now + interval, () => {
      if (epoch !== this.epoch) return;
      this.deliver(epoch, () => undefined);
      this.schedulePets(epoch);
    });
  }

  // ---- delta lease ----

  private join(previous: Incarnation | undefined): void {
    this.stats.joins++;
    this.runDelta(previous ? { type: 'join', nowMs: this.localNow(), previousIncarnationGone: previous } : { type: 'join', nowMs: this.localNow() });
  }

  private runDelta(event: Parameters<DeltaEngine['step']>[0]): void {
    this.apply('delta', 0, this.delta.step(event), (result) => this.runDelta({ type: 'io', nowMs: this.localNow(), result }), () => this.runDelta({ type: 'tick', nowMs: this.localNow() }), (o) => this.onDelta(o));
  }

  private lastValidUntil: number | undefined;
  /** VMs of a lost lease that the helper is still stopping (they stop by T+8N at the latest). */
  private readonly dying = new Set<{ r: number; generation: number; key: string }>();

  private killDying(dying: { r: number; generation: number; key: string }): void {
    if (!this.dying.delete(dying)) return;
    this.checker.useEnded(dying.r, dying.key, dying.generation, this.queue.now);
  }

  private onDelta(outcome: DeltaOutcome): void {
    if (outcome.type === 'renewed') this.lastValidUntil = outcome.validUntilMs;
    switch (outcome.type) {
      case 'joined':
        this.lastValidUntil = outcome.validUntilMs;
        this.watchdogArmed = this.setup.watchdogFireTimeoutMs > 0;
        this.resources.forEach((_, r) => this.scheduleWant(r));
        return;
      case 'join-failed':
        this.after(this.rng.int(1, 4) * this.delta.timing.renewIntervalMs, () => this.join(undefined));
        return;
      case 'lost': {
        // Fence first. The real helper kills the VMs by T+8N at the latest: model that worst case.
        const validUntil = this.lastValidUntil;
        const killAt = validUntil === undefined ? this.queue.now : Math.max(this.queue.now, this.realAt(validUntil));
        const key = this.key;
        this.uses.forEach((use, r) => {
          if (!use) return;
          this.uses[r] = undefined;
          const dying = { r, generation: use.generation, key };
          this.dying.add(dying);
          this.queue.schedule(killAt, () => this.killDying(dying));
        });
        this.resources.forEach((_, r) => this.runResource(r, { type: 'generation-ended', nowMs: this.localNow() }));
        const own = this.delta.config.incarnation;
        this.after(this.rng.int(1, 4) * this.delta.timing.renewIntervalMs, () => this.join(own));
        return;
      }
      default:
        return;
    }
  }

  // ---- resources and their use ----

  private scheduleWant(r: number): void {
    this.after(this.rng.int(...this.setup.pace.wantMs), () => this.want(r));
  }

  private want(r: number): void {
    const generation = this.delta.generation;
    if (generation === undefined || !this.delta.held) return;
    if (this.resources[r]!.state !== 'free' || this.uses[r]) return;
    const mode: LeaseMode = this.rng.chance(0.2) ? 'shared' : 'exclusive';
    this.checker.attemptStarted(this.key, r);
    this.runResource(r, { type: 'acquire', nowMs: this.localNow(), mode, generation, ballotFloor: this.ballotFloors[r]! });
  }

  private runResource(r: number, event: Parameters<ResourceEngine['step']>[0]): void {
    const engine = this.resources[r]!;
    this.apply(
      `r${r}`,
      this.setup.resources[r]!.offset,
      engine.step(event),
      (result) => this.runResource(r, { type: 'io', nowMs: this.localNow(), result }),
      () => this.runResource(r, { type: 'tick', nowMs: this.localNow() }),
      (o) => this.onResource(r, o),
    );
  }

  private onResource(r: number, outcome: ResourceOutcome): void {
    if (process.env.VMLEASE_SIM_TRACE) process.stderr.write(`t=${this.queue.now.toFixed(1)} host ${this.setup.hostId}.${this.incarnation} r${r} ${JSON.stringify(outcome)}\n`);
    switch (outcome.type) {
      case 'acquired': {
        const generation = this.delta.generation!;
        this.stats.acquisitions++;
        this.uses[r] = { mode: outcome.mode, generation };
        this.checker.acquired(r, this.setup.hostId, this.key, generation, outcome.lver, outcome.mode, this.queue.now);
        this.after(this.rng.int(...this.setup.pace.holdMs), () => this.release(r));
        return;
      }
      case 'busy':
        this.stats.busy++;
        this.checker.attemptBusy(this.key, r, this.setup.hostId, outcome.resolvedLver, this.queue.now);
        return this.scheduleWant(r);
      case 'acquire-failed':
        this.stats.failures++;
        this.checker.attemptFailed(this.key, r, this.setup.hostId, outcome.resolving, outcome.code === 'lockspace-lost', outcome.resolvedLver, this.queue.now);
        if (!outcome.resolving) this.scheduleWant(r);
        return;
      case 'resolved':
        return this.scheduleWant(r);
      case 'released':
        return this.scheduleWant(r);
      case 'release-failed':
        this.after(this.delta.timing.renewIntervalMs, () => this.release(r));
        return;
    }
  }

  private release(r: number): void {
    if (!this.resources[r]!.holding) return;
    // Fence first: the VM is gone before the lease is released.
    this.endUse(r);
    this.runResource(r, { type: 'release', nowMs: this.localNow() });
  }

  private endUse(r: number): void {
    const use = this.uses[r];
    if (!use) return;
    this.uses[r] = undefined;
    this.checker.useEnded(r, this.key, use.generation, this.queue.now);
  }

  // ---- effects ----

  private apply<O>(engine: string, areaOffset: number, effects: Effects<O>, onIo: (result: IoResult) => void, onWake: () => void, onOutcome: (o: O) => void): void {
    const epoch = this.epoch;
    if (effects.persistBallotFloor !== undefined) {
      const r = Number(engine.slice(1));
      this.ballotFloors[r] = Math.max(this.ballotFloors[r]!, effects.persistBallotFloor);
    }
    const submitter = { hostId: this.setup.hostId, incarnationKey: this.key, ioTimeoutMs: this.setup.lockspace.ioTimeoutMs, stalledUntil: this.stalledUntil };
    for (const request of effects.ios) this.disk.submit(submitter, areaOffset, request, (result) => this.deliver(epoch, () => onIo(result)));
    if (effects.wakeAtMs !== undefined) {
      const token = (this.wakeTokens.get(engine) ?? 0) + 1;
      this.wakeTokens.set(engine, token);
      this.queue.schedule(this.realAt(effects.wakeAtMs), () => this.deliver(epoch, () => this.wakeTokens.get(engine) === token && onWake()));
    }
    for (const outcome of effects.outcomes) onOutcome(outcome);
  }
}
