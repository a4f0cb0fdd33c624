/**
 * The composition root: `createVaspNode(config)` wires the store, the channels, the
 * WebSocket server and dialers, and the business layer into one running VASP node.
 */

import { readFileSync } from 'node:fs';
import { merge, Subject, type Subscription } from 'rxjs';
import { storePaymentsView } from './admin/payments.js';
import { createPaymentObject } from './business/index.js';
import { createOpenChannelTo } from './business/open-channel-to.js';
import { type Channel, NOT_OWNER_REASON } from './channel/channel.js';
import { type NodeConfig, type NodeConfigInput, parseNodeConfig } from './config.js';
import { createDashboard } from './dashboard/dashboard.js';
import { isParleyError, ParleyError } from './errors.js';
import { eventsRecorded } from './events/index.js';
import { abandonCommand } from './health/abandon.js';
import {
  createHealthMonitor,
  createNodeMetrics,
  createStoreWritability,
  type HealthOptions,
  registerHealthRoutes,
  reportStoreWritability,
  resolveHealthOptions,
} from './health/index.js';
import { createHttpRouter, type HttpRouter } from './http/router.js';
import { selectBusiness, wireEvents } from './node/back-office.js';
import type { ChannelSnapshot, NodeDeps, NodeEvent, VaspNode } from './node/types.js';
import { createAdopt, createOutbound } from './peer/connections.js';
import { createPeerChannels, type PeerChannels } from './peer/peer-channels.js';
import { CloseCode } from './protocol/close-codes.js';
import {
  channelAddress,
  type OpenObjectsSummary,
  type PrivateKey,
  type PublicKey,
  privateKeyFromSeedHex,
  publicKeyFromHex,
} from './protocol/index.js';
import { acceptingRetiredKeys, BACKGROUND_POOL, createVerifyPool } from './protocol/verify-pool.js';
import { createRefusalReports } from './refusal-reports.js';
import type { LeaseKeeper } from './replica/lease-keeper.js';
import { type ChannelServing, defaultReplicaId, notOwner, startChannelServing } from './replica/takeover.js';
import { createAbandonRepository } from './store/abandon-repository.js';
import { createHealthRepository } from './store/health-repository.js';
import { createLeaseRepository } from './store/lease-repository.js';
import { openStore } from './store/open-store.js';
import { createReplicaRegistry } from './store/replica-repository.js';
import { createSyncRepository } from './store/sync-repository.js';
import type { ParleyStore } from './store/types.js';
import type { ResyncEvent } from './sync/resync.js';
import { pruneRunHistory } from './sync/run-history.js';
import { runHealthTriggers } from './sync/triggers.js';
import { createConnectionRegistry } from './transport/connection-registry.js';
import type { Lip1HttpLink } from './transport/lip1-http.js';
import { createLip1HttpRoute } from './transport/lip1-http-route.js';
import { createPeerHosts, type PeerHosts } from './transport/peer-hosts.js';
import { reportRefusedHellos } from './transport/refused-hellos.js';
import type { PeerEntry } from './transport/types.js';
import { type ChannelServer, createChannelServer } from './transport/ws-server.js';
import { background, type ReportFailure, settled } from './util/background.js';

