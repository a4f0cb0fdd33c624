/**
 * The health of a whole node: one {@link ChannelHealth} per channel, the store-epoch guard
 * (state loss, zombie fencing), and the health history (every event persisted, in order).
 *
 * The composition root wires it in three places (see `src/node.ts`):
 * - `admit(connection)` right after the handshake, before the connection is offered to the
 *   registry or the channel: a zombie is refused there, and `peer_state_lost` is on `health$`
 *   before the first command goes out;
 * - `onControlFrame` as the channel's control-frame handler (heartbeats);
 * - `health$` / `resyncTriggers$` to whoever acts on them (resync, dashboard, logs).
 */
import {
  asyncScheduler,
  filter,
  merge,
  type Observable,
  type SchedulerLike,
  Subject,
  Subscription,
  share,
  timer,
} from 'rxjs';
import { ParleyError } from '../errors.js';
import { createKeyedThrottle, type KeyedThrottle } from '../keyed-throttle.js';
import { CloseCode } from '../protocol/close-codes.js';
import type { Connection } from '../transport/types.js';
import { type BackofficeTracker, createBackofficeTracker } from './backoffice.js';
import { type ChannelHealth, createChannelHealth } from './channel-health.js';
import type { MonitoredChannel, SummarySource } from './channel-ports.js';
import { createEpochGuard, type EpochGuard } from './epoch-guard.js';
import { type EpochResetResult, epochResetEvent, epochResetRecord, mayReinstate } from './epoch-reset.js';
import { createEventsDeliveryTracker, type EventsDeliveryTracker } from './events-delivery.js';
import { type HealthOptions, type ResolvedHealthOptions, resolveHealthOptions } from './options.js';
import { createPeerBehindTracker, type PeerBehindTracker } from './peer-behind.js';
import type {
  HealthHistoryQuery,
  HealthRecord,
  HealthStore,
  NewHealthRecord,
  PeerEpochStore,
} from './ports.js';
import {
  type ChannelHealthSnapshot,
  type EpochSource,
  type HealthEvent,
  isResyncTrigger,
  type ResyncTrigger,
} from './status.js';

/** How often old health history is pruned when `historyRetentionMs` is set. */
const PRUNE_EVERY_MS = 60 * 60 * 1000;
/** At most one `zombie_refused` record per peer and epoch this often (the others are counted). */
export const ZOMBIE_RECORD_INTERVAL_MS = 60_000;
/** The newest `zombie_refused` records kept per peer. */
export const ZOMBIE_RECORDS_KEPT = 100;

/** Collaborators of {@link createHealthMonitor}. */
export interface HealthMonitorDeps {
  /** This node's address. */
  me: string;
  /** This node's store epoch. */
  epoch: string;
  /** The health history. */
  store: HealthStore;
  /** The peers' stored epochs. */
  peers: PeerEpochStore;
  /** @default asyncScheduler */
  scheduler?: SchedulerLike;
  /** Told when persisting an event failed (the event was still streamed). */
  onPersistError?(err: unknown): void;
}

export type { SummarySource } from './channel-ports.js';

