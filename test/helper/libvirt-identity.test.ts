import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from '../support/cli.js';
import { exitOf, makeCluster, startHelper, VM_UID, type Cluster, type HelperProcess } from '../support/helper-harness.js';

/**
 * Under libvirt the supervisor is identified by the pid libvirt recorded for
 * the domain (written before the emulator is exec'd), not by a secret: a
 * supervisor whose pid is the recorded one binds; any other is refused.
 */

let cluster: Cluster;
let helper: HelperProcess;
let libvirtDir: string;

beforeAll(async () => {
  cluster = makeCluster({ ioTimeoutMs: 200 });
  libvirtDir = join(cluster.dir, 'libvirt-qemu');
  mkdirSync(libvirtDir, { mode: 0o700 });
  helper = await startHelper(cluster, 1, { libvirtRunDir: libvirtDir });
});

afterAll(async () => {
  await helper?.stop('SIGTERM');
  cluster?.remove();
});

/** Like libvirt: record the pid, then exec the emulator (here the supervisor) in that same process. */
function supervisorAsLibvirtWould(vm: string, domain: string, recordPid: (ownPid: string) => string) {
  const pidFile = join(libvirtDir, `${domain}.pid`);
  const script = `echo ${recordPid('$$')} > ${pidFile}; exec setpriv --reuid ${VM_UID} --regid ${VM_UID} --clear-groups ${process.execPath} --jitless ${CLI} supervise --vm ${vm} --run-dir ${helper.runDir} -- sleep 1`;
  const child = spawn('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  child.stderr!.setEncoding('utf8').on('data', (c: string) => void (output += c));
  return Object.assign(child, { output: () => output });
}

describe('libvirt identity', () => {
  it('a VM registered with its libvirt domain gets no secret, and the supervisor libvirt recorded binds and runs', async () => {
    const vm = '3f2e1d0c-aaaa-4bbb-8ccc-0d1e2f3a4b5c';
    const registered = JSON.parse(helper.cli(['register', '--vm', vm, '--uid', String(VM_UID), '--lease', cluster.resource('libvirt-ok'), '--libvirt-domain', 'dom-ok', '--json']).stdout);
    expect(registered.secretFile).toBeNull();
    expect(existsSync(join(helper.runDir, 'vms', `${vm}.secret`))).toBe(false);
    const supervisor = supervisorAsLibvirtWould(vm, 'dom-ok', (own) => own);
    expect(await exitOf(supervisor)).toEqual({ code: 0, signal: null });
    expect(helper.lines.some((l) => l.msg === 'session.child' && l.vm === vm)).toBe(true);
    expect(helper.cli(['unregister', '--vm', vm]).status).toBe(0);
  });

  it('a supervisor whose pid is not the one libvirt recorded is refused (exit 4, IDENTITY_LIBVIRT_PID) and never runs its command', async () => {
    const vm = '3f2e1d0c-bbbb-4bbb-8ccc-0d1e2f3a4b5c';
    expect(helper.cli(['register', '--vm', vm, '--uid', String(VM_UID), '--lease', cluster.resource('libvirt-bad'), '--libvirt-domain', 'dom-bad']).status).toBe(0);
    writeFileSync(join(libvirtDir, 'dom-bad.pid'), '1\n');
    const supervisor = supervisorAsLibvirtWould(vm, 'dom-bad', () => '1');
    expect((await exitOf(supervisor)).code).toBe(4);
    expect(supervisor.output()).toContain('IDENTITY_LIBVIRT_PID');
    expect(helper.lines.some((l) => l.msg === 'session.child' && l.vm === vm)).toBe(false);
    expect(helper.cli(['unregister', '--vm', vm]).status).toBe(0);
  });
});
