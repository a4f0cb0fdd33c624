import type { Subscription } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { CloseCode } from '../../src/protocol/index.js';
import {
  type ConnectionRegistry,
  createConnectionRegistry,
  type RegistryChange,
} from '../../src/transport/connection-registry.js';
import type { Connection } from '../../src/transport/types.js';
import { dial } from '../../src/transport/ws-dialer.js';
import {
  createLeftovers,
  depsOf,
  entryOf,
  first,
  type Identity,
  orderedPair,
  startServer,
  within,
} from './harness.js';

const leftovers = createLeftovers();
afterEach(() => leftovers.drain());

/** A node: its identity, a listening server and a registry fed by the server. */
async function startNode(me: Identity, peer: Identity) {
  const server = await startServer(leftovers, me, [entryOf(peer)]);
  const registry = leftovers.add(createConnectionRegistry(me.address), (r: ConnectionRegistry) => r.close());
  const changes: RegistryChange[] = [];
  leftovers.add(
    registry.changes$.subscribe((c) => changes.push(c)),
    (s: Subscription) => s.unsubscribe(),
  );
  return { me, server, registry, changes };
}

/** A clock that only moves forward, one millisecond per reading. */
function steppingClock(): { now(): number } {
  let t = Date.now();
  return { now: () => ++t };
}

async function codeOf(connection: Connection): Promise<number> {
  return (await within(connection.closed, 'the connection to close')).code;
}

