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
import { createDivergenceWatch, type DivergenceWatch } from './divergence.js';
import { createPhiDetector, type PhiDetector } from './failure-detector.js';
import { createLiveness, type Liveness, silentMsOf } from './liveness.js';
import { type HealthOptions, type ResolvedHealthOptions, resolveHealthOptions } from './options.js';
import type { ChannelHealthSnapshot, EpochSource, HealthEvent, HealthState } from './status.js';

/** Collaborators of {@link createChannelHealth}. */
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

/** What the functions of one channel's health share. */
interface HealthParts {
  readonly o: ResolvedHealthOptions;
  readonly deps: ChannelHealthDeps;
  readonly peer: string;
  readonly scheduler: SchedulerLike;
  readonly events: Subject<HealthEvent>;
  readonly twoWay: Subject<Connection>;
  readonly detector: PhiDetector;
  readonly liveness: Liveness;
  readonly divergence: DivergenceWatch;
  session: Session | undefined;
  closed: boolean;
  sent: number;
  received: number;
  rttMs: number | null;
  srttMs: number | null;
  remote: OpenObjectsSummary | null;
  remoteInflight: number | null;
}

/** Creates the health monitor of one channel. @throws ParleyError `CONFIG_INVALID` for bad options */
export function createChannelHealth(options: HealthOptions, deps: ChannelHealthDeps): ChannelHealth {
  const o = resolveHealthOptions(options);
  const { peer } = deps;
  const scheduler = deps.scheduler ?? asyncScheduler;
  const now = (): number => scheduler.now();
  const detector = createPhiDetector({
    maxSampleSize: o.maxSampleSize,
    minStdDevMs: o.minStdDevMs,
    acceptablePauseMs: o.acceptablePauseMs,
    firstIntervalEstimateMs: o.heartbeatIntervalMs,
  });
  const record = (event: HealthEvent): void => emit(h, event);
  const h: HealthParts = {
    o,
    deps,
    peer,
    scheduler,
    events: new Subject<HealthEvent>(),
    twoWay: new Subject<Connection>(),
    detector,
    liveness: createLiveness(o, {
      peer,
      scheduler,
      detector,
      afterIo: deps.afterIo ?? defaultAfterIo(deps.scheduler),
      emit: record,
      onDown() {
        // A half-open connection never recovers: close it so the dialer makes a new one.
        if (o.closeOnDown && h.session) h.session.connection.close(CloseCode.GOING_AWAY, UNRESPONSIVE_REASON);
      },
    }),
    divergence: createDivergenceWatch(o, { peer, now, emit: record }),
    session: undefined,
    closed: false,
    sent: 0,
    received: 0,
    rttMs: null,
    srttMs: null,
    remote: null,
    remoteInflight: null,
  };

  return {
    peer,
    get state() {
      return h.liveness.state;
    },
    health$: h.events.asObservable(),
    twoWay$: h.twoWay.asObservable(),
    attach: (connection) => attach(h, connection),
    receive: (frame, connection) => receive(h, frame, connection),
    record,
    snapshot: () => snapshot(h),
    close() {
      if (h.closed) return;
      if (h.session) endSession(h, h.session);
      h.liveness.close();
      h.closed = true;
      h.events.complete();
      h.twoWay.complete();
    },
  };
}

/**
 * Runs `fn` once the event loop has read the sockets: `setImmediate` (the check phase comes
 * after the poll phase that reads sockets), or the injected scheduler's next action.
 */
function defaultAfterIo(injected: SchedulerLike | undefined): (fn: () => void) => () => void {
  if (injected === undefined) {
    return (fn) => {
      const handle = setImmediate(fn);
      return () => clearImmediate(handle);
    };
  }
  return (fn) => {
    const action = injected.schedule(fn, 0);
    return () => action.unsubscribe();
  };
}

function emit(h: HealthParts, event: HealthEvent): void {
  if (!h.closed) h.events.next(event);
}

function endSession(h: HealthParts, s: Session): void {
  s.ticks.unsubscribe();
  if (h.session === s) h.session = undefined;
}

function attach(h: HealthParts, connection: Connection): void {
  if (h.closed) return;
  if (h.session) endSession(h, h.session);
  let codec: HeartbeatCodec;
  try {
    codec = createHeartbeatCodec(connection.sessionSecret);
  } catch {
    connection.close(CloseCode.INTERNAL_ERROR, 'no usable session secret');
    return;
  }
  const t = h.scheduler.now();
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
    ticks: timer(0, h.o.heartbeatIntervalMs, h.scheduler).subscribe(() => sendHeartbeat(h, s)),
  };
  h.session = s;
  void connection.closed.then((closed) => {
    endSession(h, s);
    // The peer handed the channel to another of its replicas (PROTOCOL.md §6.1), which connects
    // in a moment: not a failure, so its silence is not judged for the startup grace.
    if (closed.byPeer !== false && closed.code === CloseCode.NOT_OWNER && !h.closed) {
      h.liveness.holdUntil(h.scheduler.now() + h.o.startupGraceMs);
    }
  });
  h.divergence.restart();
  h.remote = connection.peerSummary;
  h.remoteInflight = null;
  // The handshake just proved the peer is there; the gap before it is not a sample.
  h.detector.heartbeat(t, false);
  h.liveness.heard('connected', 0);
  h.liveness.scheduleCheck();
}

