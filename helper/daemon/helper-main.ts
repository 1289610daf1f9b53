import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { writeFileDurably } from '../leases/durable-file.js';
import type { HelperConfig } from '../config/index.js';
import { monotonicClock } from '../leases/index.js';
import { loadHostPolicy } from '../../policy/index.js';
import { peerCredentialsOf, ProcFsProcessTable } from '../procs/index.js';
import { ADMIN_FRAME_BYTES_MAX } from '../../protocol/admin-messages.js';
import { createIncarnationKey, loadIncarnationKey, type IncarnationKey } from '../../protocol/incarnation-key.js';
import type { Incarnation } from '../format/index.js';
import { SUPERVISOR_FRAME_BYTES_MAX } from '../../protocol/limits.js';
import { encodePublicKeyFile } from '../../protocol/public-key-file.js';
import { deriveTiming } from '../engine/timing.js';
import { openWatchdog, readBootTimeMs, SuspendDetector, WatchdogPetter, type Watchdog } from '../fencing/index.js';
import { SupervisorSession } from '../sockets/supervisor-session.js';
import { procfsControl } from '../vms/procfs-control.js';
import { serveAdminSession } from '../sockets/admin-session.js';
import { UnixWsServer } from '../sockets/unix-ws-server.js';
import { adminHandler } from './admin-handlers.js';
import { HelperDaemon } from './helper-daemon.js';
import { HelperError } from './helper-error.js';
import { incarnationId, incarnationName, newIncarnation, readBootId } from './incarnation.js';
import type { JoinedLockspace } from './joined-lockspace.js';
import type { HelperLog } from './log.js';
import { recoverFromPreviousHelper, waitForPreviousHelper } from './recovery.js';
import { decideResume, type ResumeDecision } from './resume.js';
import { prepareRunDir, runDirLayout } from './run-dir.js';
import { readState } from './state-file.js';
import { NO_UNSAFE_TEST_SWITCHES, type UnsafeTestSwitches } from '../../protocol/unsafe-test-switches.js';

/**
 * The `vmlease helper` process: builds the daemon on the real world (the
 * monotonic clock, /proc, the kernel's socket credentials), opens its
 * sockets, joins its lockspaces, and handles signals:
 *   SIGTERM, SIGINT  fence first: stop every VM, release, leave, exit 0
 *   SIGQUIT          exit at once, leaving VMs and leases for the next start to resume
 *   SIGHUP           reopen the log file
 *   SIGUSR1          ignored (Node would open its inspector)
 */

export const ADMIN_CONNECTIONS_MAX = 16;
export const SUPERVISOR_CONNECTIONS_MAX = 512;
export const SUPERVISOR_CONNECTIONS_PER_UID_MAX = 8;
export const HANDSHAKE_TIMEOUT_MS = 5_000;
export const PROGRESS_INTERVAL_MS = 500;
export const SUSPEND_CHECK_INTERVAL_MS = 1_000;
/** Boot time may run ahead of monotonic time by this much between checks before we call it a suspend. */
export const SUSPEND_THRESHOLD_MS = 1_000;

export interface RunningHelper {
  readonly daemon: HelperDaemon;
  stop(mode: 'fence' | 'detach'): Promise<void>;
}

/** Refuses to start beside a helper that answers on the admin socket. */
function refuseSecondHelper(socketPath: string): Promise<void> {
  if (!existsSync(socketPath)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    socket.once('connect', () => {
      socket.destroy();
      reject(new HelperError('HELPER_RUNNING', 'error', `another helper is running (it answers on ${socketPath})`));
    });
    socket.once('error', () => resolve());
  });
}

/** The incarnation's secret key, root-only: a restarted helper that resumes the incarnation signs with it. */
function writeSecretKey(path: string, key: IncarnationKey): void {
  writeFileDurably(path, key.secretKeyBytes(), 0o600);
}

/** Publishes the incarnation's public key (root-owned, world-readable): supervisors trust only it. */
function publishKey(path: string, key: IncarnationKey): void {
  writeFileDurably(path, encodePublicKeyFile({ incarnation: key.incarnation, publicKey: key.publicKey }), 0o644);
}

