/**
 * The `peer_behind` condition of a channel: commands of mine stuck at a peer that does not
 * progress. A peer answers `wait` to a command that reads a version it lacks; over ws the third
 * `wait` starts a resync of that object, which pushes what the peer lacks. A LIP-1 HTTP peer
 * cannot resync: a peer that lost its state answers `wait` to such a command for ever.
 *
 * - LIP-1 HTTP: a command answered `wait` `peerBehindAfterWaits` times is stuck.
 * - ws: a command that is answered `wait` again after `peerBehindAfterRuns` resync runs ended
 *   (counted from its resync threshold, the third `wait`) is stuck: the runs did not help.
 *
 * The first stuck command raises `peer_behind`; once every stuck command is final or abandoned
 * (`parley command abandon`), `peer_behind_cleared`. Counts only: no timer of its own, time
 * read from the injected scheduler.
 */
import { asyncScheduler, type Observable, type SchedulerLike, Subject, type Subscription } from 'rxjs';
import type { ChannelEvent } from '../channel/channel.js';
import type { HealthEvent } from './status.js';

/** The transport of a channel, as far as resync goes: a LIP-1 HTTP peer cannot resync. */
export type BehindTransport = 'ws' | 'lip1-http';

/** `wait` answers after which a ws command's object is resynced (the node's `command_waiting` trigger). */
export const WAITS_BEFORE_RESYNC = 3;

/** Most cids listed in an event or a snapshot. */
const MAX_LISTED = 20;

/** A channel that is `peer_behind` now. */
export interface PeerBehindSnapshot {
  peer: string;
  /** When its first command got stuck (scheduler clock). */
  sinceMs: number;
  /** The stuck commands now. */
  commands: number;
  /** Their cids (at most 20). */
  cids: string[];
}

export interface PeerBehindOptions {
  /** @default 3 */
  peerBehindAfterWaits?: number;
  /** @default 2 */
  peerBehindAfterRuns?: number;
}

export interface PeerBehindTracker {
  /** Follows a channel's command events (until the returned subscription ends). */
  watch(peer: string, transport: BehindTransport, events$: Observable<ChannelEvent>): Subscription;
  /** A resync run of the channel ended (whatever its outcome). */
  runEnded(peer: string): void;
  /**
   * Forgets what the channel's commands went through, without an event: this replica stopped
   * serving the channel (another one tracks its commands now).
   */
  forget(peer: string): void;
  /** The channels that are `peer_behind` now. */
  snapshot(): PeerBehindSnapshot[];
  /** `peer_behind` and `peer_behind_cleared` (hot; completes on `close`). */
  readonly events$: Observable<HealthEvent>;
  close(): void;
}

interface Waiting {
  referenceId: string;
  /** Resync runs that ended since the command reached its resync threshold (ws). */
  runs: number;
  armed: boolean;
}

interface ChannelState {
  transport: BehindTransport;
  waiting: Map<string, Waiting>;
  stuck: Set<string>;
  sinceMs: number;
  final: number;
  abandoned: number;
}

export function createPeerBehindTracker(
  options: PeerBehindOptions,
  deps: { scheduler?: SchedulerLike } = {},
): PeerBehindTracker {
  const afterWaits = options.peerBehindAfterWaits ?? 3;
  const afterRuns = options.peerBehindAfterRuns ?? 2;
  const scheduler = deps.scheduler ?? asyncScheduler;
  const events = new Subject<HealthEvent>();
  const channels = new Map<string, ChannelState>();
  let closed = false;

  function emit(event: HealthEvent): void {
    if (!closed) events.next(event);
  }

  function stick(peer: string, s: ChannelState, cid: string, cause: 'waits' | 'resync_runs', waits: number) {
    if (s.stuck.has(cid)) return;
    s.stuck.add(cid);
    if (s.stuck.size > 1) return;
    s.sinceMs = scheduler.now();
    s.final = 0;
    s.abandoned = 0;
    emit({ kind: 'peer_behind', peer, atMs: s.sinceMs, commands: 1, cids: [cid], cause, waits });
  }

  function ended(peer: string, s: ChannelState, cid: string, abandoned: boolean): void {
    s.waiting.delete(cid);
    if (!s.stuck.delete(cid)) return;
    if (abandoned) s.abandoned++;
    else s.final++;
    if (s.stuck.size > 0) return;
    emit({
      kind: 'peer_behind_cleared',
      peer,
      atMs: scheduler.now(),
      final: s.final,
      abandoned: s.abandoned,
    });
  }

  function onWaiting(peer: string, s: ChannelState, cid: string, referenceId: string, waits: number): void {
    if (s.transport === 'lip1-http') {
      if (waits >= afterWaits) stick(peer, s, cid, 'waits', waits);
      return;
    }
    let w = s.waiting.get(cid);
    if (!w) {
      w = { referenceId, runs: 0, armed: false };
      s.waiting.set(cid, w);
    }
    if (w.armed && w.runs >= afterRuns) stick(peer, s, cid, 'resync_runs', waits);
    if (waits >= WAITS_BEFORE_RESYNC) w.armed = true;
  }

  return {
    watch(peer, transport, events$) {
      const s: ChannelState = {
        transport,
        waiting: new Map(),
        stuck: new Set(),
        sinceMs: 0,
        final: 0,
        abandoned: 0,
      };
      channels.set(peer, s);
      const sub = events$.subscribe((event) => {
        if (event.type === 'command_waiting') onWaiting(peer, s, event.cid, event.referenceId, event.waits);
        else if (event.type === 'command_final') ended(peer, s, event.cid, false);
        else if (event.type === 'command_dropped') ended(peer, s, event.cid, true);
      });
      sub.add(() => {
        if (channels.get(peer) === s) channels.delete(peer);
      });
      return sub;
    },
    runEnded(peer) {
      const s = channels.get(peer);
      if (!s) return;
      for (const w of s.waiting.values()) if (w.armed) w.runs++;
    },
    forget(peer) {
      const s = channels.get(peer);
      s?.waiting.clear();
      s?.stuck.clear();
    },
    snapshot() {
      const out: PeerBehindSnapshot[] = [];
      for (const [peer, s] of channels) {
        if (s.stuck.size === 0) continue;
        out.push({
          peer,
          sinceMs: s.sinceMs,
          commands: s.stuck.size,
          cids: [...s.stuck].slice(0, MAX_LISTED),
        });
      }
      return out;
    },
    events$: events.asObservable(),
    close() {
      if (closed) return;
      closed = true;
      events.complete();
    },
  };
}
