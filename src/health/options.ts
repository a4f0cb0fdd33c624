/**
 * The health knobs, with their defaults, and their validation.
 *
 * With the defaults (1 s heartbeats, pause 1 s, min std-dev 200 ms), a regular peer is
 * `suspect` 2.26 s and `down` 3.05 s after its last heartbeat, so a peer that falls silent at a
 * random moment is `down` after ~2.55 s (median), ~3.05 s at worst; a heartbeat has to be more
 * than 2 s late for a false `down`. A jittery peer widens these by its standard deviation.
 */
import { ParleyError } from '../errors.js';

/** Health options of a node (and of each of its channels). */
export interface HealthOptions {
  /** Heartbeat period on every channel, both ways, ms. @default 1000 */
  heartbeatIntervalMs?: number;
  /** phi from which the peer is `suspect`. @default 1 */
  suspectPhi?: number;
  /** phi from which the peer is `down` (at least `suspectPhi`). @default 8 */
  downPhi?: number;
  /** Floor of the inter-arrival standard deviation, ms. @default 200 */
  minStdDevMs?: number;
  /** A pause this long is expected (added to the mean interval), ms. @default 1000 */
  acceptablePauseMs?: number;
  /** Inter-arrival samples kept per channel. @default 200 */
  maxSampleSize?: number;
  /**
   * Consecutive quiet heartbeats with different digests before `diverged`; while they still
   * differ, it is raised again after 10 times as many each time (at most 3,600). @default 3
   */
  divergeAfterHeartbeats?: number;
  /** Close the connection (1001) when the peer goes `down`, so that a half-open one is replaced. @default true */
  closeOnDown?: boolean;
  /** A peer never heard from since start is `down` after this long, ms. @default 5000 */
  startupGraceMs?: number;
  /**
   * Health history older than this is deleted (checked at start and every hour), except the
   * records of the peers' store epochs, which are kept for good; ms. 0 keeps everything. @default 0
   */
  historyRetentionMs?: number;
  /**
   * `wait` answers to one command of mine, from a peer that cannot resync (LIP-1 HTTP), after
   * which the peer is `peer_behind`. @default 3
   */
  peerBehindAfterWaits?: number;
  /**
   * Over ws: resync runs that ended while a command of mine kept being answered `wait`, after
   * which the peer is `peer_behind`. @default 2
   */
  peerBehindAfterRuns?: number;
  /**
   * Failed deliveries of back-office events in a row after which the node is
   * `events_undeliverable` (the next delivered event clears it). @default 5
   */
  eventsUndeliverableAfterFailures?: number;
}

/** Every option filled in. */
export type ResolvedHealthOptions = Required<HealthOptions>;

/** The defaults of {@link HealthOptions}. */
export const DEFAULT_HEALTH_OPTIONS: ResolvedHealthOptions = {
  heartbeatIntervalMs: 1000,
  suspectPhi: 1,
  downPhi: 8,
  minStdDevMs: 200,
  acceptablePauseMs: 1000,
  maxSampleSize: 200,
  divergeAfterHeartbeats: 3,
  closeOnDown: true,
  startupGraceMs: 5000,
  historyRetentionMs: 0,
  peerBehindAfterWaits: 3,
  peerBehindAfterRuns: 2,
  eventsUndeliverableAfterFailures: 5,
};

/**
 * Fills in the defaults and checks the values.
 * @throws ParleyError `CONFIG_INVALID`
 */
export function resolveHealthOptions(options: HealthOptions = {}): ResolvedHealthOptions {
  const o: ResolvedHealthOptions = { ...DEFAULT_HEALTH_OPTIONS };
  for (const [key, value] of Object.entries(options)) {
    if (value !== undefined) (o as unknown as Record<string, unknown>)[key] = value;
  }
  const problems: string[] = [];
  const positive = (name: keyof ResolvedHealthOptions, value: number): void => {
    if (!(Number.isFinite(value) && value > 0)) problems.push(`${name} must be > 0`);
  };
  positive('heartbeatIntervalMs', o.heartbeatIntervalMs);
  positive('suspectPhi', o.suspectPhi);
  positive('minStdDevMs', o.minStdDevMs);
  positive('startupGraceMs', o.startupGraceMs);
  if (!(o.downPhi >= o.suspectPhi)) problems.push('downPhi must be >= suspectPhi');
  if (!(o.acceptablePauseMs >= 0)) problems.push('acceptablePauseMs must be >= 0');
  if (!(Number.isFinite(o.historyRetentionMs) && o.historyRetentionMs >= 0))
    problems.push('historyRetentionMs must be >= 0');
  if (!(Number.isInteger(o.maxSampleSize) && o.maxSampleSize >= 2))
    problems.push('maxSampleSize must be >= 2');
  if (!(Number.isInteger(o.divergeAfterHeartbeats) && o.divergeAfterHeartbeats >= 1)) {
    problems.push('divergeAfterHeartbeats must be an integer >= 1');
  }
  for (const name of [
    'peerBehindAfterWaits',
    'peerBehindAfterRuns',
    'eventsUndeliverableAfterFailures',
  ] as const) {
    if (!(Number.isInteger(o[name]) && o[name] >= 1)) problems.push(`${name} must be an integer >= 1`);
  }
  if (problems.length > 0) throw new ParleyError('CONFIG_INVALID', `health: ${problems.join('; ')}`);
  return o;
}
