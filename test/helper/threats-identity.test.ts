import { execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, openSync, closeSync, readFileSync } from 'node:fs';
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alive, exitOf, makeCluster, startHelper, VM_UID, type Cluster, type HelperProcess } from '../support/helper-harness.js';
import { commOf, goodbyeOf, PEER_EXITED, helloText, Peer, realUidOf, sleepMs, startTimeOf, startVictim, type Received } from '../support/threat-kit.js';

/**
 * A supervisor that lies about who it is or which process is its VM (SPEC
 * section 1): binding another uid's VM, binding a VM a live supervisor holds,
 * reusing a stolen one-time secret, and reporting as its "child" a process
 * that is not: another uid's, root's, not its child, a wrong start time, a
 * process whose name contains ") " to confuse a /proc/PID/stat reader, and a
 * setuid-root child. The helper refuses each (and ends the session), and
 * never signals the process it was shown: it is alive after the session ends
 * and after the VM is unregistered.
 *
 * Peers run as uid 65534 in their own session (raw-peer.mjs); every victim
 * runs in a session of its own too, so only a wrong decision could reach it.
 */

const OTHER_UID = 65533;
let cluster: Cluster;
let helper: HelperProcess;
let scratch: string;
const peers: Peer[] = [];
const victims: ChildProcess[] = [];
const fifoHolders: number[] = [];

beforeAll(async () => {
  cluster = makeCluster({ ioTimeoutMs: 1000 });
  scratch = join(cluster.dir, 'scratch');
  mkdirSync(scratch, { mode: 0o755 });
  chmodSync(scratch, 0o755);
  helper = await startHelper(cluster, 1);
});

afterAll(async () => {
  for (const peer of peers) peer.kill();
  for (const victim of victims) if (victim.exitCode === null && victim.signalCode === null) victim.kill('SIGKILL');
  for (const fd of fifoHolders) closeSync(fd);
  await helper?.stop('SIGTERM');
  cluster?.remove();
});

async function newPeer(): Promise<Peer> {
  const peer = await Peer.start(helper.runDir);
  peers.push(peer);
  return peer;
}

async function victim(file: string, args: readonly string[], uid: number): Promise<ChildProcess> {
  const v = await startVictim(file, args, uid);
  victims.push(v);
  return v;
}

let resources = 0;
/** Registers a VM with one fresh lease; returns its uuid and one-time secret. */
function registerVm(uid = VM_UID): { vm: string; secret: string } {
  const vm = randomUUID();
  const lease = cluster.resource(`id-${++resources}`);
  const result = helper.cli(['register', '--vm', vm, '--uid', String(uid), '--lease', lease, '--json']);
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  const secretFile = JSON.parse(result.stdout).secretFile as string;
  return { vm, secret: readFileSync(secretFile, 'utf8').trim() };
}

function vmStatus(vm: string): Record<string, unknown> | undefined {
  return JSON.parse(helper.cli(['status', '--json']).stdout).vms.find((v: { uuid: string }) => v.uuid === vm);
}

async function greet(peer: Peer, id: string): Promise<void> {
  expect(await peer.open(id)).toEqual({ kind: 'open' });
  peer.send(id, helloText());
  expect(await peer.nextJson(id)).toMatchObject({ type: 'welcome' });
}

async function reply(peer: Peer, id: string): Promise<Record<string, unknown>> {
  let message = await peer.nextJson(id);
  while (message.type === 'statement') message = await peer.nextJson(id);
  expect(message.type, JSON.stringify(message)).toBe('reply');
  return message;
}

/** hello, bind (seq 2) with the secret: the session is bound. */
async function bind(peer: Peer, id: string, vm: string, secret?: string): Promise<Record<string, unknown>> {
  await greet(peer, id);
  peer.send(id, { type: 'bind', seq: 2, vm, ...(secret === undefined ? {} : { secret }) });
  return reply(peer, id);
}

