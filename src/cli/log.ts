/**
 * Structured logs of `parley start`: one JSON object per line on stdout,
 * `{"ts":"<ISO time>","level":"info","event":"connected",...fields}`.
 */
import type { NodeEvent } from '../node.js';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'fatal'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function isLogLevel(text: string): text is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(text);
}

export interface JsonLogger {
  log(level: LogLevel, event: string, fields?: Record<string, unknown>): void;
}

/** A logger writing lines at `minLevel` and above. */
export function createJsonLogger(
  write: (line: string) => void,
  minLevel: LogLevel = 'info',
  now: () => Date = () => new Date(),
): JsonLogger {
  const min = LOG_LEVELS.indexOf(minLevel);
  return {
    log(level, event, fields = {}) {
      if (LOG_LEVELS.indexOf(level) < min) return;
      write(`${JSON.stringify({ ts: now().toISOString(), level, event, ...fields })}\n`);
    },
  };
}

/**
 * `logger` with the peer's configured name beside its address: a line whose `peer` field names
 * a peer with a `peers[].name` gets `peerName` as well.
 */
export function withPeerNames(logger: JsonLogger, names: ReadonlyMap<string, string>): JsonLogger {
  return {
    log(level, event, fields = {}) {
      const peer = fields['peer'];
      const name = typeof peer === 'string' ? names.get(peer) : undefined;
      logger.log(level, event, name === undefined ? fields : { ...fields, peerName: name });
    },
  };
}

/**
 * How loud a node event is: connection changes, finals of my commands and resync runs at info,
 * per-command detail (queued, received, retransmitted) and resync progress at debug, failures at warn, forks and business errors
 * (which need an operator) at error. Kinds added later log at info.
 */
export function nodeEventLevel(event: NodeEvent): LogLevel {
  switch (event.type) {
    case 'command_final':
      return event.status === 'success' ? 'info' : 'warn';
    case 'command_queued':
    case 'command_received':
    case 'retransmit':
    case 'command_waiting':
    case 'reacted':
    case 'resync_progress':
    case 'redial':
      return 'debug';
    case 'frame_refused':
    case 'command_dropped':
    case 'command_failed':
    case 'history_rejected':
    case 'sync_frame_failed':
    case 'fork_lost':
    case 'lease_lost':
    case 'lease_error':
    case 'upkeep_failed':
    case 'background_failed':
    case 'dial_failed':
    case 'handshake_refused':
    case 'store_unwritable':
    case 'lip1_request_refused':
    case 'event_delivery_failed':
      return 'warn';
    case 'fork':
    case 'business_error':
      return 'error';
    // A restore's start or resumption at info, its batches at debug, a stop at warn.
    case 'restore_progress':
      return event.state === 'waiting' ? 'warn' : event.movedNow === 0 ? 'info' : 'debug';
    default:
      return 'info';
  }
}

/** Logs a node event under its `type` as the event name. */
export function logNodeEvent(logger: JsonLogger, event: NodeEvent): void {
  const { type, ...fields } = event;
  logger.log(nodeEventLevel(event), type, fields);
}

/** A peer's dial failures in a row with one code: every this many, one at warn again. */
export const DIAL_FAILED_WARN_EVERY = 50;

/**
 * Logs a node's events as {@link logNodeEvent} does, but a peer's dial failures in a row with
 * the same code at warn only the first time and every {@link DIAL_FAILED_WARN_EVERY}th, the
 * others at debug, each with `repeats` (failures in a row so far): a peer down for an hour is one
 * warning and a few reminders, not one per redial (its health transitions say it too). A
 * connection, or another code, starts the count again.
 */
export function createNodeEventLog(logger: JsonLogger): (event: NodeEvent) => void {
  const failing = new Map<string, { code: string; repeats: number }>();
  return (event) => {
    if (event.type === 'connected') failing.delete(event.peer);
    if (event.type !== 'dial_failed') return logNodeEvent(logger, event);
    const last = failing.get(event.peer);
    const repeats = last?.code === event.code ? last.repeats + 1 : 1;
    failing.set(event.peer, { code: event.code, repeats });
    const { type, ...fields } = event;
    const loud = repeats === 1 || repeats % DIAL_FAILED_WARN_EVERY === 0;
    logger.log(loud ? 'warn' : 'debug', type, { ...fields, repeats });
  };
}

/**
 * The shape of a health event (`src/health` `HealthEvent`) that the log relies on; the rest of
 * its fields are logged as they come.
 */
export interface HealthEventLike {
  kind: string;
  peer: string;
  /** The new state of a `transition`. */
  to?: string;
}

/**
 * How loud a health event is: losing a peer or its state, refusals, divergence, a peer behind
 * (commands stuck there) and an abandoned command at warn.
 */
export function healthEventLevel(event: HealthEventLike): LogLevel {
  switch (event.kind) {
    case 'transition':
      return event.to === 'suspect' || event.to === 'down' ? 'warn' : 'info';
    case 'peer_state_lost':
    case 'zombie_refused':
    case 'epoch_reset':
    case 'diverged':
    case 'heartbeat_refused':
    case 'peer_behind':
    case 'command_abandoned':
    case 'backoffice_unreachable':
    case 'events_undeliverable':
      return 'warn';
    default:
      return 'info';
  }
}

/** Logs a health event as `health_<kind>` (`health_transition`, `health_diverged`, …). */
export function logHealthEvent(logger: JsonLogger, event: HealthEventLike): void {
  const { kind, ...fields } = event;
  logger.log(healthEventLevel(event), `health_${kind}`, fields);
}
