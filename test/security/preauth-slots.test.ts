/**
 * Pre-authentication slots cannot be starved from a few addresses (issue: defect 2). Sockets
 * that upgrade and never say hello, from 127.0.0.2–127.0.0.9 (Linux routes all of 127/8 to
 * the loopback interface), hold at most `maxPendingHandshakesPerAddress` slots each and the
 * rest get HTTP 503; a peer on 127.0.0.1 still completes its handshake meanwhile; the idle
 * sockets are closed at the hello deadline with 4408; nothing is written.
 */

import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { CloseCode, privateKeyFromSeedHex, publicKeyFromHex } from '../../src/protocol/index.js';
import { addressKey, createPreauthSlots } from '../../src/transport/preauth-slots.js';
import { freePort } from '../helpers/node-process.js';
import { nodeConfig, testIdentity } from '../helpers/nodes.js';
import { openRawPeer, rawDial } from '../helpers/raw-peer.js';
import { rowCounts, startSecuredNode } from './harness.js';

type Attempt = { ws: WebSocket; result: 'open' } | { ws: WebSocket; result: number | 'error' };

/** An upgrade from `localAddress` that never sends a frame: open, or the HTTP status of its refusal. */
function idleUpgrade(url: string, localAddress: string): Promise<Attempt> {
  const ws = new WebSocket(url, { perMessageDeflate: false, localAddress });
  return new Promise((resolve) => {
    ws.once('open', () => resolve({ ws, result: 'open' }));
    ws.once('unexpected-response', (_req, res) => {
      resolve({ ws, result: res.statusCode ?? 0 });
      res.resume();
      ws.terminate();
    });
    ws.once('error', () => resolve({ ws, result: 'error' }));
  });
}

function closeCode(ws: WebSocket): Promise<number> {
  if (ws.readyState === ws.CLOSED) return Promise.resolve(-1);
  return new Promise((resolve) => ws.once('close', (code) => resolve(code)));
}

describe('pre-authentication slots', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('40 idle upgrades from each of 127.0.0.2–9 hold 8 slots each; a peer on 127.0.0.1 still gets in', async () => {
    const a = testIdentity(0xd1);
    const b = testIdentity(0xd2);
    const unused = await freePort();
    // B's URL names 127.0.0.1: its host has the reserved slots too.
    const secured = await startSecuredNode((url) =>
      nodeConfig(a, url, [{ identity: b, url: `ws://127.0.0.1:${unused}/parley/v1` }]),
    );
    cleanups.push(() => secured.dispose());
    const { node, db } = secured;
    const before = await rowCounts(db);

    const attackers = Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 2}`);
    const attempts = await Promise.all(
      attackers.flatMap((from) => Array.from({ length: 40 }, () => idleUpgrade(node.url, from))),
    );
    cleanups.push(() => {
      for (const { ws } of attempts) ws.terminate();
    });
    // The peer, while every attacking socket still holds its slot.
    const peer = await openRawPeer(node.url, { localAddress: '127.0.0.1' });
    cleanups.push(() => peer.terminate());
    const me = { address: b.address, key: privateKeyFromSeedHex(b.seedHex) };
    await rawDial(peer, me, { address: a.address, publicKey: publicKeyFromHex(a.publicKeyHex) });

    const opened = attempts.filter((x) => x.result === 'open');
    const refused = attempts.filter((x) => x.result !== 'open');
    // 8 per address (the default), the other 32 of each refused with 503.
    expect(opened).toHaveLength(8 * 8);
    expect(new Set(refused.map((x) => x.result))).toEqual(new Set([503]));

    // The idle sockets end at the hello deadline (5 s), with its close code.
    const codes = await Promise.all(opened.map(({ ws }) => closeCode(ws)));
    expect(new Set(codes)).toEqual(new Set([CloseCode.HANDSHAKE_TIMEOUT]));
    expect(await rowCounts(db)).toEqual(before);
  });

  it('counts an IPv6 address by its /64, and keeps the reserved slots for the peers’ hosts', () => {
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8:1:2:bbbb:cccc:dddd:eeee')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('::ffff:10.0.0.1')).toBe('10.0.0.1');
    const slots = createPreauthSlots({
      maxTotal: 4,
      maxPerAddress: 2,
      reserved: 1,
      isReserved: (address) => address === '10.0.0.9',
    });
    expect('release' in slots.take('2001:db8:1:2::1')).toBe(true);
    expect('release' in slots.take('2001:db8:1:2::2')).toBe(true);
    expect(slots.take('2001:db8:1:2:ffff::3')).toEqual({ refused: 'per_address' });
    const third = slots.take('10.0.0.1');
    expect('release' in third).toBe(true);
    // Three unreserved taken: the last slot is the peers'.
    expect(slots.take('10.0.0.2')).toEqual({ refused: 'reserved' });
    const peer = slots.take('::ffff:10.0.0.9');
    expect('release' in peer).toBe(true);
    expect(slots.take('10.0.0.9')).toEqual({ refused: 'total' });
    if ('release' in third) {
      third.release();
      third.release(); // idempotent
    }
    expect(slots.inUse).toBe(3);
    expect('release' in slots.take('10.0.0.2')).toBe(true);
  });
});
