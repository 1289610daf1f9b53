/** docs/libvirt.md must list every libvirt error code the code has, and nothing else. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { LibvirtErrorCode } from '../../dist/cli/libvirt/libvirt-error.js';

const doc = readFileSync(new URL('../../docs/libvirt.md', import.meta.url), 'utf8');

describe('docs/libvirt.md', () => {
  it('lists every LIBVIRT_ error code, in the order of the code', () => {
    expect([...doc.matchAll(/^\| `(LIBVIRT_[A-Z_]+)` \|/gm)].map((m) => m[1])).toEqual(Object.values(LibvirtErrorCode));
  });
});
