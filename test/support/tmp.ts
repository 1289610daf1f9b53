import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh directory on the work disk (ext4: real O_DIRECT with a 512-byte logical block). */
export function workDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), `vmlease-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** States of this process's threads, from /proc (the field after the command's closing parenthesis). */
export async function threadStates(): Promise<string[]> {
  const { readdirSync, readFileSync } = await import('node:fs');
  return readdirSync('/proc/self/task').flatMap((tid) => {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      return [stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)];
    } catch {
      return [];
    }
  });
}
