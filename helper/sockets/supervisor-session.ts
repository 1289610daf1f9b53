import { AssertionError } from 'node:assert';
import type { WebSocket } from 'ws';
import { encodeHelperMessage, type HelperMessage, type Holder, type ReplyResult } from '../../protocol/helper-messages.js';
import { signStatement, type IncarnationKey } from '../../protocol/incarnation-key.js';
import { ProtocolError } from '../../protocol/errors.js';
import { RequestSequence } from '../../protocol/request-sequence.js';
import type { GrantedStatement, Signed } from '../../protocol/statements.js';
import { parseSupervisorRequest, type SupervisorRequest, type SupervisorRequestType } from '../../protocol/supervisor-requests.js';
import { asHelperError, HelperError } from '../daemon/helper-error.js';
import type { Logger } from '../daemon/log.js';
import type { Vm, VmSessionLink } from '../vms/vm.js';
import type { VmService } from '../vms/vm-service.js';
import type { VmProcessControl } from '../vms/vm-processes.js';
import { RateLimit } from './rate-limit.js';
import type { PeerCredentials } from './unix-ws-server.js';

/**
 * One supervisor's session (OpenSSH's monitor): the peer is who the kernel
 * says it is; it names only its VM, never a path, offset or host id; each
 * request is allowed only in the states of the one table below, and the
 * session remembers what it holds. A protocol violation ends the session
 * (goodbye with the code, then close) and sends the VM down the normal
 * fence-then-release path; the daemon serves on.
 */

export type SessionState = 'connected' | 'greeted' | 'bound' | 'holding' | 'running' | 'closed';

/** The one request table: which request is allowed in which session state. */
export const REQUEST_TABLE: Readonly<Record<SupervisorRequestType, readonly SessionState[]>> = {
  hello: ['connected'],
  bind: ['greeted'],
  acquire: ['bound'],
  claim: ['bound'],
  // Again while running: a supervisor reconnecting after a helper restart reports its child once more.
  'report-child': ['holding', 'running'],
  release: ['holding', 'running'],
  inquire: ['bound', 'holding', 'running'],
};

export const SUPERVISOR_MESSAGES_PER_SECOND = 20;
export const SUPERVISOR_MESSAGES_BURST = 40;

export interface SessionContext {
  readonly vms: VmService;
  readonly control: VmProcessControl;
  readonly key: IncarnationKey;
  readonly log: Logger;
  nowMs(): number;
  newSessionId(): string;
  /** The helper is exiting: sessions close because of that, not because a supervisor went away. */
  stopping(): boolean;
  /** The peer greeted in time, or the session is closed. */
  readonly handshakeTimeoutMs: number;
}

export class SupervisorSession implements VmSessionLink {
  state: SessionState = 'connected';
  readonly sessionId: string;
  private readonly requests = new RequestSequence();
  private readonly limit: RateLimit;
  private statementSeq = 0;
  private vm: Vm | undefined;
  private readonly log: Logger;
  private queue: Promise<void> = Promise.resolve();
  private readonly helloTimer: NodeJS.Timeout;

  constructor(
    private readonly ws: WebSocket,
    private readonly peer: PeerCredentials,
    private readonly context: SessionContext,
  ) {
    this.sessionId = context.newSessionId();
    this.log = context.log.child({ session: this.sessionId, peerPid: peer.pid, peerUid: peer.uid });
    this.limit = new RateLimit(SUPERVISOR_MESSAGES_PER_SECOND, SUPERVISOR_MESSAGES_BURST, context.nowMs());
    this.helloTimer = setTimeout(() => this.end('SESSION_HANDSHAKE_TIMEOUT', `no hello within ${context.handshakeTimeoutMs} ms`), context.handshakeTimeoutMs);
    ws.on('message', (data, isBinary) => this.onMessage(data as Buffer, isBinary));
    ws.on('close', () => this.onClosed());
    ws.on('error', (error) => this.log.warn({ msg: 'session.socket-error', reason: error.message }));
    this.log.info({ msg: 'session.connected' });
  }

  // ---- VmSessionLink: what the helper tells the supervisor ----

  sendValidUntil(validUntilMs: number): void {
    if (!this.vm || this.state === 'closed') return;
    this.send({ type: 'statement', statement: this.sign({ kind: 'valid-until', vm: this.vm.uuid, validUntilMs }) });
  }

  sendLost(reason: string): void {
    if (!this.vm || this.state === 'closed') return;
    this.send({ type: 'statement', statement: this.sign({ kind: 'lost', vm: this.vm.uuid, reason: reason.slice(0, 1000) }) });
  }

  close(code: string, reason: string): void {
    this.end(code, reason, false);
  }

