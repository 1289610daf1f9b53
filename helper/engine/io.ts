/**
 * The plain data an engine exchanges with its shell. An engine never touches
 * the world: it asks for reads and writes at offsets within its area, and is
 * told how they ended; it asks to be woken at a time, and is told the time.
 */

export type IoId = number;

export interface ReadRequest {
  readonly kind: 'read';
  readonly id: IoId;
  /** Byte offset within the area. */
  readonly offset: number;
  readonly length: number;
}

export interface WriteRequest {
  readonly kind: 'write';
  readonly id: IoId;
  /** Byte offset within the area. */
  readonly offset: number;
  readonly data: Uint8Array;
  /**
   * The read this engine will ask for next if the write succeeds (a ballot's
   * read of every host block). A hint only: the engine still asks for the
   * read after it learns the write succeeded. A shell whose storage runs one
   * I/O at a time in submission order may queue the read right behind the
   * write and answer the engine's request with it; that read still starts
   * after the write completed, which is all Disk Paxos asks of it.
   */
  readonly thenRead?: { readonly offset: number; readonly length: number };
}

export type IoRequest = ReadRequest | WriteRequest;

/**
 * How an I/O ended. `timeout`: past its deadline; a write may still land.
 * `error`: the kernel failed it (a write may have landed partly or wholly).
 * `busy`: refused before it was issued (e.g. a write over an unfinished one).
 */
export type IoResult =
  | { readonly id: IoId; readonly ok: true; readonly data?: Uint8Array }
  | { readonly id: IoId; readonly ok: false; readonly reason: 'timeout' | 'error' | 'busy'; readonly detail: string };

/** What an engine wants done after handling one event. */
export interface Effects<Outcome> {
  readonly ios: readonly IoRequest[];
  /** Wake me (with a tick) at this monotonic time, unless another event comes first. */
  readonly wakeAtMs: number | undefined;
  readonly outcomes: readonly Outcome[];
  /**
   * Persist this before issuing `ios` (the shell keeps it across restarts):
   * the highest ballot number the host has used, so a restarted host never
   * reuses one whose write may still land.
   */
  readonly persistBallotFloor?: number;
}

/** Hands out I/O ids unique within one engine. */
export class IoIds {
  private next = 1;

  take(): IoId {
    return this.next++;
  }
}
