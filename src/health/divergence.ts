import type { OpenObjectsSummary } from '../protocol/channel-frames.js';
import type { ResolvedHealthOptions } from './options.js';
import type { HealthEvent } from './status.js';

/** Most quiet heartbeats with the same different digests before `diverged` is raised again. */
const MAX_REDIVERGE_HEARTBEATS = 3600;

/**
 * The open-object digest comparison of one channel (PROTOCOL.md §8.2): `diverged` when the
 * peer's heartbeats keep announcing other open objects than this node holds while nothing is in
 * flight on either side, `converged` when the digests match again.
 */
export interface DivergenceWatch {
  readonly diverged: boolean;
  /** A new connection: the quiet streak starts over. */
  restart(): void;
  /** One heartbeat of the peer, against this node's summary and commands in flight. */
  observe(
    local: OpenObjectsSummary,
    heartbeat: { open_objects: OpenObjectsSummary; inflight: number },
    localInflight: () => number,
  ): void;
}

export function createDivergenceWatch(
  o: ResolvedHealthOptions,
  deps: { peer: string; now(): number; emit(event: HealthEvent): void },
): DivergenceWatch {
  const { peer } = deps;
  let diverged = false;
  let streak = 0;
  let streakDigests = '';
  /** How many times `diverged` was raised since the digests last matched. */
  let raises = 0;

  return {
    get diverged() {
      return diverged;
    },
    restart() {
      streak = 0;
    },
    observe(local, heartbeat, localInflight) {
      const theirs = heartbeat.open_objects;
      if (local.count === theirs.count && local.digest === theirs.digest) {
        streak = 0;
        raises = 0;
        if (diverged) {
          diverged = false;
          deps.emit({ kind: 'converged', peer, atMs: deps.now(), summary: local });
        }
        return;
      }
      // Commands in flight explain a difference; only a quiet, stable difference is a divergence.
      if (localInflight() > 0 || heartbeat.inflight > 0) {
        streak = 0;
        return;
      }
      const digests = `${local.count}:${local.digest}/${theirs.count}:${theirs.digest}`;
      if (digests !== streakDigests) streak = 0;
      streakDigests = digests;
      streak++;
      // Raised again while the difference stays (the resync it started may have failed), after
      // ten times as many quiet heartbeats each time, at most an hour's worth at the defaults.
      const threshold =
        raises === 0
          ? o.divergeAfterHeartbeats
          : Math.max(
              o.divergeAfterHeartbeats,
              Math.min(o.divergeAfterHeartbeats * 10 ** raises, MAX_REDIVERGE_HEARTBEATS),
            );
      if (streak >= threshold) {
        diverged = true;
        raises++;
        deps.emit({ kind: 'diverged', peer, atMs: deps.now(), local, remote: theirs, heartbeats: streak });
        streak = 0;
      }
    },
  };
}
