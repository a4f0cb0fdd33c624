/**
 * The dashboard's socket.io contract: event names and payload schemas (zod), server → client
 * only. The dashboard is read-only: a client sends nothing, and whatever it sends is ignored.
 *
 * On connect the server emits one `snapshot` (the whole picture), then `delta`s at most every
 * `deltaIntervalMs` with what changed since the previous one. A client that reconnects gets a
 * fresh snapshot; deltas whose `seq` is not above the snapshot's are stale and can be dropped.
 *
 * The payments view is asked for: a client emits `payments` (a query) or `payment` (a reference
 * id) with an acknowledgement callback, and gets the answer of `GET /admin/payments` or
 * `GET /admin/payments/<ref>` (`PaymentsAnswer`: the HTTP status and the same JSON body,
 * documented in `/admin/openapi.json`). Nothing a client sends changes anything.
 *
 * Health and resync parts are optional: a node without a health monitor (or without resync)
 * sends channel rows without `health` (or `resync`), and `features` says which parts exist.
 */
import { z } from 'zod';

/** Version of this contract; a breaking change bumps it. */
export const DASHBOARD_CONTRACT_VERSION = 1;

/** socket.io path on the node's HTTP port. */
export const DASHBOARD_SOCKET_PATH = '/socket.io/';

/**
 * Failure-detector verdict on a channel (DESIGN.md §4): `unknown` until the first contact,
 * then `healthy → suspect → down` as the peer's heartbeats stop.
 */
export const HealthState = z.enum(['unknown', 'healthy', 'suspect', 'down']);
export type HealthState = z.infer<typeof HealthState>;

/** Transport state of a channel, as the channel itself knows it. */
export const ConnectionState = z.enum(['disconnected', 'connected', 'closed']);
export type ConnectionState = z.infer<typeof ConnectionState>;

const Ms = z.number().nonnegative();
const Count = z.number().int().nonnegative();

/** What the health monitor says about one channel. */
export const ChannelHealth = z.object({
  state: HealthState,
  /** Since when (ms since the Unix epoch) the channel is in `state`. */
  sinceMs: Ms,
  /** Latest heartbeat round-trip time, null before the first one. */
  rttMs: Ms.nullable(),
  /** Smoothed round-trip time, when the monitor keeps one. */
  srttMs: Ms.nullable(),
  /** Latest suspicion level of the accrual detector, null before the first heartbeat. */
  phi: z.number().nonnegative().nullable(),
  lastHeartbeatAtMs: Ms.nullable(),
  /**
   * The peer came back with a different store epoch; cleared when a resync completes (the
   * summary's state-lost tile keeps counting it for 24 hours: `stateLosses`).
   */
  peerStateLost: z.boolean(),
  /** Open-object digests differ after in-flight commands settled; cleared by a completed resync. */
  diverged: z.boolean(),
});
export type ChannelHealth = z.infer<typeof ChannelHealth>;

export const ResyncStatus = z.enum(['running', 'completed', 'failed']);
export type ResyncStatus = z.infer<typeof ResyncStatus>;

/** One resync run with a peer, live while `status` is `running`. */
export const ResyncRunView = z.object({
  id: z.string().min(1),
  peer: z.string(),
  /** Why it ran: `connect`, `peer_state_lost`, `diverged`, … */
  reason: z.string(),
  status: ResyncStatus,
  /** How it ended, in the resync engine's words (`in_sync`, `repaired`, `partial`, …). */
  outcome: z.string().nullable(),
  /** Current step, when the resync reports one (`compare`, `send`, `fetch`, …). */
  phase: z.string().nullable(),
  startedAtMs: Ms,
  finishedAtMs: Ms.nullable(),
  /** Objects handled so far out of `total` (null while unknown). */
  done: Count,
  total: Count.nullable(),
  objectsSent: Count,
  objectsReceived: Count,
  bytesSent: Count,
  bytesReceived: Count,
  rounds: Count,
  error: z.string().nullable(),
});
export type ResyncRunView = z.infer<typeof ResyncRunView>;

/**
 * The closed-object restore of a channel (PROTOCOL.md §7.6), the latest one this node run saw:
 * led by this node (`leader`: it compares the closed objects and pushes or fetches what one side
 * lacks) or by the peer (`follower`: what the peer's restore stored here).
 */
