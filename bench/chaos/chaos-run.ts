import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Rng } from '../../test/sim/rng.js';
import { deriveTiming, hostDeadAfterMs } from '../../helper/engine/timing.js';
import { ChaosHost } from './chaos-host.js';
import { drawFault, type DrawnKind, type Fault, type FaultKind } from './fault-plan.js';
import { HostCgroup, makeCgroupRoot, removeCgroupRoot } from './host-cgroup.js';
import { makeSharedStorage } from './shared-storage.js';
import { summarize, type ChaosSummary } from './summary.js';
import { VmKeeper, VmSlot, type Violation } from './vm-keeper.js';

/**
 * One run of the fault harness (`npm run chaos`, docs/chaos.md): N hosts,
 * M VMs kept running by the cluster loop, faults drawn from the seed until
 * the quiet period, then every fault lifted and every host restarted; the
 * run passes when no writer saw another and no two writers of a VM were
 * alive at once (0 violations), and every VM runs at the end.
 */

/** What can be switched off to show the checker fails (or that one layer alone is not needed). */
export const DISABLE_NAMES = ['layer1', 'layer2', 'layer3', 'watchdog'] as const;
export type Disable = (typeof DISABLE_NAMES)[number];

export interface ChaosOptions {
  readonly hosts: number;
  readonly vms: number;
  readonly seconds: number;
  readonly seed: number;
  readonly sectorSize: 512 | 4096;
  readonly ioTimeoutMs: number;
  readonly watchdogFireTimeoutMs: number;
  /** Faults stop this long before the end; then every VM must run again. */
  readonly quietSeconds: number;
  readonly faultGapMinMs: number;
  readonly faultGapMaxMs: number;
  /** Duration of helper stops, storage stalls and slowdowns (default: drawn short or long, see fault-plan.ts). */
  readonly faultDurationMs?: { readonly min: number; readonly max: number } | undefined;
  /** The kinds of fault drawn (all by default). */
  readonly faultKinds: readonly DrawnKind[];
  readonly disable: readonly Disable[];
  /** Other hosts take over at 2N instead of host_dead (unsafe test switch). */
  readonly unsafeHostDead: boolean;
  /** Keep the run directory (logs) even when the run passes. */
  readonly keep: boolean;
  readonly progress: (line: string) => void;
}

export const SLOW_STORAGE_BYTES_PER_SECOND = 64 * 1024;
export const RESTART_DELAY_MIN_MS = 1_000;
export const RESTART_DELAY_MAX_MS = 5_000;
export const PROGRESS_INTERVAL_MS = 10_000;
export const VIOLATIONS_KEPT_MAX = 50;
export const WRITER_INTERVAL_MS = 50;

