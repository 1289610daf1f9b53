import type { Clock } from '../leases/index.js';
import type { ProcessRef, VmProcessControl } from './vm-processes.js';

/**
 * Stops a VM's processes: SIGTERM now, SIGKILL at `sigkillAtMs` to whatever
 * is left, and reports whether the kernel shows them all gone by
 * `giveUpAtMs`. Only processes re-checked right before each signal are
 * signalled. A process in D state stays "alive": a write it started may
 * still land, so its leases must not be released.
 */

export interface StopDeadlines {
  readonly sigkillAtMs: number;
  readonly giveUpAtMs: number;
  readonly pollMs: number;
}

export type StopResult = { readonly gone: true } | { readonly gone: false; readonly alive: readonly ProcessRef[] };

function sleepUntil(clock: Clock, atMs: number): Promise<void> {
  return new Promise((resolve) => clock.setTimer(atMs, resolve));
}

export async function stopProcesses(list: () => ProcessRef[], control: VmProcessControl, clock: Clock, deadlines: StopDeadlines): Promise<StopResult> {
  let alive = list();
  for (const p of alive) control.signal(p, 'SIGTERM');
  let killed = false;
  for (;;) {
    alive = list();
    if (alive.length === 0) return { gone: true };
    const now = clock.nowMs();
    if (!killed && now >= deadlines.sigkillAtMs) {
      for (const p of alive) control.signal(p, 'SIGKILL');
      killed = true;
    }
    if (now >= deadlines.giveUpAtMs) return { gone: false, alive };
    await sleepUntil(clock, Math.min(now + deadlines.pollMs, killed ? deadlines.giveUpAtMs : deadlines.sigkillAtMs));
  }
}
