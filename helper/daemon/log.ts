import { pino } from 'pino';

/**
 * Logging: pino JSON lines with a stable message name in `msg` (tests and
 * operators match on it) and context fields beside it. The destination is
 * asynchronous with a bounded buffer: when stdout or the log file blocks,
 * log lines are dropped (and counted) rather than delaying renewals.
 */

export interface LogFields {
  readonly msg: string;
  readonly [key: string]: unknown;
}

export interface Logger {
  debug(fields: LogFields): void;
  info(fields: LogFields): void;
  warn(fields: LogFields): void;
  error(fields: LogFields): void;
  child(bindings: Record<string, unknown>): Logger;
}

export const LOG_BUFFER_BYTES_MAX = 16 * 1024 * 1024;

export interface HelperLog {
  readonly logger: Logger;
  /** Reopens the log file (after logrotate moved it: SIGHUP). */
  reopen(): void;
  flush(): void;
}

export function createHelperLog(options: { file?: string; level?: string } = {}): HelperLog {
  const destination = pino.destination({ dest: options.file ?? 1, sync: false, minLength: 0, maxLength: LOG_BUFFER_BYTES_MAX, mkdir: options.file !== undefined });
  const logger = pino({ level: options.level ?? 'info', base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
  return {
    logger: logger as unknown as Logger,
    reopen: () => destination.reopen(),
    flush: () => destination.flushSync(),
  };
}

/** A logger that keeps every line in memory (tests) and can forward them. */
export function memoryLogger(lines: LogFields[] = [], bindings: Record<string, unknown> = {}): Logger & { lines: LogFields[] } {
  const write = (level: string) => (fields: LogFields) => void lines.push({ level, ...bindings, ...fields });
  return {
    lines,
    debug: write('debug'),
    info: write('info'),
    warn: write('warn'),
    error: write('error'),
    child: (more) => memoryLogger(lines, { ...bindings, ...more }),
  };
}
