import { describe, expect, it } from 'vitest';
import {
  ADMIN_FRAME_BYTES_MAX,
  decodeJsonFrame,
  parseHelperMessage,
  parseSupervisorRequest,
  ProtocolErrorCode,
  SUPERVISOR_FRAME_BYTES_MAX,
} from '../../dist/protocol/index.js';
import { expectProtocolError, VM } from './support.js';

const inquire = '{"type":"inquire","seq":1}';

/** A valid frame padded with JSON whitespace to exactly `bytes` bytes. */
function padded(text: string, bytes: number): string {
  return text + ' '.repeat(bytes - Buffer.byteLength(text));
}

describe('frame edge', () => {
  it('accepts a frame of exactly the cap and refuses one byte more, as bytes and as a string', () => {
    const atCap = padded(inquire, SUPERVISOR_FRAME_BYTES_MAX);
    expect(parseSupervisorRequest(Buffer.from(atCap))).toEqual({ type: 'inquire', seq: 1 });
    expect(parseSupervisorRequest(atCap)).toEqual({ type: 'inquire', seq: 1 });
    const over = `${atCap} `;
    expectProtocolError(() => parseSupervisorRequest(Buffer.from(over)), ProtocolErrorCode.tooLarge);
    expectProtocolError(() => parseSupervisorRequest(over), ProtocolErrorCode.tooLarge);
    expectProtocolError(() => parseHelperMessage(Buffer.from(over)), ProtocolErrorCode.tooLarge);
  });

  it('counts a string frame in UTF-8 bytes, not UTF-16 units', () => {
    // 8192 two-byte characters: 8192 units but 16384 bytes, plus the JSON around them.
    const text = JSON.stringify({ type: 'goodbye', code: 'X', reason: 'é'.repeat(8192) });
    expect(text.length).toBeLessThan(SUPERVISOR_FRAME_BYTES_MAX);
    expectProtocolError(() => parseHelperMessage(text), ProtocolErrorCode.tooLarge);
  });

  it('refuses a binary frame even when its bytes are valid JSON text', () => {
    expectProtocolError(() => parseSupervisorRequest(Buffer.from(inquire), true), ProtocolErrorCode.notText);
    expectProtocolError(() => parseHelperMessage(Buffer.from('{"type":"goodbye","code":"X","reason":"r"}'), true), ProtocolErrorCode.notText);
  });

  it('refuses bytes that are not well-formed UTF-8 (invalid byte, overlong form, truncated sequence)', () => {
    for (const bad of [[0xff], [0xc0, 0xaf], [0xe2, 0x82]]) {
      const bytes = Buffer.concat([Buffer.from('{"type":"inquire","seq":1,"x":"'), Buffer.from(bad), Buffer.from('"}')]);
      expectProtocolError(() => parseSupervisorRequest(bytes), ProtocolErrorCode.notText);
    }
  });

  it('refuses a string frame holding a lone surrogate', () => {
    expectProtocolError(() => parseSupervisorRequest('{"type":"inquire","seq":1}\ud800'), ProtocolErrorCode.notText);
  });

  it('refuses text that is not one JSON value: garbage, two values, empty, a byte-order mark, a trailing comma', () => {
    for (const text of ['hello', '{"type":"inquire","seq":1}{}', '', '\ufeff{"type":"inquire","seq":1}', '{"type":"inquire","seq":1,}']) {
      expectProtocolError(() => parseSupervisorRequest(text), ProtocolErrorCode.notJson);
    }
  });

  it('turns pathological nesting into a ProtocolError, never a crash (admin-sized frame)', () => {
    const deep = '['.repeat(ADMIN_FRAME_BYTES_MAX);
    expectProtocolError(() => decodeJsonFrame(deep, ADMIN_FRAME_BYTES_MAX), ProtocolErrorCode.notJson);
    const nested = `${'['.repeat(5000)}${']'.repeat(5000)}`;
    expectProtocolError(() => parseSupervisorRequest(nested), ProtocolErrorCode.badShape);
  });

  it('keeps the admin cap above the supervisor cap, at 1 MiB', () => {
    const big = JSON.stringify({ xml: 'x'.repeat(SUPERVISOR_FRAME_BYTES_MAX * 2), vm: VM });
    expect(decodeJsonFrame(big, ADMIN_FRAME_BYTES_MAX)).toEqual(JSON.parse(big));
    expectProtocolError(() => decodeJsonFrame(padded(big, ADMIN_FRAME_BYTES_MAX + 1), ADMIN_FRAME_BYTES_MAX), ProtocolErrorCode.tooLarge);
  });
});
