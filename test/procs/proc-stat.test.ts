import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseProcStat, ProcsError } from '../../dist/helper/procs/index.js';

/** The 49 fields the kernel writes after comm's ')' for a sleeping process (6.18), starttime = 123456. */
const TAIL = 'S 77 88 99 34816 88 4194560 112 0 0 0 0 0 0 0 20 0 3 0 123456 8839168 210 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0';

function statOf(comm: string, tail = TAIL, pid = 42): string {
  return `${pid} (${comm}) ${tail}\n`;
}

function refusal(text: string): ProcsError {
  try {
    parseProcStat(text);
  } catch (error) {
    expect(error).toBeInstanceOf(ProcsError);
    expect((error as ProcsError).code).toBe('PROCS_STAT_MALFORMED');
    return error as ProcsError;
  }
  throw new Error(`accepted: ${JSON.stringify(text)}`);
}

describe('parseProcStat', () => {
  it('reads this process from the real /proc/self/stat', () => {
    const stat = parseProcStat(readFileSync('/proc/self/stat', 'utf8'));
    expect(stat.pid).toBe(process.pid);
    expect(stat.ppid).toBe(process.ppid);
    expect(stat.state).toBe('R');
    expect(stat.comm).toBe(readFileSync('/proc/self/comm', 'utf8').replace(/\n$/, ''));
    // The kernel's own session and group, by a second, independent reading: status has NSsid/NSpgid.
    const status = readFileSync('/proc/self/status', 'utf8');
    expect(stat.sessionId).toBe(Number(/^NSsid:\t(\d+)$/m.exec(status)?.[1]));
    expect(stat.processGroup).toBe(Number(/^NSpgid:\t(\d+)$/m.exec(status)?.[1]));
    expect(stat.threads).toBe(Number(/^Threads:\t(\d+)$/m.exec(status)?.[1]));
    // starttime is ticks after boot: before now, and after 0.
    const uptimeTicks = BigInt(Math.ceil(Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 100));
    expect(stat.startTime > 0n && stat.startTime <= uptimeTicks).toBe(true);
  });

  it('takes the fields after the LAST parenthesis', () => {
    const stat = parseProcStat(statOf('evil) Z 1 1 1 1'));
    expect(stat).toEqual({ pid: 42, comm: 'evil) Z 1 1 1 1', state: 'S', ppid: 77, processGroup: 88, sessionId: 99, threads: 3, startTime: 123456n });
  });

  it.each([
    ['spaces', 'a b c'],
    ['parentheses', '(x)(y)'],
    ['") " repeated', ') ) )'],
    ['a newline', 'a\n) R 1'],
    ['only a closing parenthesis', ')'],
    ['an opening parenthesis only', '('],
    ['nothing (empty name)', ''],
    ['a 15-byte name', 'x'.repeat(15)],
    ['a kworker name', 'kworker/0:2-events_power_efficient'],
  ])('keeps a command name with %s', (_label, comm) => {
    const stat = parseProcStat(statOf(comm));
    expect(stat.comm).toBe(comm);
    expect(stat.ppid).toBe(77);
    expect(stat.startTime).toBe(123456n);
  });

  it('accepts text without the final newline, and a starttime beyond 2^53', () => {
    const tail = TAIL.replace(' 123456 ', ' 18446744073709551615 ');
    expect(parseProcStat(statOf('x', tail).slice(0, -1)).startTime).toBe(18446744073709551615n);
  });

  it('accepts the shorter field list of older kernels (up to starttime)', () => {
    const short = TAIL.split(' ').slice(0, 20).join(' ');
    expect(parseProcStat(statOf('x', short)).startTime).toBe(123456n);
  });

  it.each([
    ['an empty text', ''],
    ['no pid', '(x) ' + TAIL],
    ['pid 0', statOf('x', TAIL, 0)],
    ['a pid with a leading zero', '042 (x) ' + TAIL],
    ['a pid beyond PID_MAX_LIMIT', statOf('x', TAIL, 4194305)],
    ['no closing parenthesis', '42 (x ' + TAIL],
    ['no space after the parenthesis', '42 (x)' + TAIL],
    ['two spaces after the parenthesis', '42 (x)  ' + TAIL],
    ['a bad state letter', statOf('x', TAIL.replace(/^S/, 'Q'))],
    ['a two-letter state', statOf('x', TAIL.replace(/^S/, 'SS'))],
    ['a non-numeric field', statOf('x', TAIL.replace(' 77 ', ' 7a '))],
    ['a negative ppid', statOf('x', TAIL.replace(' 77 ', ' -77 '))],
    ['a negative starttime', statOf('x', TAIL.replace(' 123456 ', ' -123456 '))],
    ['a starttime beyond 64 bits', statOf('x', TAIL.replace(' 123456 ', ' 18446744073709551616 '))],
    ['a number with a plus sign', statOf('x', TAIL.replace(' 88 99 ', ' +88 99 '))],
    ['fewer fields than starttime', statOf('x', TAIL.split(' ').slice(0, 19).join(' '))],
    ['too many fields', statOf('x', TAIL + ' 0'.repeat(20))],
    ['a command name over 64 characters', statOf('x'.repeat(65))],
    ['two trailing newlines', statOf('x') + '\n'],
    ['text over 4096 characters', statOf('x') + ' '.repeat(4096)],
  ])('refuses %s', (_label, text) => {
    expect(refusal(text).reason.length).toBeGreaterThan(0);
  });

  it('says which field was wrong', () => {
    expect(refusal(statOf('x', TAIL.replace(' 77 ', ' 7a '))).reason).toBe("field 4 '7a' is not a decimal number");
    expect(refusal(statOf('x', TAIL.replace(/^S/, 'Q'))).reason).toBe("state 'Q' is not a process state letter");
  });
});

