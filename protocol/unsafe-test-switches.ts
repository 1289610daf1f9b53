/**
 * Test-only switches that break safety on purpose, so the fault harness
 * (`npm run chaos`, docs/chaos.md) can show that its checker catches a
 * broken cluster (SPEC section 10). Each one turns off one fencing layer or
 * shortens host_dead.
 *
 * Guarded twice, so a production host cannot enable one by accident: the
 * switches are read from the environment variable VMLEASE_UNSAFE_TEST_SWITCHES
 * (a comma-separated list) *only* when the command line also carries
 * --unsafe-test-switches. Either alone does nothing (the helper and the
 * supervisor log that they ignored the variable). A process running with a
 * switch logs each one at start.
 */

export const UNSAFE_TEST_SWITCHES_ENV = 'VMLEASE_UNSAFE_TEST_SWITCHES';
export const UNSAFE_TEST_SWITCHES_FLAG = 'unsafe-test-switches';
/** The variable is short; a longer value is refused rather than parsed. */
export const UNSAFE_TEST_SWITCHES_BYTES_MAX = 256;

export const UNSAFE_TEST_SWITCH_NAMES = [
  /** Layer 1 off: the supervisor ignores the helper's word that a lease is lost (and a refusal after a reconnect). */
  'no-lost-notice',
  /** Layer 2 off: the helper never signals a VM's processes when it fences; it still waits for them to be gone. */
  'no-helper-kill',
  /** Layer 3 off: the supervisor keeps its child running without a fresh signed deadline. */
  'no-self-fence',
  /** host_dead shortened to a quarter of the fail time (2N): other hosts take over long before it is safe. */
  'takeover-before-host-dead',
] as const;

export type UnsafeTestSwitch = (typeof UNSAFE_TEST_SWITCH_NAMES)[number];

export interface UnsafeTestSwitches {
  readonly enabled: ReadonlySet<UnsafeTestSwitch>;
  /** Set when the variable was present but not honoured (no flag): worth a log line. */
  readonly ignoredEnv: string | undefined;
}

export const NO_UNSAFE_TEST_SWITCHES: UnsafeTestSwitches = { enabled: new Set(), ignoredEnv: undefined };

export class UnsafeTestSwitchError extends Error {
  readonly code = 'UNSAFE_TEST_SWITCH_INVALID';
  constructor(reason: string) {
    super(`${UNSAFE_TEST_SWITCHES_ENV}: ${reason}`);
  }
}

/** The switches in force: only with both the flag and the variable; an unknown name is an error. */
export function readUnsafeTestSwitches(env: Readonly<Record<string, string | undefined>>, flagGiven: boolean): UnsafeTestSwitches {
  const text = env[UNSAFE_TEST_SWITCHES_ENV];
  if (text === undefined || text === '') return NO_UNSAFE_TEST_SWITCHES;
  if (!flagGiven) return { enabled: new Set(), ignoredEnv: text.slice(0, UNSAFE_TEST_SWITCHES_BYTES_MAX) };
  if (Buffer.byteLength(text) > UNSAFE_TEST_SWITCHES_BYTES_MAX) throw new UnsafeTestSwitchError(`longer than ${UNSAFE_TEST_SWITCHES_BYTES_MAX} bytes`);
  const enabled = new Set<UnsafeTestSwitch>();
  for (const name of text.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    if (!(UNSAFE_TEST_SWITCH_NAMES as readonly string[]).includes(name)) throw new UnsafeTestSwitchError(`unknown switch ${JSON.stringify(name)} (known: ${UNSAFE_TEST_SWITCH_NAMES.join(', ')})`);
    enabled.add(name as UnsafeTestSwitch);
  }
  return { enabled, ignoredEnv: undefined };
}
