import type { Incarnation } from '../format/index.js';
import type { Clock } from '../leases/index.js';
import { stopProcesses } from '../vms/stop-processes.js';
import { stillRunning, type ProcessRef, type VmProcessControl } from '../vms/vm-processes.js';
import { HelperError } from './helper-error.js';
import type { Logger } from './log.js';
import type { HelperState } from './state-file.js';
import { vmSessions } from '../vms/vm.js';

/**
 * A helper starting where a previous one left state behind (it crashed, was
 * killed, or was told to detach): before it writes a new generation of its
 * delta leases, which would make every lease of the old generation look
 * free to other hosts, the old helper must be gone and so must every process
 * of the VMs it served. Those are stopped here, and the start is refused if
 * any cannot be proven gone (the watchdog then resets the host).
 */

export const PREVIOUS_HELPER_WAIT_MS = 60_000;
export const RECOVERY_SIGKILL_AFTER_MS = 2_000;
export const RECOVERY_GIVE_UP_AFTER_MS = 30_000;
export const RECOVERY_POLL_MS = 50;

function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimer(clock.nowMs() + ms, resolve));
}

export async function waitForPreviousHelper(state: HelperState, control: VmProcessControl, clock: Clock): Promise<void> {
  const previous = { pid: state.helper.pid, startTime: state.helper.startTime, uid: 0 };
  const until = clock.nowMs() + PREVIOUS_HELPER_WAIT_MS;
  while (stillRunning(control, previous)) {
    if (clock.nowMs() >= until) throw new HelperError('HELPER_PREVIOUS_ALIVE', 'error', `the previous helper (pid ${previous.pid}) is still alive after ${PREVIOUS_HELPER_WAIT_MS} ms`);
    await sleep(clock, RECOVERY_POLL_MS);
  }
}

/** Every process of the previous helper's VMs still alive: recorded supervisors and children, and their sessions. */
export function previousVmProcesses(state: HelperState, control: VmProcessControl): ProcessRef[] {
  const alive = new Map<number, ProcessRef>();
  for (const vm of state.vms) {
    for (const p of [vm.supervisor, vm.child]) {
      if (p && stillRunning(control, p)) alive.set(p.pid, p);
    }
    for (const sessionId of vmSessions(vm.supervisor ?? undefined, vm.child ?? undefined)) {
      for (const q of control.sessionProcesses(vm.uid, sessionId)) alive.set(q.pid, q);
    }
  }
  return [...alive.values()];
}

export interface RecoveryResult {
  /** The old incarnation, proven gone with everything it served: its own record need not age out. */
  readonly previousIncarnationGone: Incarnation | undefined;
  readonly stoppedPids: readonly number[];
}

export async function recoverFromPreviousHelper(state: HelperState | undefined, control: VmProcessControl, clock: Clock, log: Logger): Promise<RecoveryResult> {
  if (!state) return { previousIncarnationGone: undefined, stoppedPids: [] };
  await waitForPreviousHelper(state, control, clock);
  const before = previousVmProcesses(state, control);
  if (before.length > 0) log.warn({ msg: 'helper.recovery-stopping', reason: 'the previous helper left VM processes running; stopping them before joining with a new generation', pids: before.map((p) => p.pid) });
  const now = clock.nowMs();
  const stopped = await stopProcesses(() => previousVmProcesses(state, control), control, clock, { sigkillAtMs: now + RECOVERY_SIGKILL_AFTER_MS, giveUpAtMs: now + RECOVERY_GIVE_UP_AFTER_MS, pollMs: RECOVERY_POLL_MS });
  if (!stopped.gone) {
    throw new HelperError('HELPER_PREVIOUS_VMS_ALIVE', 'error', `processes ${stopped.alive.map((p) => p.pid).join(', ')} of the previous helper's VMs cannot be proven gone; not joining (their leases must not look free)`);
  }
  log.info({ msg: 'helper.recovered', previousIncarnation: `${state.incarnation.hostName}/${state.incarnation.nonce}`, vms: state.vms.length, stopped: before.map((p) => p.pid) });
  return { previousIncarnationGone: state.incarnation, stoppedPids: before.map((p) => p.pid) };
}
