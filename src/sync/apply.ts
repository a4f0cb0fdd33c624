/**
 * Applying histories received from the peer (pushed to us, or fetched by us): verify every
 * history first (concurrently), then, under the channel's receiving order, relate each to the
 * local chain and store what is new, in one atomic commit per group of a few objects (the
 * channel's commands go between the groups). A history that fails verification
 * is rejected with its `SYNC_*` code and nothing of it is stored.
 */
import { isParleyError, ParleyError } from '../errors.js';
import { createSlicer } from '../event-loop.js';
import { isOpen } from '../objects/index.js';
import type { PaymentObject } from '../protocol/index.js';
import type { ApplyResult, ObjectHistory } from '../protocol/sync-frames.js';
import type { JwsVerifier } from '../protocol/verify-pool.js';
import type { CommandRecord, CommitItem, OutboxRecord, StoredVersion } from '../store/types.js';
import type { SyncStore } from './ports.js';
import {
  commitItemsOf,
  type HistoryParties,
  type HistoryToVerify,
  paymentTextOf,
  type VerifiedHistory,
  verifyHistories,
} from './verify-history.js';

/** What applying needs from the channel (its core) and storage. */
export interface ApplyDeps {
  parties: HistoryParties;
  /** Whether this node is the protocol server of the channel (its branch wins a fork). */
  isServer: boolean;
  store: SyncStore;
  /** Runs `fn` with the channel's receiving order paused (ChannelCore.exclusive). */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  isPending(cid: string): boolean;
  dropPending(cid: string): boolean;
  /** Checks the signatures of histories. @default WebCrypto on this thread (`inThreadVerifier`) */
  verifier?: JwsVerifier;
  /**
   * The histories restore closed objects (PROTOCOL.md §7.6): stored as `restored`, so that no
   * back-office payment event is written for them. @default false
   */
  restored?: boolean;
}

/** A fork this node resolved by replacing its own losing branch. */
export interface ForkResolution {
  referenceId: string;
  /** The last common version (null: the objects differ from the create on). */
  keep: string | null;
  dropped: CommandRecord[];
  droppedOutbox: OutboxRecord[];
}

/** The results of applying one batch. */
export interface AppliedBatch {
  results: ApplyResult[];
  /** Objects stored (applied or replaced), with the head before (null: rebuilt from nothing). */
  stored: Array<{ referenceId: string; from: string | null; head: string }>;
  forks: ForkResolution[];
  /**
   * The store failed (unavailable, closed) part-way: what is above was done and stays true (a
   * fork replaced before the failure is reported with it); the objects after it have no result.
   * The caller reports the batch, then fails with this.
   */
  error?: unknown;
}

/** Longest run of work on this thread before the event loop's other work goes first, ms. */
const SLICE_MS = 2;
/**
 * Objects related and stored under one pause of the receiving order (one commit): a batch of
 * histories is stored in groups of this many, so that the channel's commands wait for one
 * group's commit at most.
 */
export const APPLY_GROUP_OBJECTS = 8;

/** A store failure that may pass: the batch stops there (see `AppliedBatch.error`). */
const isTransient = (err: unknown): boolean =>
  !isParleyError(err) || err.code === 'STORE_UNAVAILABLE' || err.code === 'STORE_CLOSED';

function result(
  referenceId: string,
  outcome: ApplyResult['outcome'],
  head: string | null,
  code: string | null = null,
): ApplyResult {
  return { reference_id: referenceId, outcome, head, code };
}

function parsePayment(json: string): PaymentObject {
  return JSON.parse(json) as PaymentObject;
}

interface Candidate {
  history: ObjectHistory;
  verified: VerifiedHistory;
}

/** A verified history that extends the local chain (or starts it) from `from` to `head`. */
interface PlainApply {
  ref: string;
  from: string | null;
  head: string;
  items: CommitItem[];
}

/**
 * Verifies and applies `histories` (kinds `history` and `replace`; others are answered `known`).
 * Never throws for a bad history: it becomes a `rejected` result. A store failure while writing
 * ends the batch with `error` (what was written before it is in the batch), and so does one
 * while reading once a group was stored; a store failure while reading before that throws.
 */
