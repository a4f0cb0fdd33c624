/**
 * How connections reach a peer's channel: a connection this node accepted or dialed is adopted
 * by the channel (after the epoch check and the one-connection-per-pair rule), and each
 * channel's outbound side is opened (its dialer, or its LIP-1 HTTP link) and closed.
 */
import type { Subscription } from 'rxjs';
import { type Channel, NOT_OWNER_REASON } from '../channel/channel.js';
import type { HealthMonitor } from '../health/index.js';
import { CloseCode } from '../protocol/close-codes.js';
import { type OpenObjectsSummary, type PrivateKey, publicKeyFromHex } from '../protocol/index.js';
import type { ChannelSync } from '../sync/resync.js';
import { runOnConnect } from '../sync/triggers.js';
import type { ConnectionRegistry } from '../transport/connection-registry.js';
import { createLip1HttpLink, type Lip1HttpLink, type Lip1Refusal } from '../transport/lip1-http.js';
import type { Connection, PeerEntry } from '../transport/types.js';
import { createReconnectingDialer, type ReconnectingDialer } from '../transport/ws-dialer.js';

/** A dial of mine failed (the peer unreachable, or refused me), or my dialer redials. */
export type DialEvent =
  | { type: 'dial_failed'; peer: string; code: string; message: string }
  /** My dialer redials `peer` in `delayMs` (`restart`: the peer closed with 1001; see docs/operations.md). */
  | { type: 'redial'; peer: string; attempt: number; delayMs: number; kind: 'backoff' | 'restart' };

export interface AdoptDeps {
  channels: ReadonlyMap<string, Channel>;
  syncs: ReadonlyMap<string, ChannelSync>;
  health: Pick<HealthMonitor, 'admit'>;
  registry: Pick<ConnectionRegistry, 'offer'>;
  /** Whether the side that dialed runs a resync on every (re)connect. */
  resyncOnConnect: boolean;
}

/** Hands an authenticated connection to its peer's channel (or closes it: unknown peer, not the owner). */
export function createAdopt(deps: AdoptDeps): (connection: Connection) => void {
  const { channels, syncs, health, registry, resyncOnConnect } = deps;
  return (connection: Connection): void => {
    const channel = channels.get(connection.peer);
    if (!channel) {
      connection.close(CloseCode.UNKNOWN_PEER, 'unknown peer');
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
    if (resyncOnConnect) runOnConnect(sync, connection);
  };
}

export interface OutboundDeps {
  me: string;
  myKey: PrivateKey;
  epoch: string;
  maxFrameBytes: number;
  channels: ReadonlyMap<string, Channel>;
  /** The LIP-1 HTTP links, by peer (the inbound route reads them too). */
  httpLinks: Map<string, Lip1HttpLink>;
  registry: Pick<ConnectionRegistry, 'current'>;
  adopt(connection: Connection): void;
  /** Asks my business whether to serve `peer` now. @throws BUSINESS_NOT_AUTHORIZED when it refuses */
  openChannelTo(peer: string): Promise<void>;
  /** The open objects shared with `peer`, for the hello. */
  summary(peer: string): OpenObjectsSummary;
  /** Heartbeats went both ways on this connection (`HealthMonitor.twoWay$`). */
  health: Pick<HealthMonitor, 'twoWay$'>;
  onRefused(refusal: Lip1Refusal): void;
  emit(event: DialEvent): void;
  subs: Subscription[];
}

export interface Outbound {
  /** Opens the channel's outbound side: its LIP-1 HTTP link, or its dialer (peers with a URL). */
  connectOut(peer: PeerEntry): void;
  /** Closes the channel's outbound side (the link answers what waits; the dialer stops). */
  disconnectOut(peer: string, code: number, reason: string): Promise<void>;
}

export function createOutbound(deps: OutboundDeps): Outbound {
  const { me, myKey, epoch, channels, httpLinks, registry, adopt, openChannelTo, summary } = deps;
  const dialers = new Map<string, ReconnectingDialer>();
  // Heartbeats went both ways: the link is proven, the dialer's next redial starts its backoff over.
  deps.subs.push(deps.health.twoWay$.subscribe((connection) => dialers.get(connection.peer)?.markHealthy()));
  /** Opens the channel's outbound side: its LIP-1 HTTP link, or its dialer (peers with a URL). */
  function connectOut(peer: PeerEntry): void {
    if (peer.url === undefined) return;
    if (peer.transport === 'lip1-http') {
      const link = createLip1HttpLink({
        me,
        peer: peer.address,
        url: peer.url,
        maxFrameBytes: deps.maxFrameBytes,
        peerKey: publicKeyFromHex(peer.publicKeyHex),
        myKey,
        onRefused: (refusal) => deps.onRefused(refusal),
      });
      httpLinks.set(peer.address, link);
      channels.get(peer.address)!.attach(link);
      return;
    }
    const dialer = createReconnectingDialer(
      peer,
      { maxFrameBytes: deps.maxFrameBytes },
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
      if (e.type === 'backoff') deps.emit({ ...e, type: 'redial', peer: peer.address });
      if (e.type !== 'dial_failed') return;
      deps.emit({ type: 'dial_failed', peer: peer.address, code: e.error.code, message: e.error.message });
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
  return { connectOut, disconnectOut };
}
