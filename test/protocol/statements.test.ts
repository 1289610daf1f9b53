import { createPrivateKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createIncarnationKey, loadIncarnationKey, signStatement } from '../../dist/protocol/incarnation-key.js';
import {
  ed25519PublicKey,
  encodePublicKeyFile,
  encodeStatementBody,
  parsePublicKeyFile,
  parseStatementBody,
  ProtocolErrorCode,
  statementSigningBytes,
  verifyStatement,
  type Signed,
  type StatementBody,
} from '../../dist/protocol/index.js';
import { expectProtocolError, INCARNATION, NONCE, SESSION, statementBodies, VM } from './support.js';

/** Signs any body text with node:crypto, the way the helper signs (domain, then body). */
function nodeSigned(privateKey: KeyObject, body: string): Signed {
  return { body, sig: sign(null, statementSigningBytes(body), privateKey).toString('base64') };
}

/** The raw 32-byte key pair of a node:crypto Ed25519 key, as libsodium lays it out (seed then public key). */
function rawPair(privateKey: KeyObject): { seed: Buffer; publicKey: Buffer } {
  const jwk = privateKey.export({ format: 'jwk' });
  return { seed: Buffer.from(jwk.d!, 'base64url'), publicKey: Buffer.from(jwk.x!, 'base64url') };
}

const expected = { incarnation: INCARNATION, sessionId: SESSION };
const sodiumKey = await createIncarnationKey(INCARNATION);

describe('signatures: libsodium and node:crypto checked against each other', () => {
  it.each(statementBodies())('a $kind statement signed by libsodium verifies with node:crypto to the same body', (body) => {
    const signed = signStatement(sodiumKey, body);
    expect(verifyStatement(sodiumKey.publicKey, signed, expected)).toEqual(body);
  });

  it.each(statementBodies())('a $kind statement signed by node:crypto verifies the same way', (body) => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const signed = nodeSigned(privateKey, encodeStatementBody(body));
    expect(verifyStatement(rawPair(privateKey).publicKey, signed, expected)).toEqual(body);
    expect(verifyStatement(publicKey, signed, expected)).toEqual(body); // a ready KeyObject works too
  });

  it('one key in both libraries gives byte-identical signatures (Ed25519 is deterministic)', async () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const { seed, publicKey } = rawPair(privateKey);
    const loaded = await loadIncarnationKey(INCARNATION, Buffer.concat([seed, publicKey]));
    expect(Buffer.from(loaded.publicKey)).toEqual(publicKey);
    for (const body of statementBodies()) {
      expect(signStatement(loaded, body)).toEqual(nodeSigned(privateKey, encodeStatementBody(body)));
    }
  });

  it('a key saved with secretKeyBytes and loaded again signs what the same public key verifies', async () => {
    const again = await loadIncarnationKey(INCARNATION, sodiumKey.secretKeyBytes());
    expect(again.publicKey).toEqual(sodiumKey.publicKey);
    const signed = signStatement(again, statementBodies()[2]!);
    expect(verifyStatement(sodiumKey.publicKey, signed, expected)).toEqual(statementBodies()[2]);
  });

  it('refuses a saved key that is torn, mixed or short', async () => {
    const mixed = sodiumKey.secretKeyBytes();
    mixed.set((await createIncarnationKey(INCARNATION)).publicKey, 32);
    await expect(loadIncarnationKey(INCARNATION, mixed)).rejects.toMatchObject({ code: ProtocolErrorCode.badShape });
    await expect(loadIncarnationKey(INCARNATION, sodiumKey.secretKeyBytes().subarray(0, 63))).rejects.toMatchObject({ code: ProtocolErrorCode.badShape });
    await expect(createIncarnationKey('has space')).rejects.toMatchObject({ code: ProtocolErrorCode.badShape });
  });

  it('hands out copies of its key bytes: a caller cannot change the key', () => {
    const before = Buffer.from(sodiumKey.publicKey);
    sodiumKey.publicKey.fill(0);
    sodiumKey.secretKeyBytes().fill(0);
    expect(Buffer.from(sodiumKey.publicKey)).toEqual(before);
    const signed = signStatement(sodiumKey, statementBodies()[2]!);
    expect(verifyStatement(before, signed, expected).kind).toBe('valid-until');
  });

  it('will not sign a statement naming another incarnation (a bug, not a peer error)', () => {
    const other = { ...statementBodies()[2]!, incarnation: 'other' } as StatementBody;
    expect(() => signStatement(sodiumKey, other)).toThrow(/incarnation/);
  });
});

