import assert from 'node:assert/strict';

/** The last few renewal latencies of a lockspace, oldest first (a bounded ring). */
export class LatencyHistory {
  private readonly values: number[] = [];

  constructor(private readonly entriesMax: number) {
    assert.ok(Number.isInteger(entriesMax) && entriesMax >= 1, `history of ${entriesMax} entries`);
  }

  add(latencyMs: number): void {
    this.values.push(latencyMs);
    if (this.values.length > this.entriesMax) this.values.shift();
  }

  recent(): number[] {
    return [...this.values];
  }
}