/**
 * A task the kernel had already released when stat was read (fs/proc/array.c
 * do_task_stat: lock_task_sighand() failed, so ppid, pgrp, session, tty_nr,
 * tpgid and num_threads keep their initial 0, -1, -1, 0, -1, 0). Seen under
 * a non-reaping pid 1 for an exiting qemu. flags 4227084 has PF_EXITING.
 */
const RELEASED = '0 -1 -1 0 -1 4227084 112 0 0 0 0 0 0 0 20 0 0 0 123456 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0';

describe('parseProcStat: a task the kernel has released (pgrp and session -1)', () => {
  it.each(['X', 'Z', 'R'])('parses it in state %s (the state letter is read before the release)', (state) => {
    expect(parseProcStat(statOf('qemu-system-x86', `${state} ${RELEASED}`, 4321))).toEqual({
      pid: 4321, comm: 'qemu-system-x86', state, ppid: 0, processGroup: -1, sessionId: -1, threads: 0, startTime: 123456n,
    });
  });

  it('still parses 0 for the leaders of a pid namespace\'s outside (a live task, not released)', () => {
    const stat = parseProcStat(statOf('x', TAIL.replace('S 77 88 99 34816 88 ', 'S 0 0 0 0 -1 ')));
    expect(stat).toMatchObject({ ppid: 0, processGroup: 0, sessionId: 0, threads: 3 });
  });

  it.each([
    ['pgrp -1 with session 0', RELEASED.replace('0 -1 -1 ', '0 -1 0 '), 'session 0'],
    ['session -1 with pgrp 0', RELEASED.replace('0 -1 -1 ', '0 0 -1 '), 'pgrp 0'],
    ['pgrp -1 in a live task\'s fields', TAIL.slice(2).replace('77 88 99 ', '77 -1 99 '), 'ppid 77'],
    ['a ppid', RELEASED.replace(/^0 /, '77 '), 'ppid 77'],
    ['a tty', RELEASED.replace('-1 -1 0 -1 ', '-1 -1 34816 -1 '), 'tty_nr 34816'],
    ['a tpgid', RELEASED.replace('-1 -1 0 -1 ', '-1 -1 0 88 '), 'tpgid 88'],
    ['threads', RELEASED.replace(' 20 0 0 0 123456 ', ' 20 0 3 0 123456 '), 'num_threads 3'],
  ])('refuses a -1 released shape with %s', (_label, tail, named) => {
    expect(refusal(statOf('x', `X ${tail}`)).reason).toContain(named);
  });

  it.each([
    ['pgrp -2', RELEASED.replace('0 -1 -1 ', '0 -2 -1 ')],
    ['session -2', RELEASED.replace('0 -1 -1 ', '0 -1 -2 ')],
    ['ppid -1', RELEASED.replace(/^0 /, '-1 ')],
    ['threads -1', RELEASED.replace(' 20 0 0 0 123456 ', ' 20 0 -1 0 123456 ')],
  ])('refuses %s', (_label, tail) => {
    expect(refusal(statOf('x', `X ${tail}`)).reason.length).toBeGreaterThan(0);
  });
});
