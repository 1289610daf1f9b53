import { parseArgs } from 'node:util';
import { DISABLE_NAMES, runChaos, type ChaosOptions, type Disable } from './chaos-run.js';
import { renderSummary } from './summary.js';
import { DRAWN_KINDS, type DrawnKind } from './fault-plan.js';

/**
 * `npm run chaos -- [--hosts N] [--vms M] [--seconds S] [--seed X] ...`: the
 * multi-process fault harness (docs/chaos.md). Prints progress on stderr,
 * then the JSON summary and a table on stdout. Exit 0 when the run passed
 * (0 violations and every VM running at the end), 1 when it did not (the
 * seed and the command that repeats it are printed), 2 on a usage error.
 * Needs root (loop devices, cgroups, setpriv).
 */

const usage = `usage: npm run chaos -- [--hosts N] [--vms M] [--seconds S] [--seed X]
                     [--sector-size 512|4096] [--io-timeout-ms N] [--watchdog-ms W]
                     [--quiet-seconds Q] [--fault-gap-ms MIN-MAX] [--fault-ms MIN-MAX]
                     [--faults KIND,...]
                     [--disable layer1|layer2|layer3|watchdog]... [--unsafe-host-dead]
                     [--json] [--keep]

  --hosts N          simulated hosts (helpers), 2..8 (default 3)
  --vms M            VMs kept running (default 6)
  --seconds S        run length (default 120); faults stop Q seconds before the end
  --seed X           seed of every choice the harness makes (default: random, printed)
  --sector-size      of the loop devices (default 512)
  --io-timeout-ms N  lockspace io timeout (default 300)
  --watchdog-ms W    watchdog fire timeout (default 3000)
  --quiet-seconds Q  fault-free end of the run (default: max(30, 4 host_dead), at most S/2)
  --fault-gap-ms     pause between faults, drawn from MIN-MAX (default 2000-6000)
  --fault-ms         duration of helper stops, storage stalls and slowdowns, drawn from
                     MIN-MAX (default: half short, under half the fail time 8N, half long,
                     from the reset time 8N + W to twice host_dead; slowdowns 1-8 s)
  --faults K,...     draw only these kinds: ${DRAWN_KINDS.join(', ')} (default all;
                     host-restart follows every host kill and watchdog reset)
  --disable X        test only: switch one fencing layer off (layer1: the supervisor ignores
                     'lost'; layer2: the helper does not kill; layer3: no supervisor deadline;
                     watchdog: the emulator never resets). Repeat for several.
  --unsafe-host-dead test only: hosts take over at 2N instead of host_dead
  --json             print only the JSON summary
  --keep             keep the run directory (host logs) even when the run passes`;

function fail(message: string): never {
  process.stderr.write(`chaos: ${message}\n${usage}\n`);
  process.exit(2);
}

function integer(text: string | undefined, what: string, min: number, max: number, fallback: number): number {
  if (text === undefined) return fallback;
  if (!/^\d{1,10}$/.test(text)) fail(`${what} ${JSON.stringify(text)} is not a whole number`);
  const n = Number(text);
  if (n < min || n > max) fail(`${what} ${n} is outside ${min}..${max}`);
  return n;
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      hosts: { type: 'string' },
      vms: { type: 'string' },
      seconds: { type: 'string' },
      seed: { type: 'string' },
      'sector-size': { type: 'string' },
      'io-timeout-ms': { type: 'string' },
      'watchdog-ms': { type: 'string' },
      'quiet-seconds': { type: 'string' },
      'fault-gap-ms': { type: 'string' },
      'fault-ms': { type: 'string' },
      faults: { type: 'string' },
      disable: { type: 'string', multiple: true },
      'unsafe-host-dead': { type: 'boolean' },
      json: { type: 'boolean' },
      keep: { type: 'boolean' },
      help: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  }));
} catch (error) {
  fail((error as Error).message);
}
if (values.help) {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}
if (process.getuid?.() !== 0) fail('needs root (loop devices, cgroups, processes as another uid)');
const seconds = integer(values.seconds, '--seconds', 20, 86_400, 120);
const ioTimeoutMs = integer(values['io-timeout-ms'], '--io-timeout-ms', 50, 10_000, 300);
const watchdogMs = integer(values['watchdog-ms'], '--watchdog-ms', 100, 60_000, 3_000);
const sector = integer(values['sector-size'], '--sector-size', 512, 4096, 512);
if (sector !== 512 && sector !== 4096) fail('--sector-size must be 512 or 4096');
const gap = /^(\d{1,7})-(\d{1,7})$/.exec(values['fault-gap-ms'] ?? '2000-6000') ?? fail('--fault-gap-ms MIN-MAX, in ms');
const [gapMin, gapMax] = [Number(gap[1]), Number(gap[2])];
if (gapMin < 100 || gapMax < gapMin) fail('--fault-gap-ms: 100 <= MIN <= MAX');
function range(text: string | undefined, what: string, min: number): { min: number; max: number } | undefined {
  if (text === undefined) return undefined;
  const m = /^(\d{1,7})-(\d{1,7})$/.exec(text) ?? fail(`${what} MIN-MAX, in ms`);
  const [lo, hi] = [Number(m[1]), Number(m[2])];
  if (lo < min || hi < lo) fail(`${what}: ${min} <= MIN <= MAX`);
  return { min: lo, max: hi };
}
const faultDurationMs = range(values['fault-ms'], '--fault-ms', 100);
const faultKinds = values.faults === undefined ? [...DRAWN_KINDS] : values.faults.split(',').map((k) => ((DRAWN_KINDS as readonly string[]).includes(k) ? (k as DrawnKind) : fail(`--faults ${k}: one of ${DRAWN_KINDS.join(', ')}`)));
const disable = (values.disable ?? []).map((d) => ((DISABLE_NAMES as readonly string[]).includes(d) ? (d as Disable) : fail(`--disable ${d}: one of ${DISABLE_NAMES.join(', ')}`)));
// host_dead is about 8N + W + 1 s; the quiet end must let every VM come back after the last fault.
const hostDeadApproxS = Math.ceil((8 * ioTimeoutMs + watchdogMs + 1_000) / 1000);
const quietSeconds = integer(values['quiet-seconds'], '--quiet-seconds', 5, 86_400, Math.min(Math.floor(seconds / 2), Math.max(30, 4 * hostDeadApproxS)));
if (quietSeconds >= seconds) fail('--quiet-seconds must be shorter than --seconds');

const options: ChaosOptions = {
  hosts: integer(values.hosts, '--hosts', 2, 8, 3),
  vms: integer(values.vms, '--vms', 1, 64, 6),
  seconds,
  seed: integer(values.seed, '--seed', 0, 0xffffffff, Math.floor(Math.random() * 0x1_0000_0000)),
  sectorSize: sector as 512 | 4096,
  ioTimeoutMs,
  watchdogFireTimeoutMs: watchdogMs,
  quietSeconds,
  faultGapMinMs: gapMin,
  faultGapMaxMs: gapMax,
  faultDurationMs,
  faultKinds,
  disable,
  unsafeHostDead: values['unsafe-host-dead'] === true,
  keep: values.keep === true,
  progress: (line) => void process.stderr.write(`chaos: ${line}\n`),
};

process.stderr.write(`chaos: seed ${options.seed}\n`);
const summary = await runChaos(options);
if (values.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
else process.stdout.write(`${JSON.stringify(summary)}\n\n${renderSummary(summary)}\n`);
if (!summary.passed) process.stderr.write(`chaos: FAILED with seed ${summary.seed}: repeat with ${summary.repeat}\n`);
process.exit(summary.passed ? 0 : 1);