export async function applyHistories(
  histories: readonly ObjectHistory[],
  deps: ApplyDeps,
): Promise<AppliedBatch> {
  const { parties, store } = deps;
  const peer = parties.peer;
  const out: AppliedBatch = { results: [], stored: [], forks: [] };
  const refs = histories.map((h) => h.reference_id);
  const before = await store.heads(peer, refs);

  const candidates: Candidate[] = [];
  for (const c of await verifyCandidates(histories, before, deps)) {
    if ('verified' in c) candidates.push(c);
    else out.results.push(c);
  }
  if (candidates.length === 0) return out;
  await prepareVersions(candidates);

  // 2. Relate each to the local chain and store, with the receiving order paused, a few objects
  // at a time: the channel's commands go between the groups.
  for (let i = 0; i < candidates.length && out.error === undefined; i += APPLY_GROUP_OBJECTS) {
    const group = candidates.slice(i, i + APPLY_GROUP_OBJECTS);
    try {
      await deps.exclusive(() => relateAndStore(group, deps, out));
    } catch (err) {
      if (i === 0) throw err;
      // A later group's read failed: what the groups before it stored is reported with it.
      out.error = err;
    }
  }
  return out;
}

/**
 * Step 2 of `applyHistories` for a group of verified histories (run with the receiving order
 * paused): each related to the local chain, what extends it stored in one commit, a fork
 * replaced when the pushed branch wins. A store failure ends it with `out.error`.
 */
async function relateAndStore(
  candidates: readonly Candidate[],
  deps: ApplyDeps,
  out: AppliedBatch,
): Promise<void> {
  const { parties, store } = deps;
  const peer = parties.peer;
  const heads = await store.heads(
    peer,
    candidates.map((c) => c.verified.referenceId),
  );
  const withLocal = candidates.filter((c) => heads.has(c.verified.referenceId));
  const local = new Map<string, StoredVersion[]>();
  for (const c of withLocal)
    local.set(c.verified.referenceId, await store.versions(peer, c.verified.referenceId));
  const failureCids = candidates.flatMap((c) =>
    c.verified.commands.filter((x) => x.record.status === 'failure').map((x) => x.record.cid),
  );
  const localCids = withLocal.flatMap((c) => c.verified.commands.map((x) => x.record.cid));
  // Objects new here with no command errors (a restore's, mostly) have no cid to look up.
  const lookup = [...failureCids, ...localCids];
  const known = lookup.length > 0 ? await store.knownCids(peer, lookup) : new Set<string>();

  const plain: PlainApply[] = [];
  for (const { history, verified } of candidates) {
    const ref = verified.referenceId;
    const chain = local.get(ref) ?? [];
    const localHead = chain.at(-1)?.version ?? null;
    const pushedHead = verified.head;
    const pushed = verified.chain.map((c) => c.record.writeVersion);
    const pending = verified.commands.find((c) => !known.has(c.record.cid) && deps.isPending(c.record.cid));

    // One of my pending commands (a create included) is in it: the peer accepted it and its
    // response is on the way; storing it here would leave the outbox entry behind.
    if (pending) {
      out.results.push(result(ref, 'in_flight', localHead));
      continue;
    }
    if (localHead === null) {
      plain.push({ ref, from: null, head: pushedHead!, items: commitItemsOf(verified, isOpen, known) });
      continue;
    }
    if (localHead === pushedHead) {
      const items = commitItemsOf(verified, isOpen, known);
      // Same head: only command errors we did not log yet may be new.
      if (items.length > 0) plain.push({ ref, from: localHead, head: localHead, items });
      else out.results.push(result(ref, 'known', localHead));
      continue;
    }
    const at = pushed.indexOf(localHead);
    if (at >= 0 || (history.base === localHead && pushed.length > 0)) {
      plain.push({
        ref,
        from: localHead,
        head: pushedHead!,
        items: commitItemsOf(verified, isOpen, known),
      });
      continue;
    }
    if (pushedHead !== null && chain.some((v) => v.version === pushedHead)) {
      out.results.push(result(ref, 'ahead', localHead));
      continue;
    }
    if (history.kind !== 'replace') {
      out.results.push(result(ref, 'fork', localHead, 'SYNC_FORK'));
      continue;
    }
    // A fork, and the protocol server's branch (the pushed one) wins: keep the common prefix.
    const full = verified.base === null ? pushed : [];
    let common = 0;
    while (common < chain.length && common < full.length && chain[common]!.version === full[common]) common++;
    const keep = common === 0 ? null : chain[common - 1]!.version;
    let replaced: Awaited<ReturnType<SyncStore['replaceBranch']>>;
    try {
      replaced = await store.replaceBranch(
        peer,
        ref,
        keep,
        // The winning steps after the common prefix are new here by construction (other versions).
        commitItemsOf({ ...verified, chain: verified.chain.slice(common) }, isOpen, known),
      );
    } catch (err) {
      // Forks replaced before this one stay reported (`out.forks`); nothing else is written.
      if (isTransient(err)) {
        out.error = err;
        return;
      }
      out.results.push(result(ref, 'fork', localHead, 'SYNC_FORK'));
      continue;
    }
    for (const o of replaced.droppedOutbox) deps.dropPending(o.cid);
    out.forks.push({ referenceId: ref, keep, ...replaced });
    out.stored.push({ referenceId: ref, from: localHead, head: pushedHead! });
    out.results.push(result(ref, 'replaced', pushedHead));
  }

  if (plain.length > 0) await commitPlain(plain, deps, out);
}

