/**
 * The health of one channel: heartbeats out on every live connection, heartbeats in through
 * the phi accrual detector (`healthy → suspect → down`), round-trip time, and the open-object
 * digest comparison that finds a divergence (PROTOCOL.md §8).
 *
 * Time comes only from the injected RxJS scheduler (`scheduler.now()` and scheduled actions),
 * so tests run it in virtual time. No polling: after each heartbeat one action is scheduled at
 * the moment phi will cross the next threshold.
 *
 * Heartbeats go straight to `connection.send`, never through the channel's command queue, so a
 * backlog of commands does not delay them; if the socket's buffer is full, the next heartbeat
 * is sent as soon as it drains.
 */
import { asyncScheduler, type Observable, type SchedulerLike, Subject, type Subscription, timer } from 'rxjs';
import { ErrorCode, isParleyError, ParleyError } from '../errors.js';
import type { OpenObjectsSummary } from '../protocol/channel-frames.js';
import { CloseCode, UNRESPONSIVE_REASON } from '../protocol/close-codes.js';
import { createHeartbeatCodec, type Heartbeat, type HeartbeatCodec } from '../protocol/heartbeat-frames.js';
import type { Connection } from '../transport/types.js';
import { createPhiDetector } from './failure-detector.js';
import { type HealthOptions, resolveHealthOptions } from './options.js';
import type {
  ChannelHealthSnapshot,
  EpochSource,
  HealthEvent,
  HealthState,
  TransitionCause,
} from './status.js';

/** Collaborators of {@link createChannelHealth}. */

/** Most quiet heartbeats with the same different digests before `diverged` is raised again. */
const MAX_REDIVERGE_HEARTBEATS = 3600;
export interface ChannelHealthDeps {
  /** This node's address (the `from` of its heartbeats). */
  me: string;
  /** The peer's address: the channel. */
  peer: string;
  /** This node's store epoch. */
  myEpoch: string;
  /** @default asyncScheduler */
  scheduler?: SchedulerLike;
  /** This node's open objects shared with the peer (`ChannelCore.openSummary`). */
  summary(): OpenObjectsSummary;
  /** Commands this node proposed on the channel without a final response (`Channel.inflight`). */
  inflight(): number;
  /**
   * Judges an epoch the peer presents in a heartbeat (the node's epoch guard). Returns false
   * when the connection is refused: the guard has closed it and reported why.
   * @default accepts every epoch
   */
  checkEpoch?(epoch: string, source: EpochSource, connection: Connection): boolean;
  /** The peer's current epoch as this node knows it, for snapshots. @default null */
  peerEpoch?(): string | null;
  /**
   * Runs `fn` once the event loop has read what is waiting in the sockets; returns a cancel
   * function. Called before the detector declares `suspect` or `down`, so a heartbeat that
   * arrived while this process was busy (a long synchronous write, a GC, SIGSTOP) is counted
   * first. @default setImmediate with the default scheduler; `scheduler.schedule(fn, 0)` with an
   * injected one (virtual time)
   */
  afterIo?(fn: () => void): () => void;
}

/** The health of one channel. */
export interface ChannelHealth {
  readonly peer: string;
  readonly state: HealthState;
  /** This channel's health events (hot; completes on `close`). */
  readonly health$: Observable<HealthEvent>;
  /**
   * Each connection on which heartbeats went both ways: the peer's heartbeat echoes one of mine
   * sent on it. Once per connection (hot; completes on `close`). Not persisted.
   */
  readonly twoWay$: Observable<Connection>;
  /** Starts heartbeating on a newly authenticated connection (stops on the previous one). */
  attach(connection: Connection): void;
  /** A heartbeat frame (`hb1 …`) that arrived on `connection`. */
  receive(frame: string, connection: Connection): void;
  /** Adds an event found elsewhere (the node's epoch guard) to this channel's stream. */
  record(event: HealthEvent): void;
  snapshot(): ChannelHealthSnapshot;
  /** Stops every timer and completes `health$`. Idempotent. */
  close(): void;
}

