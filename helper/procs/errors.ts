/** Expected failures of the process-identity layer, with stable codes. */
export const ProcsErrorCode = {
  /** /proc/PID/stat text is not what the kernel writes. */
  statMalformed: 'PROCS_STAT_MALFORMED',
  /** /proc/PID/status lacks well-formed Uid:/Gid: lines. */
  statusMalformed: 'PROCS_STATUS_MALFORMED',
  /** A procfs or cgroup file could not be read for a reason other than the process being gone. */
  readFailed: 'PROCS_READ_FAILED',
  /** The pid was reused while its files were being read, again and again. */
  unstable: 'PROCS_UNSTABLE',
  /** kill(2) refused (EPERM, EINVAL). */
  signalFailed: 'PROCS_SIGNAL_FAILED',
  /** The socket is closed or not yet connected: its peer cannot be asked for. */
  peerGone: 'PROCS_PEER_GONE',
  /** getsockopt(SO_PEERCRED) failed (the message carries errno's text). */
  peerCredentials: 'PROCS_PEER_CREDENTIALS',
  /** A cgroup directory has neither cgroup.events, cgroup.procs nor tasks. */
  notCgroup: 'PROCS_NOT_CGROUP',
  /** cgroup.events text is not what the kernel writes. */
  cgroupEventsMalformed: 'PROCS_CGROUP_EVENTS_MALFORMED',
} as const;

export type ProcsErrorCode = (typeof ProcsErrorCode)[keyof typeof ProcsErrorCode];

export class ProcsError extends Error {
  override readonly name = 'ProcsError';

  constructor(
    readonly code: ProcsErrorCode,
    /** The file, pid or socket concerned. */
    readonly subject: string,
    readonly reason: string,
  ) {
    super(`${subject}: ${reason}`);
  }
}
