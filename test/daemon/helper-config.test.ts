import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../dist/helper/config/config-error.js';
import { CONFIG_BYTES_MAX, LOCKSPACES_MAX, loadHelperConfig, parseHelperConfig, RUN_DIR_DEFAULT } from '../../dist/helper/config/helper-config.js';
import { absolutePathProblem } from '../../dist/helper/config/json-fields.js';
import { vmlease } from '../support/cli.js';
import { workDir } from '../support/tmp.js';

const FILE = '/etc/vmlease/helper.json';

/** A complete, valid config; tests change one thing at a time. */
function good(): Record<string, unknown> {
  return {
    hostId: 7,
    hostName: 'host-a',
    runDir: '/run/vmlease-test',
    ioTimeoutMs: 10_000,
    watchdog: { device: '/dev/watchdog', fireTimeoutMs: 60_000 },
    takeoverWithoutWatchdog: true,
    lockspaces: [
      { name: 'cluster', path: '/var/lib/vmlease/leases/cluster.ls', offset: 0 },
      { name: 'second', path: '/var/lib/vmlease/leases/cluster.ls', offset: 8192 },
    ],
    policy: '/etc/vmlease/policy.json',
  };
}

function withChange(change: (doc: Record<string, unknown>) => void): Record<string, unknown> {
  const doc = good();
  change(doc);
  return doc;
}

const lockspace = (doc: Record<string, unknown>, index: number) => (doc.lockspaces as Record<string, unknown>[])[index]!;

