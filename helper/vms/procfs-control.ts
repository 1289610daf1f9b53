import { aliveVmProcesses, isAlive, signalIfSame, type ProcessTable } from '../procs/index.js';
import type { ProcessRef, SignalResult, VmProcessControl } from './vm-processes.js';

/** VmProcessControl on the kernel's process table (helper/procs). */
export function procfsControl(table: ProcessTable): VmProcessControl {
  return {
    describe(pid) {
      const info = table.read(pid);
      // Session -1: the kernel had already released the task (proc-stat.ts): less than a zombie, no session to record.
      if (!info || !isAlive(info) || info.sessionId < 0) return undefined;
      return { pid, startTime: info.startTime.toString(), uid: info.uid, euid: info.euid, sessionId: info.sessionId, ppid: info.ppid };
    },
    sessionProcesses(uid, sessionId): ProcessRef[] {
      return aliveVmProcesses(table, { uid, sessionId }).map((info) => ({ pid: info.pid, startTime: info.startTime.toString(), uid: info.uid }));
    },
    signal(process, signal): SignalResult {
      return signalIfSame(table, { pid: process.pid, startTime: BigInt(process.startTime), uid: process.uid }, signal);
    },
  };
}
