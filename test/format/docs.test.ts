/** docs/format.md must agree exactly with helper/format/layout.ts. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { areaBytes, DELTA, HEADER, HOST_BLOCK, LEADER, MAGIC, RECORD_BYTES, type SectorSize } from '../../dist/helper/format/index.js';

const doc = readFileSync(new URL('../../docs/format.md', import.meta.url), 'utf8');

/** The lines of the section that starts with `heading`, up to the next heading. */
function section(heading: string): string[] {
  const lines = doc.split('\n');
  const start = lines.findIndex((line) => line.startsWith(heading));
  expect(start, `heading ${heading}`).toBeGreaterThanOrEqual(0);
  const rest = lines.slice(start + 1);
  const end = rest.findIndex((line) => line.startsWith('#'));
  return end === -1 ? rest : rest.slice(0, end);
}

interface Row {
  offset: number;
  size: number;
  type: string;
  field: string;
}

function fieldRows(heading: string): Row[] {
  const rows: Row[] = [];
  for (const line of section(heading)) {
    const m = /^\| (\d+) \| (\d+) \| ([^|]+?) \| (`\w+`|\(unused\)) \|/.exec(line);
    if (m) rows.push({ offset: Number(m[1]), size: Number(m[2]), type: m[3]!, field: m[4]!.replaceAll('`', '') });
  }
  return rows;
}

/** Fields of a layout table in offset order, each sized up to the next offset. */
function layoutFields(table: Record<string, number>): { field: string; offset: number; size: number }[] {
  const entries = Object.entries(table).sort((a, b) => a[1] - b[1]);
  return entries.slice(0, -1).map(([field, offset], i) => ({ field, offset, size: entries[i + 1]![1] - offset }));
}

const TYPE_SIZES: Record<string, number> = { u16: 2, u32: 4, u64: 8 };

describe.each([
  ['### Common header', HEADER, HEADER.end],
  ['### Delta record', DELTA, DELTA.end],
  ['### Leader record', LEADER, LEADER.end],
  ['### Host block', HOST_BLOCK, HOST_BLOCK.end],
] as const)('docs/format.md %s table', (heading, table, end) => {
  const rows = fieldRows(heading);

  it('lists exactly the fields of layout.ts, at their offsets and sizes', () => {
    const named = rows.filter((r) => r.field !== '(unused)').map(({ field, offset, size }) => ({ field, offset, size }));
    expect(named).toEqual(layoutFields(table));
  });

  it('gives integer fields the type their size implies, and covers the record up to its end', () => {
    for (const row of rows) if (row.type in TYPE_SIZES) expect(row.size, row.field).toBe(TYPE_SIZES[row.type]);
    const unused = rows.find((r) => r.field === '(unused)');
    if (end < RECORD_BYTES && heading !== '### Common header') expect(unused).toEqual({ offset: end, size: RECORD_BYTES - end, type: '—', field: '(unused)' });
    else expect(unused).toBeUndefined();
  });
});

describe('docs/format.md tables of values', () => {
  it('magic numbers: letters, u32 value and disk bytes agree with layout.ts', () => {
    const rows = section('- Magic numbers').filter((l) => l.includes('`VML'));
    const kinds = { 'delta lease': MAGIC.delta, 'resource leader': MAGIC.leader, 'resource host block': MAGIC.hostBlock };
    expect(rows).toHaveLength(3);
    for (const row of rows) {
      const cells = row.split('|').map((c) => c.trim().replaceAll('`', ''));
      const magic = kinds[cells[1] as keyof typeof kinds];
      const bytes = Buffer.alloc(4);
      bytes.writeUInt32LE(magic);
      expect(cells[2]).toBe(bytes.toString('latin1'));
      expect(cells[3]).toBe(`0x${magic.toString(16).padStart(8, '0')}`);
      expect(cells[4]).toBe(bytes.toString('hex').replace(/(..)(?!$)/g, '$1 '));
    }
  });

  it('example sizes agree with areaBytes', () => {
    const rows = section('Example sizes').filter((l) => /^\| \d/.test(l));
    expect(rows.length).toBeGreaterThanOrEqual(4);
    for (const row of rows) {
      const cells = row.split('|').map((c) => c.trim());
      const hostsMax = Number(cells[1]);
      const sectorSize = Number(cells[2]) as SectorSize;
      const bytesOf = (cell: string): number => Number(/^([\d,]+) B/.exec(cell)![1]!.replaceAll(',', ''));
      expect(bytesOf(cells[3]!)).toBe(areaBytes('lockspace', hostsMax, sectorSize));
      expect(bytesOf(cells[4]!)).toBe(areaBytes('resource', hostsMax, sectorSize));
    }
  });
});
