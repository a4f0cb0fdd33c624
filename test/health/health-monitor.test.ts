import { Subject } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { Channel, ChannelEvent } from '../../src/channel/channel.js';
import { createHealthMonitor, type HealthMonitor, toHealthRecord } from '../../src/health/health-monitor.js';
import { createMemoryHealthStore, type MemoryHealthStore } from '../../src/health/memory-health-store.js';
import type { HealthEvent, ResyncTrigger } from '../../src/health/status.js';
import { createHeartbeatCodec, EMPTY_OPEN_OBJECTS_DIGEST } from '../../src/protocol/heartbeat-frames.js';
import type { Connection } from '../../src/transport/types.js';
import { memoryPair, settle, virtualTime } from './fakes.js';

const ME = 'addr-me';
const PEER = 'addr-peer';

/** The part of a Channel the monitor uses. */
function fakeChannel(peer = PEER) {
  const events = new Subject<ChannelEvent>();
  const channel = {
    peer,
    inflight: 0,
    connection: undefined as Connection | undefined,
    events$: events.asObservable(),
    attach(connection: Connection) {
      channel.connection = connection;
      events.next({ type: 'connected', peer, dialed: connection.dialed });
    },
  };
  return channel;
}

async function monitorWith(store: MemoryHealthStore, time = virtualTime()) {
  const monitor = createHealthMonitor(
    {},
    { me: ME, epoch: 'my-epoch', store, peers: store, scheduler: time.scheduler },
  );
  const channel = fakeChannel();
  await monitor.addChannel(channel as unknown as Channel, {
    openSummary: () => ({ count: 0, digest: EMPTY_OPEN_OBJECTS_DIGEST }),
  });
  const events: HealthEvent[] = [];
  const triggers: ResyncTrigger[] = [];
  monitor.health$.subscribe((e) => events.push(e));
  monitor.resyncTriggers$.subscribe((e) => triggers.push(e));
  return { monitor, channel, events, triggers, time };
}

/** A connection from the peer presenting `epoch` in its hello. */
function helloFrom(epoch: string, time = virtualTime()) {
  return memoryPair(time, { addresses: [ME, PEER], epochs: [ME, epoch] }).a;
}

function admitted(monitor: HealthMonitor, connection: Connection): boolean {
  return monitor.admit(connection);
}

