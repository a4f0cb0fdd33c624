/**
 * The node's public types: its events, the `VaspNode` facade, payment input and channel
 * snapshots, and what a caller may inject (`NodeDeps`). `src/node.ts` re-exports them.
 */
import type { Observable, SchedulerLike } from 'rxjs';
import type { BusinessDriverOptions, BusinessEvent } from '../business/driver.js';
import type { BusinessContext } from '../business/index.js';
import type { Channel, ChannelEvent, SubmittedCommand } from '../channel/channel.js';
import type { InflightStates } from '../channel/command-tracker.js';
import type { ErrorCode } from '../errors.js';
import type { EventDelivery } from '../events/index.js';
import type { AbandonedCommand } from '../health/abandon.js';
import type {
  HealthEvent,
  HealthMonitor,
  HealthOptions,
  StoreWritability,
  StoreWritabilityEvent,
  StoreWritabilityOptions,
} from '../health/index.js';
import type { HttpRouter } from '../http/router.js';
import type { DialEvent } from '../peer/connections.js';
import type { Lip1RequestRefused } from '../refusal-reports.js';
import type { LeaseEvent } from '../replica/lease-keeper.js';
import type { ParleyStore } from '../store/types.js';
import type { ResyncRunRecord } from '../sync/ports.js';
import type {
  ChannelSync,
  ChannelSyncOptions,
  RestoreEvent,
  ResyncEvent,
  ResyncRunResult,
} from '../sync/resync.js';
import type { HandshakeRefused } from '../transport/refused-hellos.js';
import type { EventDeliveryFailed } from './back-office.js';

/** Everything a node reports, for logs, metrics and the dashboard. */
export type NodeEvent =
  | ChannelEvent
  | BusinessEvent
  | ResyncEvent
  | RestoreEvent
  | LeaseEvent
  | UpkeepEvent
  | BackgroundFailed
  | TransportEvent
  | StoreWritabilityEvent
  | Lip1RequestRefused
  | EventDeliveryFailed;

/**
 * A connection that failed before it became a channel: a dial of mine (the peer unreachable, or
 * refused me: wrong key, clock skew, not the owner, …) or a hello to me that I refused. `code` is
 * the Parley error code (docs/errors.md).
 */
export type TransportEvent = DialEvent | HandshakeRefused;

/** A periodic upkeep task failed (the store was unreachable, say); it runs again at its next turn. */
export type UpkeepEvent = { type: 'upkeep_failed'; task: 'prune_resync_runs'; code: string };

/**
 * Work nobody awaits failed (`src/util/background.ts`): `task` says what was being done (e.g.
 * `recover`, `reload_summary`, `take_over_channel`), `peer` the channel it was for.
 */
export type BackgroundFailed = {
  type: 'background_failed';
  task: string;
  peer?: string;
  code: ErrorCode;
  message: string;
};

/** A payment to start. */
export interface PayInput {
  /** The counterparty VASP (bech32). */
  to: string;
  amount: number;
  currency: string;
  /** Payer / payee accounts, 16 hex digits each. @default 0000000000000001 */
  fromSubaddressHex?: string;
  toSubaddressHex?: string;
  description?: string;
}

export interface ChannelSnapshot {
  peer: string;
  /** The peer's name (config `peers[].name`), or its address; every row of `status()` has it. */
  name?: string;
  state: 'disconnected' | 'connected' | 'closed';
  inflight: number;
  /** This node's commands in flight in this process by where each stands (`Channel.inflightStates`). */
  inflightStates?: InflightStates;
  openObjects: number;
  peerEpoch: string | null;
  /** With several replicas: whether this replica owns the channel now (`standby`: another one may). */
  lease?: 'owner' | 'standby';
}

export interface VaspNode {
  readonly address: string;
  /** This replica's id, with several replicas of the VASP on one database (`config.replica`). */
  readonly replicaId: string | undefined;
  readonly epoch: string;
  /** ws URL of this node's channel endpoint. */
  readonly url: string;
  readonly port: number;
  readonly store: ParleyStore;
  /** Plain-HTTP routes on the channel port (health, metrics, admin, dashboard). */
  readonly http: HttpRouter;
  /** The channel to a configured peer. @throws CONFIG_INVALID for an unknown peer */
  channel(peer: string): Channel;
  readonly channels: readonly Channel[];
  /** Every channel's and the business layer's events (hot). */
  readonly events$: Observable<NodeEvent>;
  /** The back-office events (docs/backoffice.md, "Events"), when `config.events` records them. */
  readonly backofficeEvents?: EventDelivery;
  /**
   * Every channel's health events (hot): state transitions, `peer_state_lost`, `diverged`,
   * refused zombies and heartbeats. Each is also persisted (`health.history()`).
   */
  readonly health$: Observable<HealthEvent>;
  /** Channel health: snapshots, history, and the events resync acts on (`resyncTriggers$`). */
  readonly health: HealthMonitor;
  /** Whether this node's store can write (a health condition of the node: docs/storage.md). */
  readonly storeWritability: StoreWritability;
  /** Resync progress, runs and rebuilt / rejected objects of every channel (hot). */
  readonly resync$: Observable<ResyncEvent>;
  /**
   * Run a resync with `peer` now (or right after the running one; requests merge): what the
   * health module's `peer_state_lost` / `diverged` call, or an operator. `scope` limits the run
   * to those objects.
   * @throws CONFIG_INVALID for an unknown peer; SYNC_ABORTED when not connected
   */
  requestResync(peer: string, reason: string, scope?: readonly string[]): Promise<ResyncRunResult>;
  /** Resync and the network reads (get an object, get its signed history) of one channel. */
  sync(peer: string): ChannelSync;
  /** Persisted resync runs, newest first. */
  resyncRuns(peer?: string, limit?: number): Promise<ResyncRunRecord[]>;
  /**
   * Ends a command of mine that has no final outcome, locally (`parley command abandon`): durably
   * (outbox row gone, `command_abandoned` in the health history) before it resolves; it is never
   * resent, and its callers get `COMMAND_ABANDONED`. docs/operations.md, "Peer behind".
   * @throws COMMAND_UNKNOWN, COMMAND_ALREADY_FINAL, STORE_LEASE_LOST, STORE_UNAVAILABLE
   */
  abandonCommand(cid: string): Promise<AbandonedCommand>;
  /**
   * Start a payment as the sender. `queued` resolves once the create is durable in the outbox
   * (acknowledge the payment then, not before) and rejects with the code that kept it from being
   * stored; `outcome$` streams the create's final outcome (see `Channel.submit`).
   * @throws CONFIG_INVALID (unknown peer), BUSINESS_INVALID_INPUT (bad payment) before anything is stored
   */
  pay(input: PayInput): SubmittedCommand;
  status(): Promise<ChannelSnapshot[]>;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface NodeDeps {
  business?: BusinessContext;
  /** When a reaction that could not be sent runs again (see `BusinessDriverOptions`). */
  driver?: BusinessDriverOptions;
  /** Heartbeat and failure-detector knobs (see `HealthOptions` for the defaults). */
  health?: HealthOptions;
  /** Resync knobs; `onConnect: false` turns off the run on every (re)connect (to test other triggers). */
  sync?: ChannelSyncOptions & { onConnect?: boolean };
  /** The store's write probe: intervals, the `/livez` grace, the clock. */
  storeWritability?: StoreWritabilityOptions;
  /** Timers of the rate-limited refusal reports (virtual time in tests). @default asyncScheduler */
  reportScheduler?: SchedulerLike;
}