export type {
  BackgroundFailed,
  ChannelSnapshot,
  NodeDeps,
  NodeEvent,
  PayInput,
  TransportEvent,
  UpkeepEvent,
  VaspNode,
} from './node/types.js';

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
    groupCommit: { events: eventsRecorded(config.events) },
  });
  // A node that fails to start (its port is taken, its store fails) leaves nothing behind: what
  // it started so far is stopped, newest first, and the store closed.
  const undo: Array<() => unknown> = [() => store.close()];
  try {
    return await startNode(config, healthOptions, deps, { store, myKey }, undo);
  } catch (err) {
    // Each stopped either way: the start's own error is the one thrown.
    for (const stop of undo.reverse()) await settled(Promise.resolve().then(stop));
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
  const base = await openBase(config, healthOptions, deps, { store, myKey }, undo);
  const { leases, directory, events, syncStore, health } = base;
  const peers = await openPeers(config, deps, base, { store, myKey }, undo);
  const { cores, channels, drivers } = peers;
  const resyncOnConnect = deps.sync?.onConnect ?? true;
  watchResync(config, base, peers, resyncOnConnect);
  const served = await serve(config, { store, myKey }, base, peers, { resyncOnConnect, undo });
  const { connectOut, disconnectOut } = served;

  // Started from here on: stopped again if the node fails to start after all.
  undo.push(() =>
    Promise.all(
      [...directory.keys()].map((peer) => disconnectOut(peer, CloseCode.GOING_AWAY, 'node closing')),
    ),
  );
  let closing: Promise<void> | undefined;
  const replicas =
    leases && config.replica
      ? startChannelServing(
          config.replica,
          {
            leases,
            peers: [...directory.keys()],
            replicas: createReplicaRegistry(store, { id: leases.owner }),
          },
          {
            closing: () => closing !== undefined,
            emit: (event) => events.next(event),
            report: base.report,
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
              void background(drivers.get(peer)!.recover(), 'recover', base.report, peer);
            },
          },
        )
      : undefined;
  if (replicas) undo.push(() => replicas.keeper.close());
  else {
    for (const peer of directory.values()) connectOut(peer);
    for (const [peer, driver] of drivers) void background(driver.recover(), 'recover', base.report, peer);
  }

  const parts: NodeParts = { ...base, ...peers, ...served, store };
  const node = nodeFacade(parts, replicas?.keeper, () => {
    closing ??= closeNode(parts, { dashboard, replicas });
    return closing;
  });
  // The live dashboard at /dashboard/ (socket.io on the same port), read-only; its payments view
  // answers as the admin API does.
  const payments = storePaymentsView(store, config.address);
  const dashboard = createDashboard(
    {
      thresholds: resolveHealthOptions(healthOptions),
      allowRemote: config.dashboard.allowRemote,
      allowedHosts: config.allowedHosts,
    },
    {
      source: node,
      httpServer: served.server.httpServer,
      router: served.router,
      ...(payments ? { payments } : {}),
    },
  );
  return Object.assign(node, wireEvents(config, { ...parts, undo }));
}

/**
 * The node's own parts, before any channel: its identity, the peer directory (stored), the
 * event streams, the verify pool, health and the store's write probe.
 */
