import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseState, readState, STATE_BYTES_MAX, StateFileError, writeState, type HelperState } from '../../dist/helper/daemon/state-file.js';
import { workDir } from '../support/tmp.js';

function sampleState(): HelperState {
  return {
    version: 1,
    helper: { pid: 4242, startTime: '987654' },
    incarnation: { hostName: 'host-a', bootId: '0123456789abcdef0123456789abcdef', nonce: 'fedcba9876543210' },
    lockspaces: [
      { name: 'cluster', path: '/var/lib/vmlease/leases/cluster.ls', offset: 0, generation: 3 },
      { name: 'other', path: '/var/lib/vmlease/leases/other.ls', offset: 4096, generation: 1 },
    ],
    vms: [
      {
        uuid: '6a2f41a3-c54c-fce8-32d2-0d3c1c0b1d4e',
        uid: 107,
        gid: 107,
        leases: [{ lockspace: 'cluster', resource: 'vm1-disk', path: '/var/lib/vmlease/leases/vm1.lease', offset: 0, mode: 'exclusive' }],
        held: [{ path: '/var/lib/vmlease/leases/vm1.lease', offset: 0, lver: 5, mode: 'exclusive' }],
        supervisor: { pid: 5000, startTime: '123456', uid: 107, sessionId: 5000 },
        child: { pid: 5001, startTime: '123460', uid: 107, sessionId: 5000 },
        libvirtDomain: null,
        secretHash: null,
      },
      {
        uuid: 'second-vm',
        uid: 108,
        gid: 0,
        leases: [{ lockspace: 'other', resource: 'shared-disk', path: '/srv/leases/shared.lease', offset: 8192, mode: 'shared' }],
        held: [],
        supervisor: null,
        child: null,
        libvirtDomain: 'dom-1',
        secretHash: 'ab'.repeat(32),
      },
    ],
  };
}

/** A parsed copy of the state that tests damage field by field, at any depth (plain JSON). */
type Mutable = Record<string, any>;

function damaged(change: (state: Mutable) => void): string {
  const state = JSON.parse(JSON.stringify(sampleState())) as Mutable;
  change(state);
  return JSON.stringify(state);
}

