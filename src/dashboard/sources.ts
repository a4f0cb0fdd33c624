/**
 * What the dashboard reads from a node, typed with the node's own event types (channel,
 * business, replica, resync, restore and health events), and the translation of each into the model's
 * inputs. The model and the wire contract (`events.ts`) stay the same when an event gains a
 * field; an event kind added to a union is a type error in the switches below until handled.
 */
import type { Observable } from 'rxjs';
import type { BusinessEvent } from '../business/driver.js';
import type { ChannelEvent } from '../channel/channel.js';
import type { BackofficeSnapshot } from '../health/backoffice.js';
import type { EventsDeliverySnapshot } from '../health/events-delivery.js';
import type { PeerBehindSnapshot } from '../health/peer-behind.js';
import type { HealthHistoryQuery, HealthRecord } from '../health/ports.js';
import type { ChannelHealthSnapshot, HealthEvent } from '../health/status.js';
import type { LeaseEvent } from '../replica/lease-keeper.js';
import type { ResyncRunRecord } from '../sync/ports.js';
import type { ResyncEvent } from '../sync/resync.js';
import type { RestoreEvent } from '../sync/types.js';
import type { HealthState, LogLevel, ResyncStatus } from './events.js';

/** The node events the dashboard shows (or counts). */
export type DashboardNodeEvent = ChannelEvent | BusinessEvent | LeaseEvent | ResyncEvent | RestoreEvent;

/** A node event of another kind (transport, upkeep, store): not shown. */
export interface OtherNodeEvent {
  readonly type: string;
}

const SHOWN: Record<DashboardNodeEvent['type'], true> = {
  connected: true,
  disconnected: true,
  retransmit: true,
  command_final: true,
  command_received: true,
  fork: true,
  command_waiting: true,
  command_dropped: true,
  command_queued: true,
  frame_refused: true,
  reacted: true,
  command_failed: true,
  recovered: true,
  business_error: true,
  lease_acquired: true,
  lease_lost: true,
  lease_error: true,
  resync_started: true,
  resync_progress: true,
  resync_finished: true,
  object_rebuilt: true,
  history_rejected: true,
  fork_lost: true,
  fork_won: true,
  sync_frame_failed: true,
  resync_backoff: true,
  restore_progress: true,
  restore_finished: true,
};

/** Whether a node event is one the dashboard knows. */
export function isDashboardEvent(event: DashboardNodeEvent | OtherNodeEvent): event is DashboardNodeEvent {
  return Object.hasOwn(SHOWN, event.type);
}

/** One row of `node.status()`. */
export interface DashboardChannelStatus {
  peer: string;
  /** The peer's name (config `peers[].name`); its address when absent. */
  name?: string;
  state: 'disconnected' | 'connected' | 'closed';
  inflight: number;
  openObjects: number;
  peerEpoch: string | null;
  lease?: 'owner' | 'standby';
}

/** The parts of a `VaspNode` the dashboard reads (it never writes). */
export interface DashboardSource {
  readonly address: string;
  readonly epoch: string;
  readonly url: string;
  /** Channel, business, replica, resync and restore events (hot); other kinds are ignored. */
  readonly events$: Observable<DashboardNodeEvent | OtherNodeEvent>;
  /** Current per-channel state (polled while a dashboard client is connected). */
  status(): Promise<readonly DashboardChannelStatus[]>;
  /** Health monitor events (hot), when the node runs one. */
  readonly health$?: Observable<HealthEvent>;
  /**
   * The health monitor, when the node runs one: its snapshots are sampled for the RTT / phi
   * series (phi rises between heartbeats, so it is sampled, not only read from events).
   */
  readonly health?: {
    snapshot(): readonly ChannelHealthSnapshot[];
    /** The channels whose peer is `peer_behind` now (sampled with the snapshots). */
    readonly peerBehind?: { snapshot(): readonly PeerBehindSnapshot[] };
    /** The channels whose payments wait for an unanswering back office now (sampled too). */
    readonly backoffice?: { snapshot(): readonly BackofficeSnapshot[] };
    /** The node's back-office events, while they stopped moving (sampled too). */
    readonly eventsDelivery?: { snapshot(): readonly EventsDeliverySnapshot[] };
    /** The persisted history (the state losses of the last 24 hours, on start). */
    history?(query?: HealthHistoryQuery): Promise<HealthRecord[]>;
  };
  /** Resync runs and their progress (hot), when the node runs resync. */
  readonly resync$?: Observable<ResyncEvent>;
  /** Persisted resync runs, newest first: the runs of earlier node runs, shown on start. */
  resyncRuns?(peer?: string, limit?: number): Promise<readonly ResyncRunRecord[]>;
}

