import { describe, expect, it } from 'vitest';
import type { JoinedLockspace } from '../../dist/helper/daemon/joined-lockspace.js';
import { memoryLogger } from '../../dist/helper/daemon/log.js';
import { deriveFenceTiming, deriveTiming } from '../../dist/helper/engine/timing.js';
import type { HostLease } from '../../dist/helper/vms/host-lease.js';
import { Vm, type VmSessionLink } from '../../dist/helper/vms/vm.js';
import { VmService, type VmServiceDeps } from '../../dist/helper/vms/vm-service.js';
import { ManualClock } from '../support/manual-clock.js';
import { advance, FakeControl } from './support.js';

describe('deriveFenceTiming', () => {
  it.each([1, 7, 100, 10_000, 600_000])('with N = %i ms: supervisor deadline and SIGTERM at 6N, SIGKILL at 7N, fail at 8N', (n) => {
    const timing = deriveTiming(n, 60_000);
    const fence = deriveFenceTiming(timing);
    expect(fence).toEqual({ supervisorValidForMs: 6 * n, sigtermAfterMs: 6 * n, sigkillAfterMs: 7 * n, failMs: 8 * n });
    expect(fence.failMs).toBe(timing.failMs);
    // Every layer acts before fail, in order, and two whole failed renewal intervals stop nothing.
    expect(fence.supervisorValidForMs).toBeLessThanOrEqual(fence.sigtermAfterMs);
    expect(fence.sigtermAfterMs).toBeLessThan(fence.sigkillAfterMs);
    expect(fence.sigkillAfterMs).toBeLessThan(fence.failMs);
    expect(fence.supervisorValidForMs).toBeGreaterThan(2 * timing.renewIntervalMs);
    // The last watchdog pet comes no later than fail minus the pet interval, which is after SIGKILL.
    expect(timing.failMs - timing.watchdogPetIntervalMs).toBeGreaterThanOrEqual(fence.sigkillAfterMs);
  });
});

describe('Vm.aliveProcesses', () => {
  function fixture() {
    const control = new FakeControl({ nowMs: () => 0 });
    control.spawn({ pid: 100, uid: 107, sessionId: 100, startTime: '1' }); // supervisor
    control.spawn({ pid: 101, uid: 107, sessionId: 101, startTime: '2' }); // child, in a session of its own
    control.spawn({ pid: 102, uid: 107, sessionId: 100, startTime: '3' }); // in the supervisor's session
    control.spawn({ pid: 103, uid: 107, sessionId: 101, startTime: '4' }); // in the child's session
    control.spawn({ pid: 104, uid: 107, sessionId: 101, startTime: '5', zombie: true });
    control.spawn({ pid: 105, uid: 108, sessionId: 100, startTime: '6' }); // another uid
    control.spawn({ pid: 106, uid: 107, sessionId: 999, startTime: '7' }); // another session
    const vm = new Vm('vm-1', 107, 107, []);
    vm.supervisor = { pid: 100, startTime: '1', uid: 107, sessionId: 100 };
    vm.child = { pid: 101, startTime: '2', uid: 107, sessionId: 101 };
    return { control, vm };
  }

  const pids = (vm: Vm, control: FakeControl) => vm.aliveProcesses(control).map((p) => p.pid).sort((a, b) => a - b);

  it('is the supervisor, the child and the processes of both sessions with the VM uid, without zombies', () => {
    const { control, vm } = fixture();
    expect(pids(vm, control)).toEqual([100, 101, 102, 103]);
    expect(vm.aliveProcesses(control).find((p) => p.pid === 101)).toEqual({ pid: 101, startTime: '2', uid: 107 });
  });

  it('keeps the sessions of a dead supervisor and child, and drops a recorded pid reused by another process', () => {
    const { control, vm } = fixture();
    control.exit(100);
    control.exit(101);
    control.spawn({ pid: 101, uid: 107, sessionId: 555, startTime: '99' });
    expect(pids(vm, control)).toEqual([102, 103]);
  });

  it('is empty with nothing recorded', () => {
    const { control } = fixture();
    expect(new Vm('vm-2', 107, 107, []).aliveProcesses(control)).toEqual([]);
  });
});

