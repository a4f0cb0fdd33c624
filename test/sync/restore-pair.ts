/**
 * Two channel syncs (A and B) over an in-memory link with real signatures, on real stores, for
 * the closed-object restore tests: closed payments seeded straight into a store, and every frame
 * either side sent, decoded, with its size.
 */
import type { SchedulerLike } from 'rxjs';
import type { ParleyStore } from '../../src/store/types.js';
import type { SyncStore } from '../../src/sync/ports.js';
import {
  type ChannelSync,
  type ChannelSyncOptions,
  createChannelSync,
  type SyncLink,
} from '../../src/sync/resync.js';
import { commitItemsFor, memoryLink, peekFrame, syncDeps } from './in-memory.js';
import { type BuiltStep, buildPayment, type Party, party } from './signed-histories.js';

export const A = party(0x61);
export const B = party(0x62);

/** `n` closed (final) payments between `x` and `y`, signed, not logged anywhere yet. */
export async function closedPayments(x: Party, y: Party, n: number): Promise<BuiltStep[][]> {
  const out: BuiltStep[][] = [];
  for (let i = 0; i < n; i++) out.push(await buildPayment(i % 2 === 0 ? x : y, i % 2 === 0 ? y : x, 5));
  return out;
}

/** Logs `payments` in `store` as `me` logs them on its channel with `peer`. */
export async function logPayments(
  store: ParleyStore,
  me: Party,
  peer: Party,
  payments: BuiltStep[][],
): Promise<void> {
  for (const steps of payments) await store.commit(commitItemsFor(steps, me, peer));
}

/** `n` closed payments between `me` and `peer`, logged in `store` as `me` logs them. */
export async function seedClosed(store: ParleyStore, me: Party, peer: Party, n: number): Promise<void> {
  await logPayments(store, me, peer, await closedPayments(me, peer, n));
}

/** Every closed object of a channel as `ref@head`, in byte order. */
export async function closedHeads(store: SyncStore, peer: string): Promise<string[]> {
  const out: string[] = [];
  for (let after: string | null = null; ; ) {
    const page: Awaited<ReturnType<NonNullable<SyncStore['closedObjects']>>> = await store.closedObjects!(
      peer,
      after,
      1000,
    );
    for (const h of page) out.push(`${h.referenceId}@${h.headVersion}`);
    if (page.length < 1000) return out;
    after = page[page.length - 1]!.referenceId;
  }
}

export interface SentFrame {
  _ObjectType?: string;
  from: 'a' | 'b';
  bytes: number;
  [field: string]: unknown;
}

export interface Wired {
  sa: ChannelSync;
  sb: ChannelSync;
  /** Connects the two syncs again (a new connection: the leader's restore resumes). */
  reconnect(): void;
  frames: SentFrame[];
}

/** The frames that find a run's differences (not the histories that repair them). */
const RECONCILE = new Set([
  'SyncBegin',
  'SyncBeginAck',
  'SyncListRequest',
  'SyncList',
  'SyncSketchRequest',
  'SyncSketch',
  'SyncResolve',
  'SyncResolved',
]);

/** Bytes of the frames that found the differences of the runs whose `SyncBegin`s `begins` are. */
export function reconcileBytes(frames: readonly SentFrame[], runIds: ReadonlySet<unknown>): number {
  return frames
    .filter((f) => RECONCILE.has(f._ObjectType ?? '') && runIds.has(f['run_id']))
    .reduce((n, f) => n + f.bytes, 0);
}

/**
 * A's sync with B on `stores.a` and B's with A on `stores.b`, connected; each hello named
 * `methods`; `onFrame` sees every frame as it is sent.
 */
export function wire(
  stores: { a: SyncStore; b: SyncStore },
  options: ChannelSyncOptions,
  scheduler?: SchedulerLike,
  methods: string[] = ['list', 'riblt', 'restore', 'restore-riblt'],
  onFrame?: (frame: SentFrame) => void,
): Wired {
  const make = (me: Party, peer: Party, store: SyncStore): ChannelSync =>
    createChannelSync(options, { ...syncDeps(me, peer, store), ...(scheduler ? { scheduler } : {}) });
  const sa = make(A, B, stores.a);
  const sb = make(B, A, stores.b);
  const frames: SentFrame[] = [];
  const speaks = { peerSyncMethods: methods };
  const connect = (): void => {
    const la: SyncLink = {
      ...memoryLink((f) => {
        frames.push({ ...(peekFrame(f) as object), from: 'a', bytes: f.length });
        onFrame?.(frames.at(-1)!);
        sb.handleFrame(f, lb);
      }, setImmediate),
      ...speaks,
    };
    const lb: SyncLink = {
      ...memoryLink((f) => {
        frames.push({ ...(peekFrame(f) as object), from: 'b', bytes: f.length });
        onFrame?.(frames.at(-1)!);
        sa.handleFrame(f, la);
      }, setImmediate),
      ...speaks,
    };
    sb.attach(lb);
    sa.attach(la);
  };
  connect();
  return { sa, sb, reconnect: connect, frames };
}