describe('signatures: tampering', () => {
  const body = statementBodies()[2]!; // valid-until
  const signed = signStatement(sodiumKey, body);

  it('refuses a changed body, a changed signature, another key, and a signature made without the domain separator', () => {
    const laterBody = signed.body.replace('"validUntilMs":123466789', '"validUntilMs":923466789');
    expect(laterBody).not.toBe(signed.body);
    expectProtocolError(() => verifyStatement(sodiumKey.publicKey, { ...signed, body: laterBody }, expected), ProtocolErrorCode.badSignature);
    const sig = Buffer.from(signed.sig, 'base64');
    for (const bit of [0, 200, 511]) {
      const flipped = Buffer.from(sig);
      flipped[bit >> 3]! ^= 1 << (bit & 7);
      expectProtocolError(() => verifyStatement(sodiumKey.publicKey, { ...signed, sig: flipped.toString('base64') }, expected), ProtocolErrorCode.badSignature);
    }
    const { privateKey } = generateKeyPairSync('ed25519');
    expectProtocolError(() => verifyStatement(rawPair(privateKey).publicKey, signed, expected), ProtocolErrorCode.badSignature);
    const bare = { body: signed.body, sig: sign(null, Buffer.from(signed.body), createPrivateKey(privateKey.export({ format: 'pem', type: 'pkcs8' }))).toString('base64') };
    expectProtocolError(() => verifyStatement(rawPair(privateKey).publicKey, bare, expected), ProtocolErrorCode.badSignature);
  });

  it('refuses a validly signed statement of another incarnation, session or kind', () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const pub = rawPair(privateKey).publicKey;
    const foreign = nodeSigned(privateKey, encodeStatementBody({ ...body, incarnation: 'inc-old' }));
    expectProtocolError(() => verifyStatement(pub, foreign, expected), ProtocolErrorCode.wrongIncarnation);
    const own = nodeSigned(privateKey, encodeStatementBody(body));
    expectProtocolError(() => verifyStatement(pub, own, { ...expected, sessionId: 'session-8' }), ProtocolErrorCode.wrongSession);
    expectProtocolError(() => verifyStatement(pub, own, { ...expected, kinds: ['welcome'] }), ProtocolErrorCode.wrongKind);
    expect(verifyStatement(pub, own, { incarnation: INCARNATION, kinds: ['valid-until', 'lost'] })).toEqual(body);
  });

  it('refuses signed bodies that are not canonical: spacing, key order, duplicate keys', () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const pub = rawPair(privateKey).publicKey;
    const canonical = encodeStatementBody(body);
    const variants = [
      JSON.stringify(JSON.parse(canonical), null, 1),
      JSON.stringify({ vm: VM, ...(JSON.parse(canonical) as object) }),
      canonical.replace(/}$/, ',"validUntilMs":1}'),
      canonical.replace('"validUntilMs":123466789', '"validUntilMs":123466789.0'),
    ];
    for (const variant of variants) {
      expectProtocolError(() => verifyStatement(pub, nodeSigned(privateKey, variant), expected), ProtocolErrorCode.badShape);
    }
  });
});