async function openBase(
  config: NodeConfig,
  healthOptions: HealthOptions,
  deps: NodeDeps,
  { store, myKey }: { store: ParleyStore; myKey: PrivateKey },
  undo: Array<() => unknown>,
) {
  const me = config.address;
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
  const report: ReportFailure = (task, error, peer) =>
    events.next({
      type: 'background_failed',
      task,
      ...(peer === undefined ? {} : { peer }),
      code: isParleyError(error) ? error.code : 'INTERNAL',
      message: error instanceof Error ? error.message : String(error),
    });
  const subs: Subscription[] = [];
  const business = deps.business ?? selectBusiness(config, { undo, subs, health: () => health });
  // What the peers (or anyone) sent that was refused: rate-limited, never one line per frame.
  const refusals = createRefusalReports({
    emit: (event) => events.next(event),
    ...(deps.reportScheduler ? { scheduler: deps.reportScheduler } : {}),
  });
  undo.push(() => refusals.close());
  const syncStore = createSyncRepository(store, { events: eventsRecorded(config.events) });
  const abandons = createAbandonRepository(store);
  // No run of this process has started yet: a run without an outcome was left by a process that
  // stopped in its middle. (With several replicas, a channel's are ended by the replica that
  // takes its lease: another replica may be running them now.)
  if (!leases) await syncStore.endInterruptedRuns(Date.now());
  // Batches of live frames are verified (and signed) on worker threads (one per core), started
  // on the first large batch. This node's own signatures are checked by signing again
  // (deterministic, a third of a verification's cost).
  const verifyPool = createVerifyPool({ signers: [myKey] });
  undo.push(() => verifyPool.close());
  // Histories received in a resync or a restore are verified on a pool of their own whose
  // threads yield the cores to live traffic and end when idle.
  const historyPool = createVerifyPool({ signers: [myKey], ...BACKGROUND_POOL });
  undo.push(() => historyPool.close());
  // Signatures made before a key rotation (mine or a peer's) verify with the retired keys, in
  // the signed histories a resync brings (over a channel authenticated with the current keys)
  // only: a live command must be signed with the current key.
  const retiredKeys = new Map<string, PublicKey[]>();
  const retire = (current: string, old: readonly string[]): void => {
    if (old.length > 0) retiredKeys.set(current, old.map(publicKeyFromHex));
  };
  retire(myKey.publicKey.hex, config.retiredPublicKeys);
  for (const peer of config.peers) retire(peer.publicKey, peer.retiredPublicKeys);
  const verifier = acceptingRetiredKeys(historyPool, retiredKeys);
  const resync = new Subject<ResyncEvent>();
  const health = createHealthMonitor(healthOptions, {
    me,
    epoch,
    store: createHealthRepository(store, { events: eventsRecorded(config.events) }),
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
  return {
    me,
    business,
    epoch,
    replicaId,
    leases,
    directory,
    events,
    report,
    subs,
    refusals,
    syncStore,
    abandons,
    verifyPool,
    historyPool,
    verifier,
    resync,
    health,
    storeWritability,
  };
}

type NodeBase = Awaited<ReturnType<typeof openBase>>;

/** Every configured peer's channel (`src/peer/`); with several replicas, each suspended until leased. */
function openPeers(
  config: NodeConfig,
  deps: NodeDeps,
  base: NodeBase,
  { store, myKey }: { store: ParleyStore; myKey: PrivateKey },
  undo: Array<() => unknown>,
): Promise<PeerChannels> {
  const { leases, directory, events, subs, syncStore, health } = base;
  return createPeerChannels(
    directory,
    {
      me: base.me,
      maxFrameBytes: config.maxFrameBytes,
      retransmitMs: config.retransmitMs,
      sync: { restoreObjectsPerS: config.sync.restoreObjectsPerS, ...deps.sync },
      driver: deps.driver,
    },
    {
      store,
      myKey,
      business: base.business,
      syncStore,
      abandons: base.abandons,
      liveVerifier: base.verifyPool,
      historyVerifier: base.verifier,
      health,
      refusals: base.refusals,
      events,
      report: base.report,
      resync: base.resync,
      subs,
      undo,
      ...(leases ? { suspendUntilLeased: (peer: string) => notOwner(peer) } : {}),
    },
  );
}

/**
 * Every channel's resync events on the node's `events$`, the run history pruned, and the runs
 * the health monitor asks for.
 */
function watchResync(
  config: NodeConfig,
  base: NodeBase,
  peers: PeerChannels,
  resyncOnConnect: boolean,
): void {
  const { events, subs, syncStore } = base;
  subs.push(base.resync.subscribe(events));
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
  subs.push(runHealthTriggers(base.health.resyncTriggers$, peers.syncs, { onConnect: resyncOnConnect }));
}

/**
 * The node's network side: its HTTP routes (LIP-1 HTTP, health, metrics), its channel server
 * (listening when this resolves), and each channel's outbound side.
 */
async function serve(
  config: NodeConfig,
  { store, myKey }: { store: ParleyStore; myKey: PrivateKey },
  base: NodeBase,
  { cores, channels, syncs }: PeerChannels,
  { resyncOnConnect, undo }: { resyncOnConnect: boolean; undo: Array<() => unknown> },
) {
  const { me, epoch, directory, events, subs, refusals, health, storeWritability } = base;
  const summary = (peer: string) => cores.get(peer)!.openSummary();
  const registry = createConnectionRegistry(me);
  const adopt = createAdopt({ channels, syncs, health, registry, resyncOnConnect });

  const tls = config.listen.tls
    ? { cert: readFileSync(config.listen.tls.certFile), key: readFileSync(config.listen.tls.keyFile) }
    : undefined;
  const openChannelTo = createOpenChannelTo(base.business);
  const router = createHttpRouter();
  // LIP-1 HTTP peers: one link each, attached for the node's life; their requests come in on
  // `/v1/<peer>/<me>/command` (the reference's route, sender first).
  // A link closes only with its channel or the node (it never refuses a peer as "not reading").
  const httpLinks = new Map<string, Lip1HttpLink>();
  const httpPeers = [...directory.values()].filter(
    (peer): peer is PeerEntry & { url: string } => peer.transport === 'lip1-http' && peer.url !== undefined,
  );
  if (httpPeers.length > 0) {
    router.route(
      '/v1/',
      createLip1HttpRoute({
        me,
        directory,
        links: httpLinks,
        onRefused: (refusal) => refusals.lip1Refused(refusal),
        unservedReason: (sender) => (channels.get(sender)?.suspended ? NOT_OWNER_REASON : 'node closing'),
        openChannelTo,
      }),
    );
  }
  const peerNames = new Map(config.peers.map((p) => [p.address, p.name ?? p.address]));
  const metricsDeps = { node: me, monitor: health, channels: [...channels.values()], peerNames };
  const restore$ = merge(...[...syncs.values()].map((sync) => sync.restore$));
  const metrics = createNodeMetrics({ ...metricsDeps, resync$: base.resync, restore$ });
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
    restores: () =>
      [...syncs].flatMap(([peer, sync]) => {
        const restore = sync.restoreStatus();
        return restore ? [{ peer, ...restore }] : [];
      }),
  });
  subs.push(storeWritability.events$.subscribe((event) => events.next(event)));
  const stopStoreReport = reportStoreWritability(storeWritability, {
    me,
    registry: metrics.registry,
    history: createHealthRepository(store),
    report: base.report,
  });
  undo.push(stopStoreReport);
  // Handshake slots kept for the peers this node knows the hosts of (docs/security.md).
  const peerHosts = createPeerHosts(
    [...directory.values()].flatMap((peer) => (peer.transport !== 'lip1-http' && peer.url ? [peer.url] : [])),
  );
  undo.push(() => peerHosts.close());
  const server = createNodeServer(config, tls, {
    me,
    myKey,
    epoch,
    router,
    peerHosts,
    directory,
    channels,
    openChannelTo,
    summary,
  });
  undo.push(() => server.close());
  subs.push(server.connections$.subscribe(adopt));
  subs.push(reportRefusedHellos(server.handshakeFailures$, (event) => events.next(event)));
  await server.listening;
  // After the listen: a node that cannot listen has sent nothing (until then, its LIP-1 HTTP
  // route answers 404 and the peer retries).
  const { connectOut, disconnectOut } = createOutbound({
    me,
    myKey,
    epoch,
    maxFrameBytes: config.maxFrameBytes,
    channels,
    httpLinks,
    registry,
    adopt,
    openChannelTo,
    summary,
    health,
    onRefused: (refusal) => refusals.lip1Refused(refusal),
    emit: (event) => events.next(event),
    subs,
  });
  return { router, metrics, stopStoreReport, peerHosts, server, connectOut, disconnectOut, peerNames };
}

