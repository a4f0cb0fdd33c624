/**
 * Virtual time and an in-memory connection pair for the health tests: no sockets, no sleeps.
 */
import { Subject, VirtualTimeScheduler } from 'rxjs';
import type { Connection, ConnectionState } from '../../src/transport/types.js';

/** A virtual clock: actions run only when the test advances time. */
export interface VirtualTime {
  readonly scheduler: VirtualTimeScheduler;
  now(): number;
  /** Runs every action due up to `ms` from now, and leaves the clock exactly there. */
  advance(ms: number): void;
  /** Advances in small steps until `check()` is true; returns the time it became true (or throws). */
  advanceUntil(check: () => boolean, limitMs: number, stepMs?: number): number;
}

export function virtualTime(startMs = 1_700_000_000_000): VirtualTime {
  const scheduler = new VirtualTimeScheduler();
  scheduler.frame = startMs;
  const advance = (ms: number): void => {
    const target = scheduler.now() + ms;
    scheduler.schedule(() => undefined, ms); // so that the clock ends exactly at `target`
    scheduler.maxFrames = target;
    scheduler.flush();
  };
  return {
    scheduler,
    now: () => scheduler.now(),
    advance,
    advanceUntil(check, limitMs, stepMs = 10) {
      const end = scheduler.now() + limitMs;
      while (!check()) {
        if (scheduler.now() >= end) throw new Error(`condition not reached within ${limitMs} virtual ms`);
        advance(stepMs);
      }
      return scheduler.now();
    },
  };
}

/** One end of a {@link memoryPair}, with what the test needs to look at. */
export interface MemoryEnd extends Connection {
  /** Every frame this end sent, in order. */
  readonly sent: string[];
  /** Make the next `send` calls return false (a full socket buffer) until `drain()`. */
  block(): void;
  drain(): void;
  /** The close code this end saw (own or the peer's), once closed. */
  readonly closeCode: number | undefined;
}

export interface MemoryPair {
  a: MemoryEnd;
  b: MemoryEnd;
  /** Silently drop everything in both directions from now on (a half-open path). */
  cut(): void;
  /** Deliver again. */
  restore(): void;
}

/**
 * Two connected ends on a virtual clock: a frame sent by one end arrives at the other after
 * `latencyMs`. Closing one end closes it at once and the other after `latencyMs`, unless the
 * path is cut (then the other end never learns: half-open).
 */
export function memoryPair(
  time: VirtualTime,
  options: {
    latencyMs?: number;
    addresses?: [string, string];
    epochs?: [string, string];
    secret?: string;
    id?: string;
  } = {},
): MemoryPair {
  const latency = options.latencyMs ?? 5;
  const [addrA, addrB] = options.addresses ?? ['addr-a', 'addr-b'];
  const [epochA, epochB] = options.epochs ?? ['epoch-a', 'epoch-b'];
  const secret = options.secret ?? '5e'.repeat(32);
  const id = options.id ?? 'c0ffee'.padEnd(32, '0');
  let cut = false;

  type End = MemoryEnd & {
    other?: End;
    deliver(frame: string): void;
    shut(code: number, reason: string): void;
  };

  function end(peer: string, peerEpoch: string, dialed: boolean): End {
    const frames = new Subject<string>();
    let state: ConnectionState = 'open';
    let blocked = false;
    let drainWaiters: Array<() => void> = [];
    let closeCode: number | undefined;
    let resolveClosed!: (v: { code: number; reason: string }) => void;
    const closed = new Promise<{ code: number; reason: string }>((resolve) => {
      resolveClosed = resolve;
    });
    const self: End = {
      peer,
      peerEpoch,
      peerSummary: { count: 0, digest: '0'.repeat(64) },
      dialed,
      id,
      dialedAtMs: time.now(),
      sessionSecret: secret,
      get state() {
        return state;
      },
      frames$: frames.asObservable(),
      sent: [],
      get bufferedAmount() {
        return blocked ? 1 : 0;
      },
      get closeCode() {
        return closeCode;
      },
      closed,
      send(frame) {
        if (state !== 'open' || blocked) return false;
        self.sent.push(frame);
        const target = self.other!;
        if (!cut) time.scheduler.schedule(() => target.deliver(frame), latency);
        return true;
      },
      writable() {
        if (!blocked || state !== 'open') return Promise.resolve();
        return new Promise<void>((resolve) => drainWaiters.push(resolve));
      },
      close(code, reason) {
        if (state !== 'open') return;
        self.shut(code, reason);
        const target = self.other!;
        if (!cut) time.scheduler.schedule(() => target.shut(code, reason), latency);
      },
      block() {
        blocked = true;
      },
      drain() {
        blocked = false;
        const waiters = drainWaiters;
        drainWaiters = [];
        for (const wake of waiters) wake();
      },
      deliver(frame) {
        if (state === 'open' && !cut) frames.next(frame);
      },
      shut(code, reason) {
        if (state === 'closed') return;
        state = 'closed';
        closeCode = code;
        frames.complete();
        self.drain();
        resolveClosed({ code, reason });
      },
    };
    return self;
  }

  // `a` is the connection as `addrA` sees it (its peer is `addrB`), `b` the other way round.
  const a = end(addrB, epochB, true);
  const b = end(addrA, epochA, false);
  a.other = b;
  b.other = a;
  return {
    a,
    b,
    cut() {
      cut = true;
    },
    restore() {
      cut = false;
    },
  };
}

/** Lets promise callbacks (e.g. `connection.closed.then`) run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}
