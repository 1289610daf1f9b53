/**
 * Checks that turn a parsed JSON value into an exact shape. Each takes the
 * value and `where` (a path such as "bind.vm") for the reason, and throws
 * PROTO_BAD_SHAPE. Reasons name the path and the rule, never echo the peer's
 * value: it may be large or meant to mislead a log reader.
 */
import assert from 'node:assert/strict';
import { ProtocolError, ProtocolErrorCode } from './errors.js';

export type JsonObject = Readonly<Record<string, unknown>>;

export function badShape(where: string, rule: string): ProtocolError {
  return new ProtocolError(ProtocolErrorCode.badShape, `${where} ${rule}`);
}

/** A plain JSON object with every required key and no key outside required and optional. */
export function exactObject(value: unknown, where: string, required: readonly string[], optional: readonly string[] = []): JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw badShape(where, 'must be an object');
  const object = value as JsonObject;
  for (const key of Object.keys(object)) {
    if (!required.includes(key) && !optional.includes(key)) throw badShape(where, `has an unknown key ${shortKey(key)}`);
  }
  for (const key of required) {
    if (!Object.hasOwn(object, key)) throw badShape(where, `lacks the key "${key}"`);
  }
  return object;
}

/** Key names are the one thing of the peer's we quote: cut to a readable length. */
function shortKey(key: string): string {
  return JSON.stringify(key.length > 32 ? `${key.slice(0, 32)}...` : key);
}

export function integer(value: unknown, where: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) throw badShape(where, 'must be an integer');
  if (value < min || value > max) throw badShape(where, `must be in ${min}..${max}`);
  return value;
}

export function boolean(value: unknown, where: string): boolean {
  if (typeof value !== 'boolean') throw badShape(where, 'must be true or false');
  return value;
}

export function oneOf<T extends string>(value: unknown, where: string, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw badShape(where, `must be one of ${allowed.join(', ')}`);
  }
  return value as T;
}

/** Controls (C0, DEL, C1) would let a peer forge lines in a log or a one-line error; lone surrogates are not text. */
const NOT_PRINTABLE = /[\p{Cc}\p{Cs}]/u;

export interface TextRule {
  readonly bytesMin?: number;
  readonly bytesMax: number;
  /** When given, the whole string must match it (anchor it). */
  readonly pattern?: RegExp;
  /** Said in the reason when the pattern fails, e.g. "a lowercase UUID". */
  readonly patternName?: string;
}

export function text(value: unknown, where: string, rule: TextRule): string {
  if (typeof value !== 'string') throw badShape(where, 'must be a string');
  const bytesMin = rule.bytesMin ?? 1;
  // length > bytesMax already implies too many bytes; it spares counting a huge string.
  const bytes = value.length > rule.bytesMax ? value.length : Buffer.byteLength(value, 'utf8');
  if (bytes < bytesMin || bytes > rule.bytesMax) throw badShape(where, `must be ${bytesMin}..${rule.bytesMax} bytes of UTF-8`);
  if (NOT_PRINTABLE.test(value)) throw badShape(where, 'must not contain control characters or lone surrogates');
  if (rule.pattern && !rule.pattern.test(value)) throw badShape(where, `must be ${rule.patternName ?? 'well formed'}`);
  return value;
}

export function nullable<T>(value: unknown, check: (v: unknown) => T): T | null {
  return value === null ? null : check(value);
}

/**
 * Base64 text of exactly `bytes` bytes, in its one canonical spelling. Node's
 * decoder skips stray characters, so the text must survive a round trip:
 * that refuses whitespace, missing or extra padding and non-zero spare bits.
 */
export function base64Bytes(value: unknown, where: string, bytes: number, alphabet: 'base64' | 'base64url'): Buffer {
  const encodedMax = Math.ceil(bytes / 3) * 4;
  const s = text(value, where, { bytesMax: encodedMax });
  const decoded = Buffer.from(s, alphabet);
  if (decoded.length !== bytes || decoded.toString(alphabet) !== s) {
    throw badShape(where, `must be the ${alphabet} encoding of exactly ${bytes} bytes`);
  }
  return decoded;
}

const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** An instant as Date.prototype.toISOString writes it (UTC, milliseconds), and only that spelling. */
export function isoInstant(value: unknown, where: string): string {
  const s = text(value, where, { bytesMax: 24, pattern: ISO_INSTANT, patternName: 'an ISO 8601 UTC instant like 2024-01-31T12:00:00.000Z' });
  const ms = Date.parse(s);
  if (Number.isNaN(ms) || new Date(ms).toISOString() !== s) throw badShape(where, 'must be a real calendar instant');
  return s;
}

/** Encoders run their output through the parser: sending what the peer must refuse is a bug, caught here. */
export function assertParses(parse: () => unknown): void {
  try {
    parse();
  } catch (error) {
    assert.fail(`encoded a message its own parser refuses: ${error instanceof Error ? error.message : String(error)}`);
  }
}
