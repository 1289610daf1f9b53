/** docs/lease-directories.md must agree with the code: every error code with its exit status, the marker's exact text. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DiskError, DiskErrorCode, markerText, MARKER_BYTES_MAX, STUCK_CALLS_MAX_DEFAULT, GATHER_PATHS_MAX } from '../../dist/helper/disks/index.js';

const doc = readFileSync(new URL('../../docs/lease-directories.md', import.meta.url), 'utf8');
const EXIT_OF_KIND = { refused: 4, storage: 5, error: 1 };

describe('docs/lease-directories.md', () => {
  it('lists every error code with the exit status its kind gives, and nothing else', () => {
    const rows = [...doc.matchAll(/^\| `([A-Z_]+)` \| (\d) \|/gm)].map((m) => [m[1], Number(m[2])]);
    const codes = Object.values(DiskErrorCode).map((code) => [code, EXIT_OF_KIND[new DiskError(code, '/x', 'y').kind]]);
    expect(rows).toEqual(codes);
  });

  it('shows the marker exactly as it is written, and the limits the code has', () => {
    expect(doc).toContain(`\n\`\`\`\n${markerText('cluster')}\`\`\`\n`);
    expect(doc).toContain(`more than ${MARKER_BYTES_MAX} bytes`);
    expect(doc).toContain(`once ${STUCK_CALLS_MAX_DEFAULT} are outstanding`);
    expect(doc).toContain(`more than ${GATHER_PATHS_MAX} paths`);
  });
});
