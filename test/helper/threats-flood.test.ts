import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCluster, startHelper, VM_UID, type Cluster, type HelperProcess } from '../support/helper-harness.js';
import { goodbyeOf, helloText, Peer, RawClient, sleepMs, supervisorSocket } from '../support/threat-kit.js';

/**
 * Floods from uid 65534 (SPEC section 1): connections beyond the per-uid cap
 * are refused at accept, a session that sends faster than its rate is ended,
 * and through all of it the helper's lockspace renewals keep their schedule
 * (renewedAgoMs from `vmlease status --json`; fencing-relevant, so the bound
 * is generous but well below the point where fencing would start).
 */

const PER_UID_CAP = 8;
let cluster: Cluster;
let helper: HelperProcess;
const peers: Peer[] = [];

beforeAll(async () => {
  cluster = makeCluster({ ioTimeoutMs: 1000 });
  helper = await startHelper(cluster, 1);
});

afterAll(async () => {
  for (const peer of peers) peer.kill();
  await helper?.stop('SIGTERM');
  cluster?.remove();
});

interface LockspaceStatus {
  renewedAgoMs: number | null;
  validForMs: number | null;
  ioTimeoutMs: number;
  state: string;
}

function lockspace(): LockspaceStatus {
  return JSON.parse(helper.cli(['status', '--json']).stdout).lockspaces[0] as LockspaceStatus;
}

/** Samples renewedAgoMs while `during` runs; returns the largest seen. */
async function worstRenewedAgo(during: () => Promise<void>): Promise<{ worst: number; samples: number }> {
  let worst = 0;
  let samples = 0;
  let running = true;
  const sampler = (async () => {
    while (running) {
      const ls = lockspace();
      expect(ls.state).toBe('joined');
      worst = Math.max(worst, ls.renewedAgoMs ?? Infinity);
      samples++;
      await sleepMs(100);
    }
  })();
  try {
    await during();
  } finally {
    running = false;
    await sampler;
  }
  return { worst, samples };
}

/** Opens a connection, retrying while the per-uid cap is still held by connections the helper has not yet seen close. */
async function openWhenFree(peer: Peer, id: string): Promise<Awaited<ReturnType<Peer['open']>>> {
  for (let attempt = 0; ; attempt++) {
    const outcome = await peer.open(id);
    if (outcome.kind === 'open' || attempt >= 50) return outcome;
    await sleepMs(200);
  }
}