type NodeParts = NodeBase & PeerChannels & Awaited<ReturnType<typeof serve>> & { store: ParleyStore };

/** The channel server on the configured address, its limits, TLS and hello checks. */
function createNodeServer(
  config: NodeConfig,
  tls: { cert: Buffer; key: Buffer } | undefined,
  deps: {
    me: string;
    myKey: PrivateKey;
    epoch: string;
    router: HttpRouter;
    peerHosts: PeerHosts;
    directory: ReadonlyMap<string, PeerEntry>;
    channels: ReadonlyMap<string, Channel>;
    openChannelTo(peer: string): Promise<void>;
    summary(peer: string): OpenObjectsSummary;
  },
): ChannelServer {
  const { me, myKey, epoch, router, peerHosts, directory, channels, openChannelTo, summary } = deps;
  const { limits } = config.listen;
  return createChannelServer(
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
}

/** The node's API over its parts; `close` stops them (once). */
function nodeFacade(parts: NodeParts, keeper: LeaseKeeper | undefined, close: () => Promise<void>): VaspNode {
  const { me, epoch, store, router, server, health, storeWritability, events, resync } = parts;
  const { channels, cores, syncs, syncStore, abandons, peerNames } = parts;
  const node: VaspNode = {
    address: me,
    replicaId: parts.replicaId,
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
          name: peerNames.get(channel.peer) ?? channel.peer,
          state: channel.connection ? 'connected' : 'disconnected',
          inflight: channel.inflight,
          inflightStates: channel.inflightStates,
          openObjects: await store.countOpenObjects(channel.peer),
          peerEpoch: peer?.epoch ?? null,
          // `owner` once this replica serves the channel (its state reloaded after a takeover).
          ...(keeper ? { lease: channel.suspended ? ('standby' as const) : ('owner' as const) } : {}),
        });
      }
      return out;
    },
    close,
    [Symbol.asyncDispose]() {
      return node.close();
    },
  };
  return node;
}

/**
 * Stops the node, in order: the dashboard, health and the store's probe first (no `down` for
 * peers this node disconnects itself), the lease changes under way, the outbound sides and the
 * server, the drivers, resync and the channels, the leases, and the store last.
 */
async function closeNode(
  parts: NodeParts,
  {
    dashboard,
    replicas,
  }: {
    dashboard: { close(): Promise<void> };
    replicas: ChannelServing | undefined;
  },
): Promise<void> {
  const { store, metrics, health, storeWritability, stopStoreReport, directory, disconnectOut, server } =
    parts;
  const { peerHosts, drivers, syncs, channels, subs, refusals, resync, events } = parts;
  await dashboard.close();
  // Health first: no `down` for peers this node disconnects itself.
  metrics.close();
  await health.close();
  storeWritability.close();
  stopStoreReport();
  // No channel is taken over or given up from here on.
  await replicas?.settled();
  // Answers the LIP-1 HTTP requests still waiting (503), so the server can close.
  await Promise.all(
    [...directory.keys()].map((peer) => disconnectOut(peer, CloseCode.GOING_AWAY, 'node closing')),
  );
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
  await parts.verifyPool.close();
  await parts.historyPool.close();
  await store.close();
}