function startWatchdog(daemon: HelperDaemon, config: HelperConfig, log: HelperLog['logger']): { watchdog: Watchdog; petter: WatchdogPetter } | undefined {
  if (config.watchdog === null) return undefined;
  const clock = monotonicClock;
  const watchdog = openWatchdog(config.watchdog, { clock });
  if (watchdog.kind === 'emulator') log.warn({ msg: 'helper.watchdog-emulated', device: watchdog.device, reason: 'the watchdog device is a FIFO: a test emulator, not a hardware reset' });
  const timing = deriveTiming(config.ioTimeoutMs, config.watchdog.fireTimeoutMs);
  const petter = new WatchdogPetter({
    watchdog,
    clock,
    petIntervalMs: timing.watchdogPetIntervalMs,
    lockspaces: () =>
      [...daemon.lockspaces.values()].flatMap((ls) => {
        const liveHolders = [...daemon.vms.vms.values()].filter((vm) => vm.usesLockspace(ls.name)).length;
        if (liveHolders === 0) return [];
        // A lockspace with holders that was never renewed (or is lost) forbids pets: T is long past.
        return [{ name: ls.name, liveHolders, lastRenewalMs: ls.state === 'joined' ? (ls.lastRenewedAtMs ?? 0) : 0, failMs: ls.timing.failMs }];
      }),
    onOutcome: (outcome) => {
      if (outcome.kind !== 'petted') log.warn({ msg: 'watchdog.not-petted', outcome });
    },
  });
  petter.start();
  return { watchdog, petter };
}

function showProgress(ls: JoinedLockspace): () => void {
  if (!process.stderr.isTTY) return () => undefined;
  const timer = setInterval(() => {
    const elapsed = (monotonicClock.nowMs() - (ls.joinStartedAtMs ?? monotonicClock.nowMs())) / 1000;
    const eta = ls.joinEtaMs();
    const left = eta === undefined ? 'unknown' : `about ${Math.max(0, (eta - monotonicClock.nowMs()) / 1000).toFixed(1)} s left`;
    process.stderr.write(`\rjoining lockspace ${ls.name}: ${elapsed.toFixed(1)} s, ${left}   `);
  }, PROGRESS_INTERVAL_MS);
  return () => {
    clearInterval(timer);
    process.stderr.write('\n');
  };
}