/** bind, then acquire (seq 3): the session holds the VM's leases. */
async function holding(peer: Peer, id: string, vm: string, secret: string): Promise<void> {
  expect(await bind(peer, id, vm, secret)).toMatchObject({ seq: 2, ok: true, result: { vm } });
  peer.send(id, { type: 'acquire', seq: 3 });
  const granted = await reply(peer, id);
  expect(granted).toMatchObject({ seq: 3, ok: true, result: { statement: expect.any(Object) } });
  expect(vmStatus(vm)).toMatchObject({ state: 'holding', supervisorPid: peer.pid });
}

/** The refusal reply with `code`, then the goodbye with the same code, then the close. */
async function expectRefusedAndEnded(peer: Peer, id: string, seq: number, code: string): Promise<void> {
  // The helper's word: this peer's session ended with the code.
  const ended = await helper.waitForLog('session.ended', 15_000, (l) => l.peerPid === peer.pid && l.code === code);
  expect(ended).toMatchObject({ peerUid: VM_UID, code });
  // The peer's view, as far as it got before the helper stopped it (SIGTERM may come first):
  // the refusal, the goodbye, the close, with signed valid-until statements perhaps in between.
  const frames = (await peer.untilClose(id)).filter((f) => !(f.kind === 'message' && f.json?.type === 'statement'));
  const close = frames.at(-1) as { kind: 'close'; code: number };
  expect([1000, PEER_EXITED], JSON.stringify(frames)).toContain(close.code);
  const expected: Received[] = [
    { kind: 'message', text: expect.any(String) as string, json: expect.objectContaining({ type: 'reply', seq, ok: false, error: { code, message: expect.any(String) } }) },
    { kind: 'message', text: expect.any(String) as string, json: expect.objectContaining({ type: 'goodbye', code }) },
  ];
  expect(frames.slice(0, -1)).toEqual(expected.slice(0, frames.length - 1));
}

/**
 * After a refused report the session ended while holding leases: the helper
 * stops the VM's real processes (the lying supervisor) and releases. The
 * process it was shown is never signalled: alive then, and after unregister.
 */
async function expectSparedThroughCleanup(peer: Peer, vm: string, pid: number): Promise<void> {
  expect(await exitOf(peer.process)).toEqual({ code: null, signal: 'SIGTERM' });
  for (let i = 0; i < 200; i++) {
    const s = vmStatus(vm) as { state: string; leases: { state: string }[] };
    if (s.state === 'registered' && s.leases.every((l) => l.state === 'free')) break;
    await sleepMs(50);
  }
  expect(vmStatus(vm)).toMatchObject({ state: 'registered', childPid: null, leases: [{ state: 'free' }] });
  expect(alive(pid)).toBe(true);
  const unregistered = helper.cli(['unregister', '--vm', vm, '--json']);
  expect(unregistered.status).toBe(0);
  expect(JSON.parse(unregistered.stdout)).toEqual({ vm, released: [] });
  await sleepMs(300);
  expect(alive(pid)).toBe(true);
}

