import { Subject, VirtualTimeScheduler } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { ParleyError } from '../../src/errors.js';
import { CloseCode, UNRESPONSIVE_REASON } from '../../src/protocol/index.js';
import { backoffCeilingMs } from '../../src/transport/backoff.js';
import type { Connection, ConnectionState } from '../../src/transport/types.js';
import {
  createReconnectingDialer,
  type DialerEvent,
  type ReconnectingDialer,
  type ReconnectingDialerDeps,
} from '../../src/transport/ws-dialer.js';
import { createLeftovers, depsOf, entryOf, first, makeIdentity, startServer, within } from './harness.js';

const leftovers = createLeftovers();
afterEach(() => leftovers.drain());

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Records every draw of `random`. */
function recording(random: () => number): { random: () => number; draws: number[] } {
  const draws: number[] = [];
  return {
    draws,
    random: () => {
      const r = random();
      draws.push(r);
      return r;
    },
  };
}

/** A connection whose close the test controls (`byPeer`: who started it, if known). */
function fakeConnection(
  peer: string,
): Connection & { drop(code: number, byPeer?: boolean, reason?: string): void } {
  let state: ConnectionState = 'open';
  let resolveClosed!: (value: { code: number; reason: string; byPeer?: boolean }) => void;
  const closed = new Promise<{ code: number; reason: string; byPeer?: boolean }>((resolve) => {
    resolveClosed = resolve;
  });
  const frames = new Subject<string>();
  const drop = (code: number, byPeer?: boolean, reason = 'test'): void => {
    if (state === 'closed') return;
    state = 'closed';
    frames.complete();
    resolveClosed({ code, reason, ...(byPeer === undefined ? {} : { byPeer }) });
  };
  return {
    peer,
    peerEpoch: 'e',
    peerSummary: { count: 0, digest: 'd' },
    dialed: true,
    id: 'fake',
    dialedAtMs: 0,
    sessionSecret: '00',
    frames$: frames.asObservable(),
    send: () => state === 'open',
    writable: () => Promise.resolve(),
    bufferedAmount: 0,
    closed,
    get state() {
      return state;
    },
    close: (code) => drop(code, false),
    drop,
  };
}

function trackEvents(dialer: ReconnectingDialer): DialerEvent[] {
  const events: DialerEvent[] = [];
  dialer.events$.subscribe((e) => events.push(e));
  return events;
}

const peer = entryOf(makeIdentity(), 'ws://127.0.0.1:1/parley/v1');
const me = makeIdentity();

function start(
  options: Parameters<typeof createReconnectingDialer>[1],
  deps: Partial<ReconnectingDialerDeps>,
): ReconnectingDialer {
  return leftovers.add(createReconnectingDialer(peer, options, { ...depsOf(me), ...deps }), (d) => d.close());
}

