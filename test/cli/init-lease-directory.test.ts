import { mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { vmlease } from '../support/cli.js';
import { workDir } from '../support/tmp.js';

const dir = workDir('cli-leasedir');
afterAll(() => dir.remove());
const MARKER = '.vmlease-lease-directory';
let count = 0;
function freshDir(name = `d${++count}`): string {
  const path = join(dir.path, name);
  mkdirSync(path);
  return path;
}

describe('vmlease init-lease-directory', () => {
  it('marks a directory once, then accepts it again for the same lockspace', () => {
    const path = freshDir();
    const first = vmlease(['init-lease-directory', '--allow-local-fs', `cluster:${path}`]);
    expect(first).toEqual({ status: 0, stdout: `marked ${path} as a lease directory of lockspace cluster (${path}/${MARKER})\n`, stderr: '' });
    expect(readFileSync(join(path, MARKER), 'utf8')).toBe('{"format":"vmlease-lease-directory","version":1,"lockspace":"cluster"}\n');
    expect(statSync(join(path, MARKER)).mode & 0o7777).toBe(0o644);
    const again = vmlease(['init-lease-directory', '--allow-local-fs', `cluster:${path}`]);
    expect(again).toEqual({ status: 0, stdout: `${path} already is a lease directory of lockspace cluster; nothing written\n`, stderr: '' });
    expect(readdirSync(path)).toEqual([MARKER]);
  });

  it('takes a directory with a colon written as \\: and a relative directory', () => {
    const path = freshDir('with:colon');
    expect(vmlease(['init-lease-directory', '--allow-local-fs', `cluster:${path.replace(':', '\\:')}`]).status).toBe(0);
    expect(readdirSync(path)).toEqual([MARKER]);
    freshDir('relative');
    const relative = vmlease(['init-lease-directory', '--allow-local-fs', 'cluster:relative'], dir.path);
    expect(relative.stdout).toBe(`marked ${join(dir.path, 'relative')} as a lease directory of lockspace cluster (${join(dir.path, 'relative')}/${MARKER})\n`);
  });

  it('exits 4 for another lockspace, a missing directory and a symlink, and changes nothing', () => {
    const path = freshDir();
    vmlease(['init-lease-directory', '--allow-local-fs', `alpha:${path}`]);
    const other = vmlease(['init-lease-directory', '--allow-local-fs', `beta:${path}`]);
    expect(other).toEqual({
      status: 4,
      stdout: '',
      stderr: `vmlease init-lease-directory: LEASE_DIR_WRONG_LOCKSPACE: ${path}: lease directory belongs to lockspace "alpha" (${path}/${MARKER}), not "beta"\n`,
    });
    expect(readFileSync(join(path, MARKER), 'utf8')).toContain('"lockspace":"alpha"');

    const missing = join(dir.path, 'not-mounted');
    expect(vmlease(['init-lease-directory', '--allow-local-fs', `alpha:${missing}`])).toEqual({
      status: 4,
      stdout: '',
      stderr: `vmlease init-lease-directory: LEASE_DIR_MISSING: ${missing}: lease directory does not exist\n`,
    });
    const link = join(dir.path, `link-${count}`);
    symlinkSync(path, link);
    expect(vmlease(['init-lease-directory', '--allow-local-fs', `alpha:${link}`]).status).toBe(4);
    const malformed = freshDir();
    writeFileSync(join(malformed, MARKER), 'local\n');
    expect(vmlease(['init-lease-directory', '--allow-local-fs', `alpha:${malformed}`]).stderr).toMatch(/^vmlease init-lease-directory: LEASE_DIR_MARKER_MALFORMED: .*: is not JSON \(6 bytes\);/);
    expect(readFileSync(join(malformed, MARKER), 'utf8')).toBe('local\n');
  });

  it('refuses a directory on a local file system without --allow-local-fs (exit 4), writing nothing', () => {
    const path = freshDir();
    const refused = vmlease(['init-lease-directory', `cluster:${path}`]);
    expect(refused.status).toBe(4);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(
      new RegExp(`^vmlease init-lease-directory: LEASE_DIR_LOCAL_FS: ${path}: lease directory is on a local file system \\((ext2/ext3/ext4|xfs|btrfs|tmpfs|overlayfs), statfs type 0x[0-9a-f]+\\): is the shared file system mounted\\?`),
    );
    expect(readdirSync(path)).toEqual([]);
    // A marker written anyway (an rsync copy) does not make the directory acceptable either.
    expect(vmlease(['init-lease-directory', '--allow-local-fs', `cluster:${path}`]).status).toBe(0);
    expect(vmlease(['init-lease-directory', `cluster:${path}`]).stderr).toMatch(/: LEASE_DIR_LOCAL_FS: /);
  });

  it('exits 2 for usage mistakes', () => {
    const cases: [string[], string][] = [
      [[], 'expected one LS:DIR, got 0 arguments'],
      [['cluster'], '"cluster" has 1 fields, expected LS:DIR'],
      [['cluster:/a:b'], '"cluster:/a:b" has 3 fields, expected LS:DIR'],
      [['has space:/tmp'], 'lockspace name "has space" has a character outside printable ASCII'],
      [['cluster:'], 'DIR is empty'],
      [['cluster:/tmp', '--hosts', '3'], "Unknown option '--hosts'"],
    ];
    for (const [args, message] of cases) {
      const result = vmlease(['init-lease-directory', ...args]);
      expect(result.status).toBe(2);
      expect(result.stderr).toContain(message);
      expect(result.stderr).toMatch(/\(see 'vmlease init-lease-directory --help'\)\n$/);
    }
  });

  it('has a help text that names the marker format and the exit statuses', () => {
    const help = vmlease(['init-lease-directory', '--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^usage: vmlease init-lease-directory \[--allow-local-fs\] LS:DIR\n/);
    expect(help.stdout).toContain('  --allow-local-fs  accept DIR on a local file system.');
    expect(help.stdout).toContain('{"format":"vmlease-lease-directory","version":1,"lockspace":"LS"}');
    expect(help.stdout).toContain('Exit status: 0 ok (marked, or already marked for LS), 1 error, 2 usage,\n4 refused');
  });
});
