import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeCluster, startHelper, type Cluster, type HelperProcess } from '../support/helper-harness.js';
import { goodbyeOf, helloText, RawClient, supervisorSocket, type Received } from '../support/threat-kit.js';

/**
 * Threats on the supervisor socket, frame by frame (SPEC section 1): a raw
 * WebSocket client sends malformed, oversized, replayed and reordered frames,
 * unknown request types and requests out of their session state. Each ends
 * that session with a goodbye naming the violation (or, for a frame over the
 * cap, ws's own close before a byte is parsed), and the helper serves the
 * next, well-behaved session.
 */

const VM = '3f1c2b4a-5d6e-4f70-8a9b-0c1d2e3f4a5b';
const SEQ_ERRORS = 'PROTO_BAD_SEQ';
let cluster: Cluster;
let helper: HelperProcess;

beforeAll(async () => {
  cluster = makeCluster({ ioTimeoutMs: 1000 });
  helper = await startHelper(cluster, 1);
});

afterAll(async () => {
  await helper?.stop('SIGTERM');
  cluster?.remove();
});

function connect(): Promise<RawClient> {
  return RawClient.connect(supervisorSocket(helper.runDir));
}

/** Sends the frames in order and returns everything up to the close. */
async function session(frames: readonly (string | object)[]): Promise<Received[]> {
  const client = await connect();
  for (const frame of frames) client.send(frame);
  try {
    return await client.untilClose(15_000);
  } finally {
    client.close();
  }
}

/** The helper still runs and greets a well-behaved peer with a signed welcome. */
async function expectServing(): Promise<void> {
  expect(helper.process.exitCode).toBe(null);
  const client = await connect();
  try {
    client.send(helloText());
    const welcome = await client.next(10_000);
    expect(welcome.kind === 'message' && welcome.json?.type).toBe('welcome');
  } finally {
    client.close();
  }
}

function expectGoodbye(frames: readonly Received[], code: string): void {
  const goodbye = goodbyeOf(frames);
  expect(goodbye, `frames: ${JSON.stringify(frames)}`).toMatchObject({ type: 'goodbye', code });
  // The goodbye is the last frame, followed by a normal close.
  expect(frames.at(-2)).toMatchObject({ kind: 'message', json: { type: 'goodbye', code } });
  expect(frames.at(-1)).toMatchObject({ kind: 'close', code: 1000 });
}

describe('malformed frames end the session with the right PROTO_* goodbye; the helper serves on', () => {
  const cases: [string, (string | object)[], string][] = [
    ['text that is not JSON', ['{"type":"hello",'], 'PROTO_NOT_JSON'],
    ['two JSON values in one frame', [`${helloText()} ${helloText()}`], 'PROTO_NOT_JSON'],
    ['a JSON array', ['[1,2,3]'], 'PROTO_BAD_SHAPE'],
    ['deeply nested JSON', ['['.repeat(8000) + ']'.repeat(8000)], 'PROTO_BAD_SHAPE'],
    ['a hello with an extra key', [{ type: 'hello', seq: 1, protocol: 1, nonce: Buffer.alloc(32, 1).toString('base64'), pid: 1 }], 'PROTO_BAD_SHAPE'],
    ['a hello with a short nonce', [{ type: 'hello', seq: 1, protocol: 1, nonce: Buffer.alloc(31, 1).toString('base64') }], 'PROTO_BAD_SHAPE'],
    ['a hello of another protocol version', [{ type: 'hello', seq: 1, protocol: 2, nonce: 'x' }], 'PROTO_UNSUPPORTED_VERSION'],
    ['an unknown request type', [{ type: 'become-root', seq: 1 }], 'PROTO_UNKNOWN_TYPE'],
    ['an unknown type after hello', [helloText(), { type: 'signal', seq: 2, pid: 1 }], 'PROTO_UNKNOWN_TYPE'],
    ['a type name with a control character', [{ type: 'hello\n', seq: 1 }], 'PROTO_BAD_SHAPE'],
    ['a string with a lone surrogate', ['{"type":"hello","seq":1,"protocol":1,"nonce":"\\ud800"}'], 'PROTO_BAD_SHAPE'],
    ['a __proto__ key', ['{"type":"inquire","seq":1,"__proto__":{"x":1}}'], 'PROTO_BAD_SHAPE'],
  ];
  for (const [name, frames, code] of cases) {
    it(`${name}: ${code}`, async () => {
      expectGoodbye(await session(frames), code);
      await expectServing();
    });
  }

  it('a binary frame: PROTO_NOT_TEXT', async () => {
    const client = await connect();
    client.ws.send(Buffer.from(helloText()), { binary: true });
    expectGoodbye(await client.untilClose(15_000), 'PROTO_NOT_TEXT');
    await expectServing();
  });

  it('a text frame whose bytes are not UTF-8 is closed by ws (1007) before it is parsed', async () => {
    const client = await connect();
    // ws's sender marks a Buffer sent with binary:false as a text frame without checking it.
    client.ws.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
    const frames = await client.untilClose(15_000);
    expect(frames).toEqual([{ kind: 'close', code: 1007, reason: '' }]);
    await expectServing();
  });
});

