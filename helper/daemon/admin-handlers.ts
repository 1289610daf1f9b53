import type { AdminRequest } from '../../protocol/admin-messages.js';
import { HelperError } from './helper-error.js';
import type { HelperDaemon } from './helper-daemon.js';
import type { JoinedLockspace } from './joined-lockspace.js';
import type { Vm } from '../vms/vm.js';
import type { Clock } from '../leases/index.js';
import { absolutePathProblem } from '../config/index.js';
import { AREA_ALIGNMENT_BYTES } from '../areas/index.js';

/**
 * What each admin request does and answers. Results are plain JSON: the
 * CLI prints them as tables or, with --json, as they are.
 */

export function adminHandler(daemon: HelperDaemon, clock: Clock) {
  return async (request: AdminRequest): Promise<Record<string, unknown>> => {
    switch (request.type) {
      case 'register': {
        const derived = request.domainXml === null ? undefined : await daemon.leasesFromDomain({ request, xml: request.domainXml });
        const leases = derived?.leases ?? request.leases;
        const { vm } = await daemon.vms.register({ vm: request.vm, uid: request.uid, gid: request.gid, leases, acquire: request.acquire, libvirtDomain: request.libvirtDomain });
        const policy = derived === undefined ? null : { reasons: derived.reasons, unleasedDisks: derived.unleasedDisks, createdLeaseFiles: derived.created };
        return { vm: describeVm(daemon, vm), secretFile: vm.libvirtDomain === null ? daemon.secretPath(vm) : null, policy };
      }
      case 'unregister':
        return { vm: request.vm, ...(await daemon.vms.unregister(request.vm)) };
      case 'status':
        return status(daemon, clock);
      case 'hosts':
        return hosts(daemon, request.lockspace, clock);
      case 'add-lockspace': {
        const problem = absolutePathProblem(request.path);
        if (problem !== undefined) throw new HelperError('LOCKSPACE_PATH', 'refused', `lockspace path ${problem}`);
        if (request.offset % AREA_ALIGNMENT_BYTES !== 0) throw new HelperError('LOCKSPACE_OFFSET', 'refused', `offset ${request.offset} is not a multiple of ${AREA_ALIGNMENT_BYTES}`);
        const ls = await daemon.addLockspace({ name: request.lockspace, path: request.path, offset: request.offset });
        return describeLockspace(ls, clock.nowMs());
      }
      case 'remove-lockspace':
        await daemon.removeLockspace(request.lockspace);
        return { lockspace: request.lockspace, removed: true };
    }
  };
}

export function describeVm(daemon: HelperDaemon, vm: Vm): Record<string, unknown> {
  return {
    uuid: vm.uuid,
    uid: vm.uid,
    gid: vm.gid,
    libvirtDomain: vm.libvirtDomain,
    state: vm.state,
    supervisorPid: vm.supervisor?.pid ?? null,
    childPid: vm.child?.pid ?? null,
    lostReason: vm.lostReason ?? null,
    leases: vm.leases.map((location) => {
      const held = vm.held.find((lease) => lease.location.path === location.path && lease.location.offset === location.offset);
      return { ...location, state: held?.state ?? 'free', lver: held?.lver ?? null };
    }),
    validUntilMs: daemon.vms.validUntilMs(vm) ?? null,
  };
}

function describeLockspace(ls: JoinedLockspace, nowMs: number): Record<string, unknown> {
  return {
    name: ls.name,
    path: ls.config.path,
    offset: ls.config.offset,
    state: ls.state,
    generation: ls.generation ?? null,
    hostsMax: ls.spec.hostsMax,
    ioTimeoutMs: ls.timing.ioTimeoutMs,
    renewedAgoMs: ls.lastRenewedAtMs === undefined ? null : nowMs - ls.lastRenewedAtMs,
    validForMs: ls.validUntilMs === undefined ? null : ls.validUntilMs - nowMs,
    renewalLatenciesMs: ls.latencies.recent(),
  };
}

function status(daemon: HelperDaemon, clock: Clock): Record<string, unknown> {
  const now = clock.nowMs();
  return {
    hostId: daemon.config.hostId,
    hostName: daemon.config.hostName,
    incarnation: daemon.incarnationName,
    watchdog: daemon.config.watchdog,
    lockspaces: [...daemon.lockspaces.values()].map((ls) => describeLockspace(ls, now)),
    vms: [...daemon.vms.vms.values()].map((vm) => describeVm(daemon, vm)),
  };
}

function hosts(daemon: HelperDaemon, name: string, clock: Clock): Record<string, unknown> {
  const ls = daemon.lockspaces.get(name);
  if (!ls) throw new HelperError('LOCKSPACE_UNKNOWN', 'refused', `lockspace ${JSON.stringify(name)} is not in use on this host`);
  if (ls.state !== 'joined') throw new HelperError('LOCKSPACE_NOT_JOINED', 'error', `lockspace ${JSON.stringify(name)} is ${ls.state}`);
  const now = clock.nowMs();
  const rows = ls.hostStatuses().filter((s) => s.record !== undefined && (s.record.generation > 0 || s.record.timestampMs > 0));
  return {
    lockspace: name,
    hosts: rows.map((s) => ({
      hostId: s.hostId,
      state: s.state,
      hostName: s.record?.owner.hostName ?? null,
      generation: s.record?.generation ?? null,
      ioTimeoutMs: s.record?.ownerIoTimeoutMs ?? null,
      watchdogFireTimeoutMs: s.record?.ownerWatchdogFireTimeoutMs ?? null,
      sinceAgoMs: s.sinceMs === undefined ? null : now - s.sinceMs,
      deadInMs: s.deadAtMs === undefined ? null : Math.max(0, s.deadAtMs - now),
      self: s.hostId === daemon.config.hostId,
      problem: s.problem ?? null,
    })),
  };
}
