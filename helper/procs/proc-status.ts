import { ProcsError, ProcsErrorCode } from './errors.js';

/**
 * The ids a process runs with, from the Uid: and Gid: lines of
 * /proc/PID/status ("Uid:\treal\teffective\tsaved\tfilesystem"). The kernel
 * escapes the Name: line (a newline in a name shows as '\n'), so a process
 * cannot forge these lines.
 */
export interface ProcIds {
  readonly real: number;
  readonly effective: number;
  readonly saved: number;
  readonly filesystem: number;
}

export interface ProcStatusIds {
  readonly uid: ProcIds;
  readonly gid: ProcIds;
}

/**
 * Bytes of status read: Uid: and Gid: come in its first lines (about 200
 * bytes in); the Groups: line after them can be 450 KB long, so only a prefix
 * is read and parsed.
 */
export const PROC_STATUS_PREFIX_BYTES = 4096;

const ID_LINE = /^(Uid|Gid):\t(0|[1-9][0-9]{0,9})\t(0|[1-9][0-9]{0,9})\t(0|[1-9][0-9]{0,9})\t(0|[1-9][0-9]{0,9})$/;
/** The kernel's (uid_t)-1 is "no id"; a real process never has it. */
const ID_MAX = 0xfffffffe;

function malformed(reason: string): ProcsError {
  return new ProcsError(ProcsErrorCode.statusMalformed, 'status', reason);
}

/**
 * Parses the Uid: and Gid: lines of a prefix of /proc/PID/status. Only
 * complete lines (ending in '\n') count; each of the two must appear exactly
 * once and be well formed, or the text is refused.
 */
export function parseProcStatusIds(text: string): ProcStatusIds {
  const lastNewline = text.lastIndexOf('\n');
  const lines = lastNewline < 0 ? [] : text.slice(0, lastNewline).split('\n');
  const found: { Uid?: ProcIds; Gid?: ProcIds } = {};
  for (const line of lines) {
    if (!line.startsWith('Uid:') && !line.startsWith('Gid:')) continue;
    const match = ID_LINE.exec(line);
    if (!match) throw malformed(`bad line '${line.slice(0, 80)}'`);
    const key = match[1] as 'Uid' | 'Gid';
    if (found[key] !== undefined) throw malformed(`two ${key}: lines`);
    const values = match.slice(2, 6).map(Number);
    if (values.some((v) => v > ID_MAX)) throw malformed(`${key}: value out of range in '${line}'`);
    const [real, effective, saved, filesystem] = values as [number, number, number, number];
    found[key] = { real, effective, saved, filesystem };
  }
  if (found.Uid === undefined) throw malformed('no complete Uid: line');
  if (found.Gid === undefined) throw malformed('no complete Gid: line');
  return { uid: found.Uid, gid: found.Gid };
}
