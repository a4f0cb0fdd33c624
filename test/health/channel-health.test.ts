import { describe, expect, it } from 'vitest';
import { type ChannelHealth, createChannelHealth } from '../../src/health/channel-health.js';
import type { HealthOptions } from '../../src/health/options.js';
import type { HealthEvent } from '../../src/health/status.js';
import { createHeartbeatCodec, EMPTY_OPEN_OBJECTS_DIGEST } from '../../src/protocol/heartbeat-frames.js';
import { memoryPair, settle, virtualTime } from './fakes.js';

const A = 'addr-a';
const B = 'addr-b';

/** Two channel monitors, A and B, heartbeating over an in-memory pair on a virtual clock. */
function setup(options: HealthOptions = {}, latencyMs = 5, afterIoA?: (fn: () => void) => () => void) {
  const time = virtualTime();
  const link = memoryPair(time, { addresses: [A, B], latencyMs });
  const world = {
    summaryA: { count: 0, digest: EMPTY_OPEN_OBJECTS_DIGEST },
    summaryB: { count: 0, digest: EMPTY_OPEN_OBJECTS_DIGEST },
    inflightA: 0,
    inflightB: 0,
    epochOkA: true,
  };
  const a = createChannelHealth(options, {
    me: A,
    peer: B,
    myEpoch: 'epoch-a',
    scheduler: time.scheduler,
    summary: () => world.summaryA,
    inflight: () => world.inflightA,
    checkEpoch: () => world.epochOkA,
    ...(afterIoA ? { afterIo: afterIoA } : {}),
  });
  const b = createChannelHealth(options, {
    me: B,
    peer: A,
    myEpoch: 'epoch-b',
    scheduler: time.scheduler,
    summary: () => world.summaryB,
    inflight: () => world.inflightB,
  });
  const eventsA: HealthEvent[] = [];
  const eventsB: HealthEvent[] = [];
  a.health$.subscribe((e) => eventsA.push(e));
  b.health$.subscribe((e) => eventsB.push(e));
  const wire = (health: ChannelHealth, end: typeof link.a) =>
    end.frames$.subscribe((frame) => health.receive(frame, end));
  wire(a, link.a);
  wire(b, link.b);
  a.attach(link.a);
  b.attach(link.b);
  return { time, link, a, b, eventsA, eventsB, world, wire };
}

const transitions = (events: HealthEvent[]) =>
  events.flatMap((e) =>
    e.kind === 'transition' ? [{ to: e.to, cause: e.cause, silentMs: e.silentMs }] : [],
  );

