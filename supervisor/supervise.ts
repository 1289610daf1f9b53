import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { constants } from 'node:os';
import type { GrantedStatement } from '../protocol/statements.js';
import { ChannelError, HelperChannel, HelperRequestError } from './helper-channel.js';
import { childStdio, inheritedFds, InheritedFdsError } from './inherited-fds.js';
import { NO_UNSAFE_TEST_SWITCHES, type UnsafeTestSwitches } from '../protocol/unsafe-test-switches.js';

/**
 * `vmlease supervise`: bind to this VM's session, make sure its leases are
 * held, start the command, and stop it when the leases are lost or no fresh
 * deadline signed by the granting helper incarnation arrives in time. The
 * child never sees a lease; the supervisor never writes one.
 *
 * This is the first version (the supervisor issue completes it: fd
 * pass-through checks, libvirt's pid, migration).
 */

export const EXIT = { ok: 0, error: 1, usage: 2, busy: 3, refused: 4, storage: 5, leaseLost: 6 } as const;
/** After SIGTERM, the child has this long before SIGKILL (well inside the helper's own SIGKILL time). */
export const CHILD_KILL_GRACE_MS = 500;
export const CHILD_KILL_GRACE_MS_MIN = 10;

/**
 * The SIGTERM-to-SIGKILL grace after a missed deadline. A deadline arrives
 * about 6N ahead (N the io timeout) and the helper's own SIGKILL follows it
 * by N, so the grace is kept under N/2 as far as the lead shows it: at most
 * CHILD_KILL_GRACE_MS, at least CHILD_KILL_GRACE_MS_MIN.
 */
export function killGraceMs(deadlineLeadMs: number): number {
  return Math.min(CHILD_KILL_GRACE_MS, Math.max(CHILD_KILL_GRACE_MS_MIN, Math.floor(deadlineLeadMs / 12)));
}
export const SETPRIV = '/usr/bin/setpriv';
/** While the helper is away (restarting), try to reach it this often until the deadline passes. */
export const RECONNECT_INTERVAL_MS = 250;

export interface SuperviseOptions {
  readonly vm: string;
  readonly runDir: string;
  readonly command: readonly string[];
  /** Writes the one line a failure ends with (stderr). */
  readonly report: (line: string) => void;
  /** Test-only, guarded (protocol/unsafe-test-switches.ts): fencing layers 1 and 3 can be turned off. */
  readonly unsafeTestSwitches?: UnsafeTestSwitches;
}

const BUSY_CODES = new Set(['LEASE_BUSY', 'LEASE_HELD_LOCALLY', 'LEASE_ACQUIRE_CONTENDED']);
const STORAGE_CODES = new Set(['LEASE_ACQUIRE_STORAGE', 'LEASE_NOT_AREA', 'LEASE_PATH_TIMEOUT', 'LEASE_RELEASE_FAILED']);

/** Exit status for a refusal before the child starts: busy 3, storage 5, anything else of the helper's 4. */
export function exitStatusOf(error: unknown): number {
  if (error instanceof HelperRequestError) {
    if (BUSY_CODES.has(error.code)) return EXIT.busy;
    if (STORAGE_CODES.has(error.code) || error.code.startsWith('STORAGE_') || error.code.startsWith('FORMAT_')) return EXIT.storage;
    return EXIT.refused;
  }
  return EXIT.error;
}

export function describeFailure(error: unknown): string {
  if (error instanceof HelperRequestError && error.holder) {
    const h = error.holder;
    return `lease busy: held by host ${h.hostId} (${h.hostName}), ${h.state} since ${h.sinceIso ?? 'unknown'}, takeover possible ${h.takeoverPossibleIso ?? 'never on timing alone'}`;
  }
  if (error instanceof HelperRequestError || error instanceof ChannelError) return `${error.code}: ${error.message}`;
  if (error instanceof InheritedFdsError) return `not starting the command: ${error.message}`;
  return (error as Error).message;
}

function readSecret(runDir: string, vm: string): string | undefined {
  const path = join(runDir, 'vms', `${vm}.secret`);
  return existsSync(path) ? readFileSync(path, 'utf8').trim() : undefined;
}

function startTimeOf(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
}

function monotonicNowMs(): number {
  return Number(process.hrtime.bigint() / 1_000_000n);
}

async function holdLeases(channel: HelperChannel): Promise<GrantedStatement> {
  try {
    return await channel.claim();
  } catch (error) {
    if (error instanceof HelperRequestError && error.code === 'LEASES_NOT_HELD') return channel.acquire();
    throw error;
  }
}

export async function supervise(options: SuperviseOptions): Promise<number> {
  let channel: HelperChannel;
  let granted: GrantedStatement;
  let stdio: ReturnType<typeof childStdio>;
  try {
    // Checked before the helper is asked for anything: a child that would miss an fd is not started.
    stdio = childStdio(inheritedFds());
    channel = await HelperChannel.open(options.runDir);
    await channel.bind(options.vm, readSecret(options.runDir, options.vm));
    granted = await holdLeases(channel);
  } catch (error) {
    options.report(describeFailure(error));
    return exitStatusOf(error);
  }
  return runChild(channel, granted, stdio, options);
}

/**
 * The helper went away while the child runs (it restarted). Reach it again,
 * bind as the same process (no secret: the helper knows us by pid and start
 * time) and claim the leases. Only the incarnation that granted them counts:
 * a helper that came back as another incarnation has not kept our leases.
 */
