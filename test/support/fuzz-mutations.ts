import type { Rng } from '../../dist/test/sim/rng.js';

/**
 * Mutations for the seeded fuzz tests of the wire decoders: byte-level
 * edits of a frame, and structural edits of its JSON tree drawn from a
 * palette of hostile values and a list of keys (known and unknown).
 */

export function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[rng.int(0, items.length - 1)]!;
}

/** Replaces, inserts, deletes or repeats a few bytes, or cuts the frame short. */
export function byteMutation(rng: Rng, bytes: Buffer): Buffer {
  const at = rng.int(0, bytes.length);
  const end = rng.int(at, Math.min(bytes.length, at + 8));
  switch (rng.int(0, 4)) {
    case 0: return Buffer.concat([bytes.subarray(0, at), Buffer.from([rng.int(0, 255)]), bytes.subarray(at + 1)]);
    case 1: return Buffer.concat([bytes.subarray(0, at), Buffer.from([rng.int(0, 255)]), bytes.subarray(at)]);
    case 2: return Buffer.concat([bytes.subarray(0, at), bytes.subarray(end)]);
    case 3: return Buffer.concat([bytes.subarray(0, end), bytes.subarray(at, end), bytes.subarray(end)]);
    default: return bytes.subarray(0, at);
  }
}

/** Replaces, adds or deletes one value somewhere inside the JSON tree. */
export function structuralMutation(rng: Rng, text: string, palette: readonly unknown[], keys: readonly string[]): string {
  const root = JSON.parse(text) as unknown;
  const nodes: (Record<string, unknown> | unknown[])[] = [];
  const collect = (v: unknown): void => {
    if (typeof v === 'object' && v !== null) {
      nodes.push(v as Record<string, unknown>);
      Object.values(v).forEach(collect);
    }
  };
  collect(root);
  const node = pick(rng, nodes);
  if (Array.isArray(node)) {
    if (node.length > 0 && rng.chance(0.5)) node.splice(rng.int(0, node.length - 1), 1);
    else node.push(structuredClone(pick(rng, palette)));
  } else {
    const present = Object.keys(node);
    const action = rng.int(0, 2);
    if (action === 0 && present.length > 0) delete node[pick(rng, present)];
    else if (action === 1 && present.length > 0) node[pick(rng, present)] = structuredClone(pick(rng, palette));
    else Object.defineProperty(node, pick(rng, keys), { value: structuredClone(pick(rng, palette)), enumerable: true, writable: true, configurable: true });
  }
  return JSON.stringify(root);
}
