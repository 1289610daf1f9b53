import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError, JsonObjectReader, absolutePathProblem } from '../helper/config/index.js';

/**
 * The host policy file (SPEC section 6). This first version knows only the
 * lease roots: the directories (or device directories) under which the
 * helper will accept lease areas at `register`. The policy issue adds the
 * automatic disk lease settings and the default action on lease failure.
 */

export interface HostPolicy {
  readonly file: string;
  /** Absolute, normalised directories; a lease path must lie strictly below one. */
  readonly leaseRoots: readonly string[];
}

export const LEASE_ROOTS_MAX = 64;
export const POLICY_BYTES_MAX = 1024 * 1024;

export function parseHostPolicy(file: string, document: unknown): HostPolicy {
  const root = JsonObjectReader.root(file, document);
  const leaseRoots = root.array('leaseRoots', LEASE_ROOTS_MAX, (element) =>
    element.string((value) => absolutePathProblem(value) ?? (value === '/' ? 'the whole file system cannot be a lease root' : undefined)),
  );
  if (leaseRoots.length === 0) root.fail('leaseRoots', 'is empty: no lease could ever be registered');
  root.done();
  return { file, leaseRoots };
}

export function loadHostPolicy(path: string): HostPolicy {
  const file = resolve(path);
  let document: unknown;
  try {
    const bytes = readFileSync(file);
    if (bytes.byteLength > POLICY_BYTES_MAX) throw new ConfigError(file, '', `is ${bytes.byteLength} bytes, at most ${POLICY_BYTES_MAX} are allowed`);
    document = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(file, '', `cannot be read as JSON: ${(error as Error).message}`);
  }
  return parseHostPolicy(file, document);
}
