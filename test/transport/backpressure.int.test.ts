import { setImmediate as nextTurn } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { openRawPeer, rawDial } from '../helpers/raw-peer.js';
import { createLeftovers, entryOf, first, makeIdentity, startServer, within } from './harness.js';

const leftovers = createLeftovers();
afterEach(() => leftovers.drain());

const HIGH_WATER_MARK = 256 * 1024;
const LOW_WATER_MARK = 64 * 1024;
const FRAME = 'z'.repeat(64 * 1024);
/** WebSocket header of a 64 KiB server frame (2 + 8 length bytes, unmasked). */
const FRAME_OVERHEAD = 10;
/** Far more than any kernel socket buffer: the loop below must hit the mark long before. */
const MAX_FRAMES = 8192;

describe('connection backpressure', () => {
  it('refuses frames past the high-water mark while the peer does not read, and recovers when it reads', async () => {
    const acceptor = makeIdentity();
    const dialer = makeIdentity();
    const server = await startServer(leftovers, acceptor, [entryOf(dialer)], {
      highWaterMarkBytes: HIGH_WATER_MARK,
      lowWaterMarkBytes: LOW_WATER_MARK,
    });
    const accepted = first(server.connections$);
    const peer = leftovers.add(await openRawPeer(server.url), (p) => p.terminate());
    await rawDial(peer, dialer, { address: acceptor.address, publicKey: acceptor.key.publicKey });
    const connection = await accepted;

    peer.pause(); // the peer stops reading: the kernel buffers fill, then the socket's queue grows
    let sent = 0;
    let maxBuffered = 0;
    while (sent < MAX_FRAMES && connection.send(FRAME)) {
      sent++;
      maxBuffered = Math.max(maxBuffered, connection.bufferedAmount);
    }
    expect(sent).toBeLessThan(MAX_FRAMES);
    // Bounded: never more than the mark plus the one frame that crossed it.
    expect(maxBuffered).toBeLessThanOrEqual(HIGH_WATER_MARK + FRAME.length + FRAME_OVERHEAD);
    expect(connection.bufferedAmount).toBeGreaterThan(LOW_WATER_MARK);
    expect(connection.send(FRAME)).toBe(false);

    let drained = false;
    const writable = connection.writable().then(() => {
      drained = true;
    });
    await nextTurn();
    expect(drained).toBe(false); // nothing can drain while the peer is paused

    peer.resume();
    await within(writable, 'the send buffer to drain');
    expect(connection.bufferedAmount).toBeLessThanOrEqual(LOW_WATER_MARK);
    expect(connection.send(FRAME)).toBe(true);

    // Every accepted frame arrives, in order, nothing more.
    for (let i = 0; i < sent; i++) expect(await within(peer.next(), `frame ${i}`)).toBe(FRAME);
  });

  it('resolves writable() at once when the buffer is low, and when the connection closes', async () => {
    const acceptor = makeIdentity();
    const dialer = makeIdentity();
    const server = await startServer(leftovers, acceptor, [entryOf(dialer)], {
      highWaterMarkBytes: HIGH_WATER_MARK,
      lowWaterMarkBytes: LOW_WATER_MARK,
    });
    const accepted = first(server.connections$);
    const peer = leftovers.add(await openRawPeer(server.url), (p) => p.terminate());
    await rawDial(peer, dialer, { address: acceptor.address, publicKey: acceptor.key.publicKey });
    const connection = await accepted;
    await within(connection.writable(), 'writable on an idle connection');

    peer.pause();
    for (let i = 0; i < MAX_FRAMES && connection.send(FRAME); i++);
    const writable = connection.writable();
    peer.terminate();
    await within(writable, 'writable after the connection closed');
    expect(connection.send(FRAME)).toBe(false);
  });
});
