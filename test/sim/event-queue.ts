/** Events ordered by simulated real time, ties broken by insertion order (deterministic). */
interface Entry {
  readonly at: number;
  readonly seq: number;
  readonly run: () => void;
}

export class EventQueue {
  private heap: Entry[] = [];
  private seq = 0;
  now = 0;

  schedule(at: number, run: () => void): void {
    const entry: Entry = { at: Math.max(at, this.now), seq: this.seq++, run };
    const heap = this.heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  /** Runs events in order until the queue is empty or the next one is after `until`. Returns events run. */
  runUntil(until: number, eventsMax: number): number {
    let count = 0;
    while (this.heap.length > 0 && this.heap[0]!.at <= until) {
      if (++count > eventsMax) throw new Error(`more than ${eventsMax} events before ${until} ms: a livelock?`);
      const entry = this.pop();
      this.now = entry.at;
      entry.run();
    }
    this.now = Math.max(this.now, until);
    return count;
  }

  private pop(): Entry {
    const heap = this.heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && before(heap[l]!, heap[m]!)) m = l;
        if (r < heap.length && before(heap[r]!, heap[m]!)) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m]!, heap[i]!];
        i = m;
      }
    }
    return top;
  }
}

function before(a: Entry, b: Entry): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