describe('reconnecting dialer: backoff schedule (virtual time, no sockets)', () => {
  it('dials at once, then redials after capped exponential delays with full jitter', async () => {
    const scheduler = new VirtualTimeScheduler();
    const { random, draws } = recording(seeded(20240611));
    const dialTimes: number[] = [];
    const dialer = start(
      { initialDelayMs: 100, maxDelayMs: 1000 },
      {
        scheduler,
        random,
        dial: async () => {
          dialTimes.push(scheduler.now());
          throw new ParleyError('TRANSPORT_CONNECT_FAILED', 'down');
        },
      },
    );
    const events = trackEvents(dialer);
    const rounds = 10;
    for (let i = 0; i < rounds; i++) {
      const backoff = first(dialer.events$, (e) => e.type === 'backoff');
      scheduler.flush();
      await backoff;
    }
    const backoffs = events.flatMap((e) => (e.type === 'backoff' ? [e] : []));
    expect(dialTimes[0]).toBe(0);
    expect(dialTimes).toHaveLength(rounds);
    expect(backoffs.map((b) => b.attempt)).toEqual([...Array(rounds).keys()]);
    expect(
      backoffs.map((b) => backoffCeilingMs(b.attempt, { initialDelayMs: 100, maxDelayMs: 1000 })),
    ).toEqual([100, 200, 400, 800, 1000, 1000, 1000, 1000, 1000, 1000]);
    backoffs.forEach((b, n) => {
      const ceiling = Math.min(1000, 100 * 2 ** n);
      expect(b.delayMs).toBe(Math.floor((draws[n] ?? Number.NaN) * ceiling));
      expect(b.delayMs).toBeGreaterThanOrEqual(0);
      expect(b.delayMs).toBeLessThan(ceiling);
    });
    // Each redial happens exactly its delay after the failure before it (virtual time).
    for (let n = 1; n < rounds; n++) {
      expect((dialTimes[n] ?? 0) - (dialTimes[n - 1] ?? 0)).toBe(backoffs[n - 1]?.delayMs);
    }
    expect(events.filter((e) => e.type === 'dial_failed')).toHaveLength(rounds);
  });

  it('resets the backoff after a connection that lived stableAfterMs, not after a short one', async () => {
    const scheduler = new VirtualTimeScheduler();
    let failuresLeft = 3;
    const connections: ReturnType<typeof fakeConnection>[] = [];
    const dialer = start(
      { initialDelayMs: 100, maxDelayMs: 30_000, stableAfterMs: 5000 },
      {
        scheduler,
        random: () => 0.5,
        dial: async () => {
          if (failuresLeft-- > 0) throw new ParleyError('TRANSPORT_CONNECT_FAILED', 'down');
          const connection = fakeConnection(peer.address);
          connections.push(connection);
          return connection;
        },
      },
    );
    const attempts: number[] = [];
    dialer.events$.subscribe((e) => {
      if (e.type === 'backoff') attempts.push(e.attempt);
    });
    const step = async (type: DialerEvent['type']) => {
      const seen = first(dialer.events$, (e) => e.type === type);
      scheduler.flush();
      await seen;
    };
    for (let i = 0; i < 3; i++) await step('backoff'); // three failures: attempts 0, 1, 2
    await step('connected');
    // A short-lived connection does not reset: the next delay continues the sequence.
    let next = first(dialer.events$, (e) => e.type === 'backoff');
    connections[0]?.drop(1006);
    await next;
    expect(attempts).toEqual([0, 1, 2, 3]);
    await step('connected');
    // One that lived stableAfterMs (virtual) resets to the first delay.
    scheduler.schedule(() => {}, 5000);
    scheduler.flush();
    next = first(dialer.events$, (e) => e.type === 'backoff');
    connections[1]?.drop(1006);
    await next;
    expect(attempts).toEqual([0, 1, 2, 3, 0]);
    expect(dialer.current).toBeUndefined();
  });

  it('resets the backoff once the link carried heartbeats both ways, even on a connection shorter than stableAfterMs', async () => {
    const scheduler = new VirtualTimeScheduler();
    let failuresLeft = 3;
    const connections: ReturnType<typeof fakeConnection>[] = [];
    const dialer = start(
      { initialDelayMs: 100, maxDelayMs: 30_000, stableAfterMs: 10_000 },
      {
        scheduler,
        random: () => 0.5,
        dial: async () => {
          if (failuresLeft-- > 0) throw new ParleyError('TRANSPORT_CONNECT_FAILED', 'down');
          const connection = fakeConnection(peer.address);
          connections.push(connection);
          return connection;
        },
      },
    );
    const backoffs: Array<{ attempt: number; kind: string }> = [];
    dialer.events$.subscribe((e) => {
      if (e.type === 'backoff') backoffs.push({ attempt: e.attempt, kind: e.kind });
    });
    const step = async (type: DialerEvent['type']) => {
      const seen = first(dialer.events$, (e) => e.type === type);
      scheduler.flush();
      await seen;
    };
    for (let i = 0; i < 3; i++) await step('backoff'); // three failures: attempts 0, 1, 2
    // A link that drops a moment after it proved itself, three times: every redial is the first delay.
    for (let flap = 0; flap < 3; flap++) {
      await step('connected');
      const healthy = first(dialer.events$, (e) => e.type === 'healthy');
      dialer.markHealthy();
      await healthy;
      const next = first(dialer.events$, (e) => e.type === 'backoff');
      connections.at(-1)?.drop(1006);
      await next;
    }
    expect(scheduler.now()).toBeLessThan(10_000); // every connection lived less than stableAfterMs
    expect(backoffs).toEqual([
      { attempt: 0, kind: 'backoff' },
      { attempt: 1, kind: 'backoff' },
      { attempt: 2, kind: 'backoff' },
      { attempt: 0, kind: 'backoff' },
      { attempt: 0, kind: 'backoff' },
      { attempt: 0, kind: 'backoff' },
    ]);
  });

  it('redials soon after the peer closed with 1001, for the restart window, then backs off from the first delay', async () => {
    const scheduler = new VirtualTimeScheduler();
    const { random, draws } = recording(seeded(1001));
    let connection: ReturnType<typeof fakeConnection> | undefined;
    const dialer = start(
      {
        initialDelayMs: 100,
        maxDelayMs: 30_000,
        restartMinDelayMs: 50,
        restartMaxDelayMs: 250,
        restartWindowMs: 2000,
      },
      {
        scheduler,
        random,
        dial: async () => {
          // The first dial connects; the peer then restarts and refuses every dial.
          if (connection !== undefined) throw new ParleyError('TRANSPORT_CONNECT_FAILED', 'refused');
          connection = fakeConnection(peer.address);
          return connection;
        },
      },
    );
    const connected = first(dialer.connections$);
    scheduler.flush();
    await connected;
    const backoffs: Array<Extract<DialerEvent, { type: 'backoff' }> & { at: number; draw: number }> = [];
    dialer.events$.subscribe((e) => {
      if (e.type === 'backoff')
        backoffs.push({ ...e, at: scheduler.now(), draw: draws.at(-1) ?? Number.NaN });
    });
    const firstRedial = first(dialer.events$, (e) => e.type === 'backoff');
    connection?.drop(1001, true); // the peer is going away
    await firstRedial;
    // Failed dials until past the window, and two more.
    while (backoffs.filter((b) => b.kind === 'backoff').length < 3) {
      const next = first(dialer.events$, (e) => e.type === 'backoff');
      scheduler.flush();
      await next;
    }
    const restarts = backoffs.filter((b) => b.kind === 'restart');
    expect(restarts.length).toBeGreaterThan(1);
    for (const b of restarts) {
      expect(b.attempt).toBe(0);
      expect(b.delayMs).toBe(50 + Math.floor(b.draw * 200));
      expect(b.at).toBeLessThan(2000);
    }
    const after = backoffs.filter((b) => b.kind === 'backoff');
    expect(after.map((b) => b.attempt)).toEqual([0, 1, 2]);
    expect(after[0]?.at).toBeGreaterThanOrEqual(2000);
    // The restart delays come first, then the backoff: nothing interleaved.
    expect(backoffs.map((b) => b.kind)).toEqual([
      ...restarts.map(() => 'restart'),
      'backoff',
      'backoff',
      'backoff',
    ]);
  });

  it('backs off as usual after a 1001 this side sent, a close without a close frame, or a peer that found me unresponsive', async () => {
    for (const [code, byPeer, reason] of [
      [1001, false, 'test'],
      [1006, undefined, 'test'],
      // The peer's health dropped the link (heartbeats stopped): not a restart.
      [1001, true, UNRESPONSIVE_REASON],
    ] as const) {
      const scheduler = new VirtualTimeScheduler();
      let connection: ReturnType<typeof fakeConnection> | undefined;
      const dialer = start(
        { initialDelayMs: 100 },
        {
          scheduler,
          random: () => 0.5,
          dial: async () => {
            connection = fakeConnection(peer.address);
            return connection;
          },
        },
      );
      const connected = first(dialer.connections$);
      scheduler.flush();
      await connected;
      const redial = first(dialer.events$, (e) => e.type === 'backoff');
      connection?.drop(code, byPeer, reason);
      expect(await redial).toMatchObject({ type: 'backoff', kind: 'backoff', attempt: 0, delayMs: 50 });
      await dialer.close();
    }
  });

  it('does not dial while another live connection to the peer exists, and dials after it closes', async () => {
    const scheduler = new VirtualTimeScheduler();
    const existing = fakeConnection(peer.address);
    let dials = 0;
    const dialer = start(
      {},
      {
        scheduler,
        random: () => 0,
        liveConnection: (address) =>
          address === peer.address && existing.state === 'open' ? existing : undefined,
        dial: async () => {
          dials++;
          return fakeConnection(peer.address);
        },
      },
    );
    const waiting = first(dialer.events$, (e) => e.type === 'waiting');
    scheduler.flush();
    await waiting;
    expect(dials).toBe(0);
    const backoff = first(dialer.events$, (e) => e.type === 'backoff');
    existing.drop(CloseCode.GOING_AWAY);
    await backoff;
    const connected = first(dialer.connections$);
    scheduler.flush();
    await connected;
    expect(dials).toBe(1);
  });

  it('close() stops redialing, closes the current connection with 1001 and completes its streams', async () => {
    const scheduler = new VirtualTimeScheduler();
    const made: ReturnType<typeof fakeConnection>[] = [];
    const dialer = start(
      {},
      {
        scheduler,
        dial: async () => {
          const connection = fakeConnection(peer.address);
          made.push(connection);
          return connection;
        },
      },
    );
    const connected = first(dialer.connections$);
    const completed = new Promise<void>((resolve) => dialer.connections$.subscribe({ complete: resolve }));
    scheduler.flush();
    const connection = await connected;
    await dialer.close();
    await within(completed, 'connections$ to complete');
    expect((await connection.closed).code).toBe(CloseCode.GOING_AWAY);
    scheduler.flush();
    expect(made).toHaveLength(1);
    await dialer.close(); // idempotent
  });
});