/** A normalised health fact about one channel. */
export type HealthInput =
  | { type: 'state'; peer: string; atMs?: number; state: HealthState; phi?: number | null; cause?: string }
  | {
      type: 'snapshot';
      peer: string;
      atMs?: number;
      state: HealthState;
      sinceMs?: number;
      phi: number | null;
      rttMs: number | null;
      srttMs: number | null;
      silentMs?: number | null;
      diverged?: boolean;
    }
  | { type: 'sample'; peer: string; atMs?: number; rttMs: number | null; phi: number | null }
  | {
      type: 'peer_state_lost';
      peer: string;
      atMs?: number;
      previousEpoch: string | null;
      epoch: string | null;
    }
  | { type: 'diverged'; peer: string; atMs?: number; message?: string }
  | { type: 'converged'; peer: string; atMs?: number }
  | { type: 'peer_behind'; peer: string; atMs?: number; commands: number; cids: string[] }
  | { type: 'peer_behind_cleared'; peer: string; atMs?: number; final: number; abandoned: number }
  | { type: 'backoffice_unreachable'; peer: string; atMs?: number; failures: number; error: string }
  | { type: 'backoffice_reachable'; peer: string; atMs?: number; unreachableMs: number }
  | { type: 'other'; peer: string; atMs?: number; kind: string; level: LogLevel; message: string };

/** A normalised update of one resync run (missing fields keep their previous value). */
export interface ResyncInput {
  id: string;
  peer: string;
  atMs?: number;
  startedAtMs?: number;
  finishedAtMs?: number | null;
  reason?: string;
  status?: ResyncStatus;
  outcome?: string | null;
  phase?: string | null;
  done?: number;
  total?: number | null;
  objectsSent?: number;
  objectsReceived?: number;
  bytesSent?: number;
  bytesReceived?: number;
  rounds?: number;
  error?: string | null;
}

const short = (epoch: string | null): string => (epoch === null ? '?' : epoch.slice(0, 8));

