import { decodeHeader, decodeHostBlock, decodeLeaderRecord, identityOf, type ResourceSpec } from '../../helper/format/index.js';
import type { LeaseMode } from '../../helper/engine/resource-engine.js';
import type { WriteEvent } from './sim-disk.js';

/**
 * The simulator's invariants (SPEC section 10), checked on everything the
 * hosts write and every outcome they act on:
 * - one decided owner per (resource, lver);
 * - lver never decreases across acquisitions;
 * - ballot numbers unique per host and increasing, also across restarts;
 * - a host writes only its own blocks and the leader (and its own delta record);
 * - no exclusive holder while another host holds the resource shared,
 *   and exclusive-use intervals of different hosts never overlap in real time;
 * - a lease is never forgotten once its ballot reached phase 2;
 * - liveness: once the faults stop, every resource is acquired again.
 */

export interface Layout {
  readonly lockspaceBytes: number;
  readonly sectorSize: number;
  readonly hostsMax: number;
  readonly resources: readonly { readonly offset: number; readonly spec: ResourceSpec }[];
}

interface Interval {
  readonly hostId: number;
  /** The helper process that acquired it: two processes with one host id and generation are two holders. */
  readonly incarnationKey: string;
  readonly generation: number;
  readonly mode: LeaseMode;
  readonly start: number;
  end: number | undefined;
}

export class Checker {
  readonly violations: string[] = [];
  private readonly decided = new Map<string, { hostId: number; generation: number; by: string }>();
  private readonly lastLver = new Map<number, { lver: number; mode: LeaseMode }>();
  private readonly maxBallot = new Map<string, number>();
  private readonly ballotValues = new Map<string, string>();
  private readonly intervals = new Map<number, Interval[]>();
  /** Per incarnation and resource: the lver of a phase-2 write issued by the current acquire attempt. */
  private readonly phase2 = new Map<string, number>();
  stats = { acquisitions: 0, commits: 0, ballots: 0, writes: 0 };

  constructor(private readonly layout: Layout) {}

  private fail(at: number, what: string): void {
    if (this.violations.length < 20) this.violations.push(`t=${at.toFixed(1)} ms: ${what}`);
  }

  writeIssued(write: WriteEvent): void {
    this.stats.writes++;
    const { sectorSize, lockspaceBytes } = this.layout;
    const at = write.submittedAt;
    if (write.offset < lockspaceBytes) {
      const sector = write.offset / sectorSize;
      if (sector !== write.hostId - 1 || write.data.byteLength !== sectorSize) this.fail(at, `host ${write.hostId} wrote lockspace sector ${sector} (its own is ${write.hostId - 1})`);
      return;
    }
    const r = this.layout.resources.findIndex((res) => write.offset >= res.offset && write.offset < res.offset + (1 + res.spec.hostsMax) * sectorSize);
    if (r === -1) return this.fail(at, `host ${write.hostId} wrote outside every area, at ${write.offset}`);
    const res = this.layout.resources[r]!;
    const sector = (write.offset - res.offset) / sectorSize;
    if (write.data.byteLength !== sectorSize) this.fail(at, `host ${write.hostId} wrote ${write.data.byteLength} bytes to resource ${r}`);
    if (sector !== 0 && sector !== write.hostId) return this.fail(at, `host ${write.hostId} wrote the block of host ${sector} in resource ${r}`);
    const expect = { ...identityOf(res.spec), kind: sector === 0 ? ('leader' as const) : ('hostBlock' as const), blockHostId: sector };
    const place = { area: `resource ${r}`, block: `sector ${sector}` };
    decodeHeader(write.data, place);
    if (sector === 0) {
      const leader = decodeLeaderRecord(write.data, expect, place);
      if (process.env.VMLEASE_SIM_TRACE) process.stderr.write(`t=${at.toFixed(1)} write r${r} leader by ${write.hostId}: lver ${leader.lver} owner ${leader.ownerHostId}/${leader.ownerGeneration}\n`);
      if (leader.ownerHostId !== 0) {
        this.stats.commits++;
        this.decide(r, leader.lver, leader.ownerHostId, leader.ownerGeneration, `commit by host ${write.hostId}`, at);
      }
      return;
    }
    const block = decodeHostBlock(write.data, expect, place);
    if (process.env.VMLEASE_SIM_TRACE) process.stderr.write(`t=${at.toFixed(1)} write r${r} host ${write.hostId} mbal ${block.mbal} bal ${block.bal} inp ${block.inp.hostId}/${block.inp.generation}@${block.inp.lver} shared ${block.shared}/${block.sharedGeneration}\n`);
    const key = `${r}:${write.hostId}`;
    if (block.mbal % this.layout.hostsMax !== write.hostId % this.layout.hostsMax) this.fail(at, `host ${write.hostId} used ballot ${block.mbal}, which belongs to another host`);
    // A host's ballot numbers never go down, also across its restarts...
    const previous = this.maxBallot.get(key) ?? 0;
    if (block.mbal < previous) this.fail(at, `host ${write.hostId} lowered its ballot to ${block.mbal} (had used ${previous}) in resource ${r}`);
    if (block.mbal > previous) this.stats.ballots++;
    this.maxBallot.set(key, Math.max(previous, block.mbal));
    // ...and each ballot number carries one proposal only: a reused number shows as two values under one bal.
    if (block.bal > 0) {
      const valueKey = `${key}:${block.bal}`;
      const value = `${block.inp.hostId}/${block.inp.generation}@${block.inp.lver}`;
      const known = this.ballotValues.get(valueKey);
      if (known === undefined) this.ballotValues.set(valueKey, value);
      else if (known !== value) this.fail(at, `host ${write.hostId} used ballot ${block.bal} for two proposals (${known} and ${value}) in resource ${r}`);
      const ownValue = block.inp.hostId === write.hostId && block.inp.generation === block.writerGeneration;
      if (block.bal === block.mbal && ownValue) this.phase2.set(`${write.incarnationKey}:${r}`, block.inp.lver);
    }
  }

