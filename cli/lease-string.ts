import { UsageError } from './exit-status.js';

/**
 * Lease strings: fields separated by ':', where a ':' inside a field is written
 * '\:' and a backslash '\\' (paths may contain both). Any other backslash
 * sequence is refused rather than guessed at.
 */
export function splitLeaseString(text: string, what: string): string[] {
  const fields: string[] = [];
  let current = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === ':') {
      fields.push(current);
      current = '';
    } else if (c === '\\') {
      const next = text[i + 1];
      if (next !== ':' && next !== '\\') throw new UsageError(`${what} ${JSON.stringify(text)}: '\\' must be followed by ':' or '\\' (at position ${i})`);
      current += next;
      i++;
    } else {
      current += c;
    }
  }
  fields.push(current);
  return fields;
}

/** The inverse of splitLeaseString for one field: ':' becomes '\:', '\' becomes '\\'. */
export function escapeLeaseField(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/:/g, '\\:');
}

/** A byte offset or length: decimal digits only, so nothing is silently misread. */
export function parseByteCount(text: string, what: string): number {
  if (!/^[0-9]+$/.test(text)) throw new UsageError(`${what} ${JSON.stringify(text)} is not a decimal number of bytes`);
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new UsageError(`${what} ${text} is too large`);
  return value;
}

export function nonEmpty(text: string, what: string): string {
  if (text.length === 0) throw new UsageError(`${what} is empty`);
  return text;
}
