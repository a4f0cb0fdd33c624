/**
 * The composition root: `createVaspNode(config)` wires the store, the channels, the
 * WebSocket server and dialers, and the business layer into one running VASP node.
 */
import { readFileSync } from 'node:fs';
import { type Observable, Subject, type Subscription } from 'rxjs';
import { type BusinessDriver, type BusinessEvent, createBusinessDriver } from './business/driver.js';
import {
  type BusinessContext,
  createAutoBusiness,
  createPaymentObject,
  validateIncoming,
} from './business/index.js';
import { type Channel, type ChannelEvent, type CommandOutcome, createChannel } from './channel/channel.js';
import { type ChannelCore, createChannelCore } from './channel/channel-core.js';
import { type NodeConfig, type NodeConfigInput, parseNodeConfig } from './config.js';
import { ParleyError } from './errors.js';
import { createHttpRouter, type HttpRouter } from './http/router.js';
import { channelAddress, privateKeyFromSeedHex, publicKeyFromHex } from './protocol/index.js';
import { openStore } from './store/open-store.js';
import type { ParleyStore } from './store/types.js';
import { createConnectionRegistry } from './transport/connection-registry.js';
import type { Connection, PeerEntry } from './transport/types.js';
import { createReconnectingDialer } from './transport/ws-dialer.js';
import { createChannelServer } from './transport/ws-server.js';

/** Everything a node reports, for logs, metrics and the dashboard. */
export type NodeEvent = ChannelEvent | BusinessEvent;

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
}

export interface VaspNode {
  readonly address: string;
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
  /** Start a payment as the sender; streams the final outcome of the create command. */
  pay(input: PayInput): { referenceId: string; outcome$: Observable<CommandOutcome> };
  status(): Promise<ChannelSnapshot[]>;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface NodeDeps {
  business?: BusinessContext;
}

export async function createVaspNode(
  input: NodeConfigInput | NodeConfig,
  deps: NodeDeps = {},
): Promise<VaspNode> {
  const config = parseNodeConfig(input);
  const me = config.address;
  const myKey = privateKeyFromSeedHex(config.privateKeySeed);
  const business = deps.business ?? createAutoBusiness();
  const store = await openStore({ url: config.database });
  const { epoch } = await store.identity();

  const directory = new Map<string, PeerEntry>();
  for (const peer of config.peers) {
    directory.set(peer.address, {
      address: peer.address,
      publicKeyHex: peer.publicKey,
      ...(peer.url ? { url: peer.url } : {}),
    });
    await store.upsertPeer({ address: peer.address, publicKeyHex: peer.publicKey });
  }

  const events = new Subject<NodeEvent>();
  const subs: Subscription[] = [];
  const cores = new Map<string, ChannelCore>();
  const channels = new Map<string, Channel>();
  const drivers: BusinessDriver[] = [];

  for (const peer of directory.values()) {
    const core = createChannelCore(
      { me, peer: peer.address, maxFrameBytes: config.maxFrameBytes },
      {
        store,
        myKey,
        peerKey: publicKeyFromHex(peer.publicKeyHex),
        validate: ({ payment, previous, origin }) =>
          validateIncoming({ payment, previous, origin, me, business }),
      },
    );
    await core.init();
    const channel = createChannel({ retransmitMs: config.retransmitMs }, { core });
    cores.set(peer.address, core);
    channels.set(peer.address, channel);
    subs.push(channel.events$.subscribe(events));
    const driver = createBusinessDriver({
      me,
      channel,
      store,
      business,
      hasPending: (referenceId) => core.pending().some((p) => p.referenceId === referenceId),
    });
    drivers.push(driver);
    subs.push(driver.events$.subscribe(events));
  }

  const summary = async (peer: string) => ({ count: await store.countOpenObjects(peer), digest: '' });
  const registry = createConnectionRegistry(me);
  const adopt = (connection: Connection): void => {
    const channel = channels.get(connection.peer);
    if (!channel) {
      connection.close(4403, 'unknown peer');
      return;
    }
    if (!registry.offer(connection)) return;
    channel.attach(connection);
    void store.setPeerEpoch(connection.peer, connection.peerEpoch).catch(() => undefined);
  };

  const tls = config.listen.tls
    ? { cert: readFileSync(config.listen.tls.certFile), key: readFileSync(config.listen.tls.keyFile) }
    : undefined;
  const router = createHttpRouter();
  const server = createChannelServer(
    {
      onRequest: router.listener,
      host: config.listen.host,
      port: config.listen.port,
      maxFrameBytes: config.maxFrameBytes,
      allowInsecure: config.listen.allowInsecure,
      ...(tls ? { tls } : {}),
    },
    {
      me,
      myKey,
      directory: (address: string) => directory.get(address),
      localState: async (peer: string) => ({ epoch, openObjects: await summary(peer) }),
    },
  );
  subs.push(server.connections$.subscribe(adopt));
  await server.listening;

  const dialers = [...directory.values()]
    .filter((peer) => peer.url !== undefined)
    .map((peer) => {
      const dialer = createReconnectingDialer(
        peer,
        { maxFrameBytes: config.maxFrameBytes },
        {
          me,
          myKey,
          localState: async () => ({ epoch, openObjects: await summary(peer.address) }),
          liveConnection: (address: string) => registry.current(address),
        },
      );
      subs.push(dialer.connections$.subscribe(adopt));
      return dialer;
    });

  for (const driver of drivers) void driver.recover().catch(() => undefined);

  let closing: Promise<void> | undefined;
  const node: VaspNode = {
    address: me,
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
      return { referenceId: payment.reference_id, outcome$: channel.send({ payment }) };
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
        });
      }
      return out;
    },
    close() {
      closing ??= (async () => {
        await Promise.all(dialers.map((dialer) => dialer.close()));
        await server.close();
        for (const driver of drivers) driver.close();
        for (const channel of channels.values()) await channel.close();
        for (const s of subs) s.unsubscribe();
        events.complete();
        await store.close();
      })();
      return closing;
    },
    [Symbol.asyncDispose]() {
      return node.close();
    },
  };
  return node;
}
