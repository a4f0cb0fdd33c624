/**
 * The composition root: `createVaspNode(config)` wires the store, the channels, the
 * WebSocket server and dialers, and the business layer into one running VASP node.
 */

import { readFileSync } from 'node:fs';
import {
  defer,
  firstValueFrom,
  type Observable,
  type SchedulerLike,
  Subject,
  type Subscription,
  throwError,
  timeout,
} from 'rxjs';
import {
  type BusinessDriver,
  type BusinessDriverOptions,
  type BusinessEvent,
  createBusinessDriver,
} from './business/driver.js';
import {
  type BusinessContext,
  createAutoBusiness,
  createPaymentObject,
  validateIncoming,
} from './business/index.js';
import {
  type Channel,
  type ChannelEvent,
  createChannel,
  NOT_OWNER_REASON,
  type SubmittedCommand,
} from './channel/channel.js';
import { type ChannelCore, createChannelCore } from './channel/channel-core.js';
import { type NodeConfig, type NodeConfigInput, parseNodeConfig } from './config.js';
import { createDashboard } from './dashboard/dashboard.js';
import { isParleyError, ParleyError } from './errors.js';
import { type AbandonedCommand, abandonCommand } from './health/abandon.js';
import {
  createHealthMonitor,
  createNodeMetrics,
  createStoreWritability,
  type HealthEvent,
  type HealthMonitor,
  type HealthOptions,
  registerHealthRoutes,
  reportStoreWritability,
  resolveHealthOptions,
  type StoreWritability,
  type StoreWritabilityEvent,
  type StoreWritabilityOptions,
  WAITS_BEFORE_RESYNC,
} from './health/index.js';
import { createHttpRouter, type HttpRouter } from './http/router.js';
import { createKeyedThrottle } from './keyed-throttle.js';
import { CloseCode } from './protocol/close-codes.js';
import {
  channelAddress,
  type PrivateKey,
  type PublicKey,
  privateKeyFromSeedHex,
  publicKeyFromHex,
} from './protocol/index.js';
import { isSyncFrameType } from './protocol/sync-frames.js';
import { acceptingRetiredKeys, createVerifyPool } from './protocol/verify-pool.js';
import { createRefusalReports, type Lip1RequestRefused } from './refusal-reports.js';
import type { LeaseEvent } from './replica/lease-keeper.js';
import { defaultReplicaId, notOwner, startChannelServing } from './replica/takeover.js';
import { createAbandonRepository } from './store/abandon-repository.js';
import { createHealthRepository } from './store/health-repository.js';
import { createLeaseRepository } from './store/lease-repository.js';
import { openStore } from './store/open-store.js';
import { createSyncRepository } from './store/sync-repository.js';
import type { ParleyStore } from './store/types.js';
import type { ResyncRunRecord } from './sync/ports.js';
import {
  type ChannelSync,
  type ChannelSyncOptions,
  createChannelSync,
  type ResyncEvent,
  type ResyncRunResult,
} from './sync/resync.js';
import { pruneRunHistory } from './sync/run-history.js';
import { createConnectionRegistry } from './transport/connection-registry.js';
import { createLip1HttpLink, type Lip1HttpLink, refuseLip1Request } from './transport/lip1-http.js';
import { createPeerHosts } from './transport/peer-hosts.js';
import type { Connection, PeerEntry } from './transport/types.js';
import { createReconnectingDialer, type ReconnectingDialer } from './transport/ws-dialer.js';
import { createChannelServer } from './transport/ws-server.js';

/** Everything a node reports, for logs, metrics and the dashboard. */
export type NodeEvent =
  | ChannelEvent
  | BusinessEvent
  | ResyncEvent
  | LeaseEvent
  | UpkeepEvent
  | TransportEvent
  | StoreWritabilityEvent
  | Lip1RequestRefused;

/**
 * A connection that failed before it became a channel: a dial of mine (the peer unreachable, or
 * refused me: wrong key, clock skew, not the owner, …) or a hello to me that I refused. `code` is
 * the Parley error code (docs/errors.md).
 */
export type TransportEvent =
  | { type: 'dial_failed'; peer: string; code: string; message: string }
  /** My dialer redials `peer` in `delayMs` (`restart`: the peer closed with 1001; see docs/operations.md). */
  | { type: 'redial'; peer: string; attempt: number; delayMs: number; kind: 'backoff' | 'restart' }
  | {
      type: 'handshake_refused';
      code: string;
      message: string;
      remoteAddress: string | undefined;
      /** Hellos refused from this address since the last report and not reported (at most one per 10 s). */
      suppressed?: number;
    };