describe('floods from uid 65534', () => {
  it('connections beyond the per-uid cap are refused, the others stay served, renewals keep their schedule', async () => {
    const peer = await Peer.start(helper.runDir, VM_UID);
    peers.push(peer);
    const ids = Array.from({ length: PER_UID_CAP + 24 }, (_, i) => `c${i}`);
    const { worst, samples } = await worstRenewedAgo(async () => {
      const outcomes = await Promise.all(ids.map((id) => peer.open(id)));
      const opened = ids.filter((_, i) => outcomes[i]!.kind === 'open');
      expect(opened).toHaveLength(PER_UID_CAP);
      // Every connection over the cap was dropped at accept, before any HTTP reply.
      for (const [i, outcome] of outcomes.entries()) if (outcome.kind !== 'open') expect(outcome, ids[i]).toMatchObject({ kind: 'close' });
      // The helper's log is asynchronous: give its lines a moment to arrive.
      const refusedLines = () => helper.lines.filter((l) => l.msg === 'socket.refused' && (l.peer as { uid: number }).uid === VM_UID);
      for (let waited = 0; refusedLines().length < ids.length - PER_UID_CAP && waited < 10_000; waited += 100) await sleepMs(100);
      const refused = refusedLines();
      expect(refused.length).toBeGreaterThanOrEqual(ids.length - PER_UID_CAP);
      expect(refused[0]!.reason).toBe(`too many connections for uid ${VM_UID} (${PER_UID_CAP})`);
      // The admitted ones are served.
      for (const id of opened) peer.send(id, helloText());
      for (const id of opened) expect(await peer.nextJson(id)).toMatchObject({ type: 'welcome' });
      // Another uid (root here) is not affected by uid 65534's cap.
      const root = await RawClient.connect(supervisorSocket(helper.runDir));
      root.send(helloText());
      const welcome = await root.next();
      expect(welcome.kind === 'message' && welcome.json?.type).toBe('welcome');
      root.close();
      // Reconnect storms for several renewal intervals while the cap is full: each refused at once.
      const until = Date.now() + 8_000;
      for (let round = 0; Date.now() < until; round++) {
        const again = await Promise.all(Array.from({ length: 20 }, (_, i) => peer.open(`r${round}-${i}`)));
        expect(again.filter((o) => o.kind === 'open')).toHaveLength(0);
      }
    });
    const ls = lockspace();
    expect(samples).toBeGreaterThan(5);
    // Renewals every ~2 s with io timeout 1 s; fencing starts far later. A flood must not push it out.
    expect(worst, `renewedAgoMs peaked at ${worst} (io timeout ${ls.ioTimeoutMs})`).toBeLessThan(ls.ioTimeoutMs * 4);
    peer.kill();
    // The connections of a killed peer are freed: the cap counts live connections only.
    const next = await Peer.start(helper.runDir, VM_UID);
    peers.push(next);
    await sleepMs(500);
    expect(await next.open('fresh')).toEqual({ kind: 'open' });
    next.kill();
    await sleepMs(500);
  });

  it('a session that floods messages is ended (SESSION_RATE); floods on all capped connections do not delay renewals', async () => {
    const peer = await Peer.start(helper.runDir, VM_UID);
    peers.push(peer);
    const ids = Array.from({ length: PER_UID_CAP }, (_, i) => `f${i}`);
    const { worst, samples } = await worstRenewedAgo(async () => {
      // The previous test's connections are freed once the helper has seen them close (under load, a moment later).
      for (const id of ids) expect(await openWhenFree(peer, id)).toEqual({ kind: 'open' });
      // Each connection: a hello, then inquire after inquire as fast as the socket takes them.
      for (const id of ids) {
        peer.send(id, helloText());
        peer.flood(id, JSON.stringify({ type: 'inquire', seq: 2 }), 2000);
      }
      for (const id of ids) {
        const frames = await peer.untilClose(id, 30_000);
        const goodbye = goodbyeOf(frames);
        // The first inquire is out of state (SESSION_BAD_STATE) unless the rate cut it first; repeated seq 2 is a replay.
        expect(['SESSION_RATE', 'SESSION_BAD_STATE', 'PROTO_BAD_SEQ']).toContain(goodbye?.code);
      }
      // Now a pure rate flood for several renewal intervals: valid, increasing seqs, far above 20/s.
      expect(await peer.open('rate')).toEqual({ kind: 'open' });
      peer.send('rate', helloText());
      expect(await peer.nextJson('rate')).toMatchObject({ type: 'welcome' });
      for (let seq = 2; seq < 200; seq++) peer.send('rate', JSON.stringify({ type: 'bind', seq, vm: '00000000-0000-4000-8000-000000000000' }));
      const frames = await peer.untilClose('rate', 30_000);
      expect(goodbyeOf(frames)).toMatchObject({ code: 'SESSION_RATE' });
      // And again and again, on fresh connections, for a while.
      const until = Date.now() + 6_000;
      for (let round = 0; Date.now() < until; round++) {
        expect(await peer.open(`again${round}`)).toEqual({ kind: 'open' });
        peer.send(`again${round}`, helloText());
        peer.flood(`again${round}`, JSON.stringify({ type: 'inquire', seq: 2 }), 500);
        expect(goodbyeOf(await peer.untilClose(`again${round}`, 30_000))?.code).toMatch(/^(SESSION_RATE|SESSION_BAD_STATE|PROTO_BAD_SEQ)$/);
      }
      const answered = frames.filter((f) => f.kind === 'message' && f.json?.type === 'reply').length;
      // At most the burst (40, hello included) is served before the session ends; how many of it
      // were answered before the cut depends on how the frames arrived, so only the cap is checked.
      expect(answered).toBeLessThanOrEqual(45);
    });
    const ls = lockspace();
    expect(samples).toBeGreaterThan(5);
    expect(worst, `renewedAgoMs peaked at ${worst}`).toBeLessThan(ls.ioTimeoutMs * 4);
    expect(helper.process.exitCode).toBe(null);
  });
});
