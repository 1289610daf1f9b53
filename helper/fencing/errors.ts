/** Expected watchdog failures, with stable codes. All are start-up errors unless noted. */
export const WatchdogErrorCode = {
  /** The device does not exist. */
  missing: 'WATCHDOG_MISSING',
  /** Another process holds the device open (a watchdog device admits one opener: wdmd, another helper). */
  busy: 'WATCHDOG_BUSY',
  /** The path is neither a character device nor a FIFO (the test emulator). */
  notDevice: 'WATCHDOG_NOT_DEVICE',
  /** The device's timeout in sysfs differs from the configured fire timeout. */
  timeoutMismatch: 'WATCHDOG_TIMEOUT_MISMATCH',
  /** No /sys/class/watchdog entry for the device, or it could not be read. */
  sysfs: 'WATCHDOG_SYSFS',
  /** The path is a FIFO but no emulator has it open for reading. */
  noReader: 'WATCHDOG_NO_READER',
  /** The file opened is not the one checked in sysfs (replaced in between). */
  changed: 'WATCHDOG_CHANGED',
  /** open() failed otherwise (the message carries errno's code). */
  open: 'WATCHDOG_OPEN',
} as const;

export type WatchdogErrorCode = (typeof WatchdogErrorCode)[keyof typeof WatchdogErrorCode];

export class WatchdogError extends Error {
  override readonly name = 'WatchdogError';

  constructor(
    readonly code: WatchdogErrorCode,
    readonly device: string,
    readonly reason: string,
  ) {
    super(`watchdog ${device}: ${reason}`);
  }
}
