/**
 * The channels of a node, one per configured peer: each peer's channel core, resync, channel
 * and business driver, and their wiring (control frames, health, `peer_behind`, the resync
 * triggers, the events streamed). The composition root makes them once, at start.
 */
import type { Observer, Subscription } from 'rxjs';
import {
  type BusinessDriver,
  type BusinessDriverOptions,
  type BusinessEvent,
  createBusinessDriver,
} from '../business/driver.js';
import { type BusinessContext, validateIncoming } from '../business/index.js';
import { type Channel, type ChannelEvent, createChannel } from '../channel/channel.js';
import { type ChannelCore, createChannelCore } from '../channel/channel-core.js';
import { routeControlFrames } from '../channel/control-frames.js';
import { type HealthMonitor, WAITS_BEFORE_RESYNC } from '../health/index.js';
import { type PrivateKey, publicKeyFromHex } from '../protocol/index.js';
import type { JwsVerifier } from '../protocol/verify-pool.js';
import type { RefusalReports } from '../refusal-reports.js';
import type { AbandonStore } from '../store/abandon-repository.js';
import type { ParleyStore } from '../store/types.js';
import type { SyncStore } from '../sync/ports.js';
import {
  type ChannelSync,
  type ChannelSyncOptions,
  createChannelSync,
  type RestoreEvent,
  type ResyncEvent,
} from '../sync/resync.js';
import { watchResyncTriggers } from '../sync/triggers.js';
import type { PeerEntry } from '../transport/types.js';
import { background, type ReportFailure } from '../util/background.js';

/** Every peer's channel and its parts, by peer address. */
export interface PeerChannels {
  readonly cores: Map<string, ChannelCore>;
  readonly channels: Map<string, Channel>;
  readonly drivers: Map<string, BusinessDriver>;
  readonly syncs: Map<string, ChannelSync>;
}

export interface PeerChannelOptions {
  me: string;
  maxFrameBytes: number;
  retransmitMs: number;
  /** Resync knobs of every channel. */
  sync?: ChannelSyncOptions;
  /** When a reaction that could not be sent runs again (see `BusinessDriverOptions`). */
  driver?: BusinessDriverOptions;
}

export interface PeerChannelDeps {
  store: ParleyStore;
  myKey: PrivateKey;
  business: BusinessContext;
  syncStore: SyncStore;
  abandons: AbandonStore;
  /** Verifies live frames: the current keys only. */
  liveVerifier: JwsVerifier;
  /** Verifies the signed histories a resync brings: the retired keys too. */
  historyVerifier: JwsVerifier;
  health: HealthMonitor;
  refusals: RefusalReports;
  /** Where each channel's and driver's events, and its restore progress, go (subscribed as an observer). */
  events: Observer<ChannelEvent | BusinessEvent | RestoreEvent>;
  /** Where each channel's resync events go (subscribed as an observer). */
  resync: Observer<ResyncEvent>;
  /** Every subscription made, ended by the node's close. */
  subs: Subscription[];
  /** Where a background task's failure goes (the node's `background_failed`). */
  report: ReportFailure;
  /** What to stop if the node fails to start after all. */
  undo: Array<() => unknown>;
  /**
   * With several replicas: the error a channel is suspended with until this replica holds its
   * lease (its health is watched from then on).
   */
  suspendUntilLeased?: (peer: string) => Error;
}

/** Makes the channel of every peer in `directory`, one after the other. */
export async function createPeerChannels(
  directory: ReadonlyMap<string, PeerEntry>,
  options: PeerChannelOptions,
  deps: PeerChannelDeps,
): Promise<PeerChannels> {
  const peers: PeerChannels = {
    cores: new Map(),
    channels: new Map(),
    drivers: new Map(),
    syncs: new Map(),
  };
  for (const peer of directory.values()) await addPeerChannel(peer, peers, options, deps);
  return peers;
}

async function addPeerChannel(
  peer: PeerEntry,
  { cores, channels, drivers, syncs }: PeerChannels,
  options: PeerChannelOptions,
  deps: PeerChannelDeps,
): Promise<void> {
  const { me } = options;
  const { store, myKey, business, health, refusals, events, subs, undo } = deps;
  const core = createChannelCore(
    { me, peer: peer.address, maxFrameBytes: options.maxFrameBytes },
    {
      store,
      myKey,
      peerKey: publicKeyFromHex(peer.publicKeyHex),
      validate: ({ payment, previous, origin }) =>
        validateIncoming({ payment, previous, origin, me, business }),
      // Live frames: the current keys only (a retired key may have leaked).
      verifier: deps.liveVerifier,
      report: deps.report,
    },
  );
  await core.init();
  const sync = createChannelSync(
    { maxFrameBytes: options.maxFrameBytes, ...options.sync },
    {
      me,
      peer: peer.address,
      myKey,
      peerKey: publicKeyFromHex(peer.publicKeyHex),
      isServer: core.isServer,
      store: deps.syncStore,
      summary: async () => core.openSummary(),
      exclusive: (fn) => core.exclusive(fn),
      afterApply: () =>
        background(
          core.exclusive(() => core.reloadSummary()),
          'reload_summary',
          deps.report,
          peer.address,
        ),
      isPending: (cid) => core.isPending(cid),
      dropPending: (cid) => core.dropPending(cid),
      verifier: deps.historyVerifier,
      // The frames themselves are live: the peer's current key only.
      frameVerifier: deps.liveVerifier,
    },
  );
  syncs.set(peer.address, sync);
  const channel = createChannel(
    { retransmitMs: options.retransmitMs },
    {
      core,
      onControlFrame: routeControlFrames({
        peer: peer.address,
        sync: (frame, connection) => sync.handleFrame(frame, connection),
        heartbeat: (frame, type, connection) => health.onControlFrame(frame, type, connection),
        refused: (event) => refusals.frameRefused(event),
      }),
    },
  );
  // A LIP-1 HTTP peer sends no heartbeats: the health monitor does not watch its channel. A
  // replica watches the channels it serves only (from when it takes one over).
  undo.push(() => channel.close());
  if (peer.transport !== 'lip1-http' && !deps.suspendUntilLeased) await health.addChannel(channel, core);
  // A replica serves a channel only once it holds the channel's lease.
  if (deps.suspendUntilLeased) channel.suspend(deps.suspendUntilLeased(peer.address));
  cores.set(peer.address, core);
  channels.set(peer.address, channel);
  subs.push(
    channel.events$.subscribe((event) =>
      event.type === 'frame_refused' ? refusals.frameRefused(event) : events.next(event),
    ),
  );
  // Commands stuck at a peer that does not progress (LIP-1 HTTP: it cannot resync): `peer_behind`.
  subs.push(health.peerBehind.watch(peer.address, peer.transport ?? 'ws', channel.events$));
  const driver = createBusinessDriver(
    {
      me,
      channel,
      store,
      business,
      hasPending: (referenceId) => core.pending().some((p) => p.referenceId === referenceId),
      abandonedReads: () => deps.abandons.abandonedReads(peer.address),
    },
    options.driver,
  );
  drivers.set(peer.address, driver);
  undo.push(
    () => driver.close(),
    () => sync.close(),
  );
  subs.push(driver.events$.subscribe(events));
  subs.push(
    sync.events$.subscribe(deps.resync),
    sync.restore$.subscribe(events),
    ...watchResyncTriggers({
      peer: peer.address,
      sync,
      channel,
      driver,
      peerBehind: health.peerBehind,
      waitsBeforeResync: WAITS_BEFORE_RESYNC,
      report: deps.report,
    }),
  );
}
