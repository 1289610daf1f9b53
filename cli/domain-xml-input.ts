import { closeSync, openSync, readSync } from 'node:fs';
import { DOMAIN_XML_BYTES_MAX } from '../protocol/admin-messages.js';
import { UsageError } from './exit-status.js';

/**
 * Reads `--domain-xml FILE|-`: a file, or standard input for `-` (libvirt's
 * hook hands the domain XML on stdin). At most DOMAIN_XML_BYTES_MAX bytes,
 * UTF-8; anything larger is refused rather than cut.
 */
export function readDomainXml(source: string): string {
  let fd: number;
  try {
    fd = source === '-' ? 0 : openSync(source, 'r');
  } catch (error) {
    throw new UsageError(`--domain-xml ${source}: ${(error as Error).message}`);
  }
  try {
    const buffer = Buffer.alloc(DOMAIN_XML_BYTES_MAX + 1);
    let length = 0;
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buffer, length, buffer.length - length, null);
      } catch (error) {
        // A non-blocking stdin (a terminal or a pipe libuv set O_NONBLOCK on) may say "try again".
        if ((error as NodeJS.ErrnoException).code === 'EAGAIN') continue;
        throw new UsageError(`--domain-xml ${source}: ${(error as Error).message}`);
      }
      if (n === 0) break;
      length += n;
      if (length > DOMAIN_XML_BYTES_MAX) throw new UsageError(`--domain-xml ${source}: more than ${DOMAIN_XML_BYTES_MAX} bytes`);
    }
    if (length === 0) throw new UsageError(`--domain-xml ${source}: empty`);
    const text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
    try {
      return text.decode(buffer.subarray(0, length));
    } catch {
      throw new UsageError(`--domain-xml ${source}: not UTF-8 text`);
    }
  } finally {
    if (source !== '-') closeSync(fd);
  }
}