describe('statement bodies: exact shapes', () => {
  const [welcome, granted, validUntil] = statementBodies() as [StatementBody, Extract<StatementBody, { kind: 'granted' }>, StatementBody];
  const rejectBody = (value: unknown, code: ProtocolErrorCode) => expectProtocolError(() => parseStatementBody(JSON.stringify(value)), code);
  const lease = granted.leases[0]!;

  it('refuses extra and missing keys, an unknown kind, and text that is not JSON', () => {
    rejectBody({ ...validUntil, extra: 1 }, ProtocolErrorCode.badShape);
    const { vm: _vm, ...noVm } = validUntil as Extract<StatementBody, { kind: 'valid-until' }>;
    rejectBody(noVm, ProtocolErrorCode.badShape);
    rejectBody({ ...validUntil, kind: 'revoked' }, ProtocolErrorCode.unknownType);
    expectProtocolError(() => parseStatementBody('{"kind":'), ProtocolErrorCode.notJson);
  });

  it('welcome is statementSeq 0 and nothing else is', () => {
    rejectBody({ ...welcome, statementSeq: 1 }, ProtocolErrorCode.badShape);
    rejectBody({ ...validUntil, statementSeq: 0 }, ProtocolErrorCode.badShape);
    rejectBody({ ...welcome, nonce: NONCE.slice(4) }, ProtocolErrorCode.badShape);
    rejectBody({ ...welcome, peerUid: 4_294_967_295 }, ProtocolErrorCode.badShape);
    rejectBody({ ...welcome, peerPid: 0 }, ProtocolErrorCode.badShape);
  });

  it('granted: 1..16 distinct well-formed leases', () => {
    rejectBody({ ...granted, leases: [] }, ProtocolErrorCode.badShape);
    rejectBody({ ...granted, leases: Array.from({ length: 17 }, (_v, i) => ({ ...lease, resource: `r${i}` })) }, ProtocolErrorCode.badShape);
    expect(parseStatementBody(encodeStatementBody({ ...granted, leases: Array.from({ length: 16 }, (_v, i) => ({ ...lease, resource: `r${i}` })) })).kind).toBe('granted');
    rejectBody({ ...granted, leases: [lease, { ...lease, mode: 'shared' }] }, ProtocolErrorCode.badShape);
    for (const bad of [{ mode: 'read' }, { lver: -1 }, { lver: 2 ** 53 }, { lockspace: 'x'.repeat(49) }, { resource: 'has space' }, { resource: '' }, { extra: 1 }]) {
      rejectBody({ ...granted, leases: [{ ...lease, ...bad }] }, ProtocolErrorCode.badShape);
    }
    expect(parseStatementBody(encodeStatementBody({ ...granted, leases: [{ ...lease, lockspace: 'x'.repeat(48) }] })).kind).toBe('granted');
  });

  it('refuses bad ids, vm and times', () => {
    for (const bad of [{ incarnation: '' }, { incarnation: 'a/b' }, { sessionId: 's'.repeat(65) }, { vm: VM.toUpperCase() }, { validUntilMs: -5 }, { validUntilMs: 1.5 }]) {
      rejectBody({ ...validUntil, ...bad }, ProtocolErrorCode.badShape);
    }
  });
});

describe('public key file', () => {
  it('round trips, and the key it carries verifies the helper statements', () => {
    const text = encodePublicKeyFile(sodiumKey);
    const file = parsePublicKeyFile(Buffer.from(text));
    expect(file).toEqual({ version: 1, incarnation: INCARNATION, publicKey: sodiumKey.publicKey });
    const signed = signStatement(sodiumKey, statementBodies()[3]!);
    expect(verifyStatement(ed25519PublicKey(file.publicKey), signed, { incarnation: file.incarnation }).kind).toBe('lost');
  });

  it('refuses another version, extra keys, short keys and oversize files', () => {
    const good = JSON.parse(encodePublicKeyFile(sodiumKey)) as Record<string, unknown>;
    expectProtocolError(() => parsePublicKeyFile(JSON.stringify({ ...good, version: 2 })), ProtocolErrorCode.unsupportedVersion);
    expectProtocolError(() => parsePublicKeyFile(JSON.stringify({ ...good, secretKey: 'x' })), ProtocolErrorCode.badShape);
    expectProtocolError(() => parsePublicKeyFile(JSON.stringify({ ...good, publicKey: Buffer.alloc(31).toString('base64') })), ProtocolErrorCode.badShape);
    expectProtocolError(() => parsePublicKeyFile(JSON.stringify(good) + ' '.repeat(1024)), ProtocolErrorCode.tooLarge);
    expectProtocolError(() => ed25519PublicKey(new Uint8Array(31)), ProtocolErrorCode.badShape);
  });
});