function sendHeartbeat(h: HealthParts, s: Session, waitForDrain = true): void {
  if (h.session !== s || s.blocked) return;
  const t = h.scheduler.now();
  const heartbeat: Heartbeat = {
    _ObjectType: 'Heartbeat',
    from: h.deps.me,
    seq: s.seq,
    epoch: h.deps.myEpoch,
    open_objects: h.deps.summary(),
    inflight: h.deps.inflight(),
    timestamp_ms: Math.floor(t),
    echo_timestamp_ms: s.lastReceived ? s.lastReceived.timestampMs : null,
    echo_held_ms: s.lastReceived ? Math.max(0, Math.floor(t - s.lastReceived.atMs)) : null,
  };
  if (s.connection.send(s.codec.encode(heartbeat))) {
    s.seq++;
    h.sent++;
    return;
  }
  if (!waitForDrain || s.connection.state !== 'open' || s.connection.bufferedAmount === 0) return;
  // The socket's buffer is full (a command backlog): send as soon as it drains, not a whole
  // period later. One try; if it is refused again, the next tick tries.
  s.blocked = true;
  void s.connection.writable().then(() => {
    s.blocked = false;
    sendHeartbeat(h, s, false);
  });
}

function refuse(h: HealthParts, s: Session, err: unknown): void {
  const code = isParleyError(err) ? err.code : 'PROTOCOL_MALFORMED_FRAME';
  const closeCode = ErrorCode[code].close ?? CloseCode.BAD_FRAME;
  emit(h, {
    kind: 'heartbeat_refused',
    peer: h.peer,
    atMs: h.scheduler.now(),
    code,
    closeCode,
    connectionId: s.connection.id,
  });
  endSession(h, s);
  s.connection.close(closeCode, `heartbeat refused: ${code}`);
}

/** The heartbeat in `frame`, if it is the peer's next one on this session; refused (and closed) if not. */
function decodeHeartbeat(h: HealthParts, s: Session, frame: string): Heartbeat | undefined {
  try {
    const heartbeat = s.codec.decode(frame);
    if (heartbeat.from !== h.peer) {
      throw new ParleyError('PROTOCOL_MALFORMED_FRAME', 'heartbeat from another address');
    }
    if (heartbeat.seq <= s.peerSeq) {
      throw new ParleyError('PROTOCOL_MALFORMED_FRAME', 'heartbeat seq did not increase');
    }
    return heartbeat;
  } catch (err) {
    refuse(h, s, err);
    return undefined;
  }
}

function receive(h: HealthParts, frame: string, connection: Connection): void {
  const s = h.session;
  if (h.closed || !s || s.connection !== connection) return;
  const heartbeat = decodeHeartbeat(h, s, frame);
  if (!heartbeat) return;
  s.peerSeq = heartbeat.seq;
  if (h.deps.checkEpoch && !h.deps.checkEpoch(heartbeat.epoch, 'heartbeat', connection)) {
    endSession(h, s);
    return;
  }
  const t = h.scheduler.now();
  h.received++;
  const echo = heartbeat.echo_timestamp_ms;
  // An echo of a heartbeat I sent on this connection (its timestamps are from its start on).
  const echoesMine = echo !== null && echo >= Math.floor(s.startedAtMs);
  if (echoesMine && heartbeat.echo_held_ms !== null) {
    const rtt = t - echo - heartbeat.echo_held_ms;
    if (rtt >= 0) {
      h.rttMs = rtt;
      h.srttMs = h.srttMs === null ? rtt : h.srttMs + (rtt - h.srttMs) / 8;
    }
  }
  s.lastReceived = { timestampMs: heartbeat.timestamp_ms, atMs: t };
  // The gap that ends an outage says nothing about the arrival process: no sample.
  h.detector.heartbeat(t, s.sampleNext && h.liveness.state !== 'down');
  s.sampleNext = true;
  h.liveness.heard('heartbeat', h.detector.phi(t));
  h.remote = heartbeat.open_objects;
  h.remoteInflight = heartbeat.inflight;
  h.divergence.observe(h.deps.summary(), heartbeat, h.deps.inflight);
  h.liveness.scheduleCheck();
  if (echoesMine && !s.twoWay) {
    s.twoWay = true;
    h.twoWay.next(connection);
  }
}

function snapshot(h: HealthParts): ChannelHealthSnapshot {
  const t = h.scheduler.now();
  const { session, liveness } = h;
  return {
    peer: h.peer,
    state: liveness.state,
    sinceMs: liveness.sinceMs,
    connected: session !== undefined && session.connection.state === 'open',
    connectionId: session?.connection.id ?? null,
    phi: liveness.state === 'unknown' ? 0 : h.detector.phi(t),
    rttMs: h.rttMs,
    srttMs: h.srttMs,
    silentMs: silentMsOf(h.detector, t),
    heartbeatsSent: h.sent,
    heartbeatsReceived: h.received,
    peerEpoch: h.deps.peerEpoch?.() ?? null,
    local: h.deps.summary(),
    remote: h.remote,
    localInflight: h.deps.inflight(),
    remoteInflight: h.remoteInflight,
    diverged: h.divergence.diverged,
  };
}
