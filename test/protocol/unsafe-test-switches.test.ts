import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { CLI } from '../support/cli.js';
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

describe('vmlease supervise and the switches', () => {
  const VM = '5b3c8f1e-2a4d-4e6f-8a9b-0c1d2e3f4a5b';
  const run = (args: string[], value: string) =>
    spawnSync(process.execPath, [CLI, 'supervise', ...args, '--vm', VM, '--run-dir', '/nonexistent-vmlease-run-dir', '--', 'true'], { encoding: 'utf8', env: { ...process.env, [UNSAFE_TEST_SWITCHES_ENV]: value }, timeout: 60_000 });

  it('ignores the variable without the flag, and says so', () => {
    const result = run([], 'no-self-fence');
    expect(result.stderr).toContain('ignoring VMLEASE_UNSAFE_TEST_SWITCHES (no --unsafe-test-switches)');
    expect(result.stderr).not.toContain('UNSAFE TEST SWITCH');
  });

  it('announces a switch it honours, and refuses an unknown one before doing anything', () => {
    expect(run(['--unsafe-test-switches'], 'no-self-fence').stderr).toContain('UNSAFE TEST SWITCH no-self-fence is on: this VM is not protected');
    const bogus = run(['--unsafe-test-switches'], 'bogus');
    expect(bogus.status).toBe(1);
    expect(bogus.stderr).toContain('unknown switch "bogus"');
    expect(bogus.stderr).not.toContain('nonexistent-vmlease-run-dir');
  });
});
