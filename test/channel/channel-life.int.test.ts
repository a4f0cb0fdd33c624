/**
 * The one state of a channel (`ChannelLife`) as its users see it: `status$`, `connection`,
 * `suspended`, and what `attach` does in each state, over real WebSocket connections (a real
 * channel server, a raw peer doing the handshake) and a real core on a SQLite file.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ChannelState } from '../../src/channel/channel.js';
import { createChannel } from '../../src/channel/channel.js';
import { createChannelCore } from '../../src/channel/channel-core.js';
import { ParleyError } from '../../src/errors.js';
import { CloseCode } from '../../src/protocol/close-codes.js';
import type { Connection } from '../../src/transport/types.js';
import { tempSqliteStore } from '../helpers/parties.js';
import { openRawPeer, rawDial } from '../helpers/raw-peer.js';
import { createLeftovers, entryOf, first, makeIdentity, startServer, within } from '../transport/harness.js';

const leftovers = createLeftovers();
afterEach(() => leftovers.drain());

describe('a channel has one state', () => {
  async function setup() {
    const me = makeIdentity();
    const peer = makeIdentity();
    const side = await tempSqliteStore();
    leftovers.add(side, (s) => s.dispose());
    await side.store.upsertPeer({ address: peer.address, publicKeyHex: peer.key.publicKey.hex });
    const core = createChannelCore(
      { me: me.address, peer: peer.address },
      { store: side.store, myKey: me.key, peerKey: peer.key.publicKey },
    );
    await core.init();
    const channel = leftovers.add(createChannel({}, { core }), (c) => c.close());
    const server = await startServer(leftovers, me, [entryOf(peer)]);
    /** A new authenticated connection from the peer, as this node's server accepted it. */
    const connect = async (): Promise<Connection> => {
      const accepted = first(server.connections$);
      const raw = leftovers.add(await openRawPeer(server.url), (p) => p.terminate());
      await rawDial(raw, peer, { address: me.address, publicKey: me.key.publicKey });
      return accepted;
    };
    const statuses: ChannelState[] = [];
    let completed = false;
    channel.status$.subscribe({ next: (s) => statuses.push(s), complete: () => (completed = true) });
    return { channel, connect, statuses, done: () => completed };
  }

  it('is connected on a live connection, disconnected when it closes, and closed for good', async () => {
    const { channel, connect, statuses, done } = await setup();
    expect(statuses).toEqual(['disconnected']);
    const a = await connect();
    channel.attach(a);
    expect(channel.connection).toBe(a);
    expect(statuses).toEqual(['disconnected', 'connected']);

    // A new connection replaces the live one: disconnected, then connected again.
    const b = await connect();
    channel.attach(b);
    expect(channel.connection).toBe(b);
    expect(statuses).toEqual(['disconnected', 'connected', 'disconnected', 'connected']);

    const gone = first(channel.events$, (e) => e.type === 'disconnected');
    b.close(1000, 'test');
    await gone;
    expect(channel.connection).toBeUndefined();
    expect(statuses.at(-1)).toBe('disconnected');

    await channel.close();
    expect(statuses.at(-1)).toBe('closed');
    expect(done()).toBe(true);
    // Closed for good: a connection offered now is closed (1001).
    const late = await connect();
    channel.attach(late);
    expect((await within(late.closed, 'the late connection to close')).code).toBe(1001);
    expect(channel.connection).toBeUndefined();
  });

  it('refuses connections while suspended (4421) and serves again once resumed', async () => {
    const { channel, connect, statuses } = await setup();
    const a = await connect();
    channel.attach(a);
    channel.suspend(new ParleyError('STORE_LEASE_LOST', 'another replica'));
    expect(channel.suspended).toBe(true);
    expect((await within(a.closed, 'the live connection to close')).code).toBe(CloseCode.NOT_OWNER);
    expect(channel.connection).toBeUndefined();
    expect(statuses).toEqual(['disconnected', 'connected', 'disconnected']);

    const refused = await connect();
    channel.attach(refused);
    expect((await within(refused.closed, 'the refused connection to close')).code).toBe(CloseCode.NOT_OWNER);

    channel.resume();
    expect(channel.suspended).toBe(false);
    const b = await connect();
    channel.attach(b);
    expect(channel.connection).toBe(b);
    expect(statuses.at(-1)).toBe('connected');
  });
});