/**
 * VmService's fencing with a fake lockspace and fake leases: JoinedLockspace
 * needs real storage to be constructed, but fencing reads only its name,
 * state, timing and last renewal time, and HostLease only its state, users,
 * release() and voidLease().
 */
describe('VmService fencing', () => {
  const N = 100;

  function setup(childBehaviour: 'dies' | 'ignores-term' | 'unkillable' = 'dies') {
    const clock = new ManualClock(0);
    const control = new FakeControl(clock);
    const log = memoryLogger();
    const lockspace = { name: 'cluster', state: 'joined', timing: deriveTiming(N, 600), lastRenewedAtMs: 0 as number | undefined };
    const events: string[] = [];
    const lease = {
      key: 'area-1@0',
      label: 'cluster:disk-1',
      location: { lockspace: 'cluster', resource: 'disk-1', path: '/srv/leases/disk-1', offset: 0, mode: 'exclusive' },
      lockspace,
      state: 'held',
      lver: 3,
      mode: 'exclusive',
      users: new Set<string>(['vm-1']),
      async release() {
        events.push(`release@${clock.nowMs()}`);
        this.state = 'free';
      },
      voidLease() {
        events.push(`void@${clock.nowMs()}`);
        this.state = 'void';
      },
      stop() {},
    };
    let persisted = 0;
    const deps = {
      hostId: 1,
      lockspace: (name: string) => (name === 'cluster' ? lockspace : undefined),
      leaseRoots: () => ['/srv/leases'],
      pool: {},
      clock,
      wallClockMs: () => 1_700_000_000_000,
      log,
      control,
      ballotFloor: () => ({}),
      writeSecret: () => undefined,
      removeSecret: () => undefined,
      randomBytes: (n: number) => Buffer.alloc(n),
      persist: () => void persisted++,
    } as unknown as VmServiceDeps;
    const service = new VmService(deps);
    const session: VmSessionLink = {
      sessionId: 's-1',
      sendValidUntil: (until) => void events.push(`validUntil ${until}@${clock.nowMs()}`),
      sendLost: (reason) => void events.push(`lost@${clock.nowMs()}: ${reason}`),
      close: (code) => void events.push(`close ${code}@${clock.nowMs()}`),
    };
    control.spawn({ pid: 100, uid: 107, sessionId: 100, startTime: '1' });
    control.spawn({ pid: 101, uid: 107, sessionId: 100, startTime: '2', behaviour: childBehaviour });
    const vm = new Vm('vm-1', 107, 107, [lease.location as Vm['leases'][number]]);
    vm.held.push(lease as unknown as HostLease);
    vm.state = 'running';
    vm.supervisor = { pid: 100, startTime: '1', uid: 107, sessionId: 100 };
    vm.child = { pid: 101, startTime: '2', uid: 107, sessionId: 100 };
    vm.session = session;
    service.vms.set(vm.uuid, vm);
    service.leases.set(lease.key, lease as unknown as HostLease);
    const ls = lockspace as unknown as JoinedLockspace;
    const renew = (atMs: number) => {
      lockspace.lastRenewedAtMs = atMs;
      service.onRenewed(ls);
    };
    return { clock, control, log, lockspace, ls, lease, events, service, vm, renew, persisted: () => persisted };
  }

  it('tells the supervisor T + 6N after each renewal', () => {
    const { service, vm, events, renew, clock } = setup();
    renew(0);
    clock.advance(150);
    renew(140);
    expect(events).toEqual(['validUntil 600@0', 'validUntil 740@150']);
    expect(service.validUntilMs(vm)).toBe(740);
    service.stopTimers();
  });

  it('stops nothing while renewals keep coming, even after two missed intervals', async () => {
    const { clock, control, renew, service, vm } = setup();
    renew(0);
    await advance(clock, 4 * N + 50);
    renew(4 * N + 50); // two whole renewal intervals (2N each) failed before this one
    await advance(clock, 6 * N - 1);
    expect(control.signals).toEqual([]);
    expect(vm.state).toBe('running');
    // Without another renewal, fencing starts at exactly this T + 6N.
    await advance(clock, 1);
    expect(control.delivered()).toEqual([`SIGTERM 100@${10 * N + 50}`, `SIGTERM 101@${10 * N + 50}`]);
    service.stopTimers();
  });

  it('when renewals stop: lost to the supervisor and SIGTERM at T+6N, SIGKILL at T+7N, all gone and released before fail (T+8N)', async () => {
    const { clock, control, events, renew, vm, log, lease } = setup('ignores-term');
    clock.advance(1_000);
    renew(1_000); // T
    await advance(clock, 6 * N - 1);
    expect(control.signals).toEqual([]);
    await advance(clock, 1);
    expect(control.delivered()).toEqual(['SIGTERM 100@1600', 'SIGTERM 101@1600']);
    expect(vm.state).toBe('fencing');
    await advance(clock, N);
    expect(control.delivered()).toEqual(['SIGTERM 100@1600', 'SIGTERM 101@1600', 'SIGKILL 101@1700']);
    await advance(clock, N);
    expect(events).toEqual([
      'validUntil 1600@1000',
      'lost@1600: lockspace cluster not renewed for 600 ms',
      'close LEASE_LOST@1750',
      'release@1750',
    ]);
    expect(Number(events.at(-1)!.split('@')[1])).toBeLessThan(1_000 + 8 * N);
    expect(vm.state).toBe('registered');
    expect(vm.held).toEqual([]);
    expect(vm.child).toBeUndefined();
    expect(lease.users.size).toBe(0);
    expect(log.lines.filter((l) => l.msg.startsWith('vm.')).map((l) => l.msg)).toEqual(['vm.fencing', 'vm.fenced']);
  });

  it('does not fence on a stale timer when the lockspace renewed without the event', async () => {
    const { clock, control, lockspace, renew, service } = setup();
    renew(0);
    await advance(clock, 300);
    lockspace.lastRenewedAtMs = 300; // renewed, the event not yet delivered
    await advance(clock, 400);
    expect(control.signals).toEqual([]);
    service.stopTimers();
  });

  it('when the lockspace is lost: voids the leases, fences at once, and never releases a void lease', async () => {
    const { clock, control, events, renew, service, ls, vm, lease } = setup('ignores-term');
    renew(0);
    await advance(clock, 250);
    service.onLost(ls, 'record taken by host-b');
    await advance(clock, 0);
    expect(control.delivered()).toEqual(['SIGTERM 100@250', 'SIGTERM 101@250']);
    await advance(clock, 2 * N);
    // SIGKILL no later than T+7N, and at most N after fencing began.
    expect(control.delivered()).toEqual(['SIGTERM 100@250', 'SIGTERM 101@250', 'SIGKILL 101@350']);
    expect(events).toEqual(['validUntil 600@0', 'lost@250: lockspace cluster lost: record taken by host-b', 'void@250', 'close LEASE_LOST@400']);
    expect(events.some((e) => e.startsWith('release'))).toBe(false);
    expect(vm.held).toEqual([]);
    expect(lease.users.size).toBe(0);
    expect(vm.state).toBe('registered');
    service.stopTimers();
  });

  it('keeps the leases held while a process survives SIGKILL (D state)', async () => {
    const { clock, control, events, renew, vm, log } = setup('unkillable');
    renew(0);
    await advance(clock, 8 * N + 16_000, 10);
    expect(control.delivered()).toEqual(['SIGTERM 100@600', 'SIGTERM 101@600', 'SIGKILL 101@700']);
    expect(events.some((e) => e.startsWith('release'))).toBe(false);
    expect(vm.state).toBe('fencing');
    expect(vm.held).toHaveLength(1);
    expect(log.lines.filter((l) => l.msg === 'vm.fence-incomplete').map((l) => l.alive)).toEqual([[101]]);
  });
  it('keeps the leases held, without throwing, while /proc cannot be read (a stat that does not parse), and fences once it can', async () => {
    const { clock, control, events, renew, vm, log } = setup('ignores-term');
    renew(0);
    control.unreadable = 'pgrp -1';
    // Fencing starts at T+6N; every scan fails until well past fail (T+8N): nothing is signalled, nothing released.
    await advance(clock, 8 * N + 16_000, 10);
    expect(control.signals).toEqual([]);
    expect(events.some((e) => e.startsWith('release'))).toBe(false);
    expect(vm.state).toBe('fencing');
    expect(vm.held).toHaveLength(1);
    expect(log.lines.filter((l) => l.msg === 'vm.fence-incomplete').map((l) => l.unreadable)).toEqual(['/proc/4321/stat: pgrp -1']);
  });
});

