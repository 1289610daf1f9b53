import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ProtocolErrorCode, SUPERVISOR_REQUEST_TYPES, HELPER_MESSAGE_TYPES, STATEMENT_KINDS } from '../../dist/protocol/index.js';

const readme = readFileSync(new URL('../../protocol/README.md', import.meta.url), 'utf8');

describe('protocol/README.md stays in step with the code', () => {
  it('documents every error code in its table', () => {
    const documented = [...readme.matchAll(/^\| `(PROTO_[A-Z_]+)` \|/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual(Object.values(ProtocolErrorCode).sort());
  });

  it('names every request type, message type and statement kind', () => {
    for (const name of [...SUPERVISOR_REQUEST_TYPES, ...HELPER_MESSAGE_TYPES, ...STATEMENT_KINDS]) expect(readme).toContain(`\`${name}\``);
  });
});
