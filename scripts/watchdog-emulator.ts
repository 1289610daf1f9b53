import { parseArgs } from 'node:util';
import { monotonicClock } from '../helper/leases/clock.js';
import { startWatchdogEmulator, type EmulatorVictims, type RunningEmulator } from '../helper/fencing/watchdog-emulator.js';

/**
 * The watchdog emulator as a process, for tests and the multi-process harness:
 *
 *   node dist/scripts/watchdog-emulator.js --fifo PATH --fire-timeout-ms N (--cgroup DIR | --pgid N)...
 *
 * Creates the FIFO (the helper's watchdog "device"), and writes one JSON line
 * per event on stdout: ready, open, eof {disarmed}, reset {killed, ...}. After
 * a reset it exits 0 (the host is gone). Run it outside the victims' cgroup
 * and process group. Behaviour: helper/fencing/watchdog-emulator.ts.
 */

const usage = 'usage: watchdog-emulator --fifo PATH --fire-timeout-ms N (--cgroup DIR | --pgid N)...';

function fail(message: string): never {
  process.stderr.write(`watchdog-emulator: ${message}\n${usage}\n`);
  process.exit(2);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      fifo: { type: 'string' },
      'fire-timeout-ms': { type: 'string' },
      cgroup: { type: 'string', multiple: true },
      pgid: { type: 'string', multiple: true },
    },
    strict: true,
    allowPositionals: false,
  }));
} catch (error) {
  fail((error as Error).message);
}
const fifo = values.fifo ?? fail('--fifo is required');
const fireText = values['fire-timeout-ms'] ?? fail('--fire-timeout-ms is required');
if (!/^\d{1,7}$/.test(fireText) || Number(fireText) < 1 || Number(fireText) > 3_600_000) fail(`--fire-timeout-ms ${fireText}: 1..3600000`);
const victims: EmulatorVictims[] = [
  ...(values.cgroup ?? []).map((path): EmulatorVictims => ({ kind: 'cgroup', path })),
  ...(values.pgid ?? []).map((text): EmulatorVictims => {
    if (!/^\d{1,9}$/.test(text) || Number(text) < 2) fail(`--pgid ${text}: a process group id`);
    return { kind: 'process-group', pgid: Number(text) };
  }),
];
if (victims.length === 0) fail('name the host\'s processes with --cgroup or --pgid');

let emulator: RunningEmulator;
try {
  emulator = startWatchdogEmulator(
    { fifoPath: fifo, fireTimeoutMs: Number(fireText), victims },
    { clock: monotonicClock, report: (report) => process.stdout.write(`${JSON.stringify(report)}\n`) },
  );
} catch (error) {
  process.stderr.write(`watchdog-emulator: ${(error as Error).message}\n`);
  process.exit(1);
}
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    void emulator.stop().then(() => process.exit(0));
  });
}
void emulator.done.then(() => process.exit(0));
