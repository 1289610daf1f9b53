import { parseArgs } from 'node:util';
import type { BrokenRules } from '../../helper/engine/broken-rules.js';
import { runSeed } from './scenario.js';

/** `npm run sim -- [--seeds N] [--from S] [--seed S] [--broken RULE] [--verbose]`: run seeds, report any violation with its seed. */

const usage = `usage: npm run sim -- [--seeds N] [--from S] [--seed S] [--duplicate-host-id] [--contention] [--broken RULE] [--verbose]

Runs the deterministic simulator: the real lease engines on a simulated shared
disk with seeded faults. Prints every violation with the seed and the command
that reproduces it; exits 1 if any seed fails.
  --seeds N     how many seeds (default 1000)
  --from S      first seed (default 1)
  --seed S      run just this seed, with its summary
  --duplicate-host-id   add a machine misconfigured with host 1's host id
  --contention  4 to 6 hosts acquire and release one resource as fast as they can
  --broken R    break a rule on purpose (skipPhase1Read, takeoverBeforeHostDead,
                reuseBallotNumber, skipHostBlockInBallotRead, forgetAfterPhase2Error,
                forgetContendedPhase2)`;

const { values } = parseArgs({
  options: {
    seeds: { type: 'string', default: '1000' },
    from: { type: 'string', default: '1' },
    seed: { type: 'string' },
    broken: { type: 'string' },
    verbose: { type: 'boolean', default: false },
    'duplicate-host-id': { type: 'boolean', default: false },
    contention: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});
if (values.help) {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}
const brokenRules: BrokenRules = values.broken ? { [values.broken]: true } : {};
const first = Number(values.seed ?? values.from);
const count = values.seed !== undefined ? 1 : Number(values.seeds);
if (!Number.isSafeInteger(first) || !Number.isSafeInteger(count) || count < 1) {
  process.stderr.write(`${usage}\n`);
  process.exit(2);
}
const started = performance.now();
let failed = 0;
let events = 0;
for (let seed = first; seed < first + count; seed++) {
  const result = runSeed(seed, { brokenRules, duplicateHostId: values['duplicate-host-id'], contention: values.contention });
  events += result.events;
  if (values.verbose || values.seed !== undefined) process.stdout.write(`${result.summary}\n`);
  if (result.violations.length > 0) {
    failed++;
    process.stdout.write(`FAIL ${result.summary}\n${result.violations.map((v) => `  ${v}`).join('\n')}\n  reproduce: npm run sim -- --seed ${seed}${values.broken ? ` --broken ${values.broken}` : ''}${values['duplicate-host-id'] ? ' --duplicate-host-id' : ''}${values.contention ? ' --contention' : ''}\n`);
  }
}
const seconds = (performance.now() - started) / 1000;
process.stdout.write(`${count - failed}/${count} seeds passed (${first}..${first + count - 1}) in ${seconds.toFixed(1)} s, ${events} events\n`);
process.exit(failed === 0 ? 0 : 1);
