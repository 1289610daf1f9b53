import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { workDir } from '../support/tmp.js';

const UNIT = fileURLToPath(new URL('../../deploy/systemd/vmlease-helper.service', import.meta.url));
const TMPFILES = fileURLToPath(new URL('../../deploy/tmpfiles.d/vmlease.conf', import.meta.url));
const dir = workDir('deploy');
afterAll(() => dir.remove());

/** The unit's settings: section -> key -> values in order (comments and blank lines dropped). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      current = new Map();
      sections.set(header[1]!, current);
      continue;
    }
    const eq = line.indexOf('=');
    expect(eq, `line '${line}'`).toBeGreaterThan(0);
    expect(current, `'${line}' outside a section`).not.toBeUndefined();
    const key = line.slice(0, eq);
    current!.set(key, [...(current!.get(key) ?? []), line.slice(eq + 1)]);
  }
  return sections;
}

describe('deploy/systemd/vmlease-helper.service', () => {
  const service = parseUnit(readFileSync(UNIT, 'utf8')).get('Service')!;
  const one = (key: string): string | undefined => service.get(key)?.at(-1);

  it('runs the helper with its config under a sleep-and-idle blocking inhibitor', () => {
    const exec = one('ExecStart')!;
    expect(exec).toMatch(/^\/usr\/bin\/systemd-inhibit (.* )?--what=sleep:idle( |$)/);
    expect(exec).toMatch(/ --mode=block( |$)/);
    expect(exec).toMatch(/ \S*vmlease helper --config \/etc\/vmlease\/helper\.json$/);
  });

  it('sets the threadpool size in the environment node starts with, restarts on failure, kills by cgroup', () => {
    expect(service.get('Environment')).toContain('UV_THREADPOOL_SIZE=16');
    expect(one('Restart')).toBe('on-failure');
    expect(one('KillMode')).toBe('control-group');
    expect(['simple', 'exec']).toContain(one('Type'));
  });

  it('has no setting that would block device access, the JIT, or delete the run dir on stop', () => {
    expect(one('PrivateDevices') ?? 'no').toBe('no');
    for (const key of ['DevicePolicy', 'DeviceAllow', 'ProtectClock', 'ProtectKernelLogs', 'MemoryDenyWriteExecute', 'RuntimeDirectory']) expect(service.has(key), key).toBe(false);
    const caps = one('CapabilityBoundingSet')?.split(/\s+/);
    if (caps !== undefined) expect(caps).toContain('CAP_KILL');
  });

  it('passes systemd-analyze verify without warnings', () => {
    const copy = join(dir.path, 'vmlease-helper.service');
    // verify checks that ExecStart's programs exist: point the helper at one that does.
    writeFileSync(copy, readFileSync(UNIT, 'utf8').replace(/\/usr\/bin\/vmlease /, '/bin/true '));
    const result = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8', timeout: 30_000 });
    expect(result.error).toBeUndefined();
    expect(result.stderr + result.stdout).toBe('');
    expect(result.status).toBe(0);
  });
});

describe('deploy/tmpfiles.d/vmlease.conf', () => {
  const entries = readFileSync(TMPFILES, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.trimStart().startsWith('#'))
    .map((line) => line.trim().split(/\s+/));

  it('creates the run dirs root-owned with the modes the sockets rely on, parents first, never cleaned', () => {
    expect(entries.map(([type, path, mode, user, group, age]) => ({ type, path, mode, user, group, age }))).toEqual([
      { type: 'd', path: '/run/vmlease', mode: '0755', user: 'root', group: 'root', age: '-' },
      { type: 'd', path: '/run/vmlease/admin', mode: '0700', user: 'root', group: 'root', age: '-' },
      { type: 'd', path: '/run/vmlease/vms', mode: '0711', user: 'root', group: 'root', age: '-' },
      { type: 'd', path: '/run/vmlease/supervisor', mode: '0711', user: 'root', group: 'root', age: '-' },
    ]);
  });

  it('is accepted by systemd-tmpfiles, which creates those modes', () => {
    const root = join(dir.path, 'root');
    const result = spawnSync('systemd-tmpfiles', ['--create', `--root=${root}`, TMPFILES], { encoding: 'utf8', timeout: 30_000 });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const modes = ['', 'admin', 'vms', 'supervisor'].map((sub) => spawnSync('stat', ['-c', '%a %U', join(root, 'run/vmlease', sub)], { encoding: 'utf8' }).stdout.trim());
    expect(modes).toEqual(['755 root', '700 root', '711 root', '711 root']);
  });
});