describe('channel health with virtual time', () => {
  it('stays healthy for a virtual hour of regular heartbeats, one per second each way, RTT = 2 × latency', () => {
    const { time, a, b, eventsA, eventsB } = setup({}, 5);
    time.advance(3_600_000);
    expect(transitions(eventsA)).toEqual([{ to: 'healthy', cause: 'connected', silentMs: 0 }]);
    expect(transitions(eventsB).map((t) => t.to)).toEqual(['healthy']);
    const snap = a.snapshot();
    expect(snap.state).toBe('healthy');
    expect(snap.heartbeatsSent).toBe(3601); // one at once, then one per second
    expect(snap.heartbeatsReceived).toBe(3600); // the last one is still on the wire (5 ms)
    expect(snap.rttMs).toBe(10);
    expect(snap.srttMs).toBeCloseTo(10, 6);
    expect(snap.phi).toBeLessThan(0.5);
    expect(b.snapshot().heartbeatsReceived).toBe(3600);
  });

  it('goes suspect then down when the path silently stops forwarding (half-open), at the phi thresholds', async () => {
    const { time, link, a, eventsA, eventsB } = setup();
    time.advance(60_000);
    link.cut();
    const downAt = time.advanceUntil(() => a.state === 'down', 10_000);
    const [, suspect, down] = transitions(eventsA);
    expect(suspect).toMatchObject({ to: 'suspect', cause: 'silence' });
    expect(down).toMatchObject({ to: 'down', cause: 'silence' });
    // mean 1000 + pause 1000, std at its 200 ms floor: phi 1 at +2256 ms, phi 8 at +3045 ms.
    expect(suspect!.silentMs).toBeCloseTo(2256.4, 0);
    expect(down!.silentMs).toBeCloseTo(3045.2, 0);
    expect(downAt - 60_000 - 1_700_000_000_000).toBeLessThan(3100);
    // closeOnDown: A closed its end; B never heard (the path is cut) but found out by itself.
    await settle();
    expect(link.a.closeCode).toBe(1001);
    time.advanceUntil(() => transitions(eventsB).some((t) => t.to === 'down'), 10_000);
    expect(a.snapshot().connected).toBe(false);
  });

  it('comes back to healthy when heartbeats resume, without learning the outage as a normal interval', () => {
    const { time, link, a, eventsA } = setup({ closeOnDown: false });
    time.advance(60_000);
    link.cut();
    time.advance(20_000);
    expect(a.state).toBe('down');
    link.restore();
    time.advanceUntil(() => a.state === 'healthy', 2_000);
    expect(transitions(eventsA).map((t) => `${t.to}:${t.cause}`)).toEqual([
      'healthy:connected',
      'suspect:silence',
      'down:silence',
      'healthy:heartbeat',
    ]);
    // A second silence is detected exactly as fast as the first.
    time.advance(10_000);
    link.cut();
    time.advanceUntil(() => a.state === 'down', 10_000);
    const last = transitions(eventsA).at(-1)!;
    expect(last.silentMs).toBeCloseTo(3045.2, 0);
  });

  it('a new connection after down makes the channel healthy at once (the handshake proves the peer is there)', async () => {
    const { time, link, a, b, eventsA, wire } = setup();
    time.advance(10_000);
    link.cut();
    time.advanceUntil(() => a.state === 'down', 10_000);
    await settle();
    const fresh = memoryPair(time, { addresses: [A, B] });
    wire(a, fresh.a);
    wire(b, fresh.b);
    a.attach(fresh.a);
    b.attach(fresh.b);
    expect(a.state).toBe('healthy');
    expect(transitions(eventsA).at(-1)).toMatchObject({ to: 'healthy', cause: 'connected' });
    time.advance(30_000);
    expect(a.state).toBe('healthy');
    // Nothing more goes out on the old, closed connection.
    const oldSent = link.a.sent.length;
    time.advance(5_000);
    expect(link.a.sent.length).toBe(oldSent);
  });

  it("reports a connection on twoWay$ once heartbeats went both ways on it, once; not while only the peer's arrive", () => {
    const time = virtualTime();
    // B hears nothing on the one-way path: it must not close it when it finds A down.
    const options = { closeOnDown: false };
    const mk = (me: string, peer: string) =>
      createChannelHealth(options, {
        me,
        peer,
        myEpoch: `epoch-${me}`,
        scheduler: time.scheduler,
        summary: () => ({ count: 0, digest: EMPTY_OPEN_OBJECTS_DIGEST }),
        inflight: () => 0,
      });
    const a = mk(A, B);
    const b = mk(B, A);
    const twoWay: string[] = [];
    a.twoWay$.subscribe((connection) => twoWay.push(connection.id));
    // One way only: B never reads what A sends, so B's heartbeats echo nothing of A's.
    const oneWay = memoryPair(time, { addresses: [A, B], id: 'one-way'.padEnd(32, '0') });
    oneWay.a.frames$.subscribe((frame) => a.receive(frame, oneWay.a));
    a.attach(oneWay.a);
    b.attach(oneWay.b);
    time.advance(10_000);
    expect(a.snapshot().heartbeatsReceived).toBeGreaterThan(5);
    expect(twoWay).toEqual([]);
    // Both ways: the first heartbeat of B's that echoes one of A's (B's second, at +1 s) reports it.
    oneWay.a.close(1000, 'next');
    const both = memoryPair(time, { addresses: [A, B], id: 'both-ways'.padEnd(32, '0') });
    both.a.frames$.subscribe((frame) => a.receive(frame, both.a));
    both.b.frames$.subscribe((frame) => b.receive(frame, both.b));
    a.attach(both.a);
    b.attach(both.b);
    time.advance(500);
    expect(twoWay).toEqual([]);
    time.advance(1000);
    expect(twoWay).toEqual([both.a.id]);
    time.advance(10_000);
    expect(twoWay).toEqual([both.a.id]);
    a.close();
    b.close();
  });

  it('reads what waits in the socket before declaring silence (this process was busy, not the peer)', () => {
    // The path is cut, but each time A is about to judge, B's newest heartbeat is "waiting in
    // the socket" and A's I/O turn reads it: A never declares silence.
    let delivered = 0;
    const { time, link, a, eventsA } = setup({ closeOnDown: false }, 5, (judge) => {
      const frames = link.b.sent;
      if (frames.length > delivered) {
        delivered = frames.length;
        a.receive(frames[frames.length - 1]!, link.a);
      } else judge();
      return () => undefined;
    });
    time.advance(10_000);
    link.cut();
    delivered = link.b.sent.length;
    const before = a.snapshot().heartbeatsReceived;
    time.advance(30_000);
    expect(transitions(eventsA).map((t) => t.to)).toEqual(['healthy']);
    expect(a.snapshot().heartbeatsReceived).toBeGreaterThan(before + 5);
  });

  it('marks a peer never heard from since start down after the startup grace', () => {
    const time = virtualTime();
    const events: HealthEvent[] = [];
    const lonely = createChannelHealth(
      { startupGraceMs: 5000 },
      {
        me: A,
        peer: B,
        myEpoch: 'e',
        scheduler: time.scheduler,
        summary: () => ({ count: 0, digest: '' }),
        inflight: () => 0,
      },
    );
    lonely.health$.subscribe((e) => events.push(e));
    time.advance(4999);
    expect(lonely.state).toBe('unknown');
    time.advance(1);
    expect(transitions(events)).toEqual([{ to: 'down', cause: 'startup', silentMs: null }]);
    lonely.close();
  });

  it('sends the heartbeat as soon as a full socket buffer drains, not a period later', async () => {
    const { time, link, a } = setup();
    time.advance(2_500);
    const before = a.snapshot().heartbeatsSent;
    link.a.block();
    time.advance(2_000); // the ticks at +3000 and +4000 are refused
    expect(a.snapshot().heartbeatsSent).toBe(before);
    link.a.drain();
    await settle();
    expect(a.snapshot().heartbeatsSent).toBe(before + 1);
    time.advance(1_000);
    expect(a.snapshot().heartbeatsSent).toBe(before + 2);
  });

  it('closes with 4401 on a heartbeat whose MAC does not verify, and records why', async () => {
    const { time, link, a, eventsA } = setup();
    time.advance(2_000);
    const forged = createHeartbeatCodec('00'.repeat(32)).encode({
      _ObjectType: 'Heartbeat',
      from: B,
      seq: 99,
      epoch: 'epoch-b',
      open_objects: { count: 0, digest: EMPTY_OPEN_OBJECTS_DIGEST },
      inflight: 0,
      timestamp_ms: 1,
      echo_timestamp_ms: null,
      echo_held_ms: null,
    });
    a.receive(forged, link.a);
    await settle();
    expect(link.a.closeCode).toBe(4401);
    expect(eventsA.at(-1)).toMatchObject({
      kind: 'heartbeat_refused',
      code: 'AUTH_BAD_MAC',
      closeCode: 4401,
    });
  });

  it('closes with 4400 on a replayed heartbeat (seq not increasing) and on one from another address', async () => {
    const { time, link, a, b, eventsA, eventsB } = setup();
    time.advance(3_000);
    const replay = link.b.sent[1]!;
    a.receive(replay, link.a);
    expect(eventsA.at(-1)).toMatchObject({ kind: 'heartbeat_refused', code: 'PROTOCOL_MALFORMED_FRAME' });
    await settle();
    expect(link.a.closeCode).toBe(4400);

    // B receives a valid-MAC heartbeat that claims to come from B itself (a reflection).
    const fresh = memoryPair(time, { addresses: [A, B] });
    b.attach(fresh.b);
    const reflected = createHeartbeatCodec(fresh.b.sessionSecret).encode({
      _ObjectType: 'Heartbeat',
      from: B,
      seq: 0,
      epoch: 'epoch-b',
      open_objects: { count: 0, digest: EMPTY_OPEN_OBJECTS_DIGEST },
      inflight: 0,
      timestamp_ms: 1,
      echo_timestamp_ms: null,
      echo_held_ms: null,
    });
    b.receive(reflected, fresh.b);
    await settle();
    expect(fresh.b.closeCode).toBe(4400);
    expect(eventsB.at(-1)).toMatchObject({ kind: 'heartbeat_refused', code: 'PROTOCOL_MALFORMED_FRAME' });
  });

  it('stops heartbeating on a connection whose epoch the node refused', async () => {
    const { time, link, a, world } = setup();
    time.advance(2_000);
    world.epochOkA = false;
    time.advance(1_000);
    const sent = link.a.sent.length;
    time.advance(5_000);
    expect(link.a.sent.length).toBe(sent);
    expect(a.snapshot().connectionId).toBeNull();
  });

  describe('divergence', () => {
    const digest = (c: string) => c.repeat(64);

    it('is raised after 3 quiet heartbeats with the same different digests, once, then converged', () => {
      const { time, world, eventsA } = setup();
      time.advance(5_000);
      world.summaryA = { count: 1, digest: digest('a') };
      time.advance(2_000);
      expect(eventsA.some((e) => e.kind === 'diverged')).toBe(false);
      time.advance(1_000);
      const diverged = eventsA.filter((e) => e.kind === 'diverged');
      expect(diverged).toEqual([
        expect.objectContaining({
          local: { count: 1, digest: digest('a') },
          remote: { count: 0, digest: EMPTY_OPEN_OBJECTS_DIGEST },
          heartbeats: 3,
        }),
      ]);
      time.advance(10_000);
      expect(eventsA.filter((e) => e.kind === 'diverged')).toHaveLength(1);
      world.summaryB = world.summaryA;
      time.advance(1_100);
      expect(eventsA.at(-1)).toMatchObject({ kind: 'converged', summary: { count: 1, digest: digest('a') } });
    });

    it('is raised again while the difference stays (the repair may have failed), after 10 times as many heartbeats each time', () => {
      const { time, world, eventsA } = setup();
      time.advance(5_000);
      world.summaryA = { count: 1, digest: digest('a') };
      const raised = () => eventsA.filter((e) => e.kind === 'diverged').map((e) => e['heartbeats']);
      time.advance(3_000);
      expect(raised()).toEqual([3]);
      time.advance(29_000);
      expect(raised()).toEqual([3]);
      time.advance(1_000);
      expect(raised()).toEqual([3, 30]);
      time.advance(300_000);
      expect(raised()).toEqual([3, 30, 300]);
      // Once the digests match, the next difference starts over at 3.
      world.summaryB = world.summaryA;
      time.advance(1_100);
      expect(eventsA.at(-1)).toMatchObject({ kind: 'converged' });
      world.summaryA = { count: 2, digest: digest('b') };
      time.advance(3_000);
      expect(raised()).toEqual([3, 30, 300, 3]);
    });

    it('waits the configured heartbeats the first time, even past the re-raise cap', () => {
      const { time, world, eventsA } = setup({ divergeAfterHeartbeats: 5000 });
      time.advance(5_000);
      world.summaryA = { count: 1, digest: digest('a') };
      time.advance(4_000_000);
      expect(eventsA.some((e) => e.kind === 'diverged')).toBe(false);
      time.advance(1_001_000);
      expect(eventsA.filter((e) => e.kind === 'diverged').map((e) => e['heartbeats'])).toEqual([5000]);
    });

    it('is not raised while either side has a command in flight, nor while the digests keep changing', () => {
      const { time, world, eventsA } = setup();
      time.advance(1_000);
      world.summaryA = { count: 1, digest: digest('a') };
      world.inflightB = 1; // B announces a command in flight
      time.advance(10_000);
      world.inflightB = 0;
      world.inflightA = 2;
      time.advance(10_000);
      world.inflightA = 0;
      for (let i = 0; i < 10; i++) {
        world.summaryA = { count: i, digest: digest(i.toString(16)) };
        time.advance(1_000);
      }
      expect(eventsA.some((e) => e.kind === 'diverged')).toBe(false);
      time.advance(3_000);
      expect(eventsA.some((e) => e.kind === 'diverged')).toBe(true);
    });
  });

  it('completes health$ and stops every timer on close', () => {
    const { time, a, b, link } = setup();
    let completed = false;
    a.health$.subscribe({ complete: () => (completed = true) });
    a.close();
    b.close();
    const sent = link.a.sent.length;
    time.advance(10_000);
    expect(completed).toBe(true);
    expect(link.a.sent.length).toBe(sent);
    expect(time.scheduler.actions.length).toBe(0);
  });
});
