import { spawn } from 'node:child_process';

/** What a finished command printed, and its exit status (null: killed by a signal, e.g. at the timeout). */
export interface TimedResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Date.now() just before the command was spawned, and when it exited. */
  readonly startedAt: number;
  readonly endedAt: number;
}

/**
 * Runs a command without blocking the event loop (the caller's timers keep
 * running), collecting its output; SIGKILL after `timeoutMs`. Used by the
 * fault harness for `vmlease` commands and by the multi-host tests.
 */
export function runAsync(command: string, args: readonly string[], timeoutMs: number): Promise<TimedResult> {
  const startedAt = Date.now();
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => void (stdout += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => void (stderr += c));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) => {
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ status: code, stdout, stderr, startedAt, endedAt: Date.now() });
    });
  });
}
