import { initialAreaBytes, specBytes, type LockspaceSpec, type ResourceSpec, type SectorSize } from '../../helper/format/index.js';
import type { BrokenRules } from '../../helper/engine/broken-rules.js';
import { Checker } from './checker.js';
import { EventQueue } from './event-queue.js';
import { Rng } from './rng.js';
import { SimDisk, type DiskFaults } from './sim-disk.js';
import { CALM_PACE, CONTENDED_PACE, SimHost } from './sim-host.js';

/**
 * One seeded run: a few hosts share a lockspace and some resources on a
 * simulated disk; faults (I/O errors and timeouts with late writes, storage
 * stalls, helper pauses, host crashes and restarts) come from the seed; the
 * checker watches every write and every use. Same seed, same run.
 */

export interface RunOptions {
  readonly brokenRules?: BrokenRules;
  /** Simulated duration. */
  readonly durationMs?: number;
  /** Add a machine misconfigured with host 1's host id. */
  readonly duplicateHostId?: boolean;
  /** High contention: 4 to 6 hosts acquire and release one resource as fast as they can. */
  readonly contention?: boolean;
}

export interface RunResult {
  readonly seed: number;
  readonly violations: readonly string[];
  readonly summary: string;
  readonly events: number;
}

const AREA_STRIDE_BYTES = 1 << 20;

export function runSeed(seed: number, options: RunOptions = {}): RunResult {
  const rng = new Rng(seed);
  const usualHosts = rng.int(2, 4);
  const hosts = options.contention ? rng.int(4, 6) : usualHosts;
  const hostsMax = hosts + rng.int(0, 3);
  const sectorSize: SectorSize = rng.chance(0.3) ? 4096 : 512;
  const ioTimeoutMs = rng.int(20, 60);
  // Each host has its own watchdog: takeover must use the larger of the taker's and the owner's.
  const watchdogFor = (): number => ioTimeoutMs * rng.int(3, 12);
  const usualResources = rng.int(1, 3);
  const resourceCount = options.contention ? 1 : usualResources;
  const durationMs = options.durationMs ?? 20_000;
  const lockspace: LockspaceSpec = { kind: 'lockspace', lockspaceName: 'sim', hostsMax, sectorSize, ioTimeoutMs };
  const resources = Array.from({ length: resourceCount }, (_, r) => ({
    offset: (r + 1) * AREA_STRIDE_BYTES,
    spec: { kind: 'resource', lockspaceName: 'sim', resourceName: `vm${r}`, hostsMax, sectorSize } as ResourceSpec,
  }));

  const queue = new EventQueue();
  const contents = new Uint8Array((resourceCount + 1) * AREA_STRIDE_BYTES);
  contents.set(initialAreaBytes(lockspace), 0);
  for (const r of resources) contents.set(initialAreaBytes(r.spec), r.offset);
  const checker = new Checker({ lockspaceBytes: specBytes(lockspace), sectorSize, hostsMax, resources });
  const faults: DiskFaults = {
    latencyMinMs: 0,
    latencyMaxMs: Math.floor(ioTimeoutMs / 2),
    errorP: rng.float() * 0.03,
    timeoutP: rng.float() * 0.04,
    lateWriteMaxMs: ioTimeoutMs * 4,
    lateWriteDropP: 0.2,
    quietFromMs: durationMs - 7_000,
  };
  const disk = new SimDisk(contents, sectorSize, queue, rng, faults, checker);
  disk.captureInitial(0, contents.byteLength);
  const watchdogErrorMs = 5;
  const timingOptions = { clockRatePpm: 500, watchdogErrorMs, marginMinMs: 20 };
  const machines = options.duplicateHostId ? hosts + 1 : hosts;
  const simHosts = Array.from(
    { length: machines },
    (_, i) =>
      new SimHost(
        {
          name: i < hosts ? `host-${i + 1}` : 'host-1-duplicate',
          hostId: i < hosts ? i + 1 : 1,
          lockspace,
          resources,
          watchdogFireTimeoutMs: watchdogFor(),
          watchdogErrorMs,
          timingOptions,
          brokenRules: options.brokenRules ?? {},
          clockRate: 1 + rng.int(-500, 500) / 1_000_000,
          clockOffsetMs: rng.int(0, 1_000_000),
          pace: options.contention ? CONTENDED_PACE : CALM_PACE,
        },
        queue,
        disk,
        rng,
        checker,
      ),
  );
  simHosts.forEach((h, i) => queue.schedule(i * rng.int(0, 50), () => h.start()));
  // Faults stop 7 s before the end: time for the slowest restart (3 s), its aging and a takeover;
  // every resource must then be acquired again within the last 3 s (liveness).
  const faultsEndAt = durationMs - 7_000;
  scheduleFaults(rng, queue, simHosts, faultsEndAt, ioTimeoutMs, Math.max(...simHosts.map((h) => h.setup.watchdogFireTimeoutMs)));
  const events = queue.runUntil(durationMs, 5_000_000);
  checker.finish(queue.now, durationMs - 3_000);
  const totals = simHosts.reduce(
    (t, h) => ({ acq: t.acq + h.stats.acquisitions, crashes: t.crashes + h.stats.crashes, resets: t.resets + h.stats.resets, pauses: t.pauses + h.stats.pauses }),
    { acq: 0, crashes: 0, resets: 0, pauses: 0 },
  );
  const summary = `seed ${seed}: ${hosts} hosts (${hostsMax} ids, ${sectorSize}-byte sectors), ${resourceCount} resources, N=${ioTimeoutMs} W=${simHosts.map((h) => h.setup.watchdogFireTimeoutMs).join('/')}; ${totals.acq} acquisitions, ${checker.stats.ballots} ballots, ${totals.crashes} crashes, ${totals.resets} watchdog resets, ${totals.pauses} pauses, ${events} events`;
  return { seed, violations: checker.violations, summary, events };
}

