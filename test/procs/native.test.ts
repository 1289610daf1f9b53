import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { native } from '../../dist/helper/native/native.js';

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (error) {
    return error;
  }
  throw new Error('did not throw');
}

describe('native peerCredentials', () => {
  it('throws with errno and its text for a descriptor that is not a socket', () => {
    const fd = openSync('/proc/self/stat', 'r');
    try {
      expect(thrown(() => native().peerCredentials(fd))).toMatchObject({
        code: 'VMLEASE_PEERCRED', errno: 88, message: `getsockopt(${fd}, SO_PEERCRED) failed: Socket operation on non-socket`,
      });
    } finally {
      closeSync(fd);
    }
  });

  it('refuses a descriptor that is not a non-negative integer', () => {
    for (const fd of [-1, 1.5, 2 ** 31, Number.NaN]) expect(() => native().peerCredentials(fd)).toThrow('fd must be an integer >= 0');
  });
});

describe('native pidfd', () => {
  it('signals through a pidfd, then reports ESRCH for the exited process', async () => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    const pid = child.pid as number;
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
    const pidfd = native().pidfdOpen(pid);
    try {
      native().pidfdSendSignal(pidfd, 15);
      expect(await exited).toBe('SIGTERM');
      // Reaped by Node: the pidfd still names that process, which is gone.
      expect(thrown(() => native().pidfdSendSignal(pidfd, 15))).toMatchObject({ code: 'VMLEASE_PIDFD', errno: 3 });
    } finally {
      closeSync(pidfd);
    }
    expect(thrown(() => native().pidfdOpen(pid))).toMatchObject({ code: 'VMLEASE_PIDFD', errno: 3, message: `pidfd_open(${pid}) failed: No such process` });
  });

  it('refuses pid 0 or below and signal 0 or below (they would mean groups or probes)', () => {
    expect(() => native().pidfdOpen(0)).toThrow('pid must be an integer >= 1');
    expect(() => native().pidfdOpen(-1)).toThrow('pid must be an integer >= 1');
    expect(() => native().pidfdSendSignal(0, 0)).toThrow('signal must be an integer >= 1');
  });
});
