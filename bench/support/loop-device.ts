import { execFileSync } from 'node:child_process';
import { closeSync, openSync, ftruncateSync, rmSync, statSync } from 'node:fs';
import { deviceNumber } from '../../helper/storage/sysfs.js';

/**
 * Loop devices for tests and benchmarks (root only): real block devices with
 * a chosen logical sector size, backed by a sparse file.
 */
export interface LoopDevice {
  readonly path: string;
  /** "major:minor" */
  readonly device: string;
  readonly backingFile: string;
  detach(): void;
}

const ATTACH_ATTEMPTS_MAX = 5;

export function attachLoopDevice(backingFile: string, sizeBytes: number, sectorSize: 512 | 4096): LoopDevice {
  const fd = openSync(backingFile, 'w');
  ftruncateSync(fd, sizeBytes);
  closeSync(fd);
  let lastError: unknown;
  // `losetup -f` can race with another process taking the same free device: retry a few times.
  for (let attempt = 1; attempt <= ATTACH_ATTEMPTS_MAX; attempt++) {
    try {
      const path = execFileSync('losetup', ['-f', '--show', '--sector-size', String(sectorSize), backingFile], { encoding: 'utf8' }).trim();
      const device = deviceNumber(statSync(path, { bigint: true }).rdev);
      return {
        path,
        device,
        backingFile,
        detach() {
          execFileSync('losetup', ['-d', path]);
          rmSync(backingFile, { force: true });
        },
      };
    } catch (error) {
      lastError = error;
    }
  }
  throw new Error(`cannot attach a loop device to ${backingFile}: ${(lastError as Error).message}`);
}