function scheduleFaults(rng: Rng, queue: EventQueue, hosts: readonly SimHost[], untilMs: number, ioTimeoutMs: number, watchdogMs: number): void {
  let t = rng.int(200, 1500);
  while (t < untilMs) {
    const host = rng.pick(hosts);
    const kind = rng.int(0, 9);
    const at = t;
    if (kind <= 2) {
      // Crash, restart later as a new incarnation.
      // Half the restarts are fast, so writes still in flight from before the crash land after it.
      const downMs = rng.chance(0.5) ? rng.int(5, 4 * ioTimeoutMs) : rng.int(50, 3000);
      queue.schedule(at, () => host.crash('crash'));
      queue.schedule(at + downMs, () => host.isUp || host.start());
    } else if (kind <= 5) {
      // Pause the helper: short, or long enough for the watchdog to reset the host.
      const pauseMs = rng.chance(0.5) ? rng.int(1, 8 * ioTimeoutMs) : rng.int(8 * ioTimeoutMs, 8 * ioTimeoutMs + 2 * watchdogMs);
      queue.schedule(at, () => host.pause(pauseMs));
      queue.schedule(at + pauseMs + rng.int(100, 3000), () => host.isUp || host.start());
    } else if (kind === 9) {
      // The path stalls (writes pile up in flight), then the host resets and comes back fast:
      // the writes of the old incarnation land after the new one has started.
      const stallMs = rng.int(ioTimeoutMs, 4 * ioTimeoutMs);
      queue.schedule(at, () => {
        host.stalledUntil = queue.now + stallMs;
      });
      const crashAt = at + rng.int(ioTimeoutMs, stallMs);
      queue.schedule(crashAt, () => host.crash('crash'));
      queue.schedule(crashAt + rng.int(5, 2 * ioTimeoutMs), () => host.isUp || host.start());
    } else {
      // The host's path to the storage stalls.
      const stallMs = rng.int(ioTimeoutMs, 12 * ioTimeoutMs);
      queue.schedule(at, () => {
        host.stalledUntil = queue.now + stallMs;
      });
    }
    t += rng.int(100, 2500);
  }
}
