/**
 * What the health module reports: the liveness state of a channel and the events of its
 * history. Events are facts (`peer_state_lost`, `diverged`); every one is streamed on `health$`
 * and persisted (`health_event` table).
 */
import type { OpenObjectsSummary } from '../protocol/channel-frames.js';

/**
 * Liveness of a channel's peer, from the phi accrual detector over its heartbeats:
 * - `unknown`: no contact since this node started (becomes `down` after the startup grace);
 * - `healthy`: heartbeats arrive as usual;
 * - `suspect`: phi passed the suspect threshold: a heartbeat is late;
 * - `down`: phi passed the down threshold: the peer (or the path to it) is gone.
 *
 * Only a heartbeat (or a new authenticated connection) makes the state better; only silence
 * makes it worse.
 */
export type HealthState = 'unknown' | 'healthy' | 'suspect' | 'down';

/** Every health state, in order of concern. */
export const HEALTH_STATES: readonly HealthState[] = ['unknown', 'healthy', 'suspect', 'down'];

/** Why a state changed. */
export type TransitionCause =
  /** a heartbeat arrived */
  | 'heartbeat'
  /** an authenticated connection opened (the handshake proves the peer is there) */
  | 'connected'
  /** phi crossed a threshold with no heartbeat */
  | 'silence'
  /** no contact at all within the startup grace */
  | 'startup';

/** Where an epoch was seen. */
export type EpochSource = 'hello' | 'heartbeat';

interface Base {
  /** The channel: the peer's address (bech32, zero subaddress). */
  peer: string;
  /** When it happened, on the monitor's clock (ms since the Unix epoch in production). */
  atMs: number;
}

/** One entry of a channel's health history. */
export type HealthEvent =
  | (Base & {
      kind: 'transition';
      from: HealthState;
      to: HealthState;
      cause: TransitionCause;
      /** phi when it happened (0 after a heartbeat). */
      phi: number;
      /** ms since the last heartbeat (or connection), null if none since start. */
      silentMs: number | null;
    })
  | (Base & {
      /** The first epoch ever seen from this peer (first contact). */
      kind: 'epoch_seen';
      epoch: string;
      source: EpochSource;
    })
  | (Base & {
      /**
       * The peer presents an epoch different from the one stored for it: it lost or replaced
       * its state. Raised at the first hello or heartbeat with that epoch, before any command
       * on the connection. Resync acts on it.
       */
      kind: 'peer_state_lost';
      previousEpoch: string;
      epoch: string;
      source: EpochSource;
    })
  | (Base & {
      /** A connection (or heartbeat) with an epoch the peer has since replaced: refused with 4412. */
      kind: 'zombie_refused';
      epoch: string;
      currentEpoch: string;
      source: EpochSource;
      connectionId: string;
      /**
       * Refusals of this peer and epoch not recorded since the last record (at most one record
       * per peer and epoch a minute).
       */
      suppressed: number;
    })
  | (Base & {
      /**
       * The operator reinstated a superseded epoch of the peer (`parley peer reset-epoch`): it is
       * the current one again, and `previousEpoch` is superseded.
       */
      kind: 'epoch_reset';
      epoch: string;
      previousEpoch: string | null;
      /** `admin`: through the running node's admin route; `offline`: on the stopped node's database. */
      via: 'admin' | 'offline';
    })
  | (Base & {
      /**
       * The open-object digests differ, and stayed different over `heartbeats` consecutive
       * heartbeats while neither side had a command in flight. Resync acts on it.
       */
      kind: 'diverged';
      local: OpenObjectsSummary;
      remote: OpenObjectsSummary;
      heartbeats: number;
    })
  | (Base & {
      /** The digests agree again after `diverged`. */
      kind: 'converged';
      summary: OpenObjectsSummary;
    })
  | (Base & {
      /**
       * Commands of mine stay stuck at a peer that does not progress: a LIP-1 HTTP peer answered
       * `wait` to each `waits` times (it cannot resync), or over ws the resync runs for it kept
       * ending while the peer still answered `wait`. Raised when the first command gets stuck;
       * cleared (`peer_behind_cleared`) once every stuck command is final or abandoned.
       */
      kind: 'peer_behind';
      /** The stuck commands now (at most 20 listed in `cids`). */
      commands: number;
      cids: string[];
      /** How it was found: `waits` (LIP-1 HTTP) or `resync_runs` (ws). */
      cause: 'waits' | 'resync_runs';
      waits: number;
    })
  | (Base & {
      /** Every command that made the peer `peer_behind` is final or abandoned now. */
      kind: 'peer_behind_cleared';
      /** How many of them ended final, and how many were abandoned. */
      final: number;
      abandoned: number;
    })
  | (Base & {
      /**
       * The operator abandoned a command of mine (`parley command abandon`): its outbox entry is
       * gone (in the same transaction as this record), it is never resent, and whoever waited on
       * it got `COMMAND_ABANDONED`. Kept by the history pruning. The peer may hold it or not.
       */
      kind: 'command_abandoned';
      cid: string;
      referenceId: string;
      readVersion: string | null;
      writeVersion: string;
      code: 'COMMAND_ABANDONED';
      /** The signed request as it was sent (never sent again). */
      requestJws: string;
    })
  | (Base & {
      /**
       * A payment on this channel waits for the back office (the webhook business): it failed to
       * answer one question `failures` times (docs/backoffice.md). Cleared by `backoffice_reachable`.
       */
      kind: 'backoffice_unreachable';
      failures: number;
      error: string;
    })
  | (Base & {
      /** The back office answered a question about this channel again, after `unreachableMs`. */
      kind: 'backoffice_reachable';
      unreachableMs: number;
    })
  | (Base & {
      /**
       * The back-office events stopped moving: the receiver refused (or did not answer)
       * `failures` attempts in a row; every later event waits behind `eventId`, an event of this
       * channel (docs/backoffice.md, "Events"). A node condition. Cleared by `events_deliverable`.
       */
      kind: 'events_undeliverable';
      eventId: string;
      failures: number;
      error: string;
    })
  | (Base & {
      /** The receiver took an event again (`eventId`), after `undeliverableMs`. */
      kind: 'events_deliverable';
      eventId: string;
      undeliverableMs: number;
    })
  | (Base & {
      /** A heartbeat broke a rule of PROTOCOL.md §8.3; the connection was closed with `closeCode`. */
      kind: 'heartbeat_refused';
      code: string;
      closeCode: number;
      connectionId: string;
    });