interface Session {
  connection: Connection;
  codec: HeartbeatCodec;
  startedAtMs: number;
  seq: number;
  peerSeq: number;
  /** The peer's last heartbeat: its timestamp, and when it arrived here. */
  lastReceived: { timestampMs: number; atMs: number } | null;
  /** Whether the next arrival's interval is a sample (not the first of the connection). */
  sampleNext: boolean;
  /** Waiting for the socket to drain before the next heartbeat. */
  blocked: boolean;
  /** The peer echoed a heartbeat of mine on this connection (reported on `twoWay$`). */
  twoWay: boolean;
  ticks: Subscription;
}

const RANK: Record<HealthState, number> = { unknown: 0, healthy: 1, suspect: 2, down: 3 };
/** A deadline this close counts as reached (timers have 1 ms resolution anyway). */
const DEADLINE_SLACK_MS = 0.5;

/** Creates the health monitor of one channel. @throws ParleyError `CONFIG_INVALID` for bad options */
export function createChannelHealth(options: HealthOptions, deps: ChannelHealthDeps): ChannelHealth {
  const o = resolveHealthOptions(options);
  const { peer, me } = deps;
  const scheduler = deps.scheduler ?? asyncScheduler;
  const now = (): number => scheduler.now();
  const afterIo =
    deps.afterIo ??
    (deps.scheduler === undefined
      ? (fn: () => void) => {
          // The check phase of the event loop comes after the poll phase that reads sockets.
          const handle = setImmediate(fn);
          return () => clearImmediate(handle);
        }
      : (fn: () => void) => {
          const action = scheduler.schedule(fn, 0);
          return () => action.unsubscribe();
        });
  const events = new Subject<HealthEvent>();
  const twoWay = new Subject<Connection>();
  const detector = createPhiDetector({
    maxSampleSize: o.maxSampleSize,
    minStdDevMs: o.minStdDevMs,
    acceptablePauseMs: o.acceptablePauseMs,
    firstIntervalEstimateMs: o.heartbeatIntervalMs,
  });

  let state: HealthState = 'unknown';
  let sinceMs = now();
  let session: Session | undefined;
  let check: Subscription | undefined;
  /** When `check` fires. */
  let checkAt = Number.POSITIVE_INFINITY;
  let cancelJudge: (() => void) | undefined;
  let closed = false;
  let sent = 0;
  let received = 0;
  let rttMs: number | null = null;
  let srttMs: number | null = null;
  let remote: OpenObjectsSummary | null = null;
  let remoteInflight: number | null = null;
  let diverged = false;
  let streak = 0;
  let streakDigests = '';
  /** How many times `diverged` was raised since the digests last matched. */
  let raises = 0;

  function emit(event: HealthEvent): void {
    if (!closed) events.next(event);
  }

  function silentMs(at: number): number | null {
    const last = detector.lastArrivalMs;
    return last === undefined ? null : at - last;
  }

  function transition(to: HealthState, cause: TransitionCause, phi: number): void {
    if (to === state) return;
    const at = now();
    const from = state;
    state = to;
    sinceMs = at;
    emit({ kind: 'transition', peer, atMs: at, from, to, cause, phi, silentMs: silentMs(at) });
  }

  // A peer never heard from since start is `down` after the grace.
  const startup = scheduler.schedule(() => {
    if (state === 'unknown') transition('down', 'startup', 0);
  }, o.startupGraceMs);

  const nextThreshold = (): number => (state === 'healthy' ? o.suspectPhi : o.downPhi);

  /**
   * One action at the moment phi crosses the next threshold (nothing while down). Each
   * heartbeat moves that moment later; the action already set is then left alone and, when
   * it fires early, sets itself again: one timer per deadline crossed or ~2 heartbeats, not a
   * timer cancelled and made on every heartbeat (1,000 channels at 1 Hz).
   */
  function scheduleCheck(): void {
    cancelJudge?.();
    cancelJudge = undefined;
    if (closed || state === 'down' || state === 'unknown') {
      check?.unsubscribe();
      check = undefined;
      checkAt = Number.POSITIVE_INFINITY;
      return;
    }
    const at = detector.deadline(nextThreshold());
    if (check && checkAt <= at) return;
    check?.unsubscribe();
    checkAt = at;
    check = scheduler.schedule(onTimer, Math.max(0, at - now()));
  }

  function onTimer(): void {
    check = undefined;
    checkAt = Number.POSITIVE_INFINITY;
    if (now() + DEADLINE_SLACK_MS < detector.deadline(nextThreshold())) {
      scheduleCheck(); // a heartbeat moved the deadline
      return;
    }
    // At the deadline, first let the event loop read the sockets: if this process was busy or
    // paused, the peer's heartbeats are waiting there and must count before silence does.
    cancelJudge = afterIo(judge);
  }

  function judge(): void {
    cancelJudge = undefined;
    const t = now();
    // Compare times, not phi: at its own deadline, phi may fall a rounding error short of the
    // threshold, and the check would be rescheduled at the same instant for ever.
    const reached = (threshold: number): boolean => t + DEADLINE_SLACK_MS >= detector.deadline(threshold);
    const next: HealthState = reached(o.downPhi) ? 'down' : reached(o.suspectPhi) ? 'suspect' : state;
    if (RANK[next] > RANK[state]) transition(next, 'silence', detector.phi(t));
    if (state === 'down' && o.closeOnDown && session) {
      // A half-open connection never recovers: close it so the dialer makes a new one.
      session.connection.close(CloseCode.GOING_AWAY, UNRESPONSIVE_REASON);
    }
    scheduleCheck();
  }

  function endSession(s: Session): void {
    s.ticks.unsubscribe();
    if (session === s) session = undefined;
  }

  function sendHeartbeat(s: Session, waitForDrain = true): void {
    if (session !== s || s.blocked) return;
    const t = now();
    const heartbeat: Heartbeat = {
      _ObjectType: 'Heartbeat',
      from: me,
      seq: s.seq,
      epoch: deps.myEpoch,
      open_objects: deps.summary(),
      inflight: deps.inflight(),
      timestamp_ms: Math.floor(t),
      echo_timestamp_ms: s.lastReceived ? s.lastReceived.timestampMs : null,
      echo_held_ms: s.lastReceived ? Math.max(0, Math.floor(t - s.lastReceived.atMs)) : null,
    };
    if (s.connection.send(s.codec.encode(heartbeat))) {
      s.seq++;
      sent++;
      return;
    }
    if (!waitForDrain || s.connection.state !== 'open' || s.connection.bufferedAmount === 0) return;
    // The socket's buffer is full (a command backlog): send as soon as it drains, not a whole
    // period later. One try; if it is refused again, the next tick tries.
    s.blocked = true;
    void s.connection.writable().then(() => {
      s.blocked = false;
      sendHeartbeat(s, false);
    });
  }

  function refuse(s: Session, err: unknown): void {
    const code = isParleyError(err) ? err.code : 'PROTOCOL_MALFORMED_FRAME';
    const closeCode = ErrorCode[code].close ?? CloseCode.BAD_FRAME;
    emit({
      kind: 'heartbeat_refused',
      peer,
      atMs: now(),
      code,
      closeCode,
      connectionId: s.connection.id,
    });
    endSession(s);
    s.connection.close(closeCode, `heartbeat refused: ${code}`);
  }

  function checkDivergence(heartbeat: Heartbeat): void {
    const local = deps.summary();
    const theirs = heartbeat.open_objects;
    if (local.count === theirs.count && local.digest === theirs.digest) {
      streak = 0;
      raises = 0;
      if (diverged) {
        diverged = false;
        emit({ kind: 'converged', peer, atMs: now(), summary: local });
      }
      return;
    }
    // Commands in flight explain a difference; only a quiet, stable difference is a divergence.
    if (deps.inflight() > 0 || heartbeat.inflight > 0) {
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
      emit({ kind: 'diverged', peer, atMs: now(), local, remote: theirs, heartbeats: streak });
      streak = 0;
    }
  }

  return {
    peer,
    get state() {
      return state;
    },
    health$: events.asObservable(),
    twoWay$: twoWay.asObservable(),
    attach(connection) {
      if (closed) return;
      if (session) endSession(session);
      let codec: HeartbeatCodec;
      try {
        codec = createHeartbeatCodec(connection.sessionSecret);
      } catch {
        connection.close(CloseCode.INTERNAL_ERROR, 'no usable session secret');
        return;
      }
      const t = now();
      const s: Session = {
        connection,
        codec,
        startedAtMs: t,
        seq: 0,
        peerSeq: -1,
        lastReceived: null,
        sampleNext: false,
        blocked: false,
        twoWay: false,
        ticks: timer(0, o.heartbeatIntervalMs, scheduler).subscribe(() => sendHeartbeat(s)),
      };
      session = s;
      void connection.closed.then(() => endSession(s));
      streak = 0;
      remote = connection.peerSummary;
      remoteInflight = null;
      // The handshake just proved the peer is there; the gap before it is not a sample.
      detector.heartbeat(t, false);
      if (state !== 'healthy') transition('healthy', 'connected', 0);
      scheduleCheck();
    },
    receive(frame, connection) {
      const s = session;
      if (closed || !s || s.connection !== connection) return;
      let heartbeat: Heartbeat;
      try {
        heartbeat = s.codec.decode(frame);
        if (heartbeat.from !== peer) {
          throw new ParleyError('PROTOCOL_MALFORMED_FRAME', 'heartbeat from another address');
        }
        if (heartbeat.seq <= s.peerSeq) {
          throw new ParleyError('PROTOCOL_MALFORMED_FRAME', 'heartbeat seq did not increase');
        }
      } catch (err) {
        refuse(s, err);
        return;
      }
      s.peerSeq = heartbeat.seq;
      if (deps.checkEpoch && !deps.checkEpoch(heartbeat.epoch, 'heartbeat', connection)) {
        endSession(s);
        return;
      }
      const t = now();
      received++;
      const echo = heartbeat.echo_timestamp_ms;
      // An echo of a heartbeat I sent on this connection (its timestamps are from its start on).
      const echoesMine = echo !== null && echo >= Math.floor(s.startedAtMs);
      if (echoesMine && heartbeat.echo_held_ms !== null) {
        const rtt = t - echo - heartbeat.echo_held_ms;
        if (rtt >= 0) {
          rttMs = rtt;
          srttMs = srttMs === null ? rtt : srttMs + (rtt - srttMs) / 8;
        }
      }
      s.lastReceived = { timestampMs: heartbeat.timestamp_ms, atMs: t };
      // The gap that ends an outage says nothing about the arrival process: no sample.
      detector.heartbeat(t, s.sampleNext && state !== 'down');
      s.sampleNext = true;
      if (state !== 'healthy') transition('healthy', 'heartbeat', detector.phi(t));
      remote = heartbeat.open_objects;
      remoteInflight = heartbeat.inflight;
      checkDivergence(heartbeat);
      scheduleCheck();
      if (echoesMine && !s.twoWay) {
        s.twoWay = true;
        twoWay.next(connection);
      }
    },
    record(event) {
      emit(event);
    },
    snapshot() {
      const t = now();
      return {
        peer,
        state,
        sinceMs,
        connected: session !== undefined && session.connection.state === 'open',
        connectionId: session?.connection.id ?? null,
        phi: state === 'unknown' ? 0 : detector.phi(t),
        rttMs,
        srttMs,
        silentMs: silentMs(t),
        heartbeatsSent: sent,
        heartbeatsReceived: received,
        peerEpoch: deps.peerEpoch?.() ?? null,
        local: deps.summary(),
        remote,
        localInflight: deps.inflight(),
        remoteInflight,
        diverged,
      };
    },
    close() {
      if (closed) return;
      if (session) endSession(session);
      check?.unsubscribe();
      cancelJudge?.();
      startup.unsubscribe();
      closed = true;
      events.complete();
      twoWay.complete();
    },
  };
}
