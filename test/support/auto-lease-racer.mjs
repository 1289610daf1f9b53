// One "host" of the auto-lease-file race test: reads one JSON line per round
// from stdin ({ resource, startAtMs }), spins until startAtMs so that both
// racers call ensureAutoLeaseFile within a millisecond of each other, and
// writes one JSON line with the outcome. Argv: DIRECTORY LOCKSPACE.
import { createInterface } from 'node:readline';
import { ensureAutoLeaseFile } from '../../dist/helper/disks/index.js';

const [directory, lockspace] = process.argv.slice(2);
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
for await (const line of createInterface({ input: process.stdin })) {
  const { resource, startAtMs } = JSON.parse(line);
  // Busy-wait, not a timer: a timer fires up to a few milliseconds late, at a different moment in each process.
  while (Date.now() < startAtMs);
  try {
    const result = await ensureAutoLeaseFile({ directory, lockspace, resource, hostsMax: 8, sectorSize: 512, ioTimeoutMs: 10_000, stepTimeoutMs: 10_000, allowLocalFileSystem: true });
    process.stdout.write(`${JSON.stringify({ resource, path: result.path, created: result.created, lostRace: result.lostRace })}\n`);
  } catch (error) {
    process.stdout.write(`${JSON.stringify({ resource, error: `${error.code}: ${error.message}` })}\n`);
  }
}