/** The kind of a {@link HealthEvent}. */
export type HealthEventKind = HealthEvent['kind'];

/** The events resync acts on (DESIGN.md §4): the peer lost its state, or the states diverged. */
export type ResyncTrigger = Extract<HealthEvent, { kind: 'peer_state_lost' | 'diverged' }>;

/** Whether an event asks for a resync. */
export function isResyncTrigger(event: HealthEvent): event is ResyncTrigger {
  return event.kind === 'peer_state_lost' || event.kind === 'diverged';
}

/** A channel's health at one moment (for `/healthz`, metrics and the dashboard). */
export interface ChannelHealthSnapshot {
  peer: string;
  state: HealthState;
  /** Since when, ms (monitor clock). */
  sinceMs: number;
  /** Whether an authenticated connection is live. */
  connected: boolean;
  connectionId: string | null;
  /** phi now (0 before any contact). */
  phi: number;
  /** Last measured heartbeat round trip, ms. */
  rttMs: number | null;
  /** Smoothed round trip (EWMA, 1/8 as TCP's SRTT), ms. */
  srttMs: number | null;
  /** ms since the last heartbeat arrived, null if none since start. */
  silentMs: number | null;
  heartbeatsSent: number;
  heartbeatsReceived: number;
  /** The peer's store epoch as last seen (stored), null before first contact. */
  peerEpoch: string | null;
  /** This node's open objects shared with the peer. */
  local: OpenObjectsSummary;
  /** What the peer's last heartbeat (or hello) announced, null before any. */
  remote: OpenObjectsSummary | null;
  localInflight: number;
  remoteInflight: number | null;
  /** Whether the last `diverged` has not been followed by `converged`. */
  diverged: boolean;
}