/** The health of a node's channels. */
export interface HealthMonitor {
  /** Starts monitoring `channel` (reads the peer's epoch history first). */
  addChannel(channel: MonitoredChannel, core: SummarySource): Promise<ChannelHealth>;
  /**
   * Stops monitoring a channel (this replica no longer serves it): no more heartbeats, events or
   * history for it, and it leaves `snapshot()` (so `/healthz` does not count it). Idempotent.
   */
  removeChannel(peer: string): void;
  channel(peer: string): ChannelHealth | undefined;
  readonly channels: readonly ChannelHealth[];
  /**
   * Judges the store epoch of a newly authenticated connection, before anything else uses it.
   * Returns false when it is refused: a superseded epoch (a zombie) is closed with 4412. A new
   * epoch raises `peer_state_lost` (synchronously, on `health$`) and is accepted.
   */
  admit(connection: Connection): boolean;
  /** The channel's handler of non-LIP-1 frames (`ChannelDeps.onControlFrame`). */
  onControlFrame(frame: string, type: string, connection: Connection): void;
  /**
   * The operator's epoch reset (`parley peer reset-epoch`, docs/security.md): `epoch`, which
   * this node superseded for `peer`, is the current one again. Resolves once the `epoch_reset`
   * record and the peer's epoch are stored; a live connection with another epoch is then closed
   * with 4412.
   * @throws HEALTH_EPOCH_UNKNOWN (not a channel, or not a superseded epoch); the store's errors
   */
  resetEpoch(peer: string, epoch: string): Promise<EpochResetResult>;
  /** Every channel's health events (hot; completes on `close`). */
  readonly health$: Observable<HealthEvent>;
  /**
   * The `peer_behind` condition of every channel, LIP-1 HTTP ones included (the composition root
   * has it watch each channel); its events are persisted and streamed on `health$`.
   */
  readonly peerBehind: PeerBehindTracker;
  /** The `backoffice_unreachable` condition (the webhook business reports to it); persisted and streamed. */
  readonly backoffice: BackofficeTracker;
  /** The `events_undeliverable` condition (the event delivery reports to it); persisted and streamed. */
  readonly eventsDelivery: EventsDeliveryTracker;
  /**
   * Streams an event its maker already wrote to the history, in the same transaction as what it
   * records (`command_abandoned`): not written again.
   */
  announce(event: HealthEvent): void;
  /** `peer_state_lost` and `diverged`: what resync acts on (hot). */
  readonly resyncTriggers$: Observable<ResyncTrigger>;
  /**
   * Every connection, of any channel, on which heartbeats went both ways (once per connection;
   * hot, completes on `close`): the link is proven, e.g. a dialer may reset its backoff.
   */
  readonly twoWay$: Observable<Connection>;
  snapshot(): ChannelHealthSnapshot[];
  /** Persisted history, newest first. */
  history(query?: HealthHistoryQuery): Promise<HealthRecord[]>;
  /** Resolves when every event streamed so far is persisted (or failed to be). */
  flush(): Promise<void>;
  /** How many events could not be persisted. */
  readonly persistFailures: number;
  /** Stops every channel monitor and waits for the history to be written. Idempotent. */
  close(): Promise<void>;
}

/** The persisted form of an event: kind, states, and the rest as detail. */
export function toHealthRecord(event: HealthEvent): NewHealthRecord {
  const { peer, atMs, kind, ...rest } = event as HealthEvent & Record<string, unknown>;
  let fromState: string | null = null;
  let toState: string | null = null;
  const detail: Record<string, unknown> = { ...rest };
  if (event.kind === 'transition') {
    fromState = event.from;
    toState = event.to;
    delete detail['from'];
    delete detail['to'];
  }
  return { peer, atMs, kind, fromState, toState, detail };
}

/** What the functions of a health monitor share. */
interface MonitorParts {
  readonly deps: HealthMonitorDeps;
  readonly resolved: ResolvedHealthOptions;
  readonly scheduler: SchedulerLike;
  readonly guard: EpochGuard;
  readonly monitors: Map<string, ChannelHealth>;
  readonly channels: Map<string, MonitoredChannel>;
  /** peer → the subscriptions of its monitor */
  readonly channelSubs: Map<string, Subscription>;
  readonly zombieRecords: KeyedThrottle;
  readonly events: Subject<HealthEvent>;
  readonly twoWay: Subject<Connection>;
  readonly history: HistoryWriter;
}

/** The health history, written in order, one write at a time, off the event path. */
interface HistoryWriter {
  persist(write: () => Promise<void>): void;
  /** Persists `event` (queued in order), then streams it. */
  record(event: HealthEvent): void;
  /** Resolves when every write queued so far is done (or failed). */
  flush(): Promise<void>;
  readonly failures: number;
}

function createHistoryWriter(deps: HealthMonitorDeps, events: Subject<HealthEvent>): HistoryWriter {
  let tail: Promise<void> = Promise.resolve();
  let failures = 0;
  const persist = (write: () => Promise<void>): void => {
    tail = tail.then(write).catch((err: unknown) => {
      failures++;
      deps.onPersistError?.(err);
    });
  };
  return {
    persist,
    record(event) {
      const record = toHealthRecord(event);
      persist(() => deps.store.append([record]));
      events.next(event);
    },
    flush: () => tail,
    get failures() {
      return failures;
    },
  };
}