describe('health monitor: store epochs (PROTOCOL.md §8.4)', () => {
  it('records the first epoch of a peer (epoch_seen) and stores it', async () => {
    const store = createMemoryHealthStore();
    const { monitor, events } = await monitorWith(store);
    expect(admitted(monitor, helloFrom('e1'))).toBe(true);
    expect(events).toEqual([expect.objectContaining({ kind: 'epoch_seen', epoch: 'e1', source: 'hello' })]);
    await monitor.flush();
    expect((await store.getPeer(PEER))?.epoch).toBe('e1');
    expect(store.records.map((r) => r.kind)).toEqual(['epoch_seen']);
    await monitor.close();
  });

  it('raises peer_state_lost synchronously at the hello of a new epoch, and asks for a resync', async () => {
    const store = createMemoryHealthStore();
    const { monitor, events, triggers } = await monitorWith(store);
    admitted(monitor, helloFrom('e1'));
    const seenBeforeReturn: string[] = [];
    const sub = monitor.health$.subscribe((e) => seenBeforeReturn.push(e.kind));
    expect(admitted(monitor, helloFrom('e2'))).toBe(true);
    // Already out when admit returns: before the connection reaches the channel.
    expect(seenBeforeReturn).toEqual(['peer_state_lost']);
    sub.unsubscribe();
    expect(events.at(-1)).toMatchObject({
      kind: 'peer_state_lost',
      previousEpoch: 'e1',
      epoch: 'e2',
      source: 'hello',
    });
    expect(triggers).toHaveLength(1);
    await monitor.flush();
    expect((await store.getPeer(PEER))?.epoch).toBe('e2');
    expect(store.records.at(-1)).toMatchObject({
      kind: 'peer_state_lost',
      detail: { previousEpoch: 'e1', epoch: 'e2', source: 'hello' },
    });
    await monitor.close();
  });

  it('refuses a zombie (a superseded epoch) with 4412, every time, and across restarts', async () => {
    const store = createMemoryHealthStore();
    const first = await monitorWith(store);
    admitted(first.monitor, helloFrom('e1'));
    admitted(first.monitor, helloFrom('e2'));
    const zombie = helloFrom('e1');
    expect(admitted(first.monitor, zombie)).toBe(false);
    await settle();
    expect(zombie.state).toBe('closed');
    expect(first.events.at(-1)).toMatchObject({ kind: 'zombie_refused', epoch: 'e1', currentEpoch: 'e2' });
    await first.monitor.close();

    // A restarted node remembers which epochs were superseded (from the health history).
    const second = await monitorWith(store);
    const again = helloFrom('e1');
    expect(admitted(second.monitor, again)).toBe(false);
    expect(admitted(second.monitor, helloFrom('e2'))).toBe(true);
    expect(second.events.map((e) => e.kind)).toEqual(['zombie_refused']);
    await second.monitor.close();
  });

  it('takes a node upgraded from before the history at its stored epoch', async () => {
    const store = createMemoryHealthStore();
    await store.setPeerEpoch(PEER, 'legacy');
    const { monitor, events } = await monitorWith(store);
    expect(admitted(monitor, helloFrom('legacy'))).toBe(true);
    expect(events).toEqual([]);
    admitted(monitor, helloFrom('fresh'));
    expect(events.at(-1)).toMatchObject({ kind: 'peer_state_lost', previousEpoch: 'legacy' });
    await monitor.close();
  });

  it('raises peer_state_lost when a heartbeat carries a new epoch, and refuses a superseded one (4412)', async () => {
    const store = createMemoryHealthStore();
    const time = virtualTime();
    const { monitor, channel, events } = await monitorWith(store, time);
    const link = memoryPair(time, { addresses: [ME, PEER], epochs: [ME, 'e1'] });
    expect(monitor.admit(link.a)).toBe(true);
    channel.attach(link.a);
    const codec = createHeartbeatCodec(link.a.sessionSecret);
    const heartbeat = (seq: number, epoch: string) =>
      codec.encode({
        _ObjectType: 'Heartbeat',
        from: PEER,
        seq,
        epoch,
        open_objects: { count: 0, digest: EMPTY_OPEN_OBJECTS_DIGEST },
        inflight: 0,
        timestamp_ms: time.now(),
        echo_timestamp_ms: null,
        echo_held_ms: null,
      });
    monitor.onControlFrame(heartbeat(0, 'e1'), 'Heartbeat', link.a);
    monitor.onControlFrame(heartbeat(1, 'e2'), 'Heartbeat', link.a);
    expect(events.at(-1)).toMatchObject({ kind: 'peer_state_lost', epoch: 'e2', source: 'heartbeat' });
    monitor.onControlFrame(heartbeat(2, 'e1'), 'Heartbeat', link.a);
    await settle();
    expect(link.a.closeCode).toBe(4412);
    expect(events.at(-1)).toMatchObject({ kind: 'zombie_refused', source: 'heartbeat' });
    await monitor.close();
  });
});

