/**
 * The difference logic of the `list` method (PROTOCOL.md §7.3), without a link or a store: the
 * follower's pages checked as they come, and merged in byte order of reference id with this
 * node's open objects. Both sides are read a page at a time through {@link Cursor}s, so memory
 * stays bounded at any set size.
 */
import { ParleyError } from '../errors.js';
import type { SyncEntry } from '../protocol/sync-frames.js';
import type { ObjectHead } from '../store/types.js';
import { compareIds } from './summary.js';

/** One object whose head differs: `remote` is the peer's entry, absent when only this node lists it. */
export interface Difference {
  ref: string;
  remote?: SyncEntry;
}

/** One list page of the follower. */
export interface ListPage {
  entries: SyncEntry[];
  next: string | null;
}

/** A sorted sequence read a page at a time: `peek` the current item, `advance` past it. */
export interface Cursor<T> {
  peek(): Promise<T | undefined>;
  advance(): void;
}

/**
 * A list page as the follower must send it: at most `limit` entries, in strictly increasing
 * order after `after`, and `next` either null or its last entry. Anything else (a peer that
 * repeats a cursor would keep the run going forever) fails the run.
 * @throws ParleyError `PROTOCOL_MALFORMED_FRAME`
 */
export function checkedPage(page: ListPage, after: string | null, limit: number): ListPage {
  const bad = (why: string) => new ParleyError('PROTOCOL_MALFORMED_FRAME', `SyncList: ${why}`);
  if (page.entries.length > limit) throw bad(`${page.entries.length} entries, ${limit} asked for`);
  let previous = after;
  for (const entry of page.entries) {
    if (previous !== null && compareIds(entry.reference_id, previous) <= 0) {
      throw bad(`${entry.reference_id} is not after ${previous}`);
    }
    previous = entry.reference_id;
  }
  if (page.next !== null && (page.entries.length === 0 || page.next !== previous)) {
    throw bad('next is not the last entry of the page');
  }
  return page;
}

/**
 * The follower's entries, a page at a time: the first page is asked for at the first `peek`,
 * and each next one as soon as the page before it comes (it travels while that one is merged).
 */
export function remoteCursor(
  fetchPage: (after: string | null) => Promise<ListPage>,
  from: string | null = null,
): Cursor<SyncEntry> {
  let entries: SyncEntry[] = [];
  let at = 0;
  let started = false;
  let pending: Promise<ListPage> | undefined;
  return {
    async peek() {
      if (!started) {
        started = true;
        pending = fetchPage(from);
      }
      while (at >= entries.length) {
        if (!pending) return undefined;
        const page = await pending;
        entries = page.entries;
        at = 0;
        pending = page.next === null ? undefined : fetchPage(page.next);
      }
      return entries[at];
    },
    advance() {
      at++;
    },
  };
}

/** This node's open objects, read `pageSize` at a time from `readPage` (strictly after its cursor). */
export function localCursor(
  readPage: (after: string | null, limit: number) => Promise<ObjectHead[]>,
  pageSize: number,
): Cursor<ObjectHead> {
  let heads: ObjectHead[] = [];
  let at = 0;
  let after: string | null = null;
  let done = false;
  return {
    async peek() {
      while (at >= heads.length) {
        if (done) return undefined;
        heads = await readPage(after, pageSize);
        at = 0;
        if (heads.length < pageSize) done = true;
        if (heads.length > 0) after = heads[heads.length - 1]!.referenceId;
      }
      return heads[at];
    },
    advance() {
      at++;
    },
  };
}

/**
 * Differences in byte order of reference id: an object only one side lists, or both list with
 * different heads.
 */
export async function* mergeDifferences(
  remote: Cursor<SyncEntry>,
  local: Cursor<ObjectHead>,
): AsyncGenerator<Difference> {
  for (;;) {
    const r = await remote.peek();
    const l = await local.peek();
    if (!r && !l) return;
    const order = !r ? -1 : !l ? 1 : compareIds(l.referenceId, r.reference_id);
    if (order < 0) {
      local.advance();
      yield { ref: l!.referenceId };
    } else if (order > 0) {
      remote.advance();
      yield { ref: r!.reference_id, remote: r! };
    } else {
      local.advance();
      remote.advance();
      if (l!.headVersion !== r!.head) yield { ref: r!.reference_id, remote: r! };
    }
  }
}

/** A cursor over `items` already read. */
export function arrayCursor<T>(items: readonly T[]): Cursor<T> {
  let at = 0;
  return {
    peek: async () => items[at],
    advance() {
      at++;
    },
  };
}

/**
 * `cursor` up to the bound `upTo()` gives at each peek (inclusive; null: to its end): what lies
 * beyond it is never read. The bound may only come down while the cursor is read.
 */
export function boundedCursor<T>(
  cursor: Cursor<T>,
  idOf: (item: T) => string,
  upTo: () => string | null,
): Cursor<T> {
  return {
    async peek() {
      const item = await cursor.peek();
      const bound = upTo();
      if (item === undefined || bound === null) return item;
      return compareIds(idOf(item), bound) <= 0 ? item : undefined;
    },
    advance: () => cursor.advance(),
  };
}
