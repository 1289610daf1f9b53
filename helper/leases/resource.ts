import { ResourceEngine, type LeaseMode, type ResourceConfig, type ResourceEvent, type ResourceOutcome } from '../engine/resource-engine.js';
import type { DirectStorage } from '../storage/index.js';
import type { Clock } from './clock.js';
import { EngineDriver } from './engine-driver.js';
import type { Lockspace } from './lockspace.js';

/**
 * One resource lease of this host: the Disk Paxos engine on real storage,
 * judging other owners by the lockspace's host table. acquire() resolves
 * with 'acquired', 'busy' or 'acquire-failed'; release() with 'released' or
 * 'release-failed'. The ballot floor is persisted through `ballotFloor`.
 */

export interface BallotFloorStore {
  get(): number;
  /** Durable before it returns. */
  set(floor: number): void;
}

export function memoryBallotFloor(): BallotFloorStore {
  let floor = 0;
  return { get: () => floor, set: (value) => void (floor = Math.max(floor, value)) };
}

type AcquireResult = Extract<ResourceOutcome, { type: 'acquired' | 'busy' | 'acquire-failed' }>;
type ReleaseResult = Extract<ResourceOutcome, { type: 'released' | 'release-failed' }>;

export class Resource {
  readonly engine: ResourceEngine;
  private readonly driver: EngineDriver<ResourceEvent, ResourceOutcome>;
  private pendingAcquire: ((result: AcquireResult) => void) | undefined;
  private pendingRelease: ((result: ReleaseResult) => void) | undefined;

  constructor(
    config: ResourceConfig,
    storage: DirectStorage,
    areaOffset: number,
    private readonly lockspace: Lockspace,
    private readonly clock: Clock,
    private readonly ballotFloor: BallotFloorStore = memoryBallotFloor(),
    private readonly onOutcome: (outcome: ResourceOutcome) => void = () => undefined,
  ) {
    const delta = lockspace.engine;
    const ownerGone = (h: number, g: number, now: number) => {
      const gone = delta.ownerGone(h, g, now);
      if (gone) this.noteTakeoverWithoutWatchdog(h, g, now);
      return gone;
    };
    this.engine = new ResourceEngine(config, { ownerGone, hostStatus: (h, now) => delta.hostStatus(h, now), ownLeaseValid: (g, now) => delta.ownLeaseValid(g, now) });
    this.driver = new EngineDriver(
      {
        step: (event) => this.engine.step(event),
        ioEvent: (result, nowMs) => ({ type: 'io', result, nowMs }),
        tickEvent: (nowMs) => ({ type: 'tick', nowMs }),
        onOutcome: (outcome) => this.dispatch(outcome),
        persistBallotFloor: (floor) => this.ballotFloor.set(floor),
      },
      storage,
      areaOffset,
      clock,
    );
  }

  /**
   * Hosts whose lease the last acquire could take only because this host
   * allows takeover from a host without a watchdog (they were DEAD on timing
   * alone, publishing watchdog 0): the caller logs each as a warning.
   */
  takeoversWithoutWatchdog(): number[] {
    return [...this.withoutWatchdog];
  }

  private readonly withoutWatchdog = new Set<number>();

  private noteTakeoverWithoutWatchdog(hostId: number, generation: number, nowMs: number): void {
    const status = this.lockspace.engine.hostStatus(hostId, nowMs);
    const record = status.record;
    if (record && record.generation === generation && record.timestampMs !== 0 && status.state === 'DEAD' && record.ownerWatchdogFireTimeoutMs === 0) this.withoutWatchdog.add(hostId);
  }

  /** Ballot reads answered from the read queued behind their write, and such reads dropped. */
  get prefetchCounts(): { readonly used: number; readonly dropped: number } {
    return { ...this.driver.prefetchCounts };
  }

  acquire(mode: LeaseMode): Promise<AcquireResult> {
    this.withoutWatchdog.clear();
    const generation = this.lockspace.engine.generation;
    if (generation === undefined) {
      return Promise.resolve({ type: 'acquire-failed', code: 'not-free', reason: 'the lockspace is not joined', resolving: false });
    }
    return new Promise((resolve) => {
      this.pendingAcquire = resolve;
      this.driver.send({ type: 'acquire', nowMs: this.clock.nowMs(), mode, generation, ballotFloor: this.ballotFloor.get() });
    });
  }

  /** Adopts a lease the previous helper of this incarnation held at `lver`; the engine reads the area back first. */
  resume(lver: number, mode: LeaseMode): Promise<AcquireResult> {
    const generation = this.lockspace.engine.generation;
    if (generation === undefined) {
      return Promise.resolve({ type: 'acquire-failed', code: 'not-free', reason: 'the lockspace is not joined', resolving: false });
    }
    return new Promise((resolve) => {
      this.pendingAcquire = resolve;
      this.driver.send({ type: 'resume', nowMs: this.clock.nowMs(), generation, lver, mode });
    });
  }

  release(): Promise<ReleaseResult> {
    return new Promise((resolve) => {
      this.pendingRelease = resolve;
      this.driver.send({ type: 'release', nowMs: this.clock.nowMs() });
    });
  }

  /** Our generation of the lockspace ended: leases of it are void. */
  generationEnded(): void {
    this.driver.send({ type: 'generation-ended', nowMs: this.clock.nowMs() });
  }

  stop(): void {
    this.driver.stop();
  }

  private dispatch(outcome: ResourceOutcome): void {
    if (outcome.type === 'acquired' || outcome.type === 'busy' || outcome.type === 'acquire-failed') {
      const resolve = this.pendingAcquire;
      this.pendingAcquire = undefined;
      resolve?.(outcome);
    }
    if (outcome.type === 'released' || outcome.type === 'release-failed') {
      const resolve = this.pendingRelease;
      this.pendingRelease = undefined;
      resolve?.(outcome);
    }
    this.onOutcome(outcome);
  }
}
