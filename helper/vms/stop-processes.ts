import type { Clock } from '../leases/index.js';
import { ProcsError } from '../procs/index.js';
import type { ProcessRef, VmProcessControl } from './vm-processes.js';

/**
 * Stops a VM's processes: SIGTERM now, SIGKILL at `sigkillAtMs` to whatever
 * is left, and reports whether the kernel shows them all gone by
 * `giveUpAtMs`. Only processes re-checked right before each signal are
 * signalled. A process in D state stays "alive": a write it started may
 * still land, so its leases must not be released.
 *
 * A scan that fails (a ProcsError: a stat or status the helper cannot read
 * or parse) proves nothing: the processes last seen are kept as alive, no
 * signal is sent on it, and polling goes on; the result is "gone" only after
 * a scan that succeeded and found nothing. A failing signal (ProcsError)
 * leaves its process listed. Neither throws: a fence must not crash the
 * helper, and it must never release on a scan it could not read.
 */

export interface StopDeadlines {
  readonly sigkillAtMs: number;
  readonly giveUpAtMs: number;
  readonly pollMs: number;
}

export type StopResult =
  | { readonly gone: true }
  /** `unreadable`: why the last scan failed (alive is then what the last good scan saw). */
  | { readonly gone: false; readonly alive: readonly ProcessRef[]; readonly unreadable?: string };

function sleepUntil(clock: Clock, atMs: number): Promise<void> {
  return new Promise((resolve) => clock.setTimer(atMs, resolve));
}

export async function stopProcesses(list: () => ProcessRef[], control: VmProcessControl, clock: Clock, deadlines: StopDeadlines): Promise<StopResult> {
  let alive: ProcessRef[] = [];
  let unreadable: string | undefined;
  const scan = (): void => {
    try {
      alive = list();
      unreadable = undefined;
    } catch (error) {
      if (!(error instanceof ProcsError)) throw error;
      unreadable = error.message;
    }
  };
  const send = (signal: NodeJS.Signals): void => {
    for (const p of alive) {
      try {
        control.signal(p, signal);
      } catch (error) {
        if (!(error instanceof ProcsError)) throw error;
      }
    }
  };
  scan();
  let termed = unreadable === undefined;
  if (termed) send('SIGTERM');
  let killed = false;
  for (;;) {
    scan();
    const read = unreadable === undefined;
    if (read && alive.length === 0) return { gone: true };
    if (read && !termed) {
      send('SIGTERM');
      termed = true;
    }
    const now = clock.nowMs();
    if (read && !killed && now >= deadlines.sigkillAtMs) {
      send('SIGKILL');
      killed = true;
    }
    if (now >= deadlines.giveUpAtMs) return unreadable === undefined ? { gone: false, alive } : { gone: false, alive, unreadable };
    const next = !killed && now < deadlines.sigkillAtMs ? deadlines.sigkillAtMs : deadlines.giveUpAtMs;
    await sleepUntil(clock, Math.min(now + deadlines.pollMs, next));
  }
}