describe('state file', () => {
  let dir: ReturnType<typeof workDir>;
  let file: string;
  beforeEach(() => {
    dir = workDir('state-file');
    file = join(dir.path, 'state.json');
  });
  afterEach(() => dir.remove());

  function expectRefused(text: string, what: RegExp): void {
    writeFileSync(file, text);
    let caught: unknown;
    try {
      readState(file);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(StateFileError);
    const message = (caught as Error).message;
    expect(message).toContain(`state file ${file} is damaged: `);
    expect(message).toMatch(what);
  }

  it('is absent before the first write (readState: undefined)', () => {
    expect(readState(file)).toBeUndefined();
  });

  it('round-trips through writeState and readState', () => {
    const state = sampleState();
    writeState(file, state);
    expect(readState(file)).toEqual(state);
    // A second write replaces the first.
    const next = { ...state, lockspaces: [{ ...state.lockspaces[0]!, generation: 4 }], vms: [] };
    writeState(file, next);
    expect(readState(file)).toEqual(next);
    expect(existsSync(`${file}.tmp`)).toBe(false);
  });

  it('is written with mode 0600, whatever the umask', () => {
    const old = process.umask(0);
    try {
      writeState(file, sampleState());
    } finally {
      process.umask(old);
    }
    expect(statSync(file).mode & 0o7777).toBe(0o600);
  });

  it('is mode 0600 even when a leftover temporary file had another mode', () => {
    writeFileSync(`${file}.tmp`, 'partial');
    chmodSync(`${file}.tmp`, 0o644);
    writeState(file, sampleState());
    expect(statSync(file).mode & 0o7777).toBe(0o600);
    expect(readState(file)).toEqual(sampleState());
  });

  it('never writes through a leftover temporary file that is a symlink', () => {
    const victim = join(dir.path, 'victim');
    writeFileSync(victim, 'untouched');
    symlinkSync(victim, `${file}.tmp`);
    writeState(file, sampleState());
    expect(readFileSync(victim, 'utf8')).toBe('untouched');
    expect(lstatSync(file).isFile()).toBe(true);
    expect(readState(file)).toEqual(sampleState());
  });

  it('keeps the good state when a write is interrupted before its rename (a leftover .tmp is never read)', () => {
    writeState(file, sampleState());
    // A crash after writing part of the next state to the temporary file.
    const next = JSON.stringify({ ...sampleState(), vms: [] });
    writeFileSync(`${file}.tmp`, next.slice(0, next.length / 2));
    expect(readState(file)).toEqual(sampleState());
  });

  it('keeps the good state when the temporary file cannot be written', () => {
    writeState(file, sampleState());
    mkdirSync(`${file}.tmp`); // open(2) of the temporary file fails (EISDIR)
    expect(() => writeState(file, { ...sampleState(), vms: [] })).toThrow(/EISDIR/);
    expect(readState(file)).toEqual(sampleState());
    rmSync(`${file}.tmp`, { recursive: true });
    writeState(file, { ...sampleState(), vms: [] });
    expect(readState(file)!.vms).toEqual([]);
  });

  it('refuses truncated JSON', () => {
    const text = JSON.stringify(sampleState());
    expectRefused(text.slice(0, text.length - 10), /not JSON/);
    expectRefused('', /not JSON/);
  });

  it('refuses another version', () => {
    expectRefused(damaged((s) => (s.version = 2)), /not version 1/);
    expectRefused(damaged((s) => delete s.version), /not version 1/);
    expectRefused('null', /not version 1/);
    expectRefused('[1]', /not version 1/);
  });

  it('refuses a VM with uid 0', () => {
    expectRefused(damaged((s) => (s.vms[1].uid = 0)), /vms\[1\] is malformed/);
  });

  it('refuses a process with a bad start time, pid or uid', () => {
    expectRefused(damaged((s) => (s.vms[0].supervisor.startTime = '12x')), /vms\[0\]\.supervisor is not a process/);
    expectRefused(damaged((s) => (s.vms[0].child.startTime = 123460)), /vms\[0\]\.child is not a process/);
    expectRefused(damaged((s) => (s.vms[0].child.startTime = '')), /vms\[0\]\.child is not a process/);
    expectRefused(damaged((s) => (s.vms[0].child.startTime = '1'.repeat(21))), /vms\[0\]\.child is not a process/);
    expectRefused(damaged((s) => (s.vms[0].supervisor.pid = 0)), /vms\[0\]\.supervisor is not a process/);
    expectRefused(damaged((s) => (s.vms[0].supervisor.uid = 0)), /vms\[0\]\.supervisor is not a process/);
    expectRefused(damaged((s) => (s.vms[0].supervisor.sessionId = -1)), /vms\[0\]\.supervisor is not a process/);
    expectRefused(damaged((s) => (s.vms[0].supervisor = 5000)), /vms\[0\]\.supervisor is not a process/);
  });

  it('accepts a supervisor in session 0 (its session leader is outside the pid namespace, as in containers)', () => {
    const state = sampleState();
    const first = state.vms[0]!;
    const inContainer = { ...state, vms: [{ ...first, supervisor: { ...first.supervisor!, sessionId: 0 } }, state.vms[1]!] };
    writeState(file, inContainer);
    expect(readState(file)?.vms[0]?.supervisor).toEqual({ pid: 5000, startTime: '123456', uid: 107, sessionId: 0 });
  });

  it('refuses a malformed helper, incarnation, lockspace or lease', () => {
    expectRefused(damaged((s) => (s.helper.pid = 0)), /helper is malformed/);
    expectRefused(damaged((s) => delete s.helper), /helper is malformed/);
    expectRefused(damaged((s) => (s.incarnation.bootId = 'not-hex')), /incarnation is malformed/);
    expectRefused(damaged((s) => (s.incarnation.nonce = 'FEDCBA9876543210')), /incarnation is malformed/);
    expectRefused(damaged((s) => (s.lockspaces[1].generation = 0)), /lockspaces is malformed/);
    expectRefused(damaged((s) => delete s.vms), /lockspaces or vms missing/);
    expectRefused(damaged((s) => (s.vms[0].leases[0].mode = 'both')), /vms\[0\]\.leases is malformed/);
    expectRefused(damaged((s) => (s.vms[0].held[0].lver = 0)), /vms\[0\]\.held is malformed/);
    expectRefused(damaged((s) => (s.vms[0].uuid = '')), /vms\[0\] is malformed/);
  });

  it('refuses a file larger than the limit', () => {
    writeFileSync(file, Buffer.alloc(STATE_BYTES_MAX + 1, 0x20));
    expect(() => readState(file)).toThrow(StateFileError);
    expect(() => readState(file)).toThrow(`state file ${file} is damaged: larger than ${STATE_BYTES_MAX} bytes`);
  });

  it('parseState names the path it was given', () => {
    expect(() => parseState('/run/vmlease/state.json', '{')).toThrow('state file /run/vmlease/state.json is damaged: not JSON');
    expect(parseState('/x', JSON.stringify(sampleState()))).toEqual(sampleState());
  });

  it('writes one JSON document per file, terminated by a newline', () => {
    writeState(file, sampleState());
    const text = readFileSync(file, 'utf8');
    expect(text).toMatch(/}\n$/);
    expect(JSON.parse(text)).toEqual(sampleState());
  });
});
