import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Replaces a small local file so that a crash leaves either the old or the
 * new content, never a mix: write a temporary file, sync it, rename it into
 * place, sync the directory. A leftover temporary file is removed, not
 * reused (open with O_TRUNC would keep its mode and owner, and follow it if
 * it were a symlink).
 */
export function writeFileDurably(path: string, content: string | Uint8Array, mode = 0o600): void {
  const temporary = `${path}.tmp`;
  rmSync(temporary, { force: true });
  const fd = openSync(temporary, 'wx', mode);
  try {
    const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
    // write(2) may write less than asked: go on until all of it is written.
    for (let done = 0; done < bytes.byteLength; ) done += writeSync(fd, bytes, done, bytes.byteLength - done);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}
