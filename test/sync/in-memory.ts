/**
 * Pieces for running two channel syncs back to back without sockets: the commit items of a
 * signed history as one side logs them, the sync's `exclusive`, and an in-memory ordered link.
 */
import { createSerialQueue } from '../../src/channel/serial-queue.js';
import { isOpen } from '../../src/objects/index.js';
import { createOpenObjectsDigest } from '../../src/protocol/heartbeat-frames.js';
import { isProtocolServer } from '../../src/protocol/index.js';
import { inThreadVerifier, type JwsVerifier } from '../../src/protocol/verify-pool.js';
import type { CommitItem, ParleyStore } from '../../src/store/types.js';
import type { SyncStore } from '../../src/sync/ports.js';
import {
  type ChannelSync,
  type ChannelSyncDeps,
  type ChannelSyncOptions,
  createChannelSync,
  type SyncLink,
} from '../../src/sync/resync.js';
import { createStoreFixture } from '../helpers/store.js';
import { usePg } from './helpers.js';
import { type BuiltStep, buildPayment, type Party } from './signed-histories.js';

/** Commit items of `steps` as `me` logs them on its channel with `peer`. */
export function commitItemsFor(steps: BuiltStep[], me: Party, peer: Party): CommitItem[] {
  return steps.map((s) => ({
    command: {
      peer: peer.address,
      cid: s.cid,
      direction: s.proposer.address === me.address ? 'outbound' : 'inbound',
      referenceId: s.payment.reference_id,
      readVersion: s.read,
      writeVersion: s.cid,
      requestJws: s.signed.request,
      responseJws: s.signed.response,
      status: 'success',
      errorCode: null,
    },
    version: {
      peer: peer.address,
      referenceId: s.payment.reference_id,
      version: s.cid,
      previousVersion: s.read,
      payment: JSON.stringify(s.payment),
      open: isOpen(s.payment),
    },
  }));
}

/** A sync's `exclusive` (the channel's receiving order) for a sync with no channel: one at a time. */
export function serialExclusive(): <T>(fn: () => Promise<T>) => Promise<T> {
  const queue = createSerialQueue();
  return (fn) => queue.run(fn);
}

/**
 * An open link that hands every frame to `deliver`, in order, one `schedule` later (a
 * microtask by default; `setImmediate` lets I/O in between).
 */
export function memoryLink(
  deliver: (frame: string) => void,
  schedule: (fn: () => void) => void = queueMicrotask,
): SyncLink {
  return {
    state: 'open',
    closed: new Promise<never>(() => undefined),
    send(frame) {
      schedule(() => deliver(frame));
      return true;
    },
    writable: async () => undefined,
    close() {},
  };
}

/**
 * What a sync with `peer` on `store` needs of a channel that is not there: nothing pending, one
 * apply at a time, signatures checked on this thread.
 */
export function syncDeps(me: Party, peer: Party, store: SyncStore): ChannelSyncDeps {
  return {
    me: me.address,
    peer: peer.address,
    myKey: me.key,
    peerKey: peer.key.publicKey,
    isServer: isProtocolServer(me.address, peer.address),
    store,
    exclusive: serialExclusive(),
    isPending: () => false,
    dropPending: () => false,
    verifier: inThreadVerifier,
  };
}

/**
 * A `ChannelSync` for `me` with `peer` on `store` (see `syncDeps`), its signatures checked by
 * `verifier` and its applies paused by `exclusive`.
 */
export function memorySync(
  me: Party,
  peer: Party,
  store: SyncStore,
  options: ChannelSyncOptions,
  verifier: JwsVerifier = inThreadVerifier,
  exclusive: <T>(fn: () => Promise<T>) => Promise<T> = serialExclusive(),
): ChannelSync {
  return createChannelSync(options, { ...syncDeps(me, peer, store), exclusive, verifier });
}

/**
 * `memorySync` with an open-objects digest rebuilt from the store when read (as a channel core's
 * is after each commit), so its runs compare by coded symbols with a peer that speaks `riblt`.
 */
export function digestSync(
  me: Party,
  peer: Party,
  store: SyncStore,
  options: ChannelSyncOptions,
): ChannelSync {
  const digest = createOpenObjectsDigest();
  return createChannelSync(options, {
    ...syncDeps(me, peer, store),
    summary: async () => {
      digest.clear();
      for (const h of await store.openObjects(peer.address, null, 10_000))
        digest.add(h.referenceId, h.headVersion);
      return digest.summary();
    },
  });
}

/** A frame's payload, read without checking it (for a test to decide what to do with it). */
export function peekFrame(jws: string): { _ObjectType?: string; last?: boolean; seq?: number } {
  try {
    return JSON.parse(Buffer.from(jws.split('.')[1] ?? '', 'base64url').toString('utf8'));
  } catch {
    return {};
  }
}

/** Two fresh stores for a test's two sides (PostgreSQL with `PARLEY_TEST_DB=postgresql`). */
export async function openTwoStores(): Promise<{ a: ParleyStore; b: ParleyStore; dispose(): Promise<void> }> {
  const engine = usePg ? 'postgresql' : 'sqlite';
  const [fa, fb] = await Promise.all([createStoreFixture(engine), createStoreFixture(engine)]);
  const [a, b] = await Promise.all([fa.open(), fb.open()]);
  return {
    a,
    b,
    async dispose() {
      await fa.dispose();
      await fb.dispose();
    },
  };
}

/**
 * Two fresh stores (`openTwoStores`) opened by the `before` hook and disposed of by the `after`
 * one (`beforeAll`/`afterAll`, or `beforeEach`/`afterEach`); read them once the hook ran.
 */
export function withTwoStores(
  before: (fn: () => Promise<void>) => void,
  after: (fn: () => Promise<void>) => void,
): { readonly a: ParleyStore; readonly b: ParleyStore } {
  let stores: Awaited<ReturnType<typeof openTwoStores>> | undefined;
  before(async () => {
    stores = await openTwoStores();
  });
  after(async () => {
    await stores?.dispose();
    stores = undefined;
  });
  const opened = (): Awaited<ReturnType<typeof openTwoStores>> => {
    if (!stores) throw new Error('the stores are opened by the before hook');
    return stores;
  };
  return {
    get a() {
      return opened().a;
    },
    get b() {
      return opened().b;
    },
  };
}

/** `n` open two-command payments, proposed by `me` and `peer` in turn, logged in `me`'s `store`. */
export async function seedOpenPayments(store: SyncStore, me: Party, peer: Party, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const steps = await buildPayment(i % 2 === 0 ? me : peer, i % 2 === 0 ? peer : me, 2);
    await store.commit(commitItemsFor(steps, me, peer));
  }
}

/**
 * Two digest-backed syncs (`digestSync`, small batches and pages) wired back to back over an
 * in-memory, ordered link, both hellos naming `riblt`.
 */
export function ribltPair(
  x: { me: Party; peer: Party; store: SyncStore },
  y: { me: Party; peer: Party; store: SyncStore },
): { sx: ChannelSync; sy: ChannelSync } {
  const make = (side: typeof x): ChannelSync =>
    digestSync(side.me, side.peer, side.store, { batchObjects: 3, pageSize: 2 });
  const sx = make(x);
  const sy = make(y);
  const speaks = { peerSyncMethods: ['list', 'riblt'] };
  const lx: SyncLink = { ...memoryLink((f) => sy.handleFrame(f, ly)), ...speaks };
  const ly: SyncLink = { ...memoryLink((f) => sx.handleFrame(f, lx)), ...speaks };
  sx.attach(lx);
  sy.attach(ly);
  return { sx, sy };
}
