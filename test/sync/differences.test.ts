/**
 * The `list` method's difference logic without a link or a store: random pairs of open sets,
 * read page by page on both sides, merge into exactly the objects held by one side only or by
 * both at different heads, in byte order; and a list page that breaks its rules fails the run.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { SyncEntry } from '../../src/protocol/sync-frames.js';
import type { ObjectHead } from '../../src/store/types.js';
import {
  checkedPage,
  type Difference,
  type ListPage,
  localCursor,
  mergeDifferences,
  remoteCursor,
} from '../../src/sync/differences.js';
import { compareIds } from '../../src/sync/summary.js';

const head = (referenceId: string, headVersion: string): ObjectHead => ({
  peer: 'p',
  referenceId,
  headVersion,
  versionCount: 1,
  open: true,
});

/** A store's page read over a sorted array. */
function pagesOf(sorted: ObjectHead[]) {
  return async (after: string | null, limit: number): Promise<ObjectHead[]> => {
    const from = after === null ? 0 : sorted.findIndex((h) => compareIds(h.referenceId, after) > 0);
    return from < 0 ? [] : sorted.slice(from, from + limit);
  };
}

/** A follower's list pages over a sorted array, as `SyncListRequest` answers them. */
function listOf(sorted: ObjectHead[], limit: number, asked: Array<string | null>) {
  const read = pagesOf(sorted);
  return async (after: string | null): Promise<ListPage> => {
    asked.push(after);
    const page = await read(after, limit);
    const entries: SyncEntry[] = page.map((h) => ({
      reference_id: h.referenceId,
      head: h.headVersion,
      version_count: h.versionCount,
    }));
    return checkedPage(
      { entries, next: page.length === limit ? page[page.length - 1]!.referenceId : null },
      after,
      limit,
    );
  };
}

async function collect(gen: AsyncGenerator<Difference>): Promise<Difference[]> {
  const out: Difference[] = [];
  for await (const d of gen) out.push(d);
  return out;
}

/** Two sets as maps reference id → head, drawn so that they overlap. */
const setPair = fc
  .uniqueArray(fc.string({ minLength: 1, maxLength: 4 }), { maxLength: 40 })
  .chain((ids) =>
    fc.tuple(
      fc.constant(ids),
      fc.array(fc.constantFrom('both', 'same', 'local', 'remote'), {
        minLength: ids.length,
        maxLength: ids.length,
      }),
    ),
  )
  .map(([ids, where]) => {
    const local = new Map<string, string>();
    const remote = new Map<string, string>();
    ids.forEach((id, i) => {
      const w = where[i];
      if (w === 'same') {
        local.set(id, 'h1');
        remote.set(id, 'h1');
      } else if (w === 'both') {
        local.set(id, 'h1');
        remote.set(id, 'h2');
      } else if (w === 'local') local.set(id, 'h1');
      else remote.set(id, 'h2');
    });
    return { local, remote };
  });

const sortedHeads = (m: Map<string, string>): ObjectHead[] =>
  [...m].map(([id, h]) => head(id, h)).sort((a, b) => compareIds(a.referenceId, b.referenceId));

describe('mergeDifferences', () => {
  it('finds exactly the objects held by one side or at different heads, in byte order', async () => {
    await fc.assert(
      fc.asyncProperty(setPair, fc.integer({ min: 1, max: 5 }), async ({ local, remote }, pageSize) => {
        const asked: Array<string | null> = [];
        const diffs = await collect(
          mergeDifferences(
            remoteCursor(listOf(sortedHeads(remote), pageSize, asked)),
            localCursor(pagesOf(sortedHeads(local)), pageSize),
          ),
        );
        const expected = [...new Set([...local.keys(), ...remote.keys()])]
          .filter((id) => local.get(id) !== remote.get(id))
          .sort(compareIds);
        expect(diffs.map((d) => d.ref)).toEqual(expected);
        for (const d of diffs) {
          // The peer's entry comes with every object the peer lists, never with one it lacks.
          expect(d.remote?.head).toBe(remote.get(d.ref));
        }
        // Every page of the follower is asked for once, after the last entry of the one before.
        expect(new Set(asked).size).toBe(asked.length);
      }),
    );
  });

  it('reads nothing of the peer before it is asked for a difference', async () => {
    const asked: Array<string | null> = [];
    const gen = mergeDifferences(remoteCursor(listOf([], 2, asked)), localCursor(pagesOf([]), 2));
    expect(asked).toEqual([]);
    expect(await collect(gen)).toEqual([]);
    expect(asked).toEqual([null]);
  });
});

describe('checkedPage', () => {
  const entry = (id: string): SyncEntry => ({ reference_id: id, head: 'h', version_count: 1 });

  it('accepts a page in order after its cursor, ending at `next`', () => {
    const page = { entries: [entry('b'), entry('c')], next: 'c' };
    expect(checkedPage(page, 'a', 2)).toBe(page);
  });

  it.each([
    ['more entries than asked for', { entries: [entry('b'), entry('c'), entry('d')], next: null }, 'a'],
    ['an entry not after the cursor', { entries: [entry('a')], next: null }, 'a'],
    ['entries out of order', { entries: [entry('c'), entry('b')], next: null }, null],
    ['a `next` that is not its last entry', { entries: [entry('b')], next: 'z' }, null],
    ['a `next` on an empty page', { entries: [], next: 'b' }, null],
  ])('refuses %s', (_why, page, after) => {
    expect(() => checkedPage(page, after, 2)).toThrow(
      expect.objectContaining({ code: 'PROTOCOL_MALFORMED_FRAME' }),
    );
  });
});
