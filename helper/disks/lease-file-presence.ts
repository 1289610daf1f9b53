import { lstat } from 'node:fs/promises';
import { errnoCode } from './errors.js';
import { ioFailure } from './link-into-place.js';
import type { Step } from './stuck-calls.js';

/**
 * Whether an auto lease file exists yet, for reports (`vmlease policy check`
 * and the libvirt prepare hook say "created at register" for one that does
 * not). Only "no such file" means not yet created: any other failure
 * (EACCES, EIO, ...) and a call that does not answer by the step's deadline
 * are storage errors naming the path, never "absent".
 */
export async function leaseFileExists(path: string, step: Step): Promise<boolean> {
  try {
    await step(path, 'lstat', () => lstat(path));
    return true;
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return false;
    // Deadline (DISK_STEP_TIMEOUT) and stuck (DISK_CALLS_STUCK) refusals pass through; the rest is DISK_IO.
    throw ioFailure(path, 'lstat of lease file', error);
  }
}
