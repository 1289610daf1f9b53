import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { cgroupEmpty, ProcsError } from '../../dist/helper/procs/index.js';
import { asNobody, killAll, pidOf, procfs, sharedTempDir, start, waitFor } from './support.js';

const dir = sharedTempDir('procs-cgroup');
const made: string[] = [];
afterEach(() => killAll());
afterAll(async () => {
  // Children first; a cgroup can be removed once its last process is reaped.
  for (const path of made.reverse()) {
    await waitFor(() => {
      try {
        rmdirSync(path);
        return true;
      } catch {
        return false;
      }
    }, `rmdir ${path}`);
  }
  dir.remove();
});

function fakeGroup(path: string, files: Record<string, string>): string {
  mkdirSync(path, { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(path, name), text);
  return path;
}

function code(path: string): string {
  try {
    cgroupEmpty(path);
  } catch (error) {
    expect(error).toBeInstanceOf(ProcsError);
    return (error as ProcsError).code;
  }
  throw new Error('accepted');
}

/** A VM-like cgroup with one child group (libvirt's emulator/), made on the real hierarchy. */
function realGroup(hierarchy: string): { top: string; child: string } {
  const top = join(hierarchy, `vmlease-procs-test-${process.pid}`);
  const child = join(top, 'emulator');
  mkdirSync(top);
  made.push(top);
  mkdirSync(child);
  made.push(child);
  return { top, child };
}

describe('cgroupEmpty on crafted groups', () => {
  it('reads populated from cgroup.events (v2)', () => {
    expect(cgroupEmpty(fakeGroup(join(dir.path, 'v2-empty'), { 'cgroup.events': 'populated 0\nfrozen 0\n', 'cgroup.procs': '' }))).toBe(true);
    // populated covers the subtree: an empty cgroup.procs does not make it empty.
    expect(cgroupEmpty(fakeGroup(join(dir.path, 'v2-full'), { 'cgroup.events': 'populated 1\nfrozen 0\n', 'cgroup.procs': '' }))).toBe(false);
  });

  it.each([
    ['no populated line', 'frozen 0\n'],
    ['two populated lines', 'populated 0\npopulated 1\n'],
    ['a bad value', 'populated 2\n'],
    ['trailing text', 'populated 0 x\n'],
  ])('refuses cgroup.events with %s', (label, text) => {
    expect(code(fakeGroup(join(dir.path, `v2-${label.replaceAll(' ', '-')}`), { 'cgroup.events': text }))).toBe('PROCS_CGROUP_EVENTS_MALFORMED');
  });

  it('looks at tasks of every group below (v1)', () => {
    const top = fakeGroup(join(dir.path, 'v1'), { tasks: '', 'cgroup.procs': '' });
    fakeGroup(join(top, 'emulator'), { tasks: '' });
    const deep = fakeGroup(join(top, 'vcpu0', 'inner'), { tasks: '' });
    fakeGroup(join(top, 'vcpu0'), { tasks: '' });
    expect(cgroupEmpty(top)).toBe(true);
    writeFileSync(join(deep, 'tasks'), '1234\n');
    expect(cgroupEmpty(top)).toBe(false);
  });

  it('refuses a directory that is not a cgroup rather than calling it empty', () => {
    expect(code(fakeGroup(join(dir.path, 'plain'), { 'notes.txt': '' }))).toBe('PROCS_NOT_CGROUP');
    expect(code(join(dir.path, 'missing'))).toBe('PROCS_NOT_CGROUP');
  });
});

describe('cgroupEmpty on the real hierarchies', () => {
  it.each([
    ['v1 (pids controller)', '/sys/fs/cgroup/pids'],
    ['v2 (unified)', '/sys/fs/cgroup/unified'],
  ])('%s: a process in a child group fills the VM group, its exit empties it', async (_label, hierarchy) => {
    expect(existsSync(hierarchy)).toBe(true);
    const { top, child } = realGroup(hierarchy);
    expect(cgroupEmpty(top)).toBe(true);
    const [command, args] = asNobody('sleep', ['30']);
    const sleeper = start(command, args);
    writeFileSync(join(child, 'cgroup.procs'), String(pidOf(sleeper)));
    expect(cgroupEmpty(top)).toBe(false);
    process.kill(pidOf(sleeper), 'SIGKILL');
    await waitFor(() => cgroupEmpty(top), 'the group to empty');
  });

  it.each([
    ['v1', '/sys/fs/cgroup/pids'],
    ['v2', '/sys/fs/cgroup/unified'],
  ])('%s: a zombie left in the group does not count', async (_label, hierarchy) => {
    const top = join(hierarchy, `vmlease-procs-zombie-${process.pid}`);
    mkdirSync(top);
    made.push(top);
    // The shell (outside the group) never reaps its background sleep: killed, it stays a zombie.
    const shell = spawn('sh', ['-c', 'sleep 30 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const victim = await new Promise<number>((resolve) => shell.stdout.once('data', (data: Buffer) => resolve(Number(data.toString().trim()))));
      writeFileSync(join(top, 'cgroup.procs'), String(victim));
      expect(cgroupEmpty(top)).toBe(false);
      process.kill(victim, 'SIGKILL');
      await waitFor(() => procfs.read(victim)?.state === 'Z', 'the zombie');
      expect(cgroupEmpty(top)).toBe(true);
    } finally {
      shell.kill('SIGKILL');
    }
  });
});
