/**
 * A signed frame of a kind this version does not know (a newer peer's, say) is dropped and
 * reported as `frame_refused` with its type; the channel stays up and keeps working.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { NodeEvent, VaspNode } from '../../src/node.js';
import { privateKeyFromSeedHex, publicKeyFromHex } from '../../src/protocol/index.js';
import { createNodeDatabase } from '../helpers/node-process.js';
import { nodeConfig, startNode, testIdentity, until } from '../helpers/nodes.js';
import { openRawPeer, type RawPeer, rawDial, signed } from '../helpers/raw-peer.js';

describe('a frame of an unknown kind (raw peer over a real socket)', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('is reported as frame_refused with its type, and the connection stays open', async () => {
    const db = await createNodeDatabase();
    cleanups.push(db.dispose);
    const a = testIdentity(0x91);
    const b = testIdentity(0x92);
    const nodeA: VaspNode = await startNode(nodeConfig(a, db.url, [{ identity: b }]));
    cleanups.push(() => nodeA.close());
    const seen: NodeEvent[] = [];
    nodeA.events$.subscribe((e) => seen.push(e));

    const peer: RawPeer = await openRawPeer(nodeA.url);
    cleanups.push(() => peer.terminate());
    const me = { address: b.address, key: privateKeyFromSeedHex(b.seedHex) };
    await rawDial(peer, me, { address: a.address, publicKey: publicKeyFromHex(a.publicKeyHex) });
    await until([nodeA], async () => nodeA.channel(b.address).connection !== undefined);

    peer.send(signed({ _ObjectType: 'ChannelFutureThing', from: b.address, to: a.address }, me.key));
    await until([nodeA], async () => seen.some((e) => e.type === 'frame_refused'));
    expect(seen.find((e) => e.type === 'frame_refused')).toEqual({
      type: 'frame_refused',
      peer: b.address,
      code: 'PROTOCOL_MALFORMED_FRAME',
      frameType: 'ChannelFutureThing',
    });
    // Still the same live connection: the node sends on it (its heartbeats, its resync frames).
    expect(await peer.next()).toEqual(expect.any(String));
    expect(nodeA.channel(b.address).connection?.state).toBe('open');
  });
});