describe('a peer claiming another VM', () => {
  it('bind as uid 65534 to a VM registered for uid 65533: IDENTITY_UID, even with the right secret', async () => {
    const { vm, secret } = registerVm(OTHER_UID);
    const peer = await newPeer();
    await greet(peer, 'a');
    peer.send('a', { type: 'bind', seq: 2, vm, secret });
    await expectRefusedAndEnded(peer, 'a', 2, 'IDENTITY_UID');
    // The secret was not used up by the refused bind: the refusal came first.
    expect(readFileSync(join(helper.runDir, 'vms', `${vm}.secret`), 'utf8').trim()).toBe(secret);
    expect(vmStatus(vm)).toMatchObject({ state: 'registered', supervisorPid: null });
    expect(helper.cli(['unregister', '--vm', vm]).status).toBe(0);
  });

  it('a second supervisor process cannot bind a VM bound to a live supervisor, with or without its secret', async () => {
    const { vm, secret } = registerVm();
    const first = await newPeer();
    expect(await bind(first, 'a', vm, secret)).toMatchObject({ seq: 2, ok: true, result: { vm } });

    const second = await newPeer();
    // Without a secret.
    expect(await bind(second, 'a', vm)).toMatchObject({ seq: 2, ok: false, error: { code: 'IDENTITY_OTHER_SUPERVISOR' } });
    expect(goodbyeOf(await second.untilClose('a'))).toMatchObject({ code: 'IDENTITY_OTHER_SUPERVISOR' });
    // With the (stolen, already used) secret.
    expect(await bind(second, 'b', vm, secret)).toMatchObject({ seq: 2, ok: false, error: { code: 'IDENTITY_OTHER_SUPERVISOR' } });
    expect(goodbyeOf(await second.untilClose('b'))).toMatchObject({ code: 'IDENTITY_OTHER_SUPERVISOR' });

    // The first supervisor's session was not disturbed.
    first.send('a', { type: 'inquire', seq: 3 });
    expect(await reply(first, 'a')).toEqual({ type: 'reply', seq: 3, ok: true, result: { statement: null } });
    expect(vmStatus(vm)).toMatchObject({ supervisorPid: first.pid });
    first.kill();
    second.kill();
    expect(helper.cli(['unregister', '--vm', vm]).status).toBe(0);
  });

  it('a stolen one-time secret used a second time, from another process, is refused: SESSION_BAD_SECRET', async () => {
    const { vm, secret } = registerVm();
    const first = await newPeer();
    expect(await bind(first, 'a', vm, secret)).toMatchObject({ ok: true });
    // The secret file is gone once used.
    expect(() => readFileSync(join(helper.runDir, 'vms', `${vm}.secret`))).toThrow(/ENOENT/);
    first.kill();
    await exitOf(first.process);

    const thief = await newPeer();
    expect(await bind(thief, 'a', vm, secret)).toMatchObject({ seq: 2, ok: false, error: { code: 'SESSION_BAD_SECRET' } });
    expect(goodbyeOf(await thief.untilClose('a'))).toMatchObject({ code: 'SESSION_BAD_SECRET' });
    // A made-up secret and no secret at all fare no better.
    expect(await bind(thief, 'b', vm, randomBytes(32).toString('base64url'))).toMatchObject({ ok: false, error: { code: 'SESSION_BAD_SECRET' } });
    expect(await bind(thief, 'c', vm)).toMatchObject({ ok: false, error: { code: 'SESSION_BAD_SECRET' } });
    expect(vmStatus(vm)).toMatchObject({ supervisorPid: first.pid });
    thief.kill();
    expect(helper.cli(['unregister', '--vm', vm]).status).toBe(0);
  });

  it('a wrong secret does not use up the right one', async () => {
    const { vm, secret } = registerVm();
    const peer = await newPeer();
    expect(await bind(peer, 'a', vm, randomBytes(32).toString('base64url'))).toMatchObject({ ok: false, error: { code: 'SESSION_BAD_SECRET' } });
    await peer.untilClose('a');
    expect(await bind(peer, 'b', vm, secret)).toMatchObject({ seq: 2, ok: true, result: { vm } });
    peer.kill();
    expect(helper.cli(['unregister', '--vm', vm]).status).toBe(0);
  });
});