export function createHealthMonitor(options: HealthOptions, deps: HealthMonitorDeps): HealthMonitor {
  const resolved = resolveHealthOptions(options);
  const scheduler = deps.scheduler ?? asyncScheduler;
  const events = new Subject<HealthEvent>();
  const m: MonitorParts = {
    deps,
    resolved,
    scheduler,
    guard: createEpochGuard(),
    monitors: new Map(),
    channels: new Map(),
    channelSubs: new Map(),
    zombieRecords: createKeyedThrottle({
      intervalMs: ZOMBIE_RECORD_INTERVAL_MS,
      maxKeys: 1000,
      now: () => scheduler.now(),
    }),
    events,
    twoWay: new Subject<Connection>(),
    history: createHistoryWriter(deps, events),
  };
  const { monitors, history } = m;
  const subs: Subscription[] = [];
  let closing: Promise<void> | undefined;

  // Old health history is deleted at start and every hour, in the persist queue (after the
  // appends before it).
  if (resolved.historyRetentionMs > 0) {
    subs.push(
      timer(0, PRUNE_EVERY_MS, scheduler).subscribe(() => {
        history.persist(async () => {
          await deps.store.prune(scheduler.now() - resolved.historyRetentionMs);
        });
      }),
    );
  }

  const peerBehind = createPeerBehindTracker(resolved, { scheduler });
  const backoffice = createBackofficeTracker({}, { scheduler });
  const eventsDelivery = createEventsDeliveryTracker(
    { undeliverableAfterFailures: resolved.eventsUndeliverableAfterFailures },
    { scheduler },
  );
  subs.push(
    merge(peerBehind.events$, backoffice.events$, eventsDelivery.events$).subscribe((event) =>
      history.record(event),
    ),
  );

  const health$ = events.asObservable();
  return {
    addChannel: (channel, core) => addChannel(m, channel, core),
    removeChannel(peer) {
      peerBehind.forget(peer);
      m.channelSubs.get(peer)?.unsubscribe();
      m.channelSubs.delete(peer);
      monitors.get(peer)?.close();
      monitors.delete(peer);
      m.channels.delete(peer);
    },
    channel(peer) {
      return monitors.get(peer);
    },
    get channels() {
      return [...monitors.values()];
    },
    resetEpoch: (peer, epoch) => resetEpoch(m, peer, epoch),
    admit(connection) {
      return judge(m, connection.peer, connection.peerEpoch, 'hello', connection);
    },
    onControlFrame(frame, type, connection) {
      if (type === 'Heartbeat') monitors.get(connection.peer)?.receive(frame, connection);
    },
    health$,
    peerBehind,
    backoffice,
    eventsDelivery,
    announce(event) {
      if (!closing) events.next(event);
    },
    resyncTriggers$: health$.pipe(filter(isResyncTrigger), share()),
    twoWay$: m.twoWay.asObservable(),
    snapshot() {
      return [...monitors.values()].map((h) => h.snapshot());
    },
    history(query) {
      return deps.store.history(query);
    },
    flush: () => history.flush(),
    get persistFailures() {
      return history.failures;
    },
    close() {
      closing ??= (async () => {
        for (const h of monitors.values()) h.close();
        for (const tracker of [peerBehind, backoffice, eventsDelivery]) tracker.close();
        for (const s of subs) s.unsubscribe();
        for (const s of m.channelSubs.values()) s.unsubscribe();
        events.complete();
        m.twoWay.complete();
        await history.flush();
      })();
      return closing;
    },
  };
}