async function reconnect(options: SuperviseOptions, incarnation: string, child: ChildProcess): Promise<{ channel: HelperChannel; granted: GrantedStatement }> {
  const channel = await HelperChannel.open(options.runDir);
  if (channel.incarnation !== incarnation) {
    channel.close();
    throw new ChannelError('CHANNEL_NEW_INCARNATION', `the helper restarted as another incarnation (${channel.incarnation}); it has not kept this VM's leases`);
  }
  try {
    await channel.bind(options.vm);
    const granted = await channel.claim();
    // The helper may have died before it recorded our child: report it again (the same child is accepted).
    if (child.pid !== undefined) await channel.reportChild(child.pid, startTimeOf(child.pid));
    return { channel, granted };
  } catch (error) {
    channel.close();
    throw error;
  }
}

function runChild(first: HelperChannel, granted: GrantedStatement, stdio: ReturnType<typeof childStdio>, options: SuperviseOptions): Promise<number> {
  let channel = first;
  const incarnation = first.incarnation;
  const switches = options.unsafeTestSwitches ?? NO_UNSAFE_TEST_SWITCHES;
  // Layer 1 (the helper's word that the lease is lost) and layer 3 (our own deadline), each off only in a test.
  const heedHelper = !switches.enabled.has('no-lost-notice');
  const selfFence = !switches.enabled.has('no-self-fence');
  return new Promise((resolve) => {
    let fencedReason: string | undefined;
    let deadlineTimer: NodeJS.Timeout | undefined;
    // The child dies with us even on SIGKILL; spawned from the main thread (PR_SET_PDEATHSIG is per thread).
    // It leads a session of its own: the helper counts the processes of that session (with the VM's uid)
    // as the VM's, so another VM started from the same shell is never mistaken for this one.
    // It inherits exactly the fds we inherited (0..2 and those recorded at start-up), at their numbers.
    const child: ChildProcess = spawn(SETPRIV, ['--pdeathsig', 'KILL', '--', ...options.command], { stdio, detached: true });
    // At our deadline the lease is still ours for a while (fail is later): the child gets a grace.
    // When the helper says it is lost, another host may own it already: no grace. The helper
    // fences too (SIGTERM to us and the child, SIGKILL soon after); killing at once lets us
    // see the child gone and exit 6 before that SIGKILL.
    const fence = (reason: string, graceMs = CHILD_KILL_GRACE_MS) => {
      if (fencedReason !== undefined) return;
      fencedReason = reason;
      if (graceMs === 0) return void child.kill('SIGKILL');
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), graceMs).unref();
    };
    const armDeadline = (validUntilMs: number) => {
      clearTimeout(deadlineTimer);
      if (!selfFence) return;
      const leadMs = Math.max(0, validUntilMs - monotonicNowMs());
      deadlineTimer = setTimeout(() => fence(`no fresh lease deadline from helper incarnation ${channel.incarnation} by its deadline`, killGraceMs(leadMs)), leadMs);
    };
    let exited = false;
    const listen = (c: HelperChannel) => {
      c.on('valid-until', (ms: number) => armDeadline(ms));
      c.on('lost', (reason: string) => {
        if (heedHelper) fence(`lease lost: ${reason}`, 0);
      });
      c.on('closed', () => {
        if (!exited && fencedReason === undefined) setTimeout(retry, RECONNECT_INTERVAL_MS);
      });
    };
    const retry = () => {
      if (exited || fencedReason !== undefined) return;
      reconnect(options, incarnation, child).then(
        (next) => {
          channel = next.channel;
          armDeadline(next.granted.validUntilMs);
          listen(channel);
        },
        (error: unknown) => {
          if (error instanceof ChannelError && error.code === 'CHANNEL_NEW_INCARNATION') return selfFence ? fence(error.message) : undefined;
          if (error instanceof HelperRequestError) return heedHelper ? fence(`the helper refused our session after its restart: ${describeFailure(error)}`) : setTimeout(retry, RECONNECT_INTERVAL_MS);
          setTimeout(retry, RECONNECT_INTERVAL_MS);
        },
      );
    };
    armDeadline(granted.validUntilMs);
    listen(channel);
    const forward = (signal: NodeJS.Signals) => () => child.kill(signal);
    for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, forward(signal));
    child.once('spawn', () => {
      channel.reportChild(child.pid!, startTimeOf(child.pid!)).catch((error: unknown) => {
        // A helper that went away is not a refusal: the reconnection reports the child again.
        if (error instanceof ChannelError) return;
        fence(`the helper refused our child: ${describeFailure(error)}`);
      });
    });
    child.once('error', (error) => {
      exited = true;
      clearTimeout(deadlineTimer);
      options.report(`cannot start ${options.command[0]}: ${error.message}`);
      channel.release().finally(() => resolve(EXIT.error));
    });
    child.once('exit', (code, signal) => {
      exited = true;
      clearTimeout(deadlineTimer);
      const status = code ?? 128 + (signal ? signalNumber(signal) : 0);
      if (fencedReason !== undefined) {
        // Lost: write nothing more; the helper releases only after proving the VM gone.
        channel.close();
        options.report(fencedReason);
        return resolve(EXIT.leaseLost);
      }
      channel.release().then(
        () => resolve(status),
        (error: unknown) => {
          options.report(`release failed: ${describeFailure(error)}`);
          resolve(status);
        },
      ).finally(() => channel.close());
    });
  });
}

function signalNumber(signal: NodeJS.Signals): number {
  return constants.signals[signal] ?? 0;
}