export const RestoreView = z.object({
  /** `waiting`: stopped (no link, or stalled); it goes on at the next connection. */
  state: z.enum(['running', 'waiting', 'finished']),
  role: z.enum(['leader', 'follower']),
  /** `peer_state_lost` or `on_demand` (`parley resync --all`). */
  reason: z.string(),
  /** Objects moved: pushed or fetched by this node as leader, stored here as follower. */
  moved: Count,
  /** Closed objects compared (0 when the peer leads). */
  compared: Count,
  startedAtMs: Ms,
  /** The latest report of it. */
  atMs: Ms,
  /** Why it waits (an error code and its words), null otherwise. */
  error: z.string().nullable(),
  finishedAtMs: Ms.nullable(),
});
export type RestoreView = z.infer<typeof RestoreView>;

/** One row of the channel table; a delta always carries whole rows. */
export const ChannelView = z.object({
  /** The peer's channel address (bech32, zero subaddress). */
  peer: z.string().min(1),
  /** Its name (config `peers[].name`), or its address. */
  name: z.string().min(1),
  connection: ConnectionState,
  /** When the current connection was attached, null while disconnected. */
  connectedSinceMs: Ms.nullable(),
  /** The latest store epoch seen from the peer, null before the first hello. */
  peerEpoch: z.string().nullable(),
  /**
   * Several replicas of this VASP: whether this replica serves the channel (`owner`) or another
   * one may (`standby`); null for a node that is not a replica.
   */
  lease: z.enum(['owner', 'standby']).nullable(),
  openObjects: Count,
  /** Commands of this node without a final response yet. */
  inflight: Count,
  /** Retransmissions since the node started. */
  retransmits: Count,
  /** Final outcomes of this node's commands / committed commands of the peer, since start. */
  commandsSent: Count,
  commandsReceived: Count,
  /** Commands that ended as command errors (either direction) or were refused. */
  commandFailures: Count,
  lastDisconnect: z.object({ code: z.number().int(), reason: z.string(), atMs: Ms }).nullable(),
  /**
   * Present while the peer is `peer_behind`: commands of this node stuck there (answered `wait`
   * with no progress, LIP-1 HTTP channels included), since when. Cleared once they are final or
   * abandoned (`parley command abandon`).
   */
  peerBehind: z.object({ commands: Count, sinceMs: Ms }).optional(),
  /**
   * Present while the channel is `backoffice_unreachable`: payments on it wait for the VASP's
   * back office, which has not answered (docs/backoffice.md). Cleared by its next valid answer.
   */
  backoffice: z
    .object({
      sinceMs: Ms,
      /** Questions that failed so far. */
      requests: Count,
      /** The last failure, in words. */
      error: z.string(),
    })
    .optional(),
  /** Absent when the node runs no health monitor. */
  health: ChannelHealth.optional(),
  /** The current or latest resync run of this channel; absent before the first one. */
  resync: ResyncRunView.optional(),
  /** The channel's closed-object restore; absent while none ran in this node run. */
  restore: RestoreView.optional(),
});
export type ChannelView = z.infer<typeof ChannelView>;

/** One point of the RTT / phi time series of a channel. */
export const Sample = z.object({
  peer: z.string(),
  atMs: Ms,
  rttMs: Ms.nullable(),
  phi: z.number().nonnegative().nullable(),
});
export type Sample = z.infer<typeof Sample>;

export const LogLevel = z.enum(['info', 'warn', 'error']);
export type LogLevel = z.infer<typeof LogLevel>;

/**
 * One line of the event log: connections, health transitions (`healthy`, `suspect`, `down`,
 * `peer_state_lost`, `diverged`), resync runs, refused frames, failed commands.
 */
export const LogEntry = z.object({
  /** Increasing per node run; a client can de-duplicate on it. */
  id: Count,
  atMs: Ms,
  peer: z.string().nullable(),
  kind: z.string().min(1),
  level: LogLevel,
  message: z.string(),
});
export type LogEntry = z.infer<typeof LogEntry>;

/** A `peer_state_lost` event: a counterparty came back with a new store epoch. */
export const StateLoss = z.object({ peer: z.string(), atMs: Ms });
export type StateLoss = z.infer<typeof StateLoss>;

export const NodeInfo = z.object({
  address: z.string(),
  epoch: z.string(),
  /** The node's channel URL (ws:// or wss://). */
  url: z.string(),
  startedAtMs: Ms,
});
export type NodeInfo = z.infer<typeof NodeInfo>;

/** Which optional parts this node provides. */
export const Features = z.object({
  health: z.boolean(),
  resync: z.boolean(),
  /** The payments view answers (the node's store has one). */
  payments: z.boolean(),
});
export type Features = z.infer<typeof Features>;

/** Detector thresholds, for the phi chart's guide lines (null when unknown). */
export const HealthThresholds = z.object({
  suspectPhi: z.number().positive().nullable(),
  downPhi: z.number().positive().nullable(),
});
export type HealthThresholds = z.infer<typeof HealthThresholds>;