  writeLanded(): void {
    // Landing order matters to the readers, not to these invariants: they judge what was issued and acted on.
  }

  attemptStarted(incarnationKey: string, resource: number): void {
    this.phase2.delete(`${incarnationKey}:${resource}`);
  }

  /**
   * An attempt ended without the lease. Forgetting it after phase 2 is allowed only once our
   * generation has ended, or when the engine learnt how that lver ended (`resolvedLver`).
   */
  attemptFailed(incarnationKey: string, resource: number, hostId: number, resolving: boolean, generationEnded: boolean, resolvedLver: number | undefined, at: number): void {
    const lver = this.phase2.get(`${incarnationKey}:${resource}`);
    if (lver !== undefined && !resolving && !generationEnded && resolvedLver !== lver) this.fail(at, `host ${hostId} forgot resource ${resource} lver ${lver} after its phase 2 began`);
  }

  /**
   * An attempt ended busy. After our own value reached phase 2 at some lver, busy is honest only
   * when the engine learnt that lver's decided value is not ours (and says so in `resolvedLver`).
   */
  attemptBusy(incarnationKey: string, resource: number, hostId: number, resolvedLver: number | undefined, at: number): void {
    const lver = this.phase2.get(`${incarnationKey}:${resource}`);
    if (lver !== undefined && resolvedLver !== lver) this.fail(at, `host ${hostId} ended busy for resource ${resource}, forgetting its phase-2 value at lver ${lver}`);
  }

  acquired(resource: number, hostId: number, incarnationKey: string, generation: number, lver: number, mode: LeaseMode, at: number): void {
    this.stats.acquisitions++;
    this.decide(resource, lver, hostId, generation, `acquired by host ${hostId}`, at);
    // Versions rise with every acquisition. Only two shared acquisitions may be reported out of
    // order (a slow leader write delays one); they coexist by design.
    const last = this.lastLver.get(resource) ?? { lver: 0, mode: 'exclusive' as LeaseMode };
    const sharedPair = mode === 'shared' && last.mode === 'shared' && lver < last.lver;
    if (lver <= last.lver && !sharedPair) this.fail(at, `resource ${resource} acquired at lver ${lver} after lver ${last.lver}`);
    if (lver > last.lver) this.lastLver.set(resource, { lver, mode });
    let list = this.intervals.get(resource);
    if (!list) this.intervals.set(resource, (list = []));
    list.push({ hostId, incarnationKey, generation, mode, start: at, end: undefined });
  }

  useEnded(resource: number, incarnationKey: string, generation: number, at: number): void {
    const open = this.intervals.get(resource)?.find((i) => i.incarnationKey === incarnationKey && i.generation === generation && i.end === undefined);
    if (open) open.end = at;
  }

  private decide(resource: number, lver: number, hostId: number, generation: number, by: string, at: number): void {
    const key = `${resource}:${lver}`;
    const known = this.decided.get(key);
    if (!known) return void this.decided.set(key, { hostId, generation, by });
    if (known.hostId !== hostId || known.generation !== generation) {
      this.fail(at, `resource ${resource} lver ${lver} decided twice: host ${known.hostId} gen ${known.generation} (${known.by}) and host ${hostId} gen ${generation} (${by})`);
    }
  }

  /**
   * Checks use intervals once the run is over (open intervals end at `endAt`), and liveness: well
   * after the faults stopped, every resource is still being acquired (a stuck lease fails the run).
   */
  finish(endAt: number, liveFromMs: number): void {
    this.layout.resources.forEach((_, resource) => {
      const acquiredAfter = (this.intervals.get(resource) ?? []).some((i) => i.start > liveFromMs);
      if (!acquiredAfter) this.fail(endAt, `resource ${resource} was not acquired after ${liveFromMs.toFixed(0)} ms, 4 s after the faults stopped (stuck?)`);
    });
    for (const [resource, list] of this.intervals) {
      for (let i = 0; i < list.length; i++) {
        for (let j = i + 1; j < list.length; j++) {
          const a = list[i]!;
          const b = list[j]!;
          if (a.incarnationKey === b.incarnationKey && a.generation === b.generation) continue;
          if (a.mode === 'shared' && b.mode === 'shared') continue;
          const overlap = Math.min(a.end ?? endAt, b.end ?? endAt) - Math.max(a.start, b.start);
          if (overlap > 0) {
            this.fail(Math.max(a.start, b.start), `resource ${resource} used by host ${a.hostId} (${a.mode}, ${a.start.toFixed(1)}..${(a.end ?? endAt).toFixed(1)}) and host ${b.hostId} (${b.mode}, ${b.start.toFixed(1)}..${(b.end ?? endAt).toFixed(1)}) at once`);
          }
        }
      }
    }
  }
}
