import assert from 'node:assert/strict';

/**
 * Page-aligned I/O buffers carved out of one shared WebAssembly.Memory.
 *
 * Node Buffers are not aligned (a 1 MiB Buffer sits 16 bytes into a page);
 * WebAssembly memory is page-aligned and, when shared, visible to the I/O
 * worker thread at the same address. Slots are whole pages, so every slot is
 * aligned for any sector size. The arena's size bounds the memory pinned by
 * I/Os that never complete: a slot is freed only when the worker reports its
 * I/O finished, never on a timeout.
 */

export const ARENA_PAGE_BYTES = 4096;
const WASM_PAGE_BYTES = 65536;

export interface Slot {
  readonly byteOffset: number;
  readonly byteLength: number;
}

export class AlignedArena {
  readonly memory: WebAssembly.Memory;
  /** Free runs of pages, sorted by start, never adjacent (coalesced on free). */
  private free: { start: number; pages: number }[];
  private readonly inUse = new Map<number, number>();

  constructor(readonly arenaBytes: number) {
    assert.ok(arenaBytes > 0 && arenaBytes % WASM_PAGE_BYTES === 0, `arena size ${arenaBytes} must be a positive multiple of 64 KiB`);
    const pages = arenaBytes / WASM_PAGE_BYTES;
    this.memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    this.free = [{ start: 0, pages: arenaBytes / ARENA_PAGE_BYTES }];
  }

  /** A slot of at least `bytes`, or undefined when no run of free pages is long enough. */
  allocate(bytes: number): Slot | undefined {
    assert.ok(Number.isInteger(bytes) && bytes > 0, `bad allocation size ${bytes}`);
    const pages = Math.ceil(bytes / ARENA_PAGE_BYTES);
    const index = this.free.findIndex((run) => run.pages >= pages);
    if (index === -1) return undefined;
    const run = this.free[index]!;
    const start = run.start;
    if (run.pages === pages) this.free.splice(index, 1);
    else this.free[index] = { start: run.start + pages, pages: run.pages - pages };
    this.inUse.set(start, pages);
    return { byteOffset: start * ARENA_PAGE_BYTES, byteLength: bytes };
  }

  release(slot: Slot): void {
    const start = slot.byteOffset / ARENA_PAGE_BYTES;
    const pages = this.inUse.get(start);
    assert.ok(pages !== undefined, `releasing a slot at ${slot.byteOffset} that is not allocated`);
    this.inUse.delete(start);
    let at = this.free.findIndex((run) => run.start > start);
    if (at === -1) at = this.free.length;
    this.free.splice(at, 0, { start, pages });
    this.coalesce(at);
  }

  bytes(slot: Slot): Uint8Array {
    return new Uint8Array(this.memory.buffer, slot.byteOffset, slot.byteLength);
  }

  get slotsInUse(): number {
    return this.inUse.size;
  }

  private coalesce(at: number): void {
    const next = this.free[at + 1];
    const run = this.free[at]!;
    if (next && run.start + run.pages === next.start) {
      run.pages += next.pages;
      this.free.splice(at + 1, 1);
    }
    const prev = this.free[at - 1];
    if (prev && prev.start + prev.pages === run.start) {
      prev.pages += run.pages;
      this.free.splice(at, 1);
    }
  }
}
