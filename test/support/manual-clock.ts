import type { Clock } from '../../dist/helper/leases/clock.js';

/** A Clock that moves only when told to; due timers fire in time order during advance(). */
export class ManualClock implements Clock {
  private timers = new Map<number, { atMs: number; fire: () => void }>();
  private nextId = 1;

  constructor(private now = 0) {}

  nowMs(): number {
    return this.now;
  }

  setTimer(atMs: number, fire: () => void): unknown {
    const id = this.nextId++;
    this.timers.set(id, { atMs, fire });
    return id;
  }

  clearTimer(timer: unknown): void {
    this.timers.delete(timer as number);
  }

  get pendingTimers(): number {
    return this.timers.size;
  }

  /** Moves time forward by ms, firing each timer due on the way at its own time. */
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      let due: [number, { atMs: number; fire: () => void }] | undefined;
      for (const entry of this.timers) if (entry[1].atMs <= end && (due === undefined || entry[1].atMs < due[1].atMs)) due = entry;
      if (due === undefined) break;
      this.timers.delete(due[0]);
      this.now = Math.max(this.now, due[1].atMs);
      due[1].fire();
    }
    this.now = end;
  }
}