describe('oversized frames', () => {
  it('a frame of exactly the cap (16384 bytes) is read; one byte more is refused by ws (1009) unparsed', async () => {
    const hello = helloText();
    const atCap = hello + ' '.repeat(16_384 - Buffer.byteLength(hello));
    const client = await connect();
    client.send(atCap);
    const welcome = await client.next(10_000);
    expect(welcome.kind === 'message' && welcome.json?.type).toBe('welcome');
    client.close();

    const over = await connect();
    over.send(atCap + ' ');
    const frames = await over.untilClose(15_000);
    expect(frames).toEqual([{ kind: 'close', code: 1009, reason: '' }]);
    await expectServing();
  });

  it('a 10 MB frame is refused without taking the helper down', async () => {
    const client = await connect();
    client.send(`{"type":"hello","pad":"${'a'.repeat(10 * 1024 * 1024)}"}`);
    const frames = await client.untilClose(30_000);
    expect(frames.at(-1)).toMatchObject({ kind: 'close', code: 1009 });
    expect(goodbyeOf(frames)).toBe(undefined);
    await expectServing();
  });
});

describe('replayed and reordered requests: PROTO_BAD_SEQ', () => {
  const cases: [string, (string | object)[]][] = [
    ['a first request numbered 2', [{ type: 'inquire', seq: 2 }]],
    ['a hello numbered 2', [helloText(2)]],
    ['a replayed hello', [helloText(), helloText()]],
    ['a skipped number', [helloText(), { type: 'inquire', seq: 3 }]],
    ['a replayed bind', [helloText(), { type: 'bind', seq: 2, vm: VM }, { type: 'bind', seq: 2, vm: VM }]],
    ['a request numbered backwards', [helloText(), { type: 'bind', seq: 2, vm: VM }, { type: 'inquire', seq: 1 }]],
    ['a seq that is not a safe integer', [helloText(), { type: 'inquire', seq: 2 ** 53 }]],
  ];
  for (const [name, frames] of cases) {
    it(name, async () => {
      const seen = await session(frames);
      // PROTO_BAD_SHAPE for a seq outside 1..2^53-1: a number no session reaches.
      expectGoodbye(seen, name.includes('safe integer') ? 'PROTO_BAD_SHAPE' : SEQ_ERRORS);
      // The replay is never answered; the first bind at most (VM_UNKNOWN), if it was served before the replay ended the session.
      const replies = seen.filter((f) => f.kind === 'message' && f.json?.type === 'reply');
      expect(replies.length).toBeLessThanOrEqual(1);
      for (const r of replies) expect(r).toMatchObject({ json: { seq: 2, ok: false, error: { code: 'VM_UNKNOWN' } } });
      await expectServing();
    });
  }
});

describe('requests before identification: SESSION_BAD_STATE', () => {
  const cases: [string, (string | object)[]][] = [
    ['bind before hello', [{ type: 'bind', seq: 1, vm: VM }]],
    ['acquire before hello', [{ type: 'acquire', seq: 1 }]],
    ['acquire before bind', [helloText(), { type: 'acquire', seq: 2 }]],
    ['claim before bind', [helloText(), { type: 'claim', seq: 2 }]],
    ['report-child before bind', [helloText(), { type: 'report-child', seq: 2, pid: 2, startTime: '1' }]],
    ['release before bind', [helloText(), { type: 'release', seq: 2 }]],
    ['inquire before bind', [helloText(), { type: 'inquire', seq: 2 }]],
  ];
  for (const [name, frames] of cases) {
    it(name, async () => {
      const seen = await session(frames);
      expectGoodbye(seen, 'SESSION_BAD_STATE');
      expect(seen.filter((f) => f.kind === 'message' && f.json?.type === 'reply')).toEqual([]);
      await expectServing();
    });
  }

  it('a peer that never says hello is cut off at the handshake deadline', async () => {
    const client = await connect();
    const started = Date.now();
    const frames = await client.untilClose(20_000);
    expectGoodbye(frames, 'SESSION_HANDSHAKE_TIMEOUT');
    expect(Date.now() - started).toBeGreaterThanOrEqual(4_000);
    await expectServing();
  });

  it('a plain HTTP request (no upgrade) gets 426 and nothing else', async () => {
    const { request } = await import('node:http');
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({ socketPath: supervisorSocket(helper.runDir), path: '/', method: 'GET' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(426);
    await expectServing();
  });
});

describe('the daemon after all of it', () => {
  it('logged every ended session, crashed on none, and still renews', async () => {
    expect(helper.lines.filter((l) => l.msg === 'session.request-crashed')).toEqual([]);
    expect(helper.lines.some((l) => l.msg === 'session.ended' && l.code === 'PROTO_NOT_JSON')).toBe(true);
    const status = JSON.parse(helper.cli(['status', '--json']).stdout);
    expect(status.lockspaces[0].state).toBe('joined');
  });
});
