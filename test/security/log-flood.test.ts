/**
 * Log floods (issue: defect 9): frames of an unknown kind from the authenticated peer are
 * reported once per channel, code and kind per interval, and how many more were refused is
 * said at the end of the interval, on a timer (an injected scheduler here), not only at the
 * next such frame. Nothing is written and the connection stays up.
 */
import { VirtualTimeScheduler } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { NodeEvent } from '../../src/node.js';
import { isHeartbeatFrame } from '../../src/protocol/heartbeat-frames.js';
import { privateKeyFromSeedHex, publicKeyFromHex, verifyJws } from '../../src/protocol/index.js';
import { createReportThrottle } from '../../src/report-throttle.js';
import { nodeConfig, testIdentity } from '../helpers/nodes.js';
import { openRawPeer, rawDial, signed } from '../helpers/raw-peer.js';
import { rowCounts, startSecuredNode } from './harness.js';

describe('log floods', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('2,000 frames of unknown kinds give one report per kind now and one with the count at the end of the interval', async () => {
    const a = testIdentity(0x71);
    const b = testIdentity(0x72);
    const aKey = publicKeyFromHex(a.publicKeyHex);
    const scheduler = new VirtualTimeScheduler();
    const secured = await startSecuredNode((url) => nodeConfig(a, url, [{ identity: b }]), {
      sync: { onConnect: false },
      reportScheduler: scheduler,
    });
    cleanups.push(() => secured.dispose());
    const { node, db } = secured;
    const refused: NodeEvent[] = [];
    node.events$.subscribe((e) => {
      if (e.type === 'frame_refused') refused.push(e);
    });
    const peer = await openRawPeer(node.url);
    cleanups.push(() => peer.terminate());
    const me = { address: b.address, key: privateKeyFromSeedHex(b.seedHex) };
    await rawDial(peer, me, { address: a.address, publicKey: aKey });
    const before = await rowCounts(db);

    const kinds = ['ChannelFutureThing', 'AnotherNewFrame'];
    for (let i = 0; i < 2000; i++) {
      peer.send(signed({ _ObjectType: kinds[i % 2], n: i }, me.key));
    }
    // A request after them: its answer means every frame before it was routed.
    peer.send(signed([], me.key));
    for (;;) {
      const frame = await peer.next();
      if (isHeartbeatFrame(frame)) continue;
      if (JSON.parse(verifyJws(frame, aKey))['_ObjectType'] === 'CommandResponseObject') break;
    }
    expect(refused).toEqual(
      kinds.map((frameType) => ({
        type: 'frame_refused',
        peer: b.address,
        code: 'PROTOCOL_MALFORMED_FRAME',
        frameType,
      })),
    );
    // The interval ends: the rest is said, with its count, without another frame.
    scheduler.flush();
    expect(refused.slice(2)).toEqual(
      kinds.map((frameType) => ({
        type: 'frame_refused',
        peer: b.address,
        code: 'PROTOCOL_MALFORMED_FRAME',
        frameType,
        suppressed: 999,
      })),
    );
    expect(await rowCounts(db)).toEqual(before);
    expect(node.channel(b.address).connection?.state).toBe('open');
  });

  it('a report throttle: first at once, the rest counted and flushed on the timer, keys bounded', () => {
    const scheduler = new VirtualTimeScheduler();
    const said: Array<[string, number]> = [];
    const throttle = createReportThrottle<string>({
      intervalMs: 1000,
      maxKeys: 2,
      scheduler,
      emit: (event, suppressed) => said.push([event, suppressed]),
    });
    for (let i = 0; i < 5; i++) throttle.report('k1', `k1#${i}`);
    throttle.report('k2', 'k2#0');
    // Past maxKeys: shared, said once at the end of the interval.
    throttle.report('k3', 'k3#0');
    throttle.report('k4', 'k4#0');
    expect(said).toEqual([
      ['k1#0', 0],
      ['k2#0', 0],
    ]);
    scheduler.flush();
    expect(said.slice(2)).toEqual([
      ['k1#4', 4],
      ['k4#0', 2],
    ]);
    // A quiet interval ended the key: the next report is said at once.
    throttle.report('k1', 'k1#5');
    expect(said.at(-1)).toEqual(['k1#5', 0]);
    throttle.report('k1', 'k1#6');
    throttle.close();
    expect(said.at(-1)).toEqual(['k1#6', 1]);
  });
});
