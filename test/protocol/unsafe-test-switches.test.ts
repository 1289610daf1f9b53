import { describe, expect, it } from 'vitest';
import { readUnsafeTestSwitches, UnsafeTestSwitchError, UNSAFE_TEST_SWITCHES_ENV } from '../../dist/protocol/unsafe-test-switches.js';

/**
 * The switches that break safety on purpose (for the fault harness) are
 * honoured only with both the environment variable and the command-line
 * flag: either alone leaves the process safe.
 */

describe('unsafe test switches', () => {
  it('are off when the variable is set but the flag is not given, and say the variable was ignored', () => {
    const switches = readUnsafeTestSwitches({ [UNSAFE_TEST_SWITCHES_ENV]: 'no-helper-kill,no-self-fence' }, false);
    expect([...switches.enabled]).toEqual([]);
    expect(switches.ignoredEnv).toBe('no-helper-kill,no-self-fence');
  });

  it('are off when the flag is given without the variable', () => {
    const switches = readUnsafeTestSwitches({}, true);
    expect([...switches.enabled]).toEqual([]);
    expect(switches.ignoredEnv).toBeUndefined();
  });

  it('are on with both, each name once', () => {
    const switches = readUnsafeTestSwitches({ [UNSAFE_TEST_SWITCHES_ENV]: ' no-lost-notice, takeover-before-host-dead,no-lost-notice ' }, true);
    expect([...switches.enabled].sort()).toEqual(['no-lost-notice', 'takeover-before-host-dead']);
  });

  it('refuse an unknown name or an oversized value with a stable code', () => {
    for (const value of ['no-helper-kil', 'x'.repeat(257)]) {
      let caught: unknown;
      try {
        readUnsafeTestSwitches({ [UNSAFE_TEST_SWITCHES_ENV]: value }, true);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(UnsafeTestSwitchError);
      expect((caught as UnsafeTestSwitchError).code).toBe('UNSAFE_TEST_SWITCH_INVALID');
    }
  });
});