async function addChannel(
  m: MonitorParts,
  channel: MonitoredChannel,
  core: SummarySource,
): Promise<ChannelHealth> {
  const { deps, guard } = m;
  const peer = channel.peer;
  // Read at every add: a channel re-added after another replica served it may have a new epoch.
  const [history, stored] = await Promise.all([deps.store.epochs(peer), deps.peers.getPeer(peer)]);
  guard.load(peer, history, stored?.epoch ?? null);
  const health = createChannelHealth(m.resolved, {
    me: deps.me,
    peer,
    myEpoch: deps.epoch,
    scheduler: m.scheduler,
    summary: () => core.openSummary(),
    inflight: () => channel.inflight,
    checkEpoch: (epoch, source, connection) => judge(m, peer, epoch, source, connection),
    peerEpoch: () => guard.current(peer),
  });
  m.monitors.set(peer, health);
  m.channels.set(peer, channel);
  const channelSub = new Subscription();
  m.channelSubs.set(peer, channelSub);
  // Persisted first (queued in order), then streamed.
  channelSub.add(health.health$.subscribe((event) => m.history.record(event)));
  channelSub.add(health.twoWay$.subscribe((connection) => m.twoWay.next(connection)));
  channelSub.add(
    channel.events$.subscribe((event) => {
      if (event.type === 'connected' && channel.connection) health.attach(channel.connection);
    }),
  );
  // A connection attached before monitoring started.
  if (channel.connection) health.attach(channel.connection);
  return health;
}

/** The epoch guard's verdict on an epoch the peer presents, recorded; false when the connection is refused. */
function judge(
  m: MonitorParts,
  peer: string,
  epoch: string,
  source: EpochSource,
  connection: Connection,
): boolean {
  const { deps } = m;
  const health = m.monitors.get(peer);
  if (!health) return true;
  const atMs = m.scheduler.now();
  const verdict = m.guard.admit(peer, epoch);
  switch (verdict.kind) {
    case 'current':
      return true;
    case 'first':
      health.record({ kind: 'epoch_seen', peer, atMs, epoch, source });
      m.history.persist(() => deps.peers.setPeerEpoch(peer, epoch));
      return true;
    case 'new':
      health.record({
        kind: 'peer_state_lost',
        peer,
        atMs,
        previousEpoch: verdict.previous,
        epoch,
        source,
      });
      m.history.persist(() => deps.peers.setPeerEpoch(peer, epoch));
      return true;
    case 'superseded': {
      // Recorded at most once a minute per peer and epoch, and the newest records kept only:
      // a zombie (or whoever holds the key) redialing cannot grow the history without bound.
      const suppressed = m.zombieRecords.pass(`${peer} ${epoch}`);
      if (suppressed !== undefined) {
        health.record({
          kind: 'zombie_refused',
          peer,
          atMs,
          epoch,
          currentEpoch: verdict.current,
          source,
          connectionId: connection.id,
          suppressed,
        });
        m.history.persist(async () => {
          await deps.store.trim(peer, 'zombie_refused', ZOMBIE_RECORDS_KEPT);
        });
      }
      connection.close(CloseCode.SUPERSEDED_EPOCH, 'superseded store epoch');
      return false;
    }
  }
}

async function resetEpoch(m: MonitorParts, peer: string, epoch: string): Promise<EpochResetResult> {
  const { deps, guard } = m;
  if (!m.monitors.has(peer)) throw new ParleyError('HEALTH_EPOCH_UNKNOWN', `${peer} is not a channel here`);
  if (!mayReinstate(guard, peer, epoch)) return { peer, epoch, previousEpoch: epoch, changed: false };
  const event = epochResetEvent(peer, epoch, guard.current(peer), m.scheduler.now(), 'admin');
  // Stored before it takes effect (and before the caller is answered), in the history's order.
  await new Promise<void>((resolve, reject) => {
    m.history.persist(async () => {
      try {
        await deps.store.append([epochResetRecord(event)]);
        await deps.peers.setPeerEpoch(peer, epoch);
        resolve();
      } catch (err) {
        reject(err);
        throw err;
      }
    });
  });
  guard.reinstate(peer, epoch);
  m.events.next(event);
  const live = m.channels.get(peer)?.connection;
  if (live && live.peerEpoch !== epoch) live.close(CloseCode.SUPERSEDED_EPOCH, 'superseded store epoch');
  return { peer, epoch, previousEpoch: event.previousEpoch, changed: true };
}