export async function startHelper(config: HelperConfig, helperLog: HelperLog, unsafeTestSwitches: UnsafeTestSwitches = NO_UNSAFE_TEST_SWITCHES): Promise<RunningHelper> {
  const log = helperLog.logger;
  const policy = loadHostPolicy(config.policy);
  const clock = monotonicClock;
  const control = procfsControl(new ProcFsProcessTable());
  const self = control.describe(process.pid)!;
  const layout = runDirLayout(config.runDir);
  prepareRunDir(layout);
  await refuseSecondHelper(layout.adminSocket);
  const state = readState(layout.stateFile);
  if (state) await waitForPreviousHelper(state, control, clock);
  const bootId = readBootId();
  let decision: ResumeDecision = { resume: false, reason: 'no state left by a previous helper' };
  if (state) decision = existsSync(layout.secretKeyFile) ? await decideResume(state, config, bootId, control, clock) : { resume: false, reason: 'the previous incarnation key is missing' };
  let incarnation: Incarnation;
  let key: IncarnationKey;
  let previousIncarnationGone: Incarnation | undefined;
  if (state && decision.resume) {
    incarnation = state.incarnation;
    key = await loadIncarnationKey(incarnationId(incarnation), readFileSync(layout.secretKeyFile));
    log.warn({ msg: 'helper.resuming', incarnation: incarnationName(incarnation), vms: state.vms.length });
  } else {
    if (state) log.warn({ msg: 'helper.not-resuming', reason: decision.resume ? '' : decision.reason });
    previousIncarnationGone = (await recoverFromPreviousHelper(state, control, clock, log)).previousIncarnationGone;
    incarnation = newIncarnation(config.hostName, bootId, randomBytes);
    key = await createIncarnationKey(incarnationId(incarnation));
    writeSecretKey(layout.secretKeyFile, key);
  }
  publishKey(layout.publicKeyFile, key);
  const daemon = new HelperDaemon(config, policy, {
    self: { pid: self.pid, startTime: self.startTime },
    clock,
    wallClockMs: () => Date.now(),
    log,
    control,
    incarnation,
    unsafeTestSwitches,
  });
  if (config.watchdog === null) {
    log.warn({ msg: 'helper.no-watchdog', reason: 'no watchdog configured: other hosts never take this host\'s leases on timing alone (unless they set takeoverWithoutWatchdog)' });
  }
  const watchdog = startWatchdog(daemon, config, log);
  const sessionLog = log.child({ socket: 'supervisor' });
  let stopping = false;
  const supervisors = new UnixWsServer({
    name: 'supervisor',
    path: daemon.layout.supervisorSocket,
    socketMode: 0o666,
    frameBytesMax: SUPERVISOR_FRAME_BYTES_MAX,
    connectionsMax: SUPERVISOR_CONNECTIONS_MAX,
    connectionsPerUidMax: SUPERVISOR_CONNECTIONS_PER_UID_MAX,
    handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
    peerOf: (socket) => peerCredentialsOf(socket),
    admit: () => undefined,
    onSession: (ws, peer) =>
      void new SupervisorSession(ws, peer, {
        vms: daemon.vms,
        control: daemon.control,
        key,
        log: sessionLog,
        nowMs: () => clock.nowMs(),
        newSessionId: () => randomBytes(12).toString('base64url'),
        stopping: () => stopping,
        handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
      }),
    log,
  });
  const admin = new UnixWsServer({
    name: 'admin',
    path: daemon.layout.adminSocket,
    socketMode: 0o600,
    frameBytesMax: ADMIN_FRAME_BYTES_MAX,
    connectionsMax: ADMIN_CONNECTIONS_MAX,
    connectionsPerUidMax: ADMIN_CONNECTIONS_MAX,
    handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS,
    peerOf: (socket) => peerCredentialsOf(socket),
    admit: (peer) => (peer.uid === 0 ? undefined : `uid ${peer.uid} is not root`),
    onSession: (ws, peer) => serveAdminSession(ws, peer, adminHandler(daemon, clock), log.child({ socket: 'admin' }), () => clock.nowMs()),
    log,
  });
  await admin.listen();
  log.info({ msg: 'helper.started', hostId: config.hostId, hostName: config.hostName, incarnation: daemon.incarnationName, runDir: config.runDir, config: config.file });
  const progress: (() => void)[] = [];
  try {
    if (state && decision.resume) await daemon.resumeFrom(state);
    else await daemon.joinAll((ls) => progress.push(showProgress(ls)), previousIncarnationGone);
  } finally {
    for (const done of progress) done();
  }
  // Supervisors only once every lockspace is joined and every VM restored: a supervisor
  // reconnecting after a restart must find its VM.
  await supervisors.listen();
  log.info({ msg: 'helper.ready', lockspaces: [...daemon.lockspaces.keys()] });
  const suspend = new SuspendDetector({ bootTimeMs: () => readBootTimeMs(), monotonicMs: () => clock.nowMs(), thresholdMs: SUSPEND_THRESHOLD_MS });
  const suspendTimer = setInterval(() => {
    const check = suspend.check();
    if (!check.suspended) return;
    log.error({ msg: 'helper.suspended', gapMs: check.gapMs });
    daemon.vms.onSuspended(check.gapMs);
  }, SUSPEND_CHECK_INTERVAL_MS);
  return {
    daemon,
    async stop(mode) {
      stopping = true;
      clearInterval(suspendTimer);
      await admin.close();
      await supervisors.close();
      watchdog?.petter.stop();
      if (mode === 'fence') {
        const { clean } = await daemon.shutdown();
        // Disarm only when nothing of ours can still hold a lease; otherwise let the watchdog reset the host.
        if (clean) watchdog?.watchdog.closeClean();
        else watchdog?.watchdog.closeWithoutDisarm();
        log.info({ msg: 'helper.stopped', clean });
      } else {
        await daemon.detach();
        watchdog?.watchdog.closeWithoutDisarm();
        log.warn({ msg: 'helper.detached', reason: 'exited without fencing; the next start resumes or fences the VMs' });
      }
    },
  };
}
