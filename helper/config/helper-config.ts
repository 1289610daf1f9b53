import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { HOST_NAME_BYTES_MAX, HOSTS_MAX_LIMIT, IO_TIMEOUT_MS_MAX, IO_TIMEOUT_MS_MIN, nameProblem } from '../format/index.js';
import { AREA_ALIGNMENT_BYTES } from '../areas/index.js';
import { ConfigError } from './config-error.js';
import { absolutePathProblem, JsonObjectReader, type JsonElement } from './json-fields.js';

/**
 * The helper's configuration file (SPEC section 4). Every key is checked at
 * start; unknown keys and bad values are refused with the file, the key and
 * the reason. `watchdog` must be given explicitly (null = none), so a host
 * never runs without one by omission.
 */

export interface LockspaceConfig {
  readonly name: string;
  readonly path: string;
  readonly offset: number;
}

export interface WatchdogConfig {
  readonly device: string;
  readonly fireTimeoutMs: number;
}

export interface HelperConfig {
  readonly file: string;
  readonly hostId: number;
  readonly hostName: string;
  readonly runDir: string;
  readonly ioTimeoutMs: number;
  readonly watchdog: WatchdogConfig | null;
  readonly takeoverWithoutWatchdog: boolean;
  readonly lockspaces: readonly LockspaceConfig[];
  readonly policy: string;
  /** Where libvirt records its domains' emulator pids (NAME.pid); a VM registered with its domain name is identified by it. */
  readonly libvirtRunDir: string;
}

export const CONFIG_BYTES_MAX = 1024 * 1024;
export const LOCKSPACES_MAX = 64;
export const WATCHDOG_FIRE_TIMEOUT_MS_MAX = 3_600_000;
export const RUN_DIR_DEFAULT = '/run/vmlease';
export const LIBVIRT_RUN_DIR_DEFAULT = '/run/libvirt/qemu';

function hostNameProblem(value: string): string | undefined {
  if (value.length === 0) return 'is empty';
  if (Buffer.byteLength(value) > HOST_NAME_BYTES_MAX) return `is longer than ${HOST_NAME_BYTES_MAX} bytes`;
  if (!/^[\x21-\x7e]+$/.test(value)) return 'must be printable ASCII without spaces';
  return undefined;
}

function lockspaceEntry(element: JsonElement): LockspaceConfig {
  const entry = element.object();
  const name = entry.string('name', nameProblem);
  const path = entry.string('path', absolutePathProblem);
  const offset = entry.integer('offset', 0, Number.MAX_SAFE_INTEGER);
  if (offset % AREA_ALIGNMENT_BYTES !== 0) entry.fail('offset', `${offset} is not a multiple of ${AREA_ALIGNMENT_BYTES} (lease areas start on ${AREA_ALIGNMENT_BYTES}-byte boundaries)`);
  entry.done();
  return { name, path, offset };
}

function watchdogEntry(reader: JsonObjectReader): WatchdogConfig | null {
  if (!reader.has('watchdog')) reader.fail('watchdog', 'is required: give {"device": PATH, "fireTimeoutMs": N}, or null to run without a watchdog (other hosts then never take this host\'s leases on timing alone)');
  if (reader.raw('watchdog') === null) return null;
  const entry = reader.object('watchdog');
  const device = entry.string('device', absolutePathProblem);
  const fireTimeoutMs = entry.integer('fireTimeoutMs', 1, WATCHDOG_FIRE_TIMEOUT_MS_MAX);
  entry.done();
  return { device, fireTimeoutMs };
}

function refuseDuplicates(file: string, lockspaces: readonly LockspaceConfig[]): void {
  const names = new Set<string>();
  const places = new Set<string>();
  lockspaces.forEach((ls, index) => {
    if (names.has(ls.name)) throw new ConfigError(file, `lockspaces[${index}].name`, `lockspace ${JSON.stringify(ls.name)} is listed twice`);
    const place = `${ls.path}:${ls.offset}`;
    if (places.has(place)) throw new ConfigError(file, `lockspaces[${index}]`, `${place} is already used by another lockspace`);
    names.add(ls.name);
    places.add(place);
  });
}

/** Checks a parsed JSON document; `file` names it in refusals. */
export function parseHelperConfig(file: string, document: unknown, defaults: { hostName: string } = { hostName: hostname() }): HelperConfig {
  const root = JsonObjectReader.root(file, document);
  const config: HelperConfig = {
    file,
    hostId: root.integer('hostId', 1, HOSTS_MAX_LIMIT),
    hostName: root.string('hostName', hostNameProblem, defaults.hostName),
    runDir: root.string('runDir', absolutePathProblem, RUN_DIR_DEFAULT),
    ioTimeoutMs: root.integer('ioTimeoutMs', IO_TIMEOUT_MS_MIN, IO_TIMEOUT_MS_MAX),
    watchdog: watchdogEntry(root),
    takeoverWithoutWatchdog: root.boolean('takeoverWithoutWatchdog', false),
    lockspaces: root.array('lockspaces', LOCKSPACES_MAX, lockspaceEntry),
    policy: root.string('policy', absolutePathProblem),
    libvirtRunDir: root.string('libvirtRunDir', absolutePathProblem, LIBVIRT_RUN_DIR_DEFAULT),
  };
  root.done();
  refuseDuplicates(file, config.lockspaces);
  return config;
}

/** Reads and checks the config file; every problem is a ConfigError naming file and key. */
export function loadHelperConfig(path: string): HelperConfig {
  const file = resolve(path);
  let text: string;
  try {
    const bytes = readFileSync(file);
    if (bytes.byteLength > CONFIG_BYTES_MAX) throw new ConfigError(file, '', `is ${bytes.byteLength} bytes, at most ${CONFIG_BYTES_MAX} are allowed`);
    text = bytes.toString('utf8');
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(file, '', `cannot be read: ${(error as Error).message}`);
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(file, '', `is not valid JSON: ${(error as Error).message}`);
  }
  return parseHelperConfig(file, document);
}