describe('VmService: a VM without a session', () => {
  const N = 100;

  function setup(withSupervisor: boolean) {
    const clock = new ManualClock(0);
    const control = new FakeControl(clock);
    const events: string[] = [];
    const lockspace = { name: 'cluster', state: 'joined', timing: deriveTiming(N, 600), lastRenewedAtMs: 0 as number | undefined };
    const lease = {
      key: 'area-1@0',
      label: 'cluster:disk-1',
      location: { lockspace: 'cluster', resource: 'disk-1', path: '/srv/leases/disk-1', offset: 0, mode: 'exclusive' },
      lockspace,
      state: 'held',
      lver: 3,
      mode: 'exclusive',
      users: new Set<string>(['vm-1']),
      async release() {
        events.push(`release@${clock.nowMs()}`);
        this.state = 'free';
      },
      voidLease() {},
      stop() {},
    };
    const deps = { hostId: 1, lockspace: () => lockspace, clock, log: memoryLogger(), control, persist: () => undefined } as unknown as VmServiceDeps;
    const service = new VmService(deps);
    control.spawn({ pid: 100, uid: 107, sessionId: 100, startTime: '1' });
    control.spawn({ pid: 101, uid: 107, sessionId: 101, startTime: '2' });
    const vm = new Vm('vm-1', 107, 107, [lease.location as Vm['leases'][number]]);
    vm.held.push(lease as unknown as HostLease);
    vm.state = withSupervisor ? 'running' : 'holding';
    if (withSupervisor) {
      vm.supervisor = { pid: 100, startTime: '1', uid: 107, sessionId: 100 };
      vm.child = { pid: 101, startTime: '2', uid: 107, sessionId: 101 };
    }
    service.vms.set(vm.uuid, vm);
    const renew = (atMs: number) => {
      lockspace.lastRenewedAtMs = atMs;
      service.onRenewed(lockspace as unknown as JoinedLockspace);
    };
    return { clock, control, events, service, vm, renew };
  }

  it('keeps the lease while the processes of a VM whose supervisor left still run, and releases it once the kernel shows them gone', async () => {
    const { clock, control, events, service, vm, renew } = setup(true);
    renew(0);
    await advance(clock, 1);
    expect(events).toEqual([]);
    control.exit(101);
    control.exit(100);
    await advance(clock, 2 * N - 1);
    renew(2 * N);
    await advance(clock, 1);
    expect(events).toEqual([`release@${2 * N}`]);
    expect(vm.held).toEqual([]);
    expect(control.signals).toEqual([]);
    service.stopTimers();
  });

  it('never releases the leases of a VM whose supervisor has not bound yet (the start hook acquired them)', async () => {
    const { clock, events, service, vm, renew } = setup(false);
    renew(0);
    renew(2 * N);
    await advance(clock, 1);
    expect(events).toEqual([]);
    expect(vm.held.map((l) => l.state)).toEqual(['held']);
    service.stopTimers();
  });
  it('does not throw from a renewal, and keeps the lease, while /proc cannot be read', async () => {
    const { clock, control, events, service, vm, renew } = setup(true);
    renew(0);
    control.exit(101);
    control.exit(100);
    control.unreadable = 'pgrp -1';
    expect(() => renew(2 * N)).not.toThrow();
    await advance(clock, 1);
    expect(events).toEqual([]);
    expect(vm.held.map((l) => l.state)).toEqual(['held']);
    control.unreadable = undefined;
    await advance(clock, 2 * N - 1);
    renew(4 * N);
    await advance(clock, 1);
    expect(events).toEqual([`release@${2 * N}`]);
    service.stopTimers();
  });
});
