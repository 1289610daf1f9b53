import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { vmlease } from '../support/cli.js';
import { workDir } from '../support/tmp.js';

/** Incoming migration is not built yet: --receive-lease is refused, never silently ignored. */

const dir = workDir('receive-lease');
afterAll(() => dir.remove());

describe('supervise --receive-lease', () => {
  it('is refused with exit 4 and a clear message, and the command never starts', () => {
    const marker = join(dir.path, 'started');
    const result = vmlease(['supervise', '--vm', '6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d', '--receive-lease', '--run-dir', dir.path, '--', 'touch', marker]);
    expect(result.status).toBe(4);
    expect(result.stderr).toMatch(/--receive-lease .*not available in this build/);
    expect(existsSync(marker)).toBe(false);
  });
});