/** The facts of one health monitor event. */
export function healthInputs(event: HealthEvent): HealthInput[] {
  const base = { peer: event.peer, atMs: event.atMs };
  switch (event.kind) {
    case 'transition':
      return [{ type: 'state', ...base, state: event.to, phi: event.phi, cause: event.cause }];
    case 'peer_state_lost':
      return [{ type: 'peer_state_lost', ...base, previousEpoch: event.previousEpoch, epoch: event.epoch }];
    case 'diverged':
      return [
        { type: 'diverged', ...base, message: `${event.local.count} open here, ${event.remote.count} there` },
      ];
    case 'converged':
      return [{ type: 'converged', ...base }];
    case 'peer_behind':
      return [{ type: 'peer_behind', ...base, commands: event.commands, cids: event.cids }];
    case 'peer_behind_cleared':
      return [{ type: 'peer_behind_cleared', ...base, final: event.final, abandoned: event.abandoned }];
    case 'command_abandoned':
      return [
        {
          type: 'other',
          ...base,
          kind: event.kind,
          level: 'warn',
          message: `command ${event.cid} (${event.referenceId}) abandoned by the operator`,
        },
      ];
    case 'backoffice_unreachable':
      return [{ type: 'backoffice_unreachable', ...base, failures: event.failures, error: event.error }];
    case 'backoffice_reachable':
      return [{ type: 'backoffice_reachable', ...base, unreachableMs: event.unreachableMs }];
    case 'events_undeliverable':
      return [
        {
          type: 'other',
          ...base,
          kind: event.kind,
          level: 'error',
          message: `the back-office events stopped: ${event.failures} deliveries in a row failed (${event.error}); later events wait behind ${event.eventId}`,
        },
      ];
    case 'events_deliverable':
      return [
        {
          type: 'other',
          ...base,
          kind: event.kind,
          level: 'info',
          message: `the back-office events move again (after ${Math.round(event.undeliverableMs / 1000)} s)`,
        },
      ];
    case 'epoch_seen':
      return [
        {
          type: 'other',
          ...base,
          kind: event.kind,
          level: 'info',
          message: `first contact, epoch ${short(event.epoch)}`,
        },
      ];
    case 'zombie_refused':
      return [
        {
          type: 'other',
          ...base,
          kind: event.kind,
          level: 'warn',
          message: `refused a connection with replaced epoch ${short(event.epoch)}`,
        },
      ];
    case 'epoch_reset':
      return [
        {
          type: 'other',
          ...base,
          kind: event.kind,
          level: 'warn',
          message: `operator reinstated epoch ${short(event.epoch)} (replacing ${short(event.previousEpoch)})`,
        },
      ];
    case 'heartbeat_refused':
      return [
        {
          type: 'other',
          ...base,
          kind: event.kind,
          level: 'error',
          message: `heartbeat refused: ${event.code} (close ${event.closeCode})`,
        },
      ];
  }
}

/** One channel's health snapshot as a model input. */
export function snapshotInput(s: ChannelHealthSnapshot, atMs: number): HealthInput {
  return {
    type: 'snapshot',
    peer: s.peer,
    atMs,
    state: s.state,
    sinceMs: s.sinceMs,
    phi: s.phi,
    rttMs: s.rttMs,
    srttMs: s.srttMs,
    silentMs: s.silentMs,
    diverged: s.diverged,
  };
}

/** How a run's outcome reads on the dashboard. */
function statusOf(outcome: string | null | undefined): ResyncStatus {
  return outcome === 'failed' || outcome === 'aborted' ? 'failed' : 'completed';
}

/** The run update a resync event carries, or undefined for an event about no run. */
export function resyncInput(event: ResyncEvent): ResyncInput | undefined {
  if (
    event.type !== 'resync_started' &&
    event.type !== 'resync_progress' &&
    event.type !== 'resync_finished'
  ) {
    return undefined;
  }
  const input: ResyncInput = {
    id: event.runId,
    peer: event.peer,
    atMs: event.atMs,
    reason: event.reason,
    phase: event.phase,
    done: event.done,
    total: event.total,
    objectsSent: event.objectsSent,
    objectsReceived: event.objectsReceived,
    bytesSent: event.bytesSent,
    bytesReceived: event.bytesReceived,
    rounds: event.rounds,
  };
  if (event.type === 'resync_started') input.startedAtMs = event.atMs;
  if (event.type === 'resync_finished') {
    input.status = event.error !== undefined ? 'failed' : statusOf(event.outcome);
    input.outcome = event.outcome ?? null;
    input.finishedAtMs = event.atMs;
    if (event.error !== undefined) input.error = event.error;
  } else input.status = 'running';
  return input;
}

/** A persisted run (of an earlier node run) as a model input. */
export function pastRunInput(run: ResyncRunRecord): ResyncInput {
  const runId = run.detail['runId'];
  const error = run.detail['error'];
  return {
    id: typeof runId === 'string' ? runId : String(run.id),
    peer: run.peer,
    reason: run.reason,
    startedAtMs: run.startedAtMs,
    finishedAtMs: run.finishedAtMs,
    status: run.outcome === null ? 'running' : statusOf(run.outcome),
    outcome: run.outcome,
    objectsSent: run.objectsSent,
    objectsReceived: run.objectsReceived,
    bytesSent: run.bytesSent,
    bytesReceived: run.bytesReceived,
    rounds: run.rounds,
    ...(typeof error === 'string' ? { error } : {}),
  };
}