/**
 * Step 1 of `applyHistories`: every signature of the batch in one call to the verifier (a pool of
 * threads); a suffix is checked against the version it starts from. Returns, in the batch's
 * order, each history verified, or its result when it is not to be stored.
 */
async function verifyCandidates(
  histories: readonly ObjectHistory[],
  before: ReadonlyMap<string, { headVersion: string }>,
  deps: ApplyDeps,
): Promise<Array<Candidate | ApplyResult>> {
  const { parties, store } = deps;
  const peer = parties.peer;
  const checked: Array<Candidate | ApplyResult | undefined> = new Array(histories.length);
  const toVerify: Array<{ at: number; input: HistoryToVerify }> = [];
  for (let i = 0; i < histories.length; i++) {
    const history = histories[i]!;
    const ref = history.reference_id;
    if (history.kind === 'missing' || history.kind === 'yield') {
      checked[i] = result(ref, 'known', null);
      continue;
    }
    // The peer holds it but cannot send it in one frame: nothing to store, and it is reported.
    if (history.kind === 'too_large') {
      checked[i] = result(ref, 'rejected', null, 'SYNC_HISTORY_TOO_LARGE');
      continue;
    }
    // A replacement is the server's whole branch, from its create.
    if (history.kind === 'replace' && (deps.isServer || history.base !== null)) {
      checked[i] = result(ref, 'rejected', null, 'SYNC_INVALID_HISTORY');
      continue;
    }
    let basePayment: PaymentObject | undefined;
    if (history.base !== null) {
      const local = before.has(ref) ? await store.versions(peer, ref) : [];
      const base = local.find((v) => v.version === history.base);
      if (!base) {
        checked[i] = result(ref, 'fork', before.get(ref)?.headVersion ?? null, 'SYNC_FORK');
        continue;
      }
      basePayment = parsePayment(base.payment);
    }
    toVerify.push({ at: i, input: { history, basePayment } });
  }
  const verified = await verifyHistories(
    toVerify.map((v) => v.input),
    parties,
    deps.verifier,
  );
  verified.forEach((v, k) => {
    const { at, input } = toVerify[k]!;
    checked[at] =
      v instanceof ParleyError
        ? result(input.history.reference_id, 'rejected', null, v.code)
        : { history: input.history, verified: v };
  });

  return checked.filter((c): c is Candidate | ApplyResult => c !== undefined);
}

/**
 * The version records' payment text of every success, made before the receiving order is
 * paused (what runs inside it holds the channel's commands back), a slice at a time.
 */
async function prepareVersions(candidates: readonly Candidate[]): Promise<void> {
  const pause = createSlicer(SLICE_MS);
  for (const { verified } of candidates) {
    await pause();
    for (const c of verified.chain) paymentTextOf(c);
  }
}

/** Stores the histories that extend the local chain, in one commit; one by one if one conflicts. */
async function commitPlain(plain: PlainApply[], deps: ApplyDeps, out: AppliedBatch): Promise<void> {
  const { store } = deps;
  if (deps.restored) {
    // Only objects new here are restored; one this node held gets its payment events as usual.
    for (const p of plain) {
      if (p.from === null) p.items = p.items.map((item) => ({ ...item, restored: true }));
    }
  }
  try {
    await store.commit(plain.flatMap((p) => p.items));
    for (const p of plain) {
      out.stored.push({ referenceId: p.ref, from: p.from, head: p.head });
      out.results.push(result(p.ref, 'applied', p.head));
    }
  } catch (err) {
    if (isTransient(err)) {
      out.error = err;
      return;
    }
    // One object conflicts with the store: give each its own verdict.
    for (const p of plain) {
      try {
        await store.commit(p.items);
        out.stored.push({ referenceId: p.ref, from: p.from, head: p.head });
        out.results.push(result(p.ref, 'applied', p.head));
      } catch (one) {
        if (isTransient(one)) {
          out.error = one;
          return;
        }
        out.results.push(result(p.ref, 'fork', p.from, 'SYNC_FORK'));
      }
    }
  }
}