describe('requests outside their session state after bind: SESSION_BAD_STATE', () => {
  for (const request of [{ type: 'report-child', seq: 3, pid: 2, startTime: '1' }, { type: 'release', seq: 3 }, { type: 'bind', seq: 3, vm: randomUUID() }, { type: 'hello', seq: 3 }]) {
    it(`${request.type} while bound (no leases held)`, async () => {
      const { vm, secret } = registerVm();
      const peer = await newPeer();
      expect(await bind(peer, 'a', vm, secret)).toMatchObject({ ok: true });
      peer.send('a', request.type === 'hello' ? helloText(3) : request);
      const frames = await peer.untilClose('a');
      // hello's seq must be 1: that check comes first.
      expect(goodbyeOf(frames)).toMatchObject({ code: request.type === 'hello' ? 'PROTO_BAD_SEQ' : 'SESSION_BAD_STATE' });
      expect(frames.filter((f) => f.kind === 'message' && f.json?.type === 'reply')).toEqual([]);
      peer.kill();
      expect(helper.cli(['unregister', '--vm', vm]).status).toBe(0);
    });
  }

  it('report-child pipelined behind release is judged in the state release leaves (bound), not the one it arrived in', async () => {
    const { vm, secret } = registerVm();
    const peer = await newPeer();
    await holding(peer, 'a', vm, secret);
    // A real child of the peer in a session of its own: it would pass every identity check.
    const child = await peer.spawnChild('setsid', '/usr/bin/setsid', ['/bin/sleep', '600']);
    for (let i = 0; i < 200 && commOf(child) !== 'sleep'; i++) await sleepMs(10);
    peer.send('a', { type: 'release', seq: 4 });
    peer.send('a', { type: 'report-child', seq: 5, pid: child, startTime: startTimeOf(child) });
    const frames = (await peer.untilClose('a')).filter((f) => !(f.kind === 'message' && f.json?.type === 'statement'));
    expect(frames[0]).toMatchObject({ kind: 'message', json: { type: 'reply', seq: 4, ok: true } });
    expect(goodbyeOf(frames)).toMatchObject({ code: 'SESSION_BAD_STATE' });
    expect(frames.filter((f) => f.kind === 'message' && f.json?.type === 'reply')).toHaveLength(1);
    // The VM holds nothing and runs nothing, by the helper's word.
    expect(vmStatus(vm)).toMatchObject({ state: 'registered', childPid: null, leases: [{ state: 'free' }] });
    peer.kill();
    expect(helper.cli(['unregister', '--vm', vm]).status).toBe(0);
    expect(alive(child)).toBe(true);
    process.kill(child, 'SIGKILL');
  });
});