describe('health monitor: history', () => {
  it('persists every event in order, transitions with their states', async () => {
    const store = createMemoryHealthStore();
    const time = virtualTime();
    const { monitor, channel } = await monitorWith(store, time);
    const link = memoryPair(time, { addresses: [ME, PEER], epochs: [ME, 'e1'] });
    monitor.admit(link.a);
    channel.attach(link.a);
    link.cut(); // the peer never answers: healthy (connected) → suspect → down
    time.advance(10_000);
    await monitor.flush();
    expect(store.records.map((r) => [r.kind, r.fromState, r.toState])).toEqual([
      ['epoch_seen', null, null],
      ['transition', 'unknown', 'healthy'],
      ['transition', 'healthy', 'suspect'],
      ['transition', 'suspect', 'down'],
    ]);
    expect(store.records[3]!.detail).toMatchObject({ cause: 'silence' });
    expect((await monitor.history({ peer: PEER, kinds: ['transition'], limit: 1 }))[0]?.toState).toBe('down');
    await monitor.close();
  });

  it('stops watching a removed channel: no heartbeats, events or history for it, and out of the snapshot', async () => {
    const store = createMemoryHealthStore();
    const time = virtualTime();
    const { monitor, channel, events } = await monitorWith(store, time);
    const link = memoryPair(time, { addresses: [ME, PEER], epochs: [ME, 'e1'] });
    monitor.admit(link.a);
    channel.attach(link.a);
    time.advance(1_000);
    const sent = link.a.sent.length;
    expect(sent).toBeGreaterThan(0); // heartbeats
    expect(monitor.snapshot().map((h) => h.peer)).toEqual([PEER]);
    monitor.removeChannel(PEER);
    const seen = events.length;
    link.cut();
    time.advance(60_000); // would be `down` twice over
    await monitor.flush();
    expect(link.a.sent.length).toBe(sent);
    expect(events.length).toBe(seen);
    expect(monitor.snapshot()).toEqual([]);
    expect(store.records.some((r) => r.toState === 'down')).toBe(false);
    monitor.removeChannel(PEER); // idempotent
    await monitor.close();
  });

  it('with historyRetentionMs, deletes older history at start and every hour, but keeps the epochs', async () => {
    const HOUR = 3_600_000;
    const store = createMemoryHealthStore();
    const time = virtualTime();
    const t0 = time.now();
    const record = (kind: string, atMs: number, detail: Record<string, unknown> = {}) => ({
      peer: PEER,
      kind,
      fromState: null,
      toState: null,
      detail,
      atMs,
    });
    await store.append([
      record('epoch_seen', t0 - 5 * HOUR, { epoch: 'e1' }),
      record('transition', t0 - 5 * HOUR),
      record('peer_state_lost', t0 - 4 * HOUR, { epoch: 'e2', previousEpoch: 'e1' }),
      record('transition', t0 - 3 * HOUR),
      record('diverged', t0 - HOUR / 2),
    ]);
    const monitor = createHealthMonitor(
      { historyRetentionMs: 2 * HOUR },
      { me: ME, epoch: 'my-epoch', store, peers: store, scheduler: time.scheduler },
    );
    await monitor.addChannel(fakeChannel() as unknown as Channel, {
      openSummary: () => ({ count: 0, digest: EMPTY_OPEN_OBJECTS_DIGEST }),
    });
    // The records written before the monitor started (it adds its own as the peer stays silent).
    const kinds = () => store.records.filter((r) => r.atMs < t0).map((r) => r.kind);
    time.advance(1);
    await monitor.flush();
    // At start: everything before t0 - 2 h goes but the epochs.
    expect(kinds()).toEqual(['epoch_seen', 'peer_state_lost', 'diverged']);
    time.advance(HOUR - 2);
    await monitor.flush();
    expect(kinds()).toEqual(['epoch_seen', 'peer_state_lost', 'diverged']);
    time.advance(HOUR + 1);
    await monitor.flush();
    // Two hours on: the `diverged` of t0 - 30 min is now older than the retention.
    expect(kinds()).toEqual(['epoch_seen', 'peer_state_lost']);
    expect(await store.epochs(PEER)).toEqual(['e1', 'e2']);
    await monitor.close();
  });

  it('keeps everything by default (no pruning)', async () => {
    const store = createMemoryHealthStore();
    const time = virtualTime();
    await store.append([
      { peer: PEER, kind: 'transition', fromState: null, toState: null, detail: {}, atMs: 0 },
    ]);
    const { monitor } = await monitorWith(store, time);
    time.advance(3 * 3_600_000);
    await monitor.flush();
    expect(store.records.filter((r) => r.atMs === 0)).toHaveLength(1);
    await monitor.close();
  });

  it('keeps streaming when the store fails, and counts the failures', async () => {
    const store = createMemoryHealthStore();
    const failing = { ...store, append: async () => Promise.reject(new Error('disk full')) };
    const time = virtualTime();
    const monitor = createHealthMonitor(
      {},
      { me: ME, epoch: 'x', store: failing, peers: store, scheduler: time.scheduler },
    );
    await monitor.addChannel(fakeChannel() as unknown as Channel, {
      openSummary: () => ({ count: 0, digest: EMPTY_OPEN_OBJECTS_DIGEST }),
    });
    const seen: string[] = [];
    monitor.health$.subscribe((e) => seen.push(e.kind));
    monitor.admit(helloFrom('e1'));
    monitor.admit(helloFrom('e2'));
    await monitor.flush();
    expect(seen).toEqual(['epoch_seen', 'peer_state_lost']);
    expect(monitor.persistFailures).toBe(2);
    await monitor.close();
  });

  it('maps an event to its record: kind and states as columns, the rest as detail', () => {
    expect(
      toHealthRecord({
        kind: 'transition',
        peer: 'p',
        atMs: 5,
        from: 'healthy',
        to: 'suspect',
        cause: 'silence',
        phi: 1,
        silentMs: 2300,
      }),
    ).toEqual({
      peer: 'p',
      atMs: 5,
      kind: 'transition',
      fromState: 'healthy',
      toState: 'suspect',
      detail: { cause: 'silence', phi: 1, silentMs: 2300 },
    });
  });
});
