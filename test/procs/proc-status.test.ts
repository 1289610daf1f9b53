import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseProcStatusIds, ProcsError } from '../../dist/helper/procs/index.js';

const STATUS = 'Name:\tqemu\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t7\nPid:\t7\nPPid:\t1\nUid:\t107\t108\t109\t110\nGid:\t207\t208\t209\t210\nGroups:\t1 2 3\n';

function refusal(text: string): string {
  try {
    parseProcStatusIds(text);
  } catch (error) {
    expect(error).toBeInstanceOf(ProcsError);
    expect((error as ProcsError).code).toBe('PROCS_STATUS_MALFORMED');
    return (error as ProcsError).reason;
  }
  throw new Error(`accepted: ${JSON.stringify(text)}`);
}

describe('parseProcStatusIds', () => {
  it('reads the four uids and gids in order', () => {
    expect(parseProcStatusIds(STATUS)).toEqual({
      uid: { real: 107, effective: 108, saved: 109, filesystem: 110 },
      gid: { real: 207, effective: 208, saved: 209, filesystem: 210 },
    });
  });

  it('reads the real /proc/self/status (this test runs as root)', () => {
    const ids = parseProcStatusIds(readFileSync('/proc/self/status', 'utf8'));
    expect(ids.uid.real).toBe(process.getuid?.());
    expect(ids.uid.effective).toBe(process.geteuid?.());
    expect(ids.gid.real).toBe(process.getgid?.());
  });

  it('parses a prefix: a cut-off last line is ignored', () => {
    const cut = STATUS.slice(0, STATUS.indexOf('Groups:') + 4);
    expect(parseProcStatusIds(cut).gid.real).toBe(207);
  });

  it('refuses a prefix that cuts the Gid: line', () => {
    expect(refusal(STATUS.slice(0, STATUS.indexOf('Gid:') + 8))).toBe('no complete Gid: line');
  });

  it('refuses a status without Uid:', () => {
    expect(refusal(STATUS.replace(/^Uid:.*\n/m, ''))).toBe('no complete Uid: line');
  });

  it('refuses two Uid: lines (a forged line cannot win by coming first or last)', () => {
    expect(refusal(STATUS.replace('Gid:', 'Uid:\t0\t0\t0\t0\nGid:'))).toBe('two Uid: lines');
  });

  it.each([
    ['three ids', 'Uid:\t1\t2\t3\n'],
    ['spaces for tabs', 'Uid: 1 2 3 4\n'],
    ['a sign', 'Uid:\t-1\t2\t3\t4\n'],
    ['a leading zero', 'Uid:\t01\t2\t3\t4\n'],
    ['(uid_t)-1', 'Uid:\t4294967295\t2\t3\t4\n'],
    ['trailing text', 'Uid:\t1\t2\t3\t4 x\n'],
  ])('refuses a Uid: line with %s', (_label, line) => {
    expect(refusal(STATUS.replace(/^Uid:.*\n/m, line))).toMatch(/^bad line |value out of range/);
  });
});
