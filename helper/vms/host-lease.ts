import type { ResourceSpec } from '../format/index.js';
import type { Holder, LeaseMode, ResourceOutcome } from '../engine/resource-engine.js';
import { Resource, type BallotFloorStore, type Clock } from '../leases/index.js';
import type { DirectStorage } from '../storage/index.js';
import type { JoinedLockspace } from '../daemon/joined-lockspace.js';
import { HelperError } from '../daemon/helper-error.js';
import type { Logger } from '../daemon/log.js';
import type { LeaseLocation } from './lease-location.js';

/**
 * One resource lease of this host (one area on storage), used by one VM
 * (exclusive) or several VMs of this host (shared). Operations on it run one
 * at a time. A lease whose acquisition ended uncertain keeps resolving in the
 * engine; if it turns out ours and nobody wants it, it is released, so a
 * lease is never forgotten.
 */

export type HostLeaseState = 'free' | 'acquiring' | 'held' | 'releasing' | 'resolving' | 'void';

export const RESOURCE_BALLOT_ATTEMPTS_MAX = 4;

export class HostLease {
  state: HostLeaseState = 'free';
  lver: number | undefined;
  mode: LeaseMode | undefined;
  readonly users = new Set<string>();
  private readonly resource: Resource;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly key: string,
    readonly location: LeaseLocation,
    readonly spec: ResourceSpec,
    readonly storage: DirectStorage,
    readonly lockspace: JoinedLockspace,
    hostId: number,
    clock: Clock,
    ballotFloor: BallotFloorStore,
    private readonly log: Logger,
  ) {
    this.resource = new Resource(
      { resource: spec, hostId, retryDelayMs: lockspace.timing.ioTimeoutMs, ballotAttemptsMax: RESOURCE_BALLOT_ATTEMPTS_MAX },
      storage,
      location.offset,
      lockspace.lockspace,
      clock,
      ballotFloor,
      (outcome) => this.onOutcome(outcome),
    );
  }

  get label(): string {
    return `${this.location.lockspace}:${this.location.resource}`;
  }

  /** Acquires on storage; resolves with the holder when busy, throws HelperError otherwise. */
  acquire(mode: LeaseMode): Promise<{ acquired: true; lver: number } | { acquired: false; holder: Holder; reason: string }> {
    return this.serial(async () => {
      if (this.state === 'held' && this.mode === mode) return { acquired: true as const, lver: this.lver! };
      if (this.state !== 'free') throw new HelperError('LEASE_NOT_FREE', 'error', `lease ${this.label} is ${this.state} on this host`);
      this.state = 'acquiring';
      const outcome = await this.resource.acquire(mode);
      if (outcome.type === 'acquired') {
        this.state = 'held';
        this.lver = outcome.lver;
        this.mode = mode;
        this.log.info({ msg: 'lease.acquired', lease: this.label, lver: outcome.lver, mode });
        for (const hostId of this.resource.takeoversWithoutWatchdog()) {
          this.log.warn({ msg: 'lease.takeover-without-watchdog', lease: this.label, fromHostId: hostId, reason: `host ${hostId} runs without a watchdog and was taken over on timing alone (takeoverWithoutWatchdog is set)` });
        }
        return { acquired: true as const, lver: outcome.lver };
      }
      if (outcome.type === 'busy') {
        this.state = 'free';
        return { acquired: false as const, holder: outcome.holder, reason: outcome.reason };
      }
      this.state = outcome.resolving ? 'resolving' : 'free';
      this.log.warn({ msg: 'lease.acquire-failed', lease: this.label, code: outcome.code, reason: outcome.reason, resolving: outcome.resolving });
      const kind = outcome.code === 'storage' ? 'storage' : outcome.code === 'contended' ? 'busy' : 'error';
      throw new HelperError(`LEASE_ACQUIRE_${outcome.code.toUpperCase().replaceAll('-', '_')}`, kind, `lease ${this.label}: ${outcome.reason}`);
    });
  }

  /** Adopts a lease the previous helper of this incarnation held at `lver`, after the engine read it back. */
  resume(lver: number, mode: LeaseMode): Promise<void> {
    return this.serial(async () => {
      const outcome = await this.resource.resume(lver, mode);
      if (outcome.type !== 'acquired') {
        throw new HelperError('LEASE_RESUME_FAILED', 'storage', `lease ${this.label}: cannot resume lver ${lver}: ${outcome.reason}`);
      }
      this.state = 'held';
      this.lver = outcome.lver;
      this.mode = mode;
      this.log.info({ msg: 'lease.resumed', lease: this.label, lver, mode });
    });
  }

  /** Releases on storage. The caller has proven every process using it gone. */
  release(): Promise<void> {
    return this.serial(async () => {
      if (this.state !== 'held') return;
      this.state = 'releasing';
      const outcome = await this.resource.release();
      if (outcome.type === 'released') {
        this.state = 'free';
        this.lver = undefined;
        this.log.info({ msg: 'lease.released', lease: this.label, lver: outcome.lver, note: outcome.note });
        return;
      }
      // The release write failed: the lease stays ours on disk (other hosts wait for our
      // delta lease instead); keep it held so a later release can retry.
      this.state = 'held';
      throw new HelperError('LEASE_RELEASE_FAILED', 'storage', `lease ${this.label}: release failed: ${outcome.reason}`);
    });
  }

  /** Our lockspace generation ended: the lease is void, nothing more is written for it. */
  voidLease(): void {
    this.resource.generationEnded();
    this.resource.stop();
    this.state = 'void';
  }

  stop(): void {
    this.resource.stop();
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private onOutcome(outcome: ResourceOutcome): void {
    if (outcome.type !== 'resolved') return;
    this.log.info({ msg: 'lease.resolved', lease: this.label, lver: outcome.lver, wasOurs: outcome.wasOurs });
    if (this.state !== 'resolving') return;
    if (!outcome.wasOurs) {
      this.state = 'free';
      return;
    }
    // The value we proposed was decided after all: the lease is ours; nobody asked for it now.
    this.state = 'held';
    this.lver = outcome.lver;
    if (this.users.size === 0) this.release().catch((error: unknown) => this.log.error({ msg: 'lease.release-failed', lease: this.label, reason: (error as Error).message }));
  }
}
