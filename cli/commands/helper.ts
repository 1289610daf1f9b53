import { loadHelperConfig } from '../../helper/config/index.js';
import { createHelperLog } from '../../helper/daemon/log.js';
import type { RunningHelper } from '../../helper/daemon/helper-main.js';
import { parseCommandArgs, type Command } from '../command.js';
import { ExitStatus, UsageError } from '../exit-status.js';
import { readUnsafeTestSwitches, UNSAFE_TEST_SWITCHES_ENV, UNSAFE_TEST_SWITCHES_FLAG } from '../../protocol/unsafe-test-switches.js';

/**
 * `vmlease helper --config FILE`: the lease helper daemon, in the foreground
 * (systemd runs it so). It returns only when a signal stops it.
 */

export const helperCommand: Command = {
  name: 'helper',
  summary: 'run the lease helper daemon (root, one per host)',
  usage: [
    'usage: vmlease helper --config FILE [--log-file PATH] [--log-level LEVEL]',
    '',
    'Runs the lease helper in the foreground: joins the configured lockspaces (showing progress on a',
    'terminal), renews them, and serves the admin socket (RUN/admin/admin.sock, root only).',
    'Logs are JSON lines (pino) on stdout, or in --log-file (reopened on SIGHUP).',
    '',
    'Signals: SIGTERM/SIGINT stop every VM first (fence), release their leases, write the delta',
    'leases free and exit; SIGQUIT exits at once without touching VMs or leases (for a restart:',
    'the next start must find the VMs again or stop them before it joins anew).',
    '',
    'Config (JSON; unknown keys are refused): hostId, hostName, runDir (default /run/vmlease),',
    'ioTimeoutMs (must equal the lockspace\'s), watchdog ({"device","fireTimeoutMs"} or null),',
    'takeoverWithoutWatchdog (default false), lockspaces ([{"name","path","offset"}]), policy (path',
    'of the host policy file: {"leaseRoots": [DIR, ...]}).',
    '',
    `--${UNSAFE_TEST_SWITCHES_FLAG}: tests only (the fault harness): honour ${UNSAFE_TEST_SWITCHES_ENV}, which can turn`,
    'off fencing layer 2 or shorten host_dead; never use it on a real host (docs/chaos.md).',
  ].join('\n'),
  async run(args) {
    const { values, positionals } = parseCommandArgs(args, { config: { type: 'string' }, 'log-file': { type: 'string' }, 'log-level': { type: 'string' }, [UNSAFE_TEST_SWITCHES_FLAG]: { type: 'boolean' } });
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    if (typeof values.config !== 'string') throw new UsageError('--config FILE is required');
    const level = (values['log-level'] as string | undefined) ?? 'info';
    if (!['debug', 'info', 'warn', 'error'].includes(level)) throw new UsageError('--log-level must be debug, info, warn or error');
    const config = loadHelperConfig(values.config);
    const log = createHelperLog({ ...(typeof values['log-file'] === 'string' ? { file: values['log-file'] } : {}), level });
    // Loaded here, not at the top: it pulls in libsodium, which the supervisor (same entry, --jitless) must never load.
    const switches = readUnsafeTestSwitches(process.env, values[UNSAFE_TEST_SWITCHES_FLAG] === true);
    if (switches.ignoredEnv !== undefined) log.logger.warn({ msg: 'helper.unsafe-test-switches-ignored', reason: `${UNSAFE_TEST_SWITCHES_ENV} is set but --${UNSAFE_TEST_SWITCHES_FLAG} is not given` });
    for (const name of switches.enabled) log.logger.error({ msg: 'helper.unsafe-test-switch', switch: name, reason: 'a test switch that breaks safety is on: this host does not protect its VMs' });
    const { startHelper } = await import('../../helper/daemon/helper-main.js');
    return runUntilSignal(await startHelper(config, log, switches), log);
  },
};

function runUntilSignal(helper: RunningHelper, log: ReturnType<typeof createHelperLog>): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (mode: 'fence' | 'detach', signal: string) => {
      if (stopping) return;
      stopping = true;
      log.logger.info({ msg: 'helper.signal', signal, mode });
      helper.stop(mode).then(
        () => {
          log.flush();
          resolve(ExitStatus.ok);
        },
        (error: unknown) => {
          log.logger.error({ msg: 'helper.stop-failed', reason: (error as Error).message });
          log.flush();
          resolve(ExitStatus.error);
        },
      );
    };
    process.on('SIGTERM', () => stop('fence', 'SIGTERM'));
    process.on('SIGINT', () => stop('fence', 'SIGINT'));
    process.on('SIGQUIT', () => stop('detach', 'SIGQUIT'));
    process.on('SIGHUP', () => log.reopen());
  });
}