  // ---- requests ----

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (this.state === 'closed') return;
    if (!this.limit.take(this.context.nowMs())) return this.end('SESSION_RATE', 'too many messages');
    let request: SupervisorRequest;
    try {
      request = parseSupervisorRequest(data, isBinary);
      this.requests.accept(request.seq);
    } catch (error) {
      if (error instanceof ProtocolError) return this.end(error.code, error.reason);
      throw error;
    }
    // One request at a time, in order: a slow acquire delays this session only.
    this.queue = this.queue.then(() => this.serve(request));
  }

  private async serve(request: SupervisorRequest): Promise<void> {
    if (this.state === 'closed') return;
    // Judged in the state the requests before it left, not the one it arrived in: a request
    // pipelined behind another (report-child behind release) must not run in a state it is not allowed in.
    if (!REQUEST_TABLE[request.type].includes(this.state)) return this.end('SESSION_BAD_STATE', `${request.type} is not allowed while ${this.state}`);
    try {
      if (request.type === 'hello') return this.hello(request.nonce);
      const result = await this.handle(request);
      this.send({ type: 'reply', seq: request.seq, ok: true, result });
    } catch (thrown) {
      if (thrown instanceof AssertionError) throw thrown;
      const error = asHelperError(thrown);
      if (!(error instanceof HelperError)) {
        this.log.error({ msg: 'session.request-crashed', type: request.type, reason: (error as Error).stack ?? String(error) });
        return this.end('INTERNAL', 'internal error');
      }
      const holder = error.details.holder as Holder | undefined;
      this.send({ type: 'reply', seq: request.seq, ok: false, error: { code: error.code, message: error.message.slice(0, 1000), ...(holder ? { holder } : {}) } });
      // Identity failures end the session: a peer claiming another VM gets no second try here.
      if (error.code.startsWith('IDENTITY_') || error.code === 'SESSION_BAD_SECRET') this.end(error.code, error.message);
    }
  }

  private hello(nonce: string): void {
    clearTimeout(this.helloTimer);
    const body = { kind: 'welcome' as const, incarnation: this.context.key.incarnation, sessionId: this.sessionId, statementSeq: 0 as const, nonce, peerPid: this.peer.pid, peerUid: this.peer.uid, peerGid: this.peer.gid };
    this.send({ type: 'welcome', statement: signStatement(this.context.key, body) });
    this.state = 'greeted';
  }

  private async handle(request: Exclude<SupervisorRequest, { type: 'hello' }>): Promise<ReplyResult> {
    switch (request.type) {
      case 'bind':
        return this.bind(request.vm, request.secret);
      case 'acquire':
        await this.context.vms.acquireLeases(this.boundVm());
        return this.granted();
      case 'claim':
        if (!this.boundVm().holdsLeases) throw new HelperError('LEASES_NOT_HELD', 'error', `VM ${this.boundVm().uuid} holds no leases to claim (register --acquire first, or send acquire)`);
        return this.granted();
      case 'report-child':
        this.reportChild(request.pid, request.startTime);
        return {};
      case 'release':
        await this.release();
        return {};
      case 'inquire':
        return { statement: this.boundVm().holdsLeases && this.state !== 'bound' ? this.grantedStatement() : null };
    }
  }

  private bind(uuid: string, secret: string | undefined): ReplyResult {
    const vm = this.context.vms.vmOf(uuid);
    if (vm.uid !== this.peer.uid) throw new HelperError('IDENTITY_UID', 'refused', `VM ${uuid} runs as uid ${vm.uid}, this peer is uid ${this.peer.uid}`);
    const process = this.context.control.describe(this.peer.pid);
    if (!process || process.uid !== vm.uid) throw new HelperError('IDENTITY_PROCESS', 'refused', `peer pid ${this.peer.pid} is not a live process of uid ${vm.uid}`);
    const me = { pid: this.peer.pid, startTime: process.startTime, uid: process.uid, sessionId: process.sessionId };
    const known = vm.supervisor;
    const returning = known !== undefined && known.pid === me.pid && known.startTime === me.startTime;
    if (!returning) {
      if (known !== undefined && this.context.control.describe(known.pid)?.startTime === known.startTime) {
        throw new HelperError('IDENTITY_OTHER_SUPERVISOR', 'refused', `VM ${uuid} is bound to supervisor pid ${known.pid}, which still runs`);
      }
      if (vm.libvirtDomain !== null) {
        // libvirt recorded this pid for the domain before it exec'd the emulator (our shim).
        this.context.vms.checkLibvirtPid(vm, this.peer.pid);
      } else {
        if (secret === undefined) throw new HelperError('SESSION_BAD_SECRET', 'refused', `VM ${uuid}: bind needs the one-time secret the helper issued at register`);
        this.context.vms.useSecret(vm, Buffer.from(secret, 'base64url'));
      }
    }
    if (vm.session && vm.session !== this) vm.session.close('SESSION_REPLACED', 'the same supervisor bound again');
    vm.supervisor = me;
    vm.session = this;
    this.vm = vm;
    this.state = 'bound';
    this.log.info({ msg: 'session.bound', vm: uuid, returning });
    return { vm: uuid };
  }

  private granted(): ReplyResult {
    // A supervisor coming back after a helper restart claims leases whose child is already known.
    this.state = this.boundVm().child ? 'running' : 'holding';
    return { statement: this.grantedStatement() };
  }

  private grantedStatement(): Signed {
    const vm = this.boundVm();
    const validUntilMs = this.context.vms.validUntilMs(vm);
    if (validUntilMs === undefined) throw new HelperError('LEASES_NOT_VALID', 'error', `VM ${vm.uuid}: its lockspace is not renewed`);
    const leases = vm.held.map((lease) => ({ lockspace: lease.location.lockspace, resource: lease.location.resource, mode: lease.mode ?? 'exclusive', lver: lease.lver ?? 0 }));
    return this.sign({ kind: 'granted', vm: vm.uuid, leases, validUntilMs } satisfies Omit<GrantedStatement, 'incarnation' | 'sessionId' | 'statementSeq'>);
  }

  private reportChild(pid: number, startTime: string): void {
    const vm = this.boundVm();
    if (vm.child && (vm.child.pid !== pid || vm.child.startTime !== startTime)) {
      throw new HelperError('IDENTITY_CHILD_CHANGED', 'refused', `VM ${vm.uuid} already runs child ${vm.child.pid}; a second child is not accepted`);
    }
    const child = this.context.control.describe(pid);
    if (!child || child.startTime !== startTime) throw new HelperError('IDENTITY_CHILD_GONE', 'refused', `pid ${pid} with start time ${startTime} is not running`);
    if (child.ppid !== this.peer.pid) throw new HelperError('IDENTITY_CHILD_PARENT', 'refused', `pid ${pid} is not a child of the supervisor (its parent is ${child.ppid})`);
    if (child.uid !== vm.uid || child.uid === 0) throw new HelperError('IDENTITY_CHILD_UID', 'refused', `pid ${pid} runs as uid ${child.uid}, not the VM's uid ${vm.uid}`);
    // A setuid program the supervisor started keeps the VM's real uid but runs as root: not the VM.
    if (child.euid !== vm.uid) throw new HelperError('IDENTITY_CHILD_UID', 'refused', `pid ${pid} runs with effective uid ${child.euid}, not the VM's uid ${vm.uid}`);
    // The child's session is how the helper finds everything the VM started; it must be its own.
    if (child.sessionId !== pid) throw new HelperError('IDENTITY_CHILD_SESSION', 'refused', `pid ${pid} does not lead its own session (session ${child.sessionId}); start it with setsid`);
    vm.child = { pid, startTime, uid: child.uid, sessionId: child.sessionId };
    vm.state = 'running';
    this.state = 'running';
    this.context.vms.recordChange();
    this.log.info({ msg: 'session.child', vm: vm.uuid, pid });
  }

  private async release(): Promise<void> {
    const vm = this.boundVm();
    const alive = vm.aliveProcesses(this.context.control).filter((p) => p.pid !== this.peer.pid);
    if (alive.length > 0) throw new HelperError('VM_PROCESSES_ALIVE', 'error', `VM ${vm.uuid}: processes ${alive.map((p) => p.pid).join(', ')} still run; release after they are gone`);
    await this.context.vms.releaseLeases(vm);
    this.state = 'bound';
  }

  private boundVm(): Vm {
    if (!this.vm || this.context.vms.vms.get(this.vm.uuid) !== this.vm) throw new HelperError('VM_UNKNOWN', 'refused', 'this session\'s VM is no longer registered');
    return this.vm;
  }

  private sign<B extends { kind: 'granted' | 'valid-until' | 'lost' }>(body: B): Signed {
    this.statementSeq += 1;
    return signStatement(this.context.key, { ...body, incarnation: this.context.key.incarnation, sessionId: this.sessionId, statementSeq: this.statementSeq } as never);
  }

  private send(message: HelperMessage): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(encodeHelperMessage(message));
  }

  private end(code: string, reason: string, misbehaved = true): void {
    if (this.state === 'closed') return;
    clearTimeout(this.helloTimer);
    if (misbehaved) this.log.warn({ msg: 'session.ended', code, reason });
    this.send({ type: 'goodbye', code, reason: reason.slice(0, 1000) });
    this.ws.close(1000);
    this.onClosed();
  }

  /** A closed socket proves nothing about the VM: holding leases, it goes down the fence-then-release path. */
  private onClosed(): void {
    if (this.state === 'closed') return;
    const wasHolding = this.state === 'holding' || this.state === 'running';
    this.state = 'closed';
    clearTimeout(this.helloTimer);
    const vm = this.vm;
    if (!vm || vm.session !== this) return;
    vm.session = undefined;
    this.log.info({ msg: 'session.closed', vm: vm.uuid, holding: wasHolding });
    if (wasHolding && vm.holdsLeases && !this.context.stopping()) void this.context.vms.stopAndRelease(vm, 'the supervisor session closed while holding leases');
  }
}
