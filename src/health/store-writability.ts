/**
 * Whether this node's store can write: a health condition of the node itself (docs/storage.md).
 *
 * The store is probed on an interval (`ParleyStore.probeWritable`: no page allocated, so a
 * probe never makes a full disk fuller; on SQLite it also gives the WAL's space back once the
 * database file can grow). While a probe fails the store is `unwritable`: `/healthz` answers
 * 503, a `store_unwritable` event goes out (logged as a warning), and the metric says so. The
 * next probe that passes ends it (`store_writable`, with how long it lasted, also written to the
 * health history now that the store writes again).
 *
 * `/livez` fails only when the store stays unwritable although its volume has had room for
 * `livezGraceMs`: a writer that does not come back by itself then, a restart may fix; on a full
 * disk it cannot, and a liveness probe must not restart the node in a loop.
 */
import { Gauge, type Registry } from 'prom-client';
import { asyncScheduler, type Observable, type SchedulerLike, Subject, type Subscription, timer } from 'rxjs';
import type { WriteProbe } from '../store/types.js';
import { background, type ReportFailure } from '../util/background.js';
import type { HealthStore } from './ports.js';

/** Knobs of {@link createStoreWritability}. */
export interface StoreWritabilityOptions {
  /** Probe interval while the store writes. @default 5000 */
  probeIntervalMs?: number;
  /** Probe interval while it does not. @default 1000 */
  unwritableProbeIntervalMs?: number;
  /** How long the volume may have room again, the store still unwritable, before `/livez` fails. @default 60000 */
  livezGraceMs?: number;
  /** Time source of the interval and the grace. @default asyncScheduler */
  scheduler?: SchedulerLike;
}

/** Default of {@link StoreWritabilityOptions.livezGraceMs}. */
export const DEFAULT_LIVEZ_GRACE_MS = 60_000;

/** Changes of the condition, for logs and the node's events. */
export type StoreWritabilityEvent =
  | { type: 'store_unwritable'; code: string; message: string; atMs: number }
  | { type: 'store_writable'; code: string; unwritableMs: number; atMs: number };

/** The condition now, for `/healthz`, metrics and `parley status`. */
export interface StoreWritabilitySnapshot {
  store: 'ok' | 'unwritable';
  /** Set while unwritable: the probe's code and since when. */
  code?: string;
  sinceMs?: number;
  /** Set while unwritable and the volume has room: since when it has. */
  spaceFreeSinceMs?: number;
}

export interface StoreWritability {
  readonly events$: Observable<StoreWritabilityEvent>;
  snapshot(): StoreWritabilitySnapshot;
  /** Whether `/livez` fails for the store: see the file comment. */
  livezFailing(): boolean;
  /** Probes now (the interval goes on); resolves with the condition after it. */
  probe(): Promise<StoreWritabilitySnapshot>;
  /** Stops probing. Idempotent. */
  close(): void;
}

/** Tracks the store's writability from `probe` (see the file comment). */
export function createStoreWritability(
  options: StoreWritabilityOptions,
  deps: { probe(): Promise<WriteProbe> },
): StoreWritability {
  const scheduler = options.scheduler ?? asyncScheduler;
  const interval = options.probeIntervalMs ?? 5000;
  const unwritableInterval = options.unwritableProbeIntervalMs ?? 1000;
  const grace = options.livezGraceMs ?? DEFAULT_LIVEZ_GRACE_MS;
  const events = new Subject<StoreWritabilityEvent>();
  let state: StoreWritabilitySnapshot = { store: 'ok' };
  let running: Promise<StoreWritabilitySnapshot> | undefined;
  let next: Subscription | undefined;
  let closed = false;

  const apply = (found: WriteProbe): void => {
    const now = scheduler.now();
    if (found.writable) {
      if (state.store === 'unwritable') {
        const code = state.code ?? 'STORE_UNAVAILABLE';
        events.next({ type: 'store_writable', code, unwritableMs: now - (state.sinceMs ?? now), atMs: now });
      }
      state = { store: 'ok' };
      return;
    }
    const code = found.code ?? 'STORE_UNAVAILABLE';
    const since = state.store === 'unwritable' ? (state.sinceMs ?? now) : now;
    const spaceFreeSince = found.spaceFree === true ? (state.spaceFreeSinceMs ?? now) : undefined;
    if (state.store === 'ok')
      events.next({ type: 'store_unwritable', code, message: found.message ?? '', atMs: now });
    state = {
      store: 'unwritable',
      code,
      sinceMs: since,
      ...(spaceFreeSince !== undefined ? { spaceFreeSinceMs: spaceFreeSince } : {}),
    };
  };

  const schedule = (): void => {
    if (closed) return;
    next?.unsubscribe();
    const delay = state.store === 'ok' ? interval : unwritableInterval;
    next = timer(delay, scheduler).subscribe(() => void probe());
  };

  function probe(): Promise<StoreWritabilitySnapshot> {
    running ??= deps
      .probe()
      .catch((err: unknown) => ({ writable: false, code: 'STORE_UNAVAILABLE', message: String(err) }))
      .then((found) => {
        if (!closed) apply(found);
        running = undefined;
        schedule();
        return { ...state };
      });
    return running;
  }

  schedule();
  return {
    events$: events.asObservable(),
    snapshot: () => ({ ...state }),
    livezFailing: () =>
      state.store === 'unwritable' &&
      state.spaceFreeSinceMs !== undefined &&
      scheduler.now() - state.spaceFreeSinceMs >= grace,
    probe,
    close() {
      if (closed) return;
      closed = true;
      next?.unsubscribe();
      events.complete();
    },
  };
}

/**
 * The condition's other outputs: the `parley_store_writable` gauge in `registry`, and, once the
 * store writes again, a `store_unwritable` record of the episode in the health history (under
 * this node's own address). Returns what stops them.
 */
export function reportStoreWritability(
  writability: StoreWritability,
  deps: { me: string; registry: Registry; history: HealthStore; report: ReportFailure },
): () => void {
  new Gauge({
    name: 'parley_store_writable',
    help: 'Whether the node store can write (0 while a write probe fails: a full disk, say)',
    registers: [deps.registry],
    collect() {
      this.set(writability.snapshot().store === 'ok' ? 1 : 0);
    },
  });
  const sub = writability.events$.subscribe((event) => {
    if (event.type !== 'store_writable') return;
    const recorded = deps.history.append([
      {
        peer: deps.me,
        kind: 'store_unwritable',
        fromState: 'unwritable',
        toState: 'ok',
        detail: { code: event.code, unwritableMs: event.unwritableMs },
        atMs: event.atMs,
      },
    ]);
    // The event and the log have it; a history that misses it is reported.
    void background(recorded, 'record_store_writable', deps.report);
  });
  return () => sub.unsubscribe();
}