/**
 * A condition of the node itself (not of one channel) that needs a person, under the name of
 * its Prometheus alert (ops/parley-alerts.yml): `events_undeliverable` (`ParleyEventsUndeliverable`).
 */
export const NodeCondition = z.object({
  kind: z.string().min(1),
  alert: z.string().min(1),
  severity: z.enum(['critical', 'warning']),
  sinceMs: Ms,
  message: z.string(),
});
export type NodeCondition = z.infer<typeof NodeCondition>;

/** Event `snapshot`: the whole picture, sent once per connection. */
export const DashboardSnapshot = z.object({
  version: z.literal(DASHBOARD_CONTRACT_VERSION),
  /** Sequence number of the last delta folded into this snapshot. */
  seq: Count,
  atMs: Ms,
  node: NodeInfo,
  features: Features,
  thresholds: HealthThresholds,
  channels: z.array(ChannelView),
  /** RTT / phi history of every channel, oldest first, within `limits.sampleWindowMs`. */
  samples: z.array(Sample),
  /** Latest log entries, oldest first, at most `limits.logSize`. */
  log: z.array(LogEntry),
  /** Latest resync runs, oldest first, at most `limits.resyncRuns`. */
  resyncRuns: z.array(ResyncRunView),
  /**
   * The state losses of the last 24 hours (this node run's and, from the health history, the
   * earlier ones), oldest first, at most 100: the summary counts them and shows the last one.
   */
  stateLosses: z.array(StateLoss),
  /** The node's own conditions now (none: an empty list). */
  conditions: z.array(NodeCondition),
  limits: z.object({ sampleWindowMs: Ms, logSize: Count, resyncRuns: Count, deltaIntervalMs: Ms }),
});
export type DashboardSnapshot = z.infer<typeof DashboardSnapshot>;

/** Event `delta`: what changed since the previous delta (or the snapshot). */
export const DashboardDelta = z.object({
  /** One more than the previous delta's. */
  seq: z.number().int().positive(),
  atMs: Ms,
  /** Changed channel rows, whole. */
  channels: z.array(ChannelView),
  /** New samples, oldest first. */
  samples: z.array(Sample),
  /** New log entries, oldest first. */
  log: z.array(LogEntry),
  /** Started or updated resync runs, whole. */
  resyncRuns: z.array(ResyncRunView),
  /** New state losses, oldest first. */
  stateLosses: z.array(StateLoss),
  /** The node's conditions, whole, when they changed. */
  conditions: z.array(NodeCondition).optional(),
});
export type DashboardDelta = z.infer<typeof DashboardDelta>;

/** Every server → client event with its payload schema. */
export const DashboardEvents = {
  snapshot: DashboardSnapshot,
  delta: DashboardDelta,
} as const;
export type DashboardEventName = keyof typeof DashboardEvents;

/** socket.io typed events, server → client. */
export interface ServerToClientEvents {
  snapshot: (snapshot: DashboardSnapshot) => void;
  delta: (delta: DashboardDelta) => void;
}

const QueryText = z.string().max(200);

/** Client request `payments`: the query parameters of `GET /admin/payments`, as text. */
export const PaymentsQuery = z
  .object({
    peer: QueryText,
    state: QueryText,
    status: QueryText,
    myStatus: QueryText,
    theirStatus: QueryText,
    since: QueryText,
    until: QueryText,
    limit: QueryText,
    cursor: QueryText,
  })
  .partial()
  .strict();
export type PaymentsQuery = z.infer<typeof PaymentsQuery>;

/** Client request `payment`: one payment by reference id (and channel, when ambiguous). */
export const PaymentRequest = z
  .object({ referenceId: z.string().min(1).max(200), peer: QueryText.optional() })
  .strict();
export type PaymentRequest = z.infer<typeof PaymentRequest>;

/**
 * The answer to a payments request: the status and body `GET /admin/payments[/<ref>]` answers
 * (`PaymentList`, `PaymentDetail` or `ErrorBody` of `/admin/openapi.json`).
 */
export interface PaymentsAnswer {
  status: number;
  body: unknown;
}

/**
 * socket.io typed events, client → server: the payments view's reads (answered by
 * acknowledgement); nothing a client sends changes the node.
 */
export interface ClientToServerEvents {
  payments: (query: PaymentsQuery, ack: (answer: PaymentsAnswer) => void) => void;
  payment: (request: PaymentRequest, ack: (answer: PaymentsAnswer) => void) => void;
}