describe('reporting a pid that is not the VM\'s child: refused, never signalled', () => {
  async function refusedReport(pid: number, startTime: string, code: string, peer?: Peer): Promise<void> {
    const { vm, secret } = registerVm();
    const p = peer ?? (await newPeer());
    await holding(p, 'a', vm, secret);
    p.send('a', { type: 'report-child', seq: 4, pid, startTime });
    await expectRefusedAndEnded(p, 'a', 4, code);
    await expectSparedThroughCleanup(p, vm, pid);
    expect(helper.lines.some((l) => l.msg === 'session.child' && l.pid === pid)).toBe(false);
  }

  it('a process of another uid', async () => {
    const v = await victim('/bin/sleep', ['600'], OTHER_UID);
    expect(realUidOf(v.pid!)).toBe(OTHER_UID);
    await refusedReport(v.pid!, startTimeOf(v.pid!), 'IDENTITY_CHILD_PARENT');
  });

  it('a root process', async () => {
    const v = await victim('/bin/sleep', ['600'], 0);
    await refusedReport(v.pid!, startTimeOf(v.pid!), 'IDENTITY_CHILD_PARENT');
  });

  it('init (pid 1)', async () => {
    const { vm, secret } = registerVm();
    const peer = await newPeer();
    await holding(peer, 'a', vm, secret);
    peer.send('a', { type: 'report-child', seq: 4, pid: 1, startTime: startTimeOf(1) });
    // pid 1 is never a child: the parser refuses it before the helper looks (the peer may be stopped before it reads the goodbye).
    expect(await helper.waitForLog('session.ended', 15_000, (l) => l.peerPid === peer.pid)).toMatchObject({ code: 'PROTO_BAD_SHAPE' });
    const frames = (await peer.untilClose('a')).filter((f) => !(f.kind === 'message' && f.json?.type === 'statement'));
    expect(frames.filter((f) => f.kind === 'message' && f.json?.type === 'reply')).toEqual([]);
    expect(await exitOf(peer.process)).toEqual({ code: null, signal: 'SIGTERM' });
    expect(helper.cli(['unregister', '--vm', vm]).status).toBe(0);
  });

  it('a process of the VM\'s uid that is not the supervisor\'s child', async () => {
    const v = await victim('/bin/sleep', ['600'], VM_UID);
    await refusedReport(v.pid!, startTimeOf(v.pid!), 'IDENTITY_CHILD_PARENT');
  });

  it('the supervisor\'s own child with a wrong start time (a pid reused)', async () => {
    const peer = await newPeer();
    // Its real child, in a session of its own: with the right start time it would be accepted.
    const child = await peer.spawnChild('setsid', '/usr/bin/setsid', ['/bin/sleep', '600']);
    for (let i = 0; i < 200 && commOf(child) !== 'sleep'; i++) await sleepMs(10);
    const wrong = String(BigInt(startTimeOf(child)) + 1n);
    try {
      await refusedReport(child, wrong, 'IDENTITY_CHILD_GONE', peer);
    } finally {
      if (alive(child)) process.kill(child, 'SIGKILL');
    }
  });

  it('the supervisor\'s own child left in the supervisor\'s session: IDENTITY_CHILD_SESSION', async () => {
    const { vm, secret } = registerVm();
    const peer = await newPeer();
    await holding(peer, 'a', vm, secret);
    const child = await peer.spawnChild('plain', '/bin/sleep', ['600']);
    for (let i = 0; i < 200 && commOf(child) !== 'sleep'; i++) await sleepMs(10);
    try {
      peer.send('a', { type: 'report-child', seq: 4, pid: child, startTime: startTimeOf(child) });
      await expectRefusedAndEnded(peer, 'a', 4, 'IDENTITY_CHILD_SESSION');
      expect(helper.lines.filter((l) => l.msg === 'session.child' && l.pid === child)).toEqual([]);
      expect(await exitOf(peer.process)).toEqual({ code: null, signal: 'SIGTERM' });
    } finally {
      if (alive(child)) process.kill(child, 'SIGKILL');
    }
    for (let i = 0; i < 200 && (vmStatus(vm) as { state: string }).state !== 'registered'; i++) await sleepMs(50);
    expect(vmStatus(vm)).toMatchObject({ state: 'registered', childPid: null, leases: [{ state: 'free' }] });
    expect(helper.cli(['unregister', '--vm', vm]).status).toBe(0);
  });

  it('a process whose name contains ") " and fakes the supervisor as its parent', async () => {
    const peer = await newPeer();
    // /proc/PID/stat: "PID (x) S <peer> 1) S <real ppid> ...": read up to the first ')' it names the peer as parent.
    const name = `x) S ${peer.pid} 1`;
    const binary = join(scratch, name);
    copyFileSync('/bin/sleep', binary);
    chmodSync(binary, 0o755);
    const v = await victim(binary, ['600'], VM_UID);
    // setpriv execs the copy: wait until the pid shows the new name.
    for (let i = 0; i < 200 && commOf(v.pid!) !== name; i++) await sleepMs(10);
    const stat = readFileSync(`/proc/${v.pid}/stat`, 'utf8');
    // Its state may still be R right after the exec: only the name matters here.
    expect(stat.slice(0, `${v.pid} (${name}) `.length)).toBe(`${v.pid} (${name}) `);
    await refusedReport(v.pid!, startTimeOf(v.pid!), 'IDENTITY_CHILD_PARENT', peer);
  });

  it('a setuid-root child of the supervisor (real uid the VM\'s, effective uid 0): IDENTITY_CHILD_UID', async () => {
    const peer = await newPeer();
    // passwd waits for a password on stdin: a FIFO we hold open, so it outlives the peer.
    const fifo = join(scratch, `stdin-${randomUUID()}`);
    execFileSync('mkfifo', ['-m', '0666', fifo]);
    fifoHolders.push(openSync(fifo, 'r+'));
    const child = await peer.spawnChild('passwd', '/usr/bin/setsid', ['/usr/bin/passwd'], fifo);
    for (let i = 0; i < 200 && commOf(child) !== 'passwd'; i++) await sleepMs(10);
    expect(commOf(child)).toBe('passwd');
    const uidLine = readFileSync(`/proc/${child}/status`, 'utf8').split('\n').find((l) => l.startsWith('Uid:'));
    expect(uidLine).toBe(`Uid:\t${VM_UID}\t0\t0\t0`);
    try {
      await refusedReport(child, startTimeOf(child), 'IDENTITY_CHILD_UID', peer);
    } finally {
      if (alive(child)) process.kill(child, 'SIGKILL');
    }
  });
});