/** The ConfigError thrown for this document (fails the test if it is accepted or throws something else). */
function refusal(document: unknown): ConfigError {
  try {
    parseHelperConfig(FILE, document, { hostName: 'default-host' });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('the config was accepted');
}

function expectRefused(document: unknown, key: string, reason: RegExp): void {
  const error = refusal(document);
  expect(error.file).toBe(FILE);
  expect(error.key).toBe(key);
  expect(error.reason).toMatch(reason);
  // The message carries all three, for the one stderr line.
  expect(error.message).toBe(`${FILE}: ${key === '' ? 'the document' : key}: ${error.reason}`);
}

describe('parseHelperConfig: a valid config', () => {
  it('keeps every given value', () => {
    expect(parseHelperConfig(FILE, good())).toEqual({
      file: FILE,
      hostId: 7,
      hostName: 'host-a',
      runDir: '/run/vmlease-test',
      ioTimeoutMs: 10_000,
      watchdog: { device: '/dev/watchdog', fireTimeoutMs: 60_000 },
      takeoverWithoutWatchdog: true,
      lockspaces: [
        { name: 'cluster', path: '/var/lib/vmlease/leases/cluster.ls', offset: 0 },
        { name: 'second', path: '/var/lib/vmlease/leases/cluster.ls', offset: 8192 },
      ],
      policy: '/etc/vmlease/policy.json',
      libvirtRunDir: '/run/libvirt/qemu',
    });
  });

  it('takes libvirtRunDir when given, absolute and normalised only', () => {
    expect(parseHelperConfig(FILE, withChange((d) => void (d.libvirtRunDir = '/tmp/libvirt-test'))).libvirtRunDir).toBe('/tmp/libvirt-test');
    expect(() => parseHelperConfig(FILE, withChange((d) => void (d.libvirtRunDir = 'relative/dir')))).toThrow(/libvirtRunDir/);
  });

  it('defaults hostName to the machine hostname, runDir to /run/vmlease, takeoverWithoutWatchdog to false', () => {
    const doc = withChange((d) => {
      delete d.hostName;
      delete d.runDir;
      delete d.takeoverWithoutWatchdog;
    });
    const config = parseHelperConfig(FILE, doc);
    expect(config.hostName).toBe(hostname());
    expect(config.runDir).toBe('/run/vmlease');
    expect(RUN_DIR_DEFAULT).toBe('/run/vmlease');
    expect(config.takeoverWithoutWatchdog).toBe(false);
    // The default host name comes from the caller when given.
    expect(parseHelperConfig(FILE, doc, { hostName: 'from-caller' }).hostName).toBe('from-caller');
  });

  it('accepts watchdog null (explicitly no watchdog) and an empty lockspace list', () => {
    const config = parseHelperConfig(FILE, withChange((d) => {
      d.watchdog = null;
      d.lockspaces = [];
    }));
    expect(config.watchdog).toBeNull();
    expect(config.lockspaces).toEqual([]);
  });

  it('accepts the range ends: hostId 1 and 2000, io timeout 1 and 600000', () => {
    expect(parseHelperConfig(FILE, withChange((d) => (d.hostId = 1))).hostId).toBe(1);
    expect(parseHelperConfig(FILE, withChange((d) => (d.hostId = 2000))).hostId).toBe(2000);
    expect(parseHelperConfig(FILE, withChange((d) => (d.ioTimeoutMs = 1))).ioTimeoutMs).toBe(1);
    expect(parseHelperConfig(FILE, withChange((d) => (d.ioTimeoutMs = 600_000))).ioTimeoutMs).toBe(600_000);
  });
});

describe('parseHelperConfig: refusals name the file, the key path and the reason', () => {
  it('refuses a document that is not an object', () => {
    expectRefused([], '', /must be a JSON object/);
    expectRefused(null, '', /must be a JSON object/);
    expectRefused('text', '', /must be a JSON object/);
  });

  it('refuses unknown keys at the top level and nested', () => {
    expectRefused(withChange((d) => (d.hostID = 3)), 'hostID', /is not a known key/);
    expectRefused(withChange((d) => ((d.watchdog as Record<string, unknown>).timeoutMs = 5)), 'watchdog.timeoutMs', /is not a known key/);
    expectRefused(withChange((d) => (lockspace(d, 1).size = 1)), 'lockspaces[1].size', /is not a known key/);
  });

  it.each(['hostId', 'ioTimeoutMs', 'watchdog', 'lockspaces', 'policy'])('refuses a config without %s', (key) => {
    expectRefused(withChange((d) => delete d[key]), key, /is required/);
  });

  it('says how to run without a watchdog when watchdog is missing', () => {
    expectRefused(withChange((d) => delete d.watchdog), 'watchdog', /or null to run without a watchdog/);
  });

  it('refuses missing keys inside watchdog and lockspace entries', () => {
    expectRefused(withChange((d) => delete (d.watchdog as Record<string, unknown>).device), 'watchdog.device', /is required/);
    expectRefused(withChange((d) => delete (d.watchdog as Record<string, unknown>).fireTimeoutMs), 'watchdog.fireTimeoutMs', /is required/);
    expectRefused(withChange((d) => delete lockspace(d, 1).name), 'lockspaces[1].name', /is required/);
    expectRefused(withChange((d) => delete lockspace(d, 0).path), 'lockspaces[0].path', /is required/);
    expectRefused(withChange((d) => delete lockspace(d, 1).offset), 'lockspaces[1].offset', /is required/);
  });

  it('shows control characters of an unknown key escaped, keeping the message on one line', () => {
    const error = refusal(withChange((d) => (d['host\nId\u001b[2J'] = 1)));
    expect(error.key).toBe('host\nId\u001b[2J');
    expect(error.message).toBe(`${FILE}: host\\nId\\u001b[2J: is not a known key`);
  });

  it('refuses wrong types', () => {
    expectRefused(withChange((d) => (d.hostId = '7')), 'hostId', /must be an integer, not "7"/);
    expectRefused(withChange((d) => (d.hostId = 7.5)), 'hostId', /must be an integer, not 7\.5/);
    expectRefused(withChange((d) => (d.ioTimeoutMs = null)), 'ioTimeoutMs', /must be an integer, not null/);
    expectRefused(withChange((d) => (d.hostName = 12)), 'hostName', /must be a string, not 12/);
    expectRefused(withChange((d) => (d.takeoverWithoutWatchdog = 'yes')), 'takeoverWithoutWatchdog', /must be true or false, not "yes"/);
    expectRefused(withChange((d) => (d.watchdog = '/dev/watchdog')), 'watchdog', /must be a JSON object/);
    expectRefused(withChange((d) => (d.watchdog = [])), 'watchdog', /must be a JSON object/);
    expectRefused(withChange((d) => (d.lockspaces = { name: 'cluster' })), 'lockspaces', /must be a JSON array/);
    expectRefused(withChange((d) => ((d.lockspaces as unknown[])[1] = 'cluster')), 'lockspaces[1]', /must be a JSON object/);
    expectRefused(withChange((d) => (lockspace(d, 1).offset = '8192')), 'lockspaces[1].offset', /must be an integer/);
    expectRefused(withChange((d) => (d.policy = ['/etc/p.json'])), 'policy', /must be a string/);
  });

  it('refuses host ids outside 1..2000 and io timeouts outside 1..600000', () => {
    expectRefused(withChange((d) => (d.hostId = 0)), 'hostId', /^0 is outside 1\.\.2000$/);
    expectRefused(withChange((d) => (d.hostId = 2001)), 'hostId', /^2001 is outside 1\.\.2000$/);
    expectRefused(withChange((d) => (d.hostId = -1)), 'hostId', /outside 1\.\.2000/);
    expectRefused(withChange((d) => (d.ioTimeoutMs = 0)), 'ioTimeoutMs', /^0 is outside 1\.\.600000$/);
    expectRefused(withChange((d) => (d.ioTimeoutMs = 600_001)), 'ioTimeoutMs', /^600001 is outside 1\.\.600000$/);
    expectRefused(withChange((d) => ((d.watchdog as Record<string, unknown>).fireTimeoutMs = 0)), 'watchdog.fireTimeoutMs', /outside 1\.\./);
    expectRefused(withChange((d) => (lockspace(d, 0).offset = -4096)), 'lockspaces[0].offset', /outside 0\.\./);
  });

  it('refuses bad host names', () => {
    expectRefused(withChange((d) => (d.hostName = '')), 'hostName', /is empty/);
    expectRefused(withChange((d) => (d.hostName = 'host a')), 'hostName', /printable ASCII without spaces/);
    expectRefused(withChange((d) => (d.hostName = 'h'.repeat(65))), 'hostName', /longer than 64 bytes/);
    expect(parseHelperConfig(FILE, withChange((d) => (d.hostName = 'h'.repeat(64)))).hostName).toBe('h'.repeat(64));
  });

  it('refuses bad lockspace names', () => {
    expectRefused(withChange((d) => (lockspace(d, 1).name = '')), 'lockspaces[1].name', /is empty/);
    expectRefused(withChange((d) => (lockspace(d, 1).name = 'two words')), 'lockspaces[1].name', /outside printable ASCII/);
    expectRefused(withChange((d) => (lockspace(d, 1).name = 'n'.repeat(49))), 'lockspaces[1].name', /at most 48/);
  });

  it('refuses relative and non-normalised paths in every path key', () => {
    expectRefused(withChange((d) => (d.runDir = 'run/vmlease')), 'runDir', /"run\/vmlease" is not an absolute path/);
    expectRefused(withChange((d) => (d.runDir = '/run/vmlease/')), 'runDir', /is not normalised/);
    expectRefused(withChange((d) => (d.policy = '/etc/vmlease/../policy.json')), 'policy', /is not normalised/);
    expectRefused(withChange((d) => (d.policy = '/etc//policy.json')), 'policy', /is not normalised/);
    expectRefused(withChange((d) => ((d.watchdog as Record<string, unknown>).device = 'watchdog0')), 'watchdog.device', /is not an absolute path/);
    expectRefused(withChange((d) => (lockspace(d, 1).path = '/var/lib/./leases/x.ls')), 'lockspaces[1].path', /is not normalised/);
    expectRefused(withChange((d) => (lockspace(d, 1).path = './x.ls')), 'lockspaces[1].path', /is not an absolute path/);
    expectRefused(withChange((d) => (lockspace(d, 0).path = '/var/lib/x\0.ls')), 'lockspaces[0].path', /NUL byte/);
    expectRefused(withChange((d) => (d.policy = `/${'p'.repeat(4096)}`)), 'policy', /longer than 4096 bytes/);
  });

  it('refuses offsets that are not a multiple of 4096', () => {
    expectRefused(withChange((d) => (lockspace(d, 1).offset = 512)), 'lockspaces[1].offset', /^512 is not a multiple of 4096/);
    expectRefused(withChange((d) => (lockspace(d, 1).offset = 4097)), 'lockspaces[1].offset', /^4097 is not a multiple of 4096/);
    expect(parseHelperConfig(FILE, withChange((d) => (lockspace(d, 1).offset = 1024 * 4096))).lockspaces[1]!.offset).toBe(1024 * 4096);
  });

  it('refuses a lockspace name listed twice', () => {
    expectRefused(withChange((d) => (lockspace(d, 1).name = 'cluster')), 'lockspaces[1].name', /lockspace "cluster" is listed twice/);
  });

  it('refuses two lockspaces at the same path and offset, and accepts them at different offsets or paths', () => {
    expectRefused(withChange((d) => (lockspace(d, 1).offset = 0)), 'lockspaces[1]', /\/var\/lib\/vmlease\/leases\/cluster\.ls:0 is already used by another lockspace/);
    const otherPath = parseHelperConfig(FILE, withChange((d) => {
      lockspace(d, 1).offset = 0;
      lockspace(d, 1).path = '/var/lib/vmlease/leases/other.ls';
    }));
    expect(otherPath.lockspaces.map((ls) => `${ls.path}:${ls.offset}`)).toEqual(['/var/lib/vmlease/leases/cluster.ls:0', '/var/lib/vmlease/leases/other.ls:0']);
  });

  it('refuses more lockspaces than the limit', () => {
    const many = Array.from({ length: LOCKSPACES_MAX + 1 }, (_, i) => ({ name: `ls${i}`, path: '/var/lib/ls', offset: i * 4096 }));
    expectRefused(withChange((d) => (d.lockspaces = many)), 'lockspaces', new RegExp(`has ${LOCKSPACES_MAX + 1} entries, at most ${LOCKSPACES_MAX}`));
    expect(parseHelperConfig(FILE, withChange((d) => (d.lockspaces = many.slice(0, LOCKSPACES_MAX)))).lockspaces).toHaveLength(LOCKSPACES_MAX);
  });

  it('does not mistake an inherited property for a given key', () => {
    // A key must be the document's own: a prototype's hostId is not a config value.
    const inherited = Object.create({ hostId: 3 }) as Record<string, unknown>;
    Object.assign(inherited, withChange((d) => delete d.hostId));
    expectRefused(inherited, 'hostId', /is required/);
  });
});

describe('absolutePathProblem', () => {
  it('accepts absolute normalised paths and refuses the others', () => {
    expect(absolutePathProblem('/')).toBeUndefined();
    expect(absolutePathProblem('/a/b.c/..d')).toBeUndefined();
    expect(absolutePathProblem('')).toBe('"" is not an absolute path');
    expect(absolutePathProblem('/a/')).toMatch(/not normalised/);
    expect(absolutePathProblem('/a/..')).toMatch(/not normalised/);
    expect(absolutePathProblem('/./a')).toMatch(/not normalised/);
  });
});

describe('loadHelperConfig (a file)', () => {
  let dir: ReturnType<typeof workDir>;
  beforeAll(() => {
    dir = workDir('helper-config');
  });
  afterAll(() => dir.remove());

  function write(name: string, content: string | Buffer): string {
    const path = join(dir.path, name);
    writeFileSync(path, content);
    return path;
  }

  function loadRefusal(path: string): ConfigError {
    try {
      loadHelperConfig(path);
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      return error as ConfigError;
    }
    throw new Error('the config was accepted');
  }

  it('loads a valid file and names it by its absolute path', () => {
    const path = write('good.json', JSON.stringify(good()));
    const config = loadHelperConfig(path);
    expect(config.file).toBe(path);
    expect(config.hostId).toBe(7);
    expect(config.lockspaces).toHaveLength(2);
  });

  it('resolves a relative name against the working directory', () => {
    const path = write('relative.json', JSON.stringify(withChange((d) => (d.hostId = 0))));
    const error = loadRefusal(relative(process.cwd(), path));
    expect(error.file).toBe(path);
    expect(error.key).toBe('hostId');
  });

  it('refuses a file that is not JSON', () => {
    const path = write('broken.json', '{ "hostId": 1, ');
    const error = loadRefusal(path);
    expect(error.file).toBe(path);
    expect(error.key).toBe('');
    expect(error.reason).toMatch(/^is not valid JSON: /);
  });

  it('keeps a refusal of a file that is not JSON on one line (no raw newline or control character from the file)', () => {
    const path = write('multiline.json', '{\n  "hostId":\n  \u001b[31myes\n}\n');
    const error = loadRefusal(path);
    expect(error.reason).toMatch(/^is not valid JSON: /);
    expect(error.message).not.toMatch(/[\u0000-\u001f\u007f]/);
  });

  it('refuses a file larger than the limit before parsing it', () => {
    const path = write('big.json', Buffer.alloc(CONFIG_BYTES_MAX + 1, 0x20));
    const error = loadRefusal(path);
    expect(error.file).toBe(path);
    expect(error.key).toBe('');
    expect(error.reason).toBe(`is ${CONFIG_BYTES_MAX + 1} bytes, at most ${CONFIG_BYTES_MAX} are allowed`);
    // At the limit it is read (and here refused only as JSON without an object).
    const atLimit = write('at-limit.json', Buffer.concat([Buffer.from(JSON.stringify(good())), Buffer.alloc(CONFIG_BYTES_MAX - JSON.stringify(good()).length, 0x20)]));
    expect(loadHelperConfig(atLimit).hostId).toBe(7);
  });

  it('refuses a file that cannot be read', () => {
    const missing = join(dir.path, 'missing.json');
    const error = loadRefusal(missing);
    expect(error.file).toBe(missing);
    expect(error.key).toBe('');
    expect(error.reason).toMatch(/^cannot be read: .*ENOENT/);
    const directory = join(dir.path, 'a-directory');
    mkdirSync(directory);
    expect(loadRefusal(directory).reason).toMatch(/^cannot be read: .*EISDIR/);
  });

  it('refuses a bad value in a file with the file and the key path', () => {
    const path = write('bad-offset.json', JSON.stringify(withChange((d) => (lockspace(d, 1).offset = 100))));
    const error = loadRefusal(path);
    expect(error.file).toBe(path);
    expect(error.key).toBe('lockspaces[1].offset');
    expect(error.message).toBe(`${path}: lockspaces[1].offset: 100 is not a multiple of 4096 (lease areas start on 4096-byte boundaries)`);
  });
});

describe('vmlease helper --config BAD', () => {
  let dir: ReturnType<typeof workDir>;
  beforeAll(() => {
    dir = workDir('helper-config-cli');
    chmodSync(dir.path, 0o755);
  });
  afterAll(() => dir.remove());

  function run(name: string, content: string): { status: number | null; stdout: string; stderr: string; path: string } {
    const path = join(dir.path, name);
    writeFileSync(path, content);
    return { ...vmlease(['helper', '--config', path]), path };
  }

  it('exits 1 with one stderr line naming the file, the key and the reason (unknown key)', () => {
    const result = run('unknown.json', JSON.stringify(withChange((d) => (lockspace(d, 1).sise = 1))));
    expect(result.status).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(`vmlease helper: bad configuration: ${result.path}: lockspaces[1].sise: is not a known key\n`);
  });

  it('exits 1 with one stderr line for a missing watchdog', () => {
    const result = run('no-watchdog.json', JSON.stringify(withChange((d) => delete d.watchdog)));
    expect(result.status).toBe(1);
    const lines = result.stderr.split('\n').filter((line) => line !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^vmlease helper: bad configuration: ${result.path.replace(/[.]/g, '\\.')}: watchdog: is required: `));
  });

  it('exits 1 with one stderr line for a file that is not JSON (YAML by mistake)', () => {
    const result = run('not-json.json', 'hostId: 1\nioTimeoutMs: 10000\n');
    expect(result.status).toBe(1);
    const lines = result.stderr.split('\n').filter((line) => line !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]!.slice(0, `vmlease helper: bad configuration: ${result.path}: the document: is not valid JSON: `.length)).toBe(`vmlease helper: bad configuration: ${result.path}: the document: is not valid JSON: `);
  });
});