describe('reconnecting dialer over real sockets', () => {
  it('redials after the server drops the connection, after a delay within the jitter bounds', async () => {
    const acceptor = makeIdentity();
    const dialer = makeIdentity();
    const server = await startServer(leftovers, acceptor, [entryOf(dialer)]);
    const scheduler = new VirtualTimeScheduler();
    const { random, draws } = recording(seeded(7));
    const reconnecting = leftovers.add(
      createReconnectingDialer(
        entryOf(acceptor, server.url),
        { initialDelayMs: 100, maxDelayMs: 30_000 },
        { ...depsOf(dialer), scheduler, random },
      ),
      (d) => d.close(),
    );
    const events = trackEvents(reconnecting);

    const firstAccepted = first(server.connections$);
    const firstConnected = first(reconnecting.connections$);
    scheduler.flush();
    const [accepted1, connection1] = await Promise.all([firstAccepted, firstConnected]);
    expect(connection1.id).toBe(accepted1.id);
    expect(reconnecting.current).toBe(connection1);

    // The server goes away (1001, a restart); the dialer waits a short restart delay (virtual
    // time), then redials.
    const backoff = first(reconnecting.events$, (e) => e.type === 'backoff');
    accepted1.close(CloseCode.GOING_AWAY, 'server restarting');
    const delay = await within(backoff, 'the backoff');
    expect(delay).toMatchObject({ type: 'backoff', attempt: 0, kind: 'restart' });
    const delayMs = delay.type === 'backoff' ? delay.delayMs : -1;
    expect(delayMs).toBe(50 + Math.floor((draws[0] ?? Number.NaN) * 200));
    expect(delayMs).toBeGreaterThanOrEqual(50);
    expect(delayMs).toBeLessThan(250);

    const secondAccepted = first(server.connections$);
    const secondConnected = first(reconnecting.connections$);
    const before = scheduler.now();
    scheduler.flush();
    const [accepted2, connection2] = await Promise.all([secondAccepted, secondConnected]);
    expect(scheduler.now() - before).toBe(delayMs);
    expect(connection2.id).toBe(accepted2.id);
    expect(connection2.id).not.toBe(connection1.id);
    expect(events.map((e) => e.type)).toEqual([
      'dialing',
      'connected',
      'disconnected',
      'backoff',
      'dialing',
      'connected',
    ]);
    expect(events[2]).toMatchObject({ type: 'disconnected', code: CloseCode.GOING_AWAY });

    await reconnecting.close();
    expect((await within(accepted2.closed, 'close')).code).toBe(CloseCode.GOING_AWAY);
  });

  it('keeps redialing with growing delays while the peer refuses it', async () => {
    const acceptor = makeIdentity();
    const server = await startServer(leftovers, acceptor, []); // does not know the dialer
    const scheduler = new VirtualTimeScheduler();
    const reconnecting = leftovers.add(
      createReconnectingDialer(
        entryOf(acceptor, server.url),
        { initialDelayMs: 100, maxDelayMs: 400 },
        { ...depsOf(makeIdentity()), scheduler, random: () => 0.999 },
      ),
      (d) => d.close(),
    );
    const failures: string[] = [];
    const delays: number[] = [];
    reconnecting.events$.subscribe((e) => {
      if (e.type === 'dial_failed') failures.push(e.error.code);
      if (e.type === 'backoff') delays.push(e.delayMs);
    });
    for (let i = 0; i < 4; i++) {
      const backoff = first(reconnecting.events$, (e) => e.type === 'backoff');
      scheduler.flush();
      await backoff;
    }
    expect(failures).toEqual([
      'AUTH_UNKNOWN_PEER',
      'AUTH_UNKNOWN_PEER',
      'AUTH_UNKNOWN_PEER',
      'AUTH_UNKNOWN_PEER',
    ]);
    expect(delays).toEqual([99, 199, 399, 399]);
  });
});
