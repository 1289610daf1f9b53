import { chmodSync, chownSync, lstatSync, mkdirSync, statSync, symlinkSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { prepareRunDir, RunDirError, runDirLayout } from '../../dist/helper/daemon/run-dir.js';
import { workDir } from '../support/tmp.js';

const mode = (path: string) => lstatSync(path).mode & 0o7777;
// The helper runs as root; the ownership tests chown to 65534 and so need root too.
const uid = process.getuid!();

describe('prepareRunDir', () => {
  let dir: ReturnType<typeof workDir>;
  let root: string;
  beforeEach(() => {
    dir = workDir('run-dir');
    root = join(dir.path, 'run');
  });
  afterEach(() => dir.remove());

  it('lays out the sockets, secrets and state under the root', () => {
    expect(runDirLayout('/run/vmlease')).toEqual({
      root: '/run/vmlease',
      adminDir: '/run/vmlease/admin',
      adminSocket: '/run/vmlease/admin/admin.sock',
      supervisorDir: '/run/vmlease/supervisor',
      supervisorSocket: '/run/vmlease/supervisor/supervisor.sock',
      vmsDir: '/run/vmlease/vms',
      ballotsDir: '/run/vmlease/ballots',
      stateFile: '/run/vmlease/state.json',
      publicKeyFile: '/run/vmlease/helper.pub',
      secretKeyFile: '/run/vmlease/helper.key',
    });
  });

  it('creates the directories with modes 0755, 0700, 0711, 0711, 0700 whatever the umask', () => {
    const old = process.umask(0o077);
    try {
      prepareRunDir(runDirLayout(root), uid);
    } finally {
      process.umask(old);
    }
    const layout = runDirLayout(root);
    expect([layout.root, layout.adminDir, layout.supervisorDir, layout.vmsDir, layout.ballotsDir].map(mode)).toEqual([0o755, 0o700, 0o711, 0o711, 0o700]);
  });

  it('creates missing parents of the root', () => {
    const deep = join(dir.path, 'a', 'b', 'run');
    prepareRunDir(runDirLayout(deep), uid);
    expect(statSync(join(deep, 'ballots')).isDirectory()).toBe(true);
  });

  it('resets the modes of existing directories, keeping their contents', () => {
    const layout = runDirLayout(root);
    mkdirSync(layout.adminDir, { recursive: true });
    chmodSync(layout.root, 0o777);
    chmodSync(layout.adminDir, 0o777);
    writeFileSync(layout.stateFile, '{}');
    prepareRunDir(layout, uid);
    expect(mode(layout.root)).toBe(0o755);
    expect(mode(layout.adminDir)).toBe(0o700);
    // Preparing the directories never touches the files in them.
    expect(readFileSync(layout.stateFile, 'utf8')).toBe('{}');
  });

  it('refuses a symlink in place of a directory (and leaves its target alone)', () => {
    const layout = runDirLayout(root);
    mkdirSync(root);
    const elsewhere = join(dir.path, 'elsewhere');
    mkdirSync(elsewhere, { mode: 0o777 });
    chmodSync(elsewhere, 0o777);
    symlinkSync(elsewhere, layout.adminDir);
    expect(() => prepareRunDir(layout, uid)).toThrow(RunDirError);
    expect(() => prepareRunDir(layout, uid)).toThrow(`${layout.adminDir} is not a directory (a symlink or file is in the way)`);
    expect(mode(elsewhere)).toBe(0o777);
  });

  it('refuses a symlink as the root itself', () => {
    const elsewhere = join(dir.path, 'elsewhere');
    mkdirSync(elsewhere);
    symlinkSync(elsewhere, root);
    expect(() => prepareRunDir(runDirLayout(root), uid)).toThrow(`${root} is not a directory`);
    expect(existsSync(join(elsewhere, 'admin'))).toBe(false);
  });

  it('refuses a dangling symlink without creating its target', () => {
    const layout = runDirLayout(root);
    mkdirSync(root);
    const target = join(dir.path, 'not-yet');
    symlinkSync(target, layout.supervisorDir);
    expect(() => prepareRunDir(layout, uid)).toThrow();
    expect(existsSync(target)).toBe(false);
  });

  it('refuses a file in place of a directory', () => {
    const layout = runDirLayout(root);
    mkdirSync(root);
    writeFileSync(layout.vmsDir, '');
    expect(() => prepareRunDir(layout, uid)).toThrow();
    expect(lstatSync(layout.vmsDir).isFile()).toBe(true);
  });

  it('refuses a directory owned by another uid, without changing its mode', () => {
    const layout = runDirLayout(root);
    mkdirSync(layout.ballotsDir, { recursive: true });
    chmodSync(layout.ballotsDir, 0o777);
    chownSync(layout.ballotsDir, 65534, 65534);
    expect(() => prepareRunDir(layout, uid)).toThrow(RunDirError);
    expect(() => prepareRunDir(layout, uid)).toThrow(`${layout.ballotsDir} is owned by uid 65534, not ${uid}: refusing a directory someone else prepared`);
    expect(mode(layout.ballotsDir)).toBe(0o777);
  });

  it('refuses a root owned by another uid', () => {
    mkdirSync(root);
    chownSync(root, 65534, 65534);
    expect(() => prepareRunDir(runDirLayout(root), uid)).toThrow(`${root} is owned by uid 65534, not ${uid}`);
    expect(existsSync(join(root, 'admin'))).toBe(false);
  });

  it('checks ownership against the uid it is given', () => {
    expect(() => prepareRunDir(runDirLayout(root), uid + 1)).toThrow(`${root} is owned by uid ${uid}, not ${uid + 1}`);
  });
});
