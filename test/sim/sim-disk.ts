import type { IoRequest, IoResult } from '../../helper/engine/io.js';
import type { EventQueue } from './event-queue.js';
import type { Rng } from './rng.js';

/**
 * The shared disk of the simulated cluster. Every write is atomic per
 * sector and lands at one instant; every read sees each sector as it was at
 * some instant within the read (reads of an area are not atomic). I/Os fail,
 * time out, and timed-out writes land late (after the deadline, after the
 * writer crashed and restarted) or never. Like the real storage layer, one
 * process (incarnation) never has two writes outstanding on one sector.
 */

export interface DiskFaults {
  readonly latencyMinMs: number;
  readonly latencyMaxMs: number;
  readonly errorP: number;
  readonly timeoutP: number;
  /** A timed-out write lands up to this long after it was submitted (or never). */
  readonly lateWriteMaxMs: number;
  readonly lateWriteDropP: number;
  /** From this simulated time on, I/O neither fails nor times out (the faults have stopped). */
  readonly quietFromMs: number;
}

export interface Submitter {
  readonly hostId: number;
  /** Unique per process incarnation: outstanding writes are tracked per incarnation. */
  readonly incarnationKey: string;
  readonly ioTimeoutMs: number;
  /** Real time until which this host's path to the storage is stalled. */
  readonly stalledUntil: number;
}

export interface WriteEvent {
  readonly hostId: number;
  readonly incarnationKey: string;
  readonly offset: number;
  readonly data: Uint8Array;
  readonly submittedAt: number;
}

export interface DiskObserver {
  writeIssued(write: WriteEvent): void;
  writeLanded(write: WriteEvent, at: number): void;
}

export class SimDisk {
  private readonly history = new Map<number, { at: number; data: Uint8Array }[]>();
  private readonly outstanding = new Map<string, Set<number>>();

  constructor(
    private readonly contents: Uint8Array,
    readonly sectorSize: number,
    private readonly queue: EventQueue,
    private readonly rng: Rng,
    private readonly faults: DiskFaults,
    private readonly observer: DiskObserver,
  ) {}

  /** Submits one I/O of an engine whose area starts at `areaOffset`; `deliver` gets the result. */
  submit(who: Submitter, areaOffset: number, request: IoRequest, deliver: (result: IoResult) => void): void {
    const now = this.queue.now;
    const offset = areaOffset + request.offset;
    const stalled = now < who.stalledUntil;
    const roll = now >= this.faults.quietFromMs ? 1 : this.rng.float();
    const latency = this.rng.int(this.faults.latencyMinMs, this.faults.latencyMaxMs);
    const fate: 'ok' | 'error' | 'timeout' = stalled || roll < this.faults.timeoutP ? 'timeout' : roll < this.faults.timeoutP + this.faults.errorP ? 'error' : 'ok';
    const completeAt = fate === 'timeout' ? now + who.ioTimeoutMs : now + latency;
    if (request.kind === 'read') {
      const sectors = this.sectorsOf(offset, request.length);
      const instants = sectors.map(() => now + this.rng.float() * (completeAt - now));
      this.queue.schedule(completeAt, () => {
        if (fate !== 'ok') return deliver({ id: request.id, ok: false, reason: fate, detail: `simulated read ${fate}` });
        const data = new Uint8Array(request.length);
        sectors.forEach((sector, i) => data.set(this.sectorAt(sector, instants[i]!), (sector - sectors[0]!) * this.sectorSize));
        deliver({ id: request.id, ok: true, data });
      });
      return;
    }
    const sectors = this.sectorsOf(offset, request.data.byteLength);
    const mine = this.outstandingOf(who.incarnationKey);
    if (sectors.some((s) => mine.has(s))) {
      this.queue.schedule(now, () => deliver({ id: request.id, ok: false, reason: 'busy', detail: 'a write to this sector is unfinished' }));
      return;
    }
    for (const s of sectors) mine.add(s);
    const write: WriteEvent = { hostId: who.hostId, incarnationKey: who.incarnationKey, offset, data: request.data.slice(), submittedAt: now };
    this.observer.writeIssued(write);
    let landAt: number | undefined;
    if (fate === 'ok') landAt = now + this.rng.float() * latency;
    else if (fate === 'error') landAt = this.rng.chance(0.5) ? now + this.rng.float() * latency : undefined;
    else if (!this.rng.chance(this.faults.lateWriteDropP)) landAt = now + this.rng.float() * this.faults.lateWriteMaxMs;
    const releaseAt = Math.max(completeAt, landAt ?? completeAt);
    if (landAt !== undefined) this.queue.schedule(landAt, () => this.land(write, sectors));
    this.queue.schedule(releaseAt, () => sectors.forEach((s) => mine.delete(s)));
    this.queue.schedule(completeAt, () => deliver(fate === 'ok' ? { id: request.id, ok: true } : { id: request.id, ok: false, reason: fate, detail: `simulated write ${fate}` }));
  }

  read(offset: number, length: number): Uint8Array {
    return this.contents.slice(offset, offset + length);
  }

  private land(write: WriteEvent, sectors: readonly number[]): void {
    const at = this.queue.now;
    sectors.forEach((sector, i) => {
      const data = write.data.subarray(i * this.sectorSize, (i + 1) * this.sectorSize);
      this.contents.set(data, sector * this.sectorSize);
      let list = this.history.get(sector);
      if (!list) this.history.set(sector, (list = []));
      list.push({ at, data: data.slice() });
    });
    this.observer.writeLanded(write, at);
  }

  /** A sector's contents as of real time `at`. */
  private sectorAt(sector: number, at: number): Uint8Array {
    const list = this.history.get(sector);
    if (list) {
      for (let i = list.length - 1; i >= 0; i--) if (list[i]!.at <= at) return list[i]!.data;
      return this.initial(sector);
    }
    return this.contents.subarray(sector * this.sectorSize, (sector + 1) * this.sectorSize);
  }

  private readonly initialSectors = new Map<number, Uint8Array>();

  /** Before the first landed write, a sector holds its initial contents (captured lazily). */
  private initial(sector: number): Uint8Array {
    return this.initialSectors.get(sector) ?? new Uint8Array(this.sectorSize);
  }

  /** Remembers initial contents of every sector that may be written, before any write lands. */
  captureInitial(offset: number, length: number): void {
    for (const sector of this.sectorsOf(offset, length)) this.initialSectors.set(sector, this.contents.slice(sector * this.sectorSize, (sector + 1) * this.sectorSize));
  }

  private sectorsOf(offset: number, length: number): number[] {
    const first = offset / this.sectorSize;
    const count = length / this.sectorSize;
    if (!Number.isInteger(first) || !Number.isInteger(count)) throw new Error(`unaligned simulated I/O at ${offset}+${length}`);
    return Array.from({ length: count }, (_, i) => first + i);
  }

  private outstandingOf(key: string): Set<number> {
    let set = this.outstanding.get(key);
    if (!set) this.outstanding.set(key, (set = new Set()));
    return set;
  }
}