describe('connection registry over real sockets: one live connection per VASP pair', () => {
  it('keeps the same connection on both sides after a simultaneous dial, whatever the order of offers', async () => {
    const [low, high] = orderedPair();
    const lowNode = await startNode(low, high);
    const highNode = await startNode(high, low);
    const acceptedAtLow = first(lowNode.server.connections$);
    const acceptedAtHigh = first(highNode.server.connections$);
    const [dialedByLow, dialedByHigh] = await Promise.all([
      dial(entryOf(high, highNode.server.url), {}, depsOf(low)),
      dial(entryOf(low, lowNode.server.url), {}, depsOf(high)),
    ]);
    const [lowAccepted, highAccepted] = await Promise.all([acceptedAtLow, acceptedAtHigh]);
    expect(dialedByLow.id).toBe(highAccepted.id);
    expect(dialedByHigh.id).toBe(lowAccepted.id);

    // Each side decides alone, seeing the two connections in a different order.
    expect(lowNode.registry.offer(lowAccepted)).toBe(true);
    expect(lowNode.registry.offer(dialedByLow)).toBe(true);
    expect(highNode.registry.offer(dialedByHigh)).toBe(true);
    expect(highNode.registry.offer(highAccepted)).toBe(true);

    // The connection dialed by the lower address survives, on both sides.
    const keptAtLow = lowNode.registry.current(high.address);
    const keptAtHigh = highNode.registry.current(low.address);
    expect(keptAtLow).toBe(dialedByLow);
    expect(keptAtHigh).toBe(highAccepted);
    expect(keptAtLow?.id).toBe(keptAtHigh?.id);

    // The other one is closed with DUPLICATE_CONNECTION at both ends.
    expect(await codeOf(dialedByHigh)).toBe(CloseCode.DUPLICATE_CONNECTION);
    expect(await codeOf(lowAccepted)).toBe(CloseCode.DUPLICATE_CONNECTION);
    expect(dialedByLow.state).toBe('open');
    expect(highAccepted.state).toBe('open');

    // And the survivor still carries frames.
    const received = first(highAccepted.frames$);
    expect(dialedByLow.send('still here')).toBe(true);
    expect(await received).toBe('still here');
  });

  it('converges to one shared connection when both nodes dial at once and offer as events arrive', async () => {
    const [low, high] = orderedPair();
    const lowNode = await startNode(low, high);
    const highNode = await startNode(high, low);
    for (const node of [lowNode, highNode]) {
      leftovers.add(
        node.server.connections$.subscribe((c) => node.registry.offer(c)),
        (s: Subscription) => s.unsubscribe(),
      );
    }
    const [dialedByLow, dialedByHigh] = await Promise.all([
      dial(entryOf(high, highNode.server.url), {}, depsOf(low)).then((c) => {
        lowNode.registry.offer(c);
        return c;
      }),
      dial(entryOf(low, lowNode.server.url), {}, depsOf(high)).then((c) => {
        highNode.registry.offer(c);
        return c;
      }),
    ]);
    expect(await codeOf(dialedByHigh)).toBe(CloseCode.DUPLICATE_CONNECTION);
    await within(
      (async () => {
        while (highNode.registry.current(low.address)?.id !== dialedByLow.id) {
          await first(highNode.registry.changes$);
        }
      })(),
      'the higher node to settle on the connection dialed by the lower one',
    );
    expect(lowNode.registry.current(high.address)).toBe(dialedByLow);
    expect(dialedByLow.state).toBe('open');
  });

  it('replaces an older connection of the same dialer with the newer one, closing the old one with 4409', async () => {
    const [low, high] = orderedPair();
    const highNode = await startNode(high, low);
    const lowRegistry = leftovers.add(createConnectionRegistry(low.address), (r) => r.close());
    const clock = steppingClock();
    const accepted: Connection[] = [];
    leftovers.add(
      highNode.server.connections$.subscribe((c) => {
        accepted.push(c);
        highNode.registry.offer(c);
      }),
      (s: Subscription) => s.unsubscribe(),
    );
    const peer = entryOf(high, highNode.server.url);
    const older = await dial(peer, {}, { ...depsOf(low), clock });
    expect(lowRegistry.offer(older)).toBe(true);
    const newer = await dial(peer, {}, { ...depsOf(low), clock });
    expect(newer.dialedAtMs).toBeGreaterThan(older.dialedAtMs);
    expect(lowRegistry.offer(newer)).toBe(true);

    expect(await codeOf(older)).toBe(CloseCode.DUPLICATE_CONNECTION);
    await within(
      (async () => {
        while (highNode.registry.current(low.address)?.id !== newer.id)
          await first(highNode.registry.changes$);
      })(),
      'the acceptor to switch to the newer connection',
    );
    expect(lowRegistry.current(high.address)).toBe(newer);
    expect(accepted.map((c) => c.id)).toEqual([older.id, newer.id]);
    expect(await codeOf(accepted[0] as Connection)).toBe(CloseCode.DUPLICATE_CONNECTION);
    // Whether the acceptor saw the old one closed by the dialer first or replaced it itself
    // depends on timing; where it ends does not.
    expect(highNode.changes.at(-1)?.current).toBe(accepted[1]);
  });

  it('refuses an older connection offered after a newer one of the same dialer', async () => {
    const [low, high] = orderedPair();
    const highNode = await startNode(high, low);
    const registry = leftovers.add(createConnectionRegistry(low.address), (r) => r.close());
    const clock = steppingClock();
    const peer = entryOf(high, highNode.server.url);
    const older = await dial(peer, {}, { ...depsOf(low), clock });
    const newer = await dial(peer, {}, { ...depsOf(low), clock });
    expect(registry.offer(newer)).toBe(true);
    expect(registry.offer(older)).toBe(false);
    expect(await codeOf(older)).toBe(CloseCode.DUPLICATE_CONNECTION);
    expect(registry.current(high.address)).toBe(newer);
  });

  it('forgets a connection when it closes and takes the next one without a tie-break', async () => {
    const [low, high] = orderedPair();
    const highNode = await startNode(high, low);
    const registry = leftovers.add(createConnectionRegistry(low.address), (r) => r.close());
    const changes: RegistryChange[] = [];
    leftovers.add(
      registry.changes$.subscribe((c) => changes.push(c)),
      (s: Subscription) => s.unsubscribe(),
    );
    const peer = entryOf(high, highNode.server.url);
    const one = await dial(peer, {}, depsOf(low));
    expect(registry.offer(one)).toBe(true);
    one.close(CloseCode.NORMAL, 'done');
    await codeOf(one);
    await within(
      (async () => {
        while (registry.current(high.address) !== undefined) await first(registry.changes$);
      })(),
      'the registry to forget the closed connection',
    );
    expect(registry.offer(one)).toBe(false); // closed connections are never taken
    const two = await dial(peer, {}, depsOf(low));
    expect(registry.offer(two)).toBe(true);
    expect(changes.map((c) => c.reason)).toEqual(['connected', 'closed', 'connected']);
    await registry.close();
    expect(await codeOf(two)).toBe(CloseCode.GOING_AWAY);
  });
});
