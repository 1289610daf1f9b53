/**
 * When to wait awake and when to sleep. Spinning for an I/O's completion
 * (main thread) or for the next request (I/O worker) pays on an idle
 * machine, where waking a sleeping thread costs about as much as a small
 * I/O; it costs on busy CPUs, where the spinning thread holds the CPU the
 * other thread needs, and on slow storage, where it waits for nothing. Each
 * spin that ends empty-handed doubles how many later chances are skipped,
 * up to `skipMax`; one that pays resets it.
 */
export class SpinBackoff {
  private skipLeft = 0;
  private skipNext = 0;

  constructor(private readonly skipMax: number) {
    if (!Number.isInteger(skipMax) || skipMax < 1 || skipMax > 1_000_000) throw new RangeError(`skipMax ${skipMax} outside 1..1000000`);
  }

  /** Whether to spin at this chance (a skipped chance counts down the backoff). */
  shouldSpin(): boolean {
    if (this.skipLeft === 0) return true;
    this.skipLeft--;
    return false;
  }

  paid(): void {
    this.skipNext = 0;
  }

  missed(): void {
    this.skipNext = Math.min(this.skipMax, Math.max(1, this.skipNext * 2));
    this.skipLeft = this.skipNext;
  }
}