const here = fileURLToPath(new URL('.', import.meta.url));
const CLI = join(here, '..', '..', 'cli', 'main.js');
const EMULATOR = join(here, '..', '..', 'scripts', 'watchdog-emulator.js');
const WRITER = join(here, 'writer.js');

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function uuidOf(rng: Rng): string {
  const h = rng.hex(32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export interface ResetRecord {
  readonly host: number;
  /** From the reset (or power-off) to the host's last process gone. */
  readonly drainMs: number;
  readonly cause: 'watchdog' | 'host-kill';
}

export async function runChaos(options: ChaosOptions): Promise<ChaosSummary> {
  const rng = new Rng(options.seed);
  const timing = deriveTiming(options.ioTimeoutMs, options.watchdogFireTimeoutMs);
  const hostDeadMs = hostDeadAfterMs({ own: timing, ownerIoTimeoutMs: options.ioTimeoutMs, ownerWatchdogFireTimeoutMs: options.watchdogFireTimeoutMs, takeoverWithoutWatchdog: false })!;
  const resetMs = timing.failMs + options.watchdogFireTimeoutMs;
  const dir = mkdtempSync(join(tmpdir(), 'vmlease-chaos-'));
  chmodSync(dir, 0o755); // the VMs' uid walks to the helpers' run directories and the data device
  const cgroupRoot = makeCgroupRoot(`vmlease-chaos-${process.pid}-${rng.hex(6)}`);
  const violationsFile = join(dir, 'violations.jsonl');
  writeFileSync(violationsFile, '', { mode: 0o666 });
  chmodSync(violationsFile, 0o666); // the writers (the VMs' uid) append to it
  const faults = new Map<FaultKind, number>();
  const count = (kind: FaultKind) => faults.set(kind, (faults.get(kind) ?? 0) + 1);
  const violations: Violation[] = [];
  const resets: ResetRecord[] = [];
  const failoverMs: number[] = [];
  const restartMs: number[] = [];
  let vmStarts = 0;
  let failovers = 0;
  let busyRefusals = 0;
  let duplicateStarts = 0;
  let repairs = 0;
  let otherRefusals = 0;
  const refusalSamples: string[] = [];
  const startedAt = Date.now();
  const elapsed = () => ((Date.now() - startedAt) / 1000).toFixed(1);
  let storage: ReturnType<typeof makeSharedStorage> | undefined;
  const hosts: ChaosHost[] = [];
  let keeper: VmKeeper | undefined;
  let stopping = false;
  const pending = new Set<Promise<unknown>>();
  const track = (p: Promise<unknown>) => {
    const q = p.catch((error: unknown) => options.progress(`[${elapsed()} s] harness task failed: ${(error as Error).message}`)).finally(() => pending.delete(q));
    pending.add(q);
  };
  let vmsRunningAtEnd = 0;
  try {
    storage = makeSharedStorage({ dir, cli: CLI, sectorSize: options.sectorSize, hosts: options.hosts, vms: options.vms, ioTimeoutMs: options.ioTimeoutMs });
    const helperSwitches = [...(options.disable.includes('layer2') ? ['no-helper-kill'] : []), ...(options.unsafeHostDead ? ['takeover-before-host-dead'] : [])];
    const supervisorSwitches = [...(options.disable.includes('layer1') ? ['no-lost-notice'] : []), ...(options.disable.includes('layer3') ? ['no-self-fence'] : [])];
    for (let id = 1; id <= options.hosts; id++) {
      hosts.push(
        new ChaosHost(id, new HostCgroup(cgroupRoot, `host-${id}`), storage, {
          cli: CLI,
          emulatorScript: EMULATOR,
          dir,
          ioTimeoutMs: options.ioTimeoutMs,
          watchdogFireTimeoutMs: options.watchdogFireTimeoutMs,
          watchdogResets: !options.disable.includes('watchdog'),
          helperSwitches,
          supervisorSwitches,
        }),
      );
    }

    /** Power the host back on after `delayMs` (its processes are all gone by then). */
    const restartLater = async (host: ChaosHost, delayMs: number) => {
      await sleep(delayMs);
      if (stopping) return;
      count('host-restart');
      host.note('host restart');
      try {
        await host.start();
      } catch (error) {
        host.note(`restart failed: ${(error as Error).message}; powering off and trying again`);
        host.powerOff();
        await host.drained();
        if (!stopping) return restartLater(host, delayMs);
      }
      host.fault = undefined;
    };

    const onHostDown = async (host: ChaosHost, cause: ResetRecord['cause'], atMs: number) => {
      host.fault = cause;
      keeper?.hostGone(host.id);
      // A stalled host's processes wait in D state for their I/O: lifting the stall lets it finish
      // (a real reset would drop what the HBA has not sent). The reset counts as complete only when
      // the cgroup is empty, and the time that took is reported against host_dead's margin.
      if (host.stalled) host.setStorage(undefined, SLOW_STORAGE_BYTES_PER_SECOND);
      const drainedAt = await host.drained();
      resets.push({ host: host.id, drainMs: drainedAt - atMs, cause });
      host.note(`${cause}: every process gone ${drainedAt - atMs} ms after it`);
      await restartLater(host, rng.int(RESTART_DELAY_MIN_MS, RESTART_DELAY_MAX_MS));
    };

    await Promise.all(hosts.map((h) => h.start()));
    for (const host of hosts) {
      host.onReset = (report) => {
        if (stopping) return;
        options.progress(`[${elapsed()} s] host ${host.id}: watchdog reset (${report.killed} processes killed)`);
        track(onHostDown(host, 'watchdog', report.atMs));
      };
    }
    options.progress(`[${elapsed()} s] ${options.hosts} helpers ready (N ${options.ioTimeoutMs} ms, W ${options.watchdogFireTimeoutMs} ms, host_dead ${hostDeadMs} ms, ${options.sectorSize}-byte sectors); starting ${options.vms} VMs`);

    const vmSlots = Array.from({ length: options.vms }, (_, i) => {
      const uuid = uuidOf(rng);
      return new VmSlot(i, uuid, storage!.lease(i), (host) => [process.execPath, WRITER, '--device', storage!.dataNode, '--offset', String(storage!.dataOffset(i)), '--host', String(host), '--vm', uuid, '--violations', violationsFile, '--interval-ms', String(WRITER_INTERVAL_MS)]);
    });
    keeper = new VmKeeper(vmSlots, hosts, rng, {
      started(vm, host, downMs, failover) {
        vmStarts += 1;
        if (downMs !== undefined) restartMs.push(downMs);
        if (failover) {
          failovers += 1;
          if (downMs !== undefined) failoverMs.push(downMs);
        }
        hosts[host - 1]!.note(`vm ${vm.index} (${vm.uuid}) writing${downMs !== undefined ? ` after ${downMs} ms down` : ''}${failover ? ' (failover)' : ''}`);
      },
      exited(vm, host, status) {
        hosts[host - 1]!.note(`vm ${vm.index} supervisor ${status}`);
      },
      violation(v) {
        violations.push(v);
        options.progress(`[${elapsed()} s] VIOLATION ${v.kind} vm ${v.vm}: ${v.detail}`);
      },
      duplicateStart(vm, host) {
        duplicateStarts += 1;
        hosts[host - 1]!.note(`vm ${vm.index}: acquired here while believed running on host ${vm.host}`);
      },
      refusal(vm, host, status, stderr) {
        const h = hosts[host - 1]!;
        // A helper whose lockspace was lost (its renewals stopped past fail) stays up but cannot
        // serve: an operator (or systemd) restarts it. The harness does, and counts it.
        if (/LOCKSPACE_NOT_JOINED/.test(stderr) && h.phase === 'up' && h.fault === undefined && !stopping) {
          repairs += 1;
          h.fault = 'repair';
          h.note('lockspace lost: restarting the helper (SIGTERM)');
          track(
            h.restartHelper('SIGTERM').then(
              () => void (h.fault === 'repair' && (h.fault = undefined)),
              async (error: unknown) => {
                h.note(`repair failed: ${(error as Error).message}`);
                if (h.fault === 'repair') {
                  h.powerOff();
                  await onHostDown(h, 'host-kill', Date.now());
                }
              },
            ),
          );
        }
        if (status === 3) busyRefusals += 1;
        else {
          otherRefusals += 1;
          if (refusalSamples.length < 10) refusalSamples.push(`host ${host} vm ${vm.index}: ${status}: ${stderr.trim().split('\n').pop() ?? ''}`);
        }
      },
    });
    keeper.start();

    const endAt = startedAt + options.seconds * 1000;
    const faultsEndAt = endAt - options.quietSeconds * 1000;
    const progressTimer = setInterval(() => {
      options.progress(`[${elapsed()} s] running ${keeper!.running().length}/${options.vms}, starts ${vmStarts}, failovers ${failovers}, faults ${[...faults.values()].reduce((a, b) => a + b, 0)}, violations ${violations.length + writerViolations(violationsFile).length}`);
    }, PROGRESS_INTERVAL_MS);

    const apply = async (fault: Fault) => {
      count(fault.kind);
      const describe = JSON.stringify(fault);
      options.progress(`[${elapsed()} s] fault ${describe}`);
      switch (fault.kind) {
        case 'supervisor-kill':
        case 'writer-kill':
          keeper!.kill(keeper!.vms[fault.vm]!, fault.kind === 'supervisor-kill' ? 'supervisor' : 'writer');
          return;
      }
      const host = hosts[fault.host - 1]!;
      host.fault = fault.kind;
      host.note(`fault ${describe}`);
      switch (fault.kind) {
        case 'host-kill': {
          const at = Date.now();
          host.powerOff();
          keeper!.hostGone(host.id);
          if (host.stalled) host.setStorage(undefined, SLOW_STORAGE_BYTES_PER_SECOND);
          const drainedAt = await host.drained();
          resets.push({ host: host.id, drainMs: drainedAt - at, cause: 'host-kill' });
          await restartLater(host, fault.downMs);
          return;
        }
        case 'helper-stop':
          host.pauseHelper(true);
          await sleep(fault.durationMs);
          if (host.fault === 'helper-stop') {
            host.pauseHelper(false);
            host.fault = undefined;
          }
          return;
        case 'helper-restart':
          try {
            await host.restartHelper(fault.signal);
            if (host.fault === 'helper-restart') host.fault = undefined;
          } catch (error) {
            // Its watchdog may have reset the host meanwhile (a restart slower than W): that path restarts it.
            host.note(`helper restart failed: ${(error as Error).message}`);
            if (host.fault === 'helper-restart') {
              host.powerOff();
              await onHostDown(host, 'host-kill', Date.now());
            }
          }
          return;
        case 'storage-stall':
        case 'storage-slow':
          host.setStorage(fault.kind === 'storage-stall' ? 'stall' : 'slow', SLOW_STORAGE_BYTES_PER_SECOND);
          await sleep(fault.durationMs);
          if (host.fault === fault.kind) {
            host.setStorage(undefined, SLOW_STORAGE_BYTES_PER_SECOND);
            host.fault = undefined;
          }
          return;
      }
    };

    while (Date.now() < faultsEndAt) {
      await sleep(rng.int(options.faultGapMinMs, options.faultGapMaxMs));
      if (Date.now() >= faultsEndAt) break;
      const quietHosts = hosts.filter((h) => h.phase === 'up' && h.fault === undefined).map((h) => h.id);
      const fault = drawFault(rng, { quietHosts, runningVms: keeper.running().map((vm) => vm.index) }, { failMs: timing.failMs, resetMs, hostDeadMs, durationMs: options.faultDurationMs }, new Set(options.faultKinds));
      if (fault) track(apply(fault));
    }
    // Quiet: lift every stall, wake every stopped helper; hosts that are down come back by themselves.
    options.progress(`[${elapsed()} s] faults stop; every VM must run again by the end`);
    for (const host of hosts) {
      if (host.phase !== 'up') continue;
      if (host.stalled) host.setStorage(undefined, SLOW_STORAGE_BYTES_PER_SECOND);
      if (host.stopped) host.pauseHelper(false);
      if (host.fault === 'storage-stall' || host.fault === 'storage-slow' || host.fault === 'helper-stop') host.fault = undefined;
    }
    while (Date.now() < endAt) await sleep(Math.min(500, endAt - Date.now()));
    clearInterval(progressTimer);
    vmsRunningAtEnd = keeper.running().length;
  } finally {
    stopping = true;
    keeper?.stop();
    for (const host of hosts) {
      if (host.stalled) host.setStorage(undefined, SLOW_STORAGE_BYTES_PER_SECOND);
      host.powerOff();
    }
    for (const host of hosts) {
      await host.drained().catch(() => undefined);
      host.close();
    }
    await Promise.race([Promise.allSettled([...pending]), sleep(5_000)]);
    for (const host of hosts) host.cgroup.remove();
    removeCgroupRoot(cgroupRoot);
    storage?.detach();
  }
  for (const v of writerViolations(violationsFile)) violations.push(v);
  const summary = summarize({
    options,
    hostDeadMs,
    resetMs,
    faults,
    vmStarts,
    failovers,
    failoverMs,
    restartMs,
    violations: violations.slice(0, VIOLATIONS_KEPT_MAX),
    violationCount: violations.length,
    vmsRunningAtEnd,
    resets,
    busyRefusals,
    duplicateStarts,
    repairs,
    otherRefusals,
    refusalSamples,
    durationMs: Date.now() - startedAt,
    dir: options.keep || violations.length > 0 || vmsRunningAtEnd < options.vms ? dir : undefined,
  });
  if (summary.dir === undefined) rmSync(dir, { recursive: true, force: true });
  return summary;
}

/** Violations the writers recorded (one JSON line each). */
function writerViolations(file: string): Violation[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const v = JSON.parse(l) as { vm: string; atMs: number; host: number; pid: number; expected: unknown; found: unknown };
      return { kind: 'concurrent-writer' as const, vm: v.vm, atMs: v.atMs, detail: `writer pid ${v.pid} on host ${v.host} expected ${JSON.stringify(v.expected)} but found ${JSON.stringify(v.found)}` };
    });
}
