import { ConfigError } from './config-error.js';

/**
 * Exact-shape readers for JSON configuration objects: every key is known,
 * every value has its type and range, and a refusal names the key. Shared by
 * the helper config and the host policy file.
 */
export class JsonObjectReader {
  private readonly seen = new Set<string>();

  constructor(
    private readonly file: string,
    private readonly prefix: string,
    private readonly fields: Record<string, unknown>,
  ) {}

  static root(file: string, value: unknown): JsonObjectReader {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ConfigError(file, '', 'must be a JSON object');
    return new JsonObjectReader(file, '', value as Record<string, unknown>);
  }

  keyPath(key: string): string {
    return this.prefix === '' ? key : `${this.prefix}.${key}`;
  }

  fail(key: string, reason: string): never {
    throw new ConfigError(this.file, this.keyPath(key), reason);
  }

  has(key: string): boolean {
    return Object.hasOwn(this.fields, key);
  }

  raw(key: string): unknown {
    this.seen.add(key);
    return this.fields[key];
  }

  integer(key: string, min: number, max: number, fallback?: number): number {
    if (!this.has(key)) return fallback ?? this.fail(key, 'is required');
    const value = this.raw(key);
    if (typeof value !== 'number' || !Number.isInteger(value)) this.fail(key, `must be an integer, not ${JSON.stringify(value)}`);
    if (value < min || value > max) this.fail(key, `${value} is outside ${min}..${max}`);
    return value;
  }

  string(key: string, check: (value: string) => string | undefined, fallback?: string): string {
    if (!this.has(key)) return fallback ?? this.fail(key, 'is required');
    const value = this.raw(key);
    if (typeof value !== 'string') this.fail(key, `must be a string, not ${JSON.stringify(value)}`);
    const problem = check(value);
    if (problem !== undefined) this.fail(key, problem);
    return value;
  }

  boolean(key: string, fallback: boolean): boolean {
    if (!this.has(key)) return fallback;
    const value = this.raw(key);
    if (typeof value !== 'boolean') this.fail(key, `must be true or false, not ${JSON.stringify(value)}`);
    return value;
  }

  object(key: string): JsonObjectReader {
    const value = this.raw(key);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) this.fail(key, 'must be a JSON object');
    return new JsonObjectReader(this.file, this.keyPath(key), value as Record<string, unknown>);
  }

  array<T>(key: string, itemsMax: number, item: (element: JsonElement, index: number) => T): T[] {
    if (!this.has(key)) this.fail(key, 'is required');
    const value = this.raw(key);
    if (!Array.isArray(value)) this.fail(key, 'must be a JSON array');
    if (value.length > itemsMax) this.fail(key, `has ${value.length} entries, at most ${itemsMax} are allowed`);
    return value.map((element, index) => item(new JsonElement(this.file, `${this.keyPath(key)}[${index}]`, element), index));
  }

  /** Refuses keys nobody read: a typo must not silently fall back to a default. */
  done(): void {
    for (const key of Object.keys(this.fields)) {
      if (!this.seen.has(key)) this.fail(key, 'is not a known key');
    }
  }
}

/** One array element, which may be an object or a plain value. */
export class JsonElement {
  constructor(
    readonly file: string,
    readonly keyPath: string,
    readonly value: unknown,
  ) {}

  object(): JsonObjectReader {
    if (typeof this.value !== 'object' || this.value === null || Array.isArray(this.value)) throw new ConfigError(this.file, this.keyPath, 'must be a JSON object');
    return new JsonObjectReader(this.file, this.keyPath, this.value as Record<string, unknown>);
  }

  string(check: (value: string) => string | undefined): string {
    if (typeof this.value !== 'string') throw new ConfigError(this.file, this.keyPath, `must be a string, not ${JSON.stringify(this.value)}`);
    const problem = check(this.value);
    if (problem !== undefined) throw new ConfigError(this.file, this.keyPath, problem);
    return this.value;
  }
}

/** An absolute, normalised path (no `.`/`..` parts, no trailing slash, no NUL). */
export function absolutePathProblem(value: string): string | undefined {
  if (!value.startsWith('/')) return `${JSON.stringify(value)} is not an absolute path`;
  if (value.includes('\0')) return 'contains a NUL byte';
  if (value.length > 4096) return 'is longer than 4096 bytes';
  const parts = value.split('/').slice(1);
  if (value !== '/' && parts.some((p) => p === '' || p === '.' || p === '..')) return `${JSON.stringify(value)} is not normalised (empty, '.' or '..' parts, or a trailing '/')`;
  return undefined;
}
