/**
 * Property: the coded symbols that two open-objects digests keep (PROTOCOL.md §7.3.1), peeled
 * with the symbols a `riblt` run would ask for (64, then four times as many, up to 1,024), give
 * exactly the symmetric difference of the two sets of `(reference_id, head)` pairs, or nothing
 * (the run then lists). Random pairs: empty, equal, disjoint, one changed head, and mixed.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  createOpenObjectsDigest,
  openObjectKey,
  openObjectsSketchOf,
} from '../../src/protocol/heartbeat-frames.js';
import {
  CodedSymbols,
  decodeSymbolsInto,
  encodeSymbols,
  type ItemKey,
  peel,
  refHash,
  SKETCH_SYMBOLS,
} from '../../src/protocol/riblt.js';

type Pairs = Map<string, string>;

/** Symmetric difference decoded through the wire encoding, at the sizes a run asks for; undefined: fallback. */
function reconcile(a: Pairs, b: Pairs): { mine: ItemKey[]; theirs: ItemKey[] } | undefined {
  const da = createOpenObjectsDigest();
  const db = createOpenObjectsDigest();
  for (const [ref, head] of a) da.add(ref, head);
  for (const [ref, head] of b) db.add(ref, head);
  const mine = openObjectsSketchOf(da.summary())!.symbols;
  const sent = openObjectsSketchOf(db.summary())!.symbols;
  const theirs = new CodedSymbols(SKETCH_SYMBOLS);
  let m = 0;
  for (const to of [64, 256, 1024]) {
    m += decodeSymbolsInto(encodeSymbols(sent, m, to), theirs, m);
    const peeled = peel(mine, theirs, m);
    if (peeled.decoded) return peeled.decoded;
  }
  return undefined;
}

const keyOf = (ref: string, head: string): string => {
  const k = openObjectKey(ref, head);
  return `${k.hi}:${k.lo}`;
};
const keysOf = (keys: ItemKey[]): string[] => keys.map((k) => `${k.hi}:${k.lo}`).sort();
const minus = (x: Pairs, y: Pairs): string[] =>
  [...x]
    .filter(([ref, head]) => y.get(ref) !== head)
    .map(([ref, head]) => keyOf(ref, head))
    .sort();

const ref = fc.stringMatching(/^[a-z0-9-]{1,24}$/);
const head = fc.stringMatching(/^[0-9a-f]{8}$/);
const pairs = fc.dictionary(ref, head, { maxKeys: 300 }).map((o) => new Map(Object.entries(o)));

/** Two sets: a common part, each side's own, and heads changed on one side. */
const setPair = fc
  .record({ common: pairs, onlyA: pairs, onlyB: pairs, changed: fc.integer({ min: 0, max: 120 }) })
  .map(({ common, onlyA, onlyB, changed }) => {
    const a = new Map([...common, ...onlyA]);
    const b = new Map([...common, ...onlyB]);
    let n = 0;
    for (const [r, h] of common) {
      if (n++ >= changed) break;
      b.set(r, `${h}x`);
    }
    return { a, b };
  });

function expectExact(a: Pairs, b: Pairs): void {
  const decoded = reconcile(a, b);
  const d = minus(a, b).length + minus(b, a).length;
  // Up to about 600 pairs decode in 1,024 symbols; more may fall back, never decode wrong.
  if (d <= 400) expect(decoded).toBeDefined();
  if (decoded) {
    expect(keysOf(decoded.mine)).toEqual(minus(a, b));
    expect(keysOf(decoded.theirs)).toEqual(minus(b, a));
  }
}

describe('riblt over open-objects digests', () => {
  it('random pairs: exactly the symmetric difference, or a fallback', () => {
    fc.assert(
      fc.property(setPair, ({ a, b }) => expectExact(a, b)),
      { numRuns: 60 },
    );
  });

  it('empty, equal, disjoint and one changed head', () => {
    fc.assert(
      fc.property(pairs, pairs, (x, y) => {
        expectExact(new Map(), new Map());
        expectExact(x, new Map());
        expectExact(new Map(), x);
        expectExact(x, new Map(x));
        const disjointY = new Map([...y].filter(([r]) => !x.has(r)));
        expectExact(x, disjointY);
        const first = [...x][0];
        if (first) expectExact(x, new Map([...x, [first[0], `${first[1]}y`]]));
      }),
      { numRuns: 30 },
    );
  });

  it('hashes reference ids with MurmurHash3 (x86, 32-bit, seed 0)', () => {
    expect(refHash('')).toBe(0);
    expect(refHash('hello')).toBe(0x248bfa47);
    expect(refHash('The quick brown fox jumps over the lazy dog')).toBe(0x2e4ff723);
  });

  it('removing what was added leaves the symbols of the set without it', () => {
    const d = createOpenObjectsDigest();
    const e = createOpenObjectsDigest();
    d.add('a', '1');
    d.add('b', '1');
    d.remove('b', '1');
    d.add('b', '2');
    e.add('b', '2');
    e.add('a', '1');
    const sd = openObjectsSketchOf(d.summary())!;
    const se = openObjectsSketchOf(e.summary())!;
    expect(encodeSymbols(sd.symbols, 0, SKETCH_SYMBOLS)).toBe(encodeSymbols(se.symbols, 0, SKETCH_SYMBOLS));
    expect(d.summary()).toEqual(e.summary());
    expect(sd.refsOf(openObjectKey('b', '2').hi)).toEqual(['b']);
  });
});