/** A periodic upkeep task failed (the store was unreachable, say); it runs again at its next turn. */
export type UpkeepEvent = { type: 'upkeep_failed'; task: 'prune_resync_runs'; code: string };

/** A payment to start. */
export interface PayInput {
  /** The counterparty VASP (bech32). */
  to: string;
  amount: number;
  currency: string;
  /** Payer / payee accounts, 16 hex digits each. @default 0000000000000001 */
  fromSubaddressHex?: string;
  toSubaddressHex?: string;
  description?: string;
}

export interface ChannelSnapshot {
  peer: string;
  state: 'disconnected' | 'connected' | 'closed';
  inflight: number;
  openObjects: number;
  peerEpoch: string | null;
  /** With several replicas: whether this replica owns the channel now (`standby`: another one may). */
  lease?: 'owner' | 'standby';
}

export interface VaspNode {
  readonly address: string;
  /** This replica's id, with several replicas of the VASP on one database (`config.replica`). */
  readonly replicaId: string | undefined;
  readonly epoch: string;
  /** ws URL of this node's channel endpoint. */
  readonly url: string;
  readonly port: number;
  readonly store: ParleyStore;
  /** Plain-HTTP routes on the channel port (health, metrics, admin, dashboard). */
  readonly http: HttpRouter;
  /** The channel to a configured peer. @throws CONFIG_INVALID for an unknown peer */
  channel(peer: string): Channel;
  readonly channels: readonly Channel[];
  /** Every channel's and the business layer's events (hot). */
  readonly events$: Observable<NodeEvent>;
  /**
   * Every channel's health events (hot): state transitions, `peer_state_lost`, `diverged`,
   * refused zombies and heartbeats. Each is also persisted (`health.history()`).
   */
  readonly health$: Observable<HealthEvent>;
  /** Channel health: snapshots, history, and the events resync acts on (`resyncTriggers$`). */
  readonly health: HealthMonitor;
  /** Whether this node's store can write (a health condition of the node: docs/storage.md). */
  readonly storeWritability: StoreWritability;
  /** Resync progress, runs and rebuilt / rejected objects of every channel (hot). */
  readonly resync$: Observable<ResyncEvent>;
  /**
   * Run a resync with `peer` now (or right after the running one; requests merge): what the
   * health module's `peer_state_lost` / `diverged` call, or an operator. `scope` limits the run
   * to those objects.
   * @throws CONFIG_INVALID for an unknown peer; SYNC_ABORTED when not connected
   */
  requestResync(peer: string, reason: string, scope?: readonly string[]): Promise<ResyncRunResult>;
  /** Resync and the network reads (get an object, get its signed history) of one channel. */
  sync(peer: string): ChannelSync;
  /** Persisted resync runs, newest first. */
  resyncRuns(peer?: string, limit?: number): Promise<ResyncRunRecord[]>;
  /**
   * Ends a command of mine that has no final outcome, locally (`parley command abandon`): durably
   * (outbox row gone, `command_abandoned` in the health history) before it resolves; it is never
   * resent, and its callers get `COMMAND_ABANDONED`. docs/operations.md, "Peer behind".
   * @throws COMMAND_UNKNOWN, COMMAND_ALREADY_FINAL, STORE_LEASE_LOST, STORE_UNAVAILABLE
   */
  abandonCommand(cid: string): Promise<AbandonedCommand>;
  /**
   * Start a payment as the sender. `queued` resolves once the create is durable in the outbox
   * (acknowledge the payment then, not before) and rejects with the code that kept it from being
   * stored; `outcome$` streams the create's final outcome (see `Channel.submit`).
   * @throws CONFIG_INVALID (unknown peer), BUSINESS_INVALID_INPUT (bad payment) before anything is stored
   */
  pay(input: PayInput): SubmittedCommand;
  status(): Promise<ChannelSnapshot[]>;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface NodeDeps {
  business?: BusinessContext;
  /** When a reaction that could not be sent runs again (see `BusinessDriverOptions`). */
  driver?: BusinessDriverOptions;
  /** Heartbeat and failure-detector knobs (see `HealthOptions` for the defaults). */
  health?: HealthOptions;
  /** Resync knobs; `onConnect: false` turns off the run on every (re)connect (to test other triggers). */
  sync?: ChannelSyncOptions & { onConnect?: boolean };
  /** The store's write probe: intervals, the `/livez` grace, the clock. */
  storeWritability?: StoreWritabilityOptions;
  /** Timers of the rate-limited refusal reports (virtual time in tests). @default asyncScheduler */
  reportScheduler?: SchedulerLike;
}

export async function createVaspNode(
  input: NodeConfigInput | NodeConfig,
  deps: NodeDeps = {},
): Promise<VaspNode> {
  const config = parseNodeConfig(input);
  // The config file's health knobs, overridden by the caller's; checked before anything opens.
  const healthOptions = { ...config.health, ...deps.health };
  resolveHealthOptions(healthOptions);
  const myKey = privateKeyFromSeedHex(config.privateKeySeed);
  const store = await openStore({
    url: config.database,
    walCheckpointPages: config.storage.walCheckpointPages,
  });
  // A node that fails to start (its port is taken, its store fails) leaves nothing behind: what
  // it started so far is stopped, newest first, and the store closed.
  const undo: Array<() => unknown> = [() => store.close()];
  try {
    return await startNode(config, healthOptions, deps, { store, myKey }, undo);
  } catch (err) {
    for (const stop of undo.reverse())
      await Promise.resolve()
        .then(stop)
        .catch(() => undefined);
    throw err;
  }
}

async function startNode(
  config: NodeConfig,
  healthOptions: HealthOptions,
  deps: NodeDeps,
  { store, myKey }: { store: ParleyStore; myKey: PrivateKey },
  undo: Array<() => unknown>,
): Promise<VaspNode> {
  const me = config.address;
  const business = deps.business ?? createAutoBusiness();
  const { epoch } = await store.identity();
  // Several replicas on one database: from here on, this replica writes a channel's commands
  // only while it holds that channel's lease (the store fences every such write).
  const replicaId = config.replica ? (config.replica.id ?? defaultReplicaId()) : undefined;
  const leases = replicaId === undefined ? undefined : createLeaseRepository(store, { owner: replicaId });

  const directory = new Map<string, PeerEntry>();
  for (const peer of config.peers) {
    directory.set(peer.address, {
      address: peer.address,
      publicKeyHex: peer.publicKey,
      transport: peer.transport,
      ...(peer.url ? { url: peer.url } : {}),
    });
    await store.upsertPeer({ address: peer.address, publicKeyHex: peer.publicKey });
  }

  const events = new Subject<NodeEvent>();
  const subs: Subscription[] = [];
  // What the peers (or anyone) sent that was refused: rate-limited, never one line per frame.
  const refusals = createRefusalReports({
    emit: (event) => events.next(event),
    ...(deps.reportScheduler ? { scheduler: deps.reportScheduler } : {}),
  });
  undo.push(() => refusals.close());
  const cores = new Map<string, ChannelCore>();
  const channels = new Map<string, Channel>();
  const drivers = new Map<string, BusinessDriver>();
  const syncs = new Map<string, ChannelSync>();
  const syncStore = createSyncRepository(store);
  const abandons = createAbandonRepository(store);
  // No run of this process has started yet: a run without an outcome was left by a process that
  // stopped in its middle. (With several replicas, a channel's are ended by the replica that
  // takes its lease: another replica may be running them now.)
  if (!leases) await syncStore.endInterruptedRuns(Date.now());
  // Histories received in a resync are verified on worker threads (one per core), started on
  // the first large history batch. This node's own signatures in them are checked by signing
  // again (deterministic, a third of a verification's cost).
  const verifyPool = createVerifyPool({ signers: [myKey] });
  undo.push(() => verifyPool.close());
  // Signatures made before a key rotation (mine or a peer's) verify with the retired keys, in
  // the signed histories a resync brings (over a channel authenticated with the current keys)
  // only: a live command must be signed with the current key.
  const retiredKeys = new Map<string, PublicKey[]>();
  const retire = (current: string, old: readonly string[]): void => {
    if (old.length > 0) retiredKeys.set(current, old.map(publicKeyFromHex));
  };
  retire(myKey.publicKey.hex, config.retiredPublicKeys);
  for (const peer of config.peers) retire(peer.publicKey, peer.retiredPublicKeys);
  const verifier = acceptingRetiredKeys(verifyPool, retiredKeys);
  const resync = new Subject<ResyncEvent>();
  const health = createHealthMonitor(healthOptions, {
    me,
    epoch,
    store: createHealthRepository(store),
    peers: store,
  });
  undo.push(() => health.close());
  const storeWritability = createStoreWritability(deps.storeWritability ?? {}, {
    probe: () => store.probeWritable?.() ?? Promise.resolve({ writable: true }),
  });
  undo.push(() => storeWritability.close());
  undo.push(() => {
    for (const sub of subs) sub.unsubscribe();
  });

  for (const peer of directory.values()) {
    const core = createChannelCore(
      { me, peer: peer.address, maxFrameBytes: config.maxFrameBytes },
      {
        store,
        myKey,
        peerKey: publicKeyFromHex(peer.publicKeyHex),
        validate: ({ payment, previous, origin }) =>
          validateIncoming({ payment, previous, origin, me, business }),
        // Live frames: the current keys only (a retired key may have leaked).
        verifier: verifyPool,
      },
    );
    await core.init();
    const sync = createChannelSync(
      { maxFrameBytes: config.maxFrameBytes, ...deps.sync },
      {
        me,
        peer: peer.address,
        myKey,
        peerKey: publicKeyFromHex(peer.publicKeyHex),
        isServer: core.isServer,
        store: syncStore,
        summary: async () => core.openSummary(),
        exclusive: (fn) => core.exclusive(fn),
        afterApply: () => core.exclusive(() => core.reloadSummary()),
        isPending: (cid) => core.isPending(cid),
        dropPending: (cid) => core.dropPending(cid),
        verifier,
        // The frames themselves are live: the peer's current key only.
        frameVerifier: verifyPool,
      },
    );
    syncs.set(peer.address, sync);
    const channel = createChannel(
      { retransmitMs: config.retransmitMs },
      {
        core,
        onControlFrame: (frame, type, connection) => {
          if (isSyncFrameType(type)) sync.handleFrame(frame, connection);
          else if (type === 'Heartbeat') health.onControlFrame(frame, type, connection);
          // A frame of a kind this version does not know (a newer peer's, say): dropped, but
          // said, and the connection kept.
          else {
            refusals.frameRefused({
              type: 'frame_refused',
              peer: peer.address,
              code: 'PROTOCOL_MALFORMED_FRAME',
              // Read from an unverified payload: kept short.
              frameType: type.slice(0, 64),
            });
          }
        },
      },
    );
    // A LIP-1 HTTP peer sends no heartbeats: the health monitor does not watch its channel. A
    // replica watches the channels it serves only (from when it takes one over).
    undo.push(() => channel.close());
    if (peer.transport !== 'lip1-http' && !leases) await health.addChannel(channel, core);
    // A replica serves a channel only once it holds the channel's lease.
    if (leases) channel.suspend(notOwner(peer.address));
    cores.set(peer.address, core);
    channels.set(peer.address, channel);
    subs.push(
      channel.events$.subscribe((event) =>
        event.type === 'frame_refused' ? refusals.frameRefused(event) : events.next(event),
      ),
    );
    // Commands stuck at a peer that does not progress (LIP-1 HTTP: it cannot resync): `peer_behind`.
    subs.push(health.peerBehind.watch(peer.address, peer.transport ?? 'ws', channel.events$));
    /** At most one `command_waiting` run per object and interval, however many commands wait on it. */
    const waitingRuns = createKeyedThrottle({ intervalMs: WAITING_RESYNC_INTERVAL_MS, maxKeys: 10_000 });
    const driver = createBusinessDriver(
      {
        me,
        channel,
        store,
        business,
        hasPending: (referenceId) => core.pending().some((p) => p.referenceId === referenceId),
        abandonedReads: () => abandons.abandonedReads(peer.address),
      },
      deps.driver,
    );
    drivers.set(peer.address, driver);
    undo.push(
      () => driver.close(),
      () => sync.close(),
    );
    subs.push(driver.events$.subscribe(events));
    subs.push(
      sync.events$.subscribe(resync),
      // Seed scenarios 1 and 2: whoever answers `used_dependencies` may be ahead of the
      // proposer; a resync of that object pushes the missing versions when it is.
      channel.commands$.subscribe((incoming) => {
        if (incoming.status === 'failure' && incoming.code === 'used_dependencies') {
          sync.run('used_dependencies', [incoming.record.referenceId]).catch(() => undefined);
        }
      }),
      // A command the peer keeps answering `wait` reads a version it lacks (it lost state, or
      // missed my command that wrote it), and while it is in flight the open-object digests are
      // not compared: a resync of that object pushes what the peer lacks. At the third `wait`,
      // then every tenth.
      channel.events$.subscribe((event) => {
        if (event.type !== 'command_waiting') return;
        if (event.waits !== WAITS_BEFORE_RESYNC && event.waits % 10 !== 0) return;
        if (waitingRuns.pass(event.referenceId) === undefined) return;
        sync.run('command_waiting', [event.referenceId]).catch(() => undefined);
      }),
      sync.events$.subscribe((event) => {
        if (event.type === 'resync_finished') {
          health.peerBehind.runEnded(peer.address);
          // Commands the peer answered `wait` (it lacked the version) may pass now, and objects
          // rebuilt here may be waiting for my business layer's next step. (After a run that
          // moved nothing, resending them at once would only defeat their backoff.)
          if (event.objectsSent > 0 || event.objectsReceived > 0) channel.retransmitNow();
          if (event.objectsReceived > 0) void driver.recover().catch(() => undefined);
        } else if (event.type === 'fork_lost') {
          for (const cid of event.droppedPending) {
            channel.abandon(
              cid,
              new ParleyError('SYNC_FORK_LOST', `${event.referenceId}: my branch lost a fork`),
            );
          }
          void driver.forkLost({
            referenceId: event.referenceId,
            keep: event.keep,
            droppedCids: event.droppedCids,
            droppedPending: event.droppedPending,
          });
        }
      }),
    );
  }
  subs.push(resync.subscribe(events));
  subs.push(
    pruneRunHistory(syncStore, config.sync.runHistoryRetentionMs, {
      onError: (err) =>
        events.next({
          type: 'upkeep_failed',
          task: 'prune_resync_runs',
          code: isParleyError(err) ? err.code : 'INTERNAL',
        }),
    }),
  );
  const resyncOnConnect = deps.sync?.onConnect ?? true;
  subs.push(
    health.resyncTriggers$.subscribe((trigger) => {
      // A new epoch shows at the hello, where the dialer's run on connect already covers it.
      if (trigger.kind === 'peer_state_lost' && resyncOnConnect) return;
      syncs
        .get(trigger.peer)
        ?.run(trigger.kind)
        .catch(() => undefined);
    }),
  );

  const summary = (peer: string) => cores.get(peer)!.openSummary();
  const registry = createConnectionRegistry(me);
  const adopt = (connection: Connection): void => {
    const channel = channels.get(connection.peer);
    if (!channel) {
      connection.close(4403, 'unknown peer');
      return;
    }
    if (channel.suspended) {
      connection.close(CloseCode.NOT_OWNER, NOT_OWNER_REASON);
      return;
    }
    // The epoch first: a zombie never reaches the registry, and `peer_state_lost` is out
    // before the channel sends its first command on this connection.
    if (!health.admit(connection)) return;
    if (!registry.offer(connection)) return;
    const sync = syncs.get(connection.peer)!;
    // Before the channel subscribes: frames the peer sent right after the handshake are
    // delivered during `attach`, and may be sync frames.
    sync.attach(connection);
    channel.attach(connection);
    // Resync on every (re)connect, led by the side that dialed (PROTOCOL.md §7).
    if (resyncOnConnect && connection.dialed) sync.run('connect').catch(() => undefined);
  };

  const tls = config.listen.tls
    ? { cert: readFileSync(config.listen.tls.certFile), key: readFileSync(config.listen.tls.keyFile) }
    : undefined;
  /**
   * Asks my business whether to serve a channel to `peer` now (each hello, dial and LIP-1 HTTP
   * request): it may refuse a counterparty for a while without a config change or a restart.
   * @throws BUSINESS_NOT_AUTHORIZED when it refuses; what else it throws, as is
   */
  async function openChannelTo(peer: string): Promise<void> {
    const ask = business.openChannelTo;
    if (!ask) return;
    try {
      // A business that hangs must not hold a dial, a handshake slot or the node's close.
      await firstValueFrom(
        defer(async () => ask.call(business, peer)).pipe(
          timeout({
            first: OPEN_CHANNEL_TO_TIMEOUT_MS,
            with: () =>
              throwError(
                () =>
                  new ParleyError(
                    'TRANSPORT_INTERNAL_ERROR',
                    `openChannelTo(${peer}) did not answer within ${OPEN_CHANNEL_TO_TIMEOUT_MS} ms`,
                  ),
              ),
          }),
        ),
      );
    } catch (err) {
      if (!isParleyError(err, 'BUSINESS_NOT_AUTHORIZED')) throw err;
      throw new ParleyError('BUSINESS_NOT_AUTHORIZED', `my business refuses a channel to ${peer} now`, {
        cause: err,
      });
    }
  }
  const router = createHttpRouter();
  // LIP-1 HTTP peers: one link each, attached for the node's life; their requests come in on
  // `/v1/<peer>/<me>/command` (the reference's route, sender first).
  // A link closes only with its channel or the node (it never refuses a peer as "not reading").
  const httpLinks = new Map<string, Lip1HttpLink>();
  const httpPeers = [...directory.values()].filter(
    (peer): peer is PeerEntry & { url: string } => peer.transport === 'lip1-http' && peer.url !== undefined,
  );
  if (httpPeers.length > 0) {
    router.route('/v1/', (req, res, url) => {
      const [, version, sender, receiver, command, ...rest] = url.pathname.split('/');
      if (version !== 'v1' || command !== 'command' || rest.length > 0 || receiver !== me) return false;
      const link = sender === undefined ? undefined : httpLinks.get(sender);
      if (!link) {
        if (sender === undefined || directory.get(sender)?.transport !== 'lip1-http') {
          const remoteAddress = req.socket.remoteAddress;
          refusals.lip1Refused({
            sender: sender ?? '',
            status: 404,
            reason: 'unknown_sender',
            remoteAddress,
          });
          return false;
        }
        // A peer of ours that this node does not serve now: another replica of this VASP does,
        // or the node is closing. The peer retries (LIP-1 resends).
        res.setHeader('Retry-After', '1');
        refuseLip1Request(req, res, 503, channels.get(sender)?.suspended ? NOT_OWNER_REASON : 'node closing');
        return true;
      }
      // As the reference: 401 when my business refuses the sender (for now).
      return openChannelTo(sender!).then(
        () => link.handle(req, res).then(() => true),
        (err: unknown) => {
          if (!isParleyError(err, 'BUSINESS_NOT_AUTHORIZED')) throw err;
          refuseLip1Request(req, res, 401, err.message);
          return true;
        },
      );
    });
  }
  const metrics = createNodeMetrics({ node: me, monitor: health, channels: [...channels.values()] });
  registerHealthRoutes(router, {
    access: {
      allowRemote: config.status.allowRemote,
      allowedHosts: config.allowedHosts,
      ...(config.status.token !== undefined ? { token: config.status.token } : {}),
    },
    monitor: health,
    metrics,
    node: { address: me, epoch },
    probeStore: () => store.getPeer(me),
    storeWritability,
  });
  subs.push(storeWritability.events$.subscribe((event) => events.next(event)));
  const stopStoreReport = reportStoreWritability(storeWritability, {
    me,
    registry: metrics.registry,
    history: createHealthRepository(store),
  });
  undo.push(stopStoreReport);
  // Handshake slots kept for the peers this node knows the hosts of (docs/security.md).
  const peerHosts = createPeerHosts(
    [...directory.values()].flatMap((peer) => (peer.transport !== 'lip1-http' && peer.url ? [peer.url] : [])),
  );
  undo.push(() => peerHosts.close());
  const { limits } = config.listen;
  const server = createChannelServer(
    {
      onRequest: router.listener,
      host: config.listen.host,
      port: config.listen.port,
      maxFrameBytes: config.maxFrameBytes,
      allowInsecure: config.listen.allowInsecure,
      handshakeTimeoutMs: limits.handshakeTimeoutMs,
      maxPendingHandshakes: limits.maxPendingHandshakes,
      maxPendingHandshakesPerAddress: limits.maxPendingHandshakesPerAddress,
      reservedHandshakes: limits.reservedHandshakes,
      http: {
        headersTimeoutMs: limits.headersTimeoutMs,
        requestTimeoutMs: limits.requestTimeoutMs,
        keepAliveTimeoutMs: limits.keepAliveTimeoutMs,
        maxConnections: limits.maxConnections,
      },
      ...(tls ? { tls } : {}),
    },
    {
      me,
      myKey,
      isReservedAddress: (address) => peerHosts.has(address),
      // A LIP-1 HTTP peer has no WebSocket channel: its hello is refused as from an unknown peer.
      directory: (address: string) => {
        const peer = directory.get(address);
        return peer?.transport === 'lip1-http' ? undefined : peer;
      },
      localState: async (peer: string) => {
        if (channels.get(peer)?.suspended) throw notOwner(peer, 'TRANSPORT_NOT_OWNER');
        await openChannelTo(peer);
        return { epoch, openObjects: await summary(peer) };
      },
    },
  );
  undo.push(() => server.close());
  subs.push(server.connections$.subscribe(adopt));
  /** One `handshake_refused` per remote address, reason and interval. */
  const refusedHellos = createKeyedThrottle({
    intervalMs: REFUSED_HELLO_INTERVAL_MS,
    maxKeys: MAX_REFUSED_HELLO_KEYS,
  });
  subs.push(
    server.handshakeFailures$.subscribe(({ error, remoteAddress }) => {
      // Anyone can open a socket: one event per address, reason and interval, with how many more
      // were refused meanwhile, so that a scanner cannot flood the log (and, behind a proxy where
      // every hello has one address, a peer's own reason still shows). Past so many addresses
      // within one interval, a flood: not reported one by one.
      const suppressed = refusedHellos.pass(`${remoteAddress ?? ''}|${error.code}`);
      if (suppressed === undefined) return;
      events.next({
        type: 'handshake_refused',
        code: error.code,
        message: error.message,
        remoteAddress,
        ...(suppressed > 0 ? { suppressed } : {}),
      });
    }),
  );
  await server.listening;
  // After the listen: a node that cannot listen has sent nothing (until then, its LIP-1 HTTP
  // route answers 404 and the peer retries).
  const dialers = new Map<string, ReconnectingDialer>();
  // Heartbeats went both ways: the link is proven, the dialer's next redial starts its backoff over.
  subs.push(health.twoWay$.subscribe((connection) => dialers.get(connection.peer)?.markHealthy()));
  /** Opens the channel's outbound side: its LIP-1 HTTP link, or its dialer (peers with a URL). */
  function connectOut(peer: PeerEntry): void {
    if (peer.url === undefined) return;
    if (peer.transport === 'lip1-http') {
      const link = createLip1HttpLink({
        me,
        peer: peer.address,
        url: peer.url,
        maxFrameBytes: config.maxFrameBytes,
        peerKey: publicKeyFromHex(peer.publicKeyHex),
        myKey,
        onRefused: (refusal) => refusals.lip1Refused(refusal),
      });
      httpLinks.set(peer.address, link);
      channels.get(peer.address)!.attach(link);
      return;
    }
    const dialer = createReconnectingDialer(
      peer,
      { maxFrameBytes: config.maxFrameBytes },
      {
        me,
        myKey,
        localState: async () => {
          await openChannelTo(peer.address);
          return { epoch, openObjects: await summary(peer.address) };
        },
        liveConnection: (address: string) => registry.current(address),
      },
    );
    dialer.connections$.subscribe(adopt);
    // Why a channel stays down (the dialer retries on its own): completes with the dialer.
    dialer.events$.subscribe((e) => {
      if (e.type === 'backoff') events.next({ ...e, type: 'redial', peer: peer.address });
      if (e.type !== 'dial_failed') return;
      events.next({ type: 'dial_failed', peer: peer.address, code: e.error.code, message: e.error.message });
    });
    dialers.set(peer.address, dialer);
  }
  async function disconnectOut(peer: string, code: number, reason: string): Promise<void> {
    httpLinks.get(peer)?.close(code, reason);
    httpLinks.delete(peer);
    const dialer = dialers.get(peer);
    dialers.delete(peer);
    await dialer?.close();
  }

  // Started from here on: stopped again if the node fails to start after all.
  undo.push(() =>
    Promise.all([...directory.keys()].map((peer) => disconnectOut(peer, 1001, 'node closing'))),
  );
  const replicas =
    leases && config.replica
      ? startChannelServing(
          config.replica,
          { leases, peers: [...directory.keys()] },
          {
            closing: () => closing !== undefined,
            emit: (event) => events.next(event),
            async giveUp(peer) {
              // The live connection is closed with 4421 first, then the dialer or link goes.
              health.removeChannel(peer);
              channels
                .get(peer)!
                .suspend(
                  new ParleyError(
                    'CHANNEL_CLOSED',
                    `another replica serves the channel to ${peer} now; the command stays in the outbox`,
                  ),
                );
              await disconnectOut(peer, CloseCode.NOT_OWNER, NOT_OWNER_REASON);
            },
            async load(peer, current) {
              // The former owner's runs of this channel ended with it; its commands are in the
              // outbox, and it may have seen a new epoch of the peer.
              await syncStore.endInterruptedRuns(Date.now(), peer);
              await cores.get(peer)!.reload();
              if (current() && directory.get(peer)!.transport !== 'lip1-http')
                await health.addChannel(channels.get(peer)!, cores.get(peer)!);
            },
            unwatch: (peer) => health.removeChannel(peer),
            serve(peer) {
              channels.get(peer)!.resume();
              connectOut(directory.get(peer)!);
              void drivers
                .get(peer)!
                .recover()
                .catch(() => undefined);
            },
          },
        )
      : undefined;
  if (replicas) undo.push(() => replicas.keeper.close());
  else {
    for (const peer of directory.values()) connectOut(peer);
    for (const driver of drivers.values()) void driver.recover().catch(() => undefined);
  }

  let closing: Promise<void> | undefined;
  const node: VaspNode = {
    address: me,
    replicaId,
    epoch,
    get url() {
      return server.url;
    },
    get port() {
      return server.port;
    },
    store,
    http: router,
    channel(peer) {
      const channel = channels.get(channelAddress(peer));
      if (!channel)
        throw new ParleyError('CONFIG_INVALID', `no channel to ${peer}: not in the peer directory`);
      return channel;
    },
    get channels() {
      return [...channels.values()];
    },
    events$: events.asObservable(),
    resync$: resync.asObservable(),
    requestResync: (peer, reason, scope) => node.sync(peer).run(reason, scope),
    sync(peer) {
      const sync = syncs.get(channelAddress(peer));
      if (!sync) throw new ParleyError('CONFIG_INVALID', `no channel to ${peer}: not in the peer directory`);
      return sync;
    },
    resyncRuns: (peer, limit = 50) =>
      syncStore.runs(peer === undefined ? undefined : channelAddress(peer), limit),
    health$: health.health$,
    health,
    abandonCommand: (cid) =>
      abandonCommand(
        {
          channels: () =>
            [...channels.values()].map((channel) => ({ channel, core: cores.get(channel.peer)! })),
          store,
          abandons,
          announce: (event) => health.announce(event),
        },
        cid,
      ),
    storeWritability,
    pay(payInput) {
      const channel = node.channel(payInput.to);
      const payment = createPaymentObject({
        me,
        meSubaddressHex: payInput.fromSubaddressHex ?? '0000000000000001',
        to: channel.peer,
        toSubaddressHex: payInput.toSubaddressHex ?? '0000000000000001',
        amount: payInput.amount,
        currency: payInput.currency,
        ...(payInput.description !== undefined ? { description: payInput.description } : {}),
      });
      return channel.submit({ payment });
    },
    async status() {
      const out: ChannelSnapshot[] = [];
      for (const channel of channels.values()) {
        const peer = await store.getPeer(channel.peer);
        out.push({
          peer: channel.peer,
          state: channel.connection ? 'connected' : 'disconnected',
          inflight: channel.inflight,
          openObjects: await store.countOpenObjects(channel.peer),
          peerEpoch: peer?.epoch ?? null,
          // `owner` once this replica serves the channel (its state reloaded after a takeover).
          ...(replicas ? { lease: channel.suspended ? ('standby' as const) : ('owner' as const) } : {}),
        });
      }
      return out;
    },
    close() {
      closing ??= (async () => {
        await dashboard.close();
        // Health first: no `down` for peers this node disconnects itself.
        metrics.close();
        await health.close();
        storeWritability.close();
        stopStoreReport();
        // No channel is taken over or given up from here on.
        await replicas?.settled();
        // Answers the LIP-1 HTTP requests still waiting (503), so the server can close.
        await Promise.all([...directory.keys()].map((peer) => disconnectOut(peer, 1001, 'node closing')));
        await server.close();
        peerHosts.close();
        for (const driver of drivers.values()) driver.close();
        // Resync before the channels and the store: runs in progress end `aborted`, on record.
        await Promise.all([...syncs.values()].map((sync) => sync.close()));
        for (const channel of channels.values()) await channel.close();
        // Every write is done: the leases go, for another replica to take at once.
        await replicas?.keeper.close();
        for (const s of subs) s.unsubscribe();
        refusals.close();
        resync.complete();
        events.complete();
        await verifyPool.close();
        await store.close();
      })();
      return closing;
    },
    [Symbol.asyncDispose]() {
      return node.close();
    },
  };
  // The live dashboard at /dashboard/ (socket.io on the same port), read-only.
  const dashboard = createDashboard(
    {
      thresholds: resolveHealthOptions(healthOptions),
      allowRemote: config.dashboard.allowRemote,
      allowedHosts: config.allowedHosts,
    },
    { source: node, httpServer: server.httpServer, router },
  );
  return node;
}

/** Shortest time between two `command_waiting` runs of one object. */
const WAITING_RESYNC_INTERVAL_MS = 30_000;

/** Shortest time between two `handshake_refused` events for one remote address and reason. */
const REFUSED_HELLO_INTERVAL_MS = 10_000;
/** Addresses and reasons tracked at once for that. */
const MAX_REFUSED_HELLO_KEYS = 1000;

/** How long my business may take to answer `openChannelTo`. */
const OPEN_CHANNEL_TO_TIMEOUT_MS = 5_000;
