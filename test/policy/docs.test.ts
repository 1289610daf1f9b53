/** docs/policy.md must list exactly the rule codes the policy refuses with, and derive names as the code does. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { diskResourceName, PolicyRule } from '../../dist/policy/index.js';

const doc = readFileSync(new URL('../../docs/policy.md', import.meta.url), 'utf8');

function section(heading: string): string[] {
  const lines = doc.split('\n');
  const start = lines.indexOf(heading);
  expect(start, `heading ${heading}`).toBeGreaterThanOrEqual(0);
  const rest = lines.slice(start + 1);
  const end = rest.findIndex((line) => line.startsWith('## '));
  return end === -1 ? rest : rest.slice(0, end);
}

describe('docs/policy.md', () => {
  it('has one row per rule code in its Rules table, and no other', () => {
    const documented = section('## Rules').flatMap((line) => /^\| `(POLICY_[A-Z_]+)` \|/.exec(line)?.slice(1) ?? []);
    expect([...documented].sort()).toEqual(Object.values(PolicyRule).sort());
  });

  it('gives a resource name example the code derives', () => {
    const example = /Example: `([^`]+)` is\s+`(disk-[0-9a-f]+)`/.exec(section('## Resource names').join('\n'));
    expect(example?.slice(1)).toEqual(['file:vmstore/web-01/root.qcow2', 'disk-20e07363eb501c06a3114db70da0339f35846db7']);
    expect(diskResourceName(example?.[1] ?? '')).toBe(example?.[2]);
  });
});
