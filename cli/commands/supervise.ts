import { UUID_PATTERN_TEXT } from './vm-uuid.js';
import { EXIT, supervise } from '../../supervisor/supervise.js';
import { type Command } from '../command.js';
import { UsageError } from '../exit-status.js';
import { RUN_DIR_DEFAULT } from '../run-dir-default.js';
import { parseArgs } from 'node:util';
import { readUnsafeTestSwitches, UNSAFE_TEST_SWITCHES_ENV, UNSAFE_TEST_SWITCHES_FLAG } from '../../protocol/unsafe-test-switches.js';

/** `vmlease supervise --vm UUID [--receive-lease] [--run-dir DIR] -- COMMAND ARGS...` */
export const superviseCommand: Command = {
  name: 'supervise',
  summary: "hold a VM's leases and run its command (as the VM's uid; libvirt runs it in place of qemu)",
  usage: [
    'usage: vmlease supervise --vm UUID [--receive-lease] [--run-dir DIR] -- COMMAND ARGS...',
    '',
    "Binds to VM UUID's session with the helper (the VM must be registered), makes sure its leases are",
    'held (claims what the start hook acquired, or asks the helper to acquire them), then runs',
    'COMMAND. The command is killed when the leases are lost or no fresh deadline signed by the',
    'helper arrives in time; it also dies if the supervisor is killed. Run it under `node --jitless`.',
    '',
    'Exit status before COMMAND starts: 3 lease busy (the holder is named), 4 refused, 5 storage',
    "error. Afterwards: COMMAND's own status (128+signal when killed), or 6 when the lease was lost",
    '(the reason is the last line on stderr).',
    '',
    '  --vm UUID         the VM',
    '  --receive-lease   (migration: not available yet, refused)',
    `  --run-dir DIR     the helper's run directory (default ${RUN_DIR_DEFAULT})`,
    `  --${UNSAFE_TEST_SWITCHES_FLAG}  tests only: honour ${UNSAFE_TEST_SWITCHES_ENV} (turns fencing layers off; docs/chaos.md)`,
  ].join('\n'),
  async run(args) {
    const split = args.indexOf('--');
    if (split < 0) throw new UsageError("give the command after '--'");
    const command = args.slice(split + 1);
    if (command.length === 0) throw new UsageError("no command after '--'");
    let values: Record<string, string | boolean | undefined>;
    try {
      ({ values } = parseArgs({ args: args.slice(0, split), options: { vm: { type: 'string' }, 'receive-lease': { type: 'boolean' }, 'run-dir': { type: 'string' }, [UNSAFE_TEST_SWITCHES_FLAG]: { type: 'boolean' } }, strict: true, allowPositionals: false }));
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    if (typeof values.vm !== 'string' || !new RegExp(UUID_PATTERN_TEXT).test(values.vm)) throw new UsageError('--vm UUID (lowercase canonical) is required');
    if (values['receive-lease'] === true) {
      process.stderr.write('vmlease supervise: --receive-lease (incoming migration) is not available in this build; refusing to start rather than run without the lease hand-over\n');
      return EXIT.refused;
    }
    const unsafeTestSwitches = readUnsafeTestSwitches(process.env, values[UNSAFE_TEST_SWITCHES_FLAG] === true);
    if (unsafeTestSwitches.ignoredEnv !== undefined) process.stderr.write(`vmlease supervise: ignoring ${UNSAFE_TEST_SWITCHES_ENV} (no --${UNSAFE_TEST_SWITCHES_FLAG})\n`);
    for (const name of unsafeTestSwitches.enabled) process.stderr.write(`vmlease supervise: UNSAFE TEST SWITCH ${name} is on: this VM is not protected\n`);
    return supervise({
      unsafeTestSwitches,
      vm: values.vm,
      runDir: typeof values['run-dir'] === 'string' ? values['run-dir'] : RUN_DIR_DEFAULT,
      command,
      report: (line) => void process.stderr.write(`vmlease supervise: ${line}\n`),
    });
  },
};
