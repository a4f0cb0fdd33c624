import {
  asyncScheduler,
  BehaviorSubject,
  filter,
  firstValueFrom,
  interval,
  type Observable,
  ReplaySubject,
  type SchedulerLike,
  Subject,
  type Subscription,
  take,
} from 'rxjs';
import { isParleyError, ParleyError } from '../errors.js';
import { CloseCode } from '../protocol/close-codes.js';
import { isHeartbeatFrame } from '../protocol/heartbeat-frames.js';
import { decodeJwsPayloadUnverified, parseJson, peekJwsObjectType } from '../protocol/index.js';
import type { Connection } from '../transport/types.js';
import type {
  ChannelCore,
  CommandInput,
  OutgoingCommand,
  RequestOutcome,
  ResponseOutcome,
} from './channel-core.js';

/** An incoming command, emitted after it is durable. */
export type IncomingCommand = Extract<RequestOutcome, { kind: 'committed' }>;

/** The final outcome of a command this node sent. */
export type CommandOutcome = Extract<ResponseOutcome, { kind: 'final' }>;

/** Connection state of a channel (the health module refines it with heartbeats). */
export type ChannelState = 'disconnected' | 'connected' | 'closed';

/** Events of a channel, for logs, metrics and the dashboard. */
export type ChannelEvent =
  | { type: 'connected'; peer: string; dialed: boolean }
  | { type: 'disconnected'; peer: string; closeCode: number; reason: string }
  | { type: 'retransmit'; peer: string; cid: string; attempt: number }
  | { type: 'command_final'; peer: string; cid: string; status: 'success' | 'failure'; code: string | null }
  | {
      type: 'command_received';
      peer: string;
      cid: string;
      status: 'success' | 'failure';
      code: string | null;
    }
  | { type: 'fork'; peer: string; cid: string }
  /**
   * The peer answered `wait` to a command of mine (it lacks the version the command reads, or
   * holds it for another command): resent after a backoff. `waits` counts them for this command.
   */
  | { type: 'command_waiting'; peer: string; cid: string; referenceId: string; waits: number }
  /**
   * A command of mine stopped being tracked without a final response: the operator abandoned it
   * (`COMMAND_ABANDONED`), or resync dropped it (`SYNC_FORK_LOST`). It is never resent.
   */
  | { type: 'command_dropped'; peer: string; cid: string; code: string }
  /** A command of mine is durable in the outbox and goes out now or at the next connect. */
  | { type: 'command_queued'; peer: string; cid: string; referenceId: string }
  /** A frame that was dropped (`frameType`: a kind of frame this version does not know). */
  | {
      type: 'frame_refused';
      peer: string;
      code: string;
      frameType?: string;
      /** In the node's events: refused for this key since its last report and not reported one by one. */
      suppressed?: number;
    };

/** A command of mine that is durable in the outbox: it survives a crash and goes out until final. */
export interface QueuedCommand {
  cid: string;
  referenceId: string;
}

/** What {@link Channel.submit} gives back: the durable acknowledgement and the final outcome, apart. */
export interface SubmittedCommand {
  referenceId: string;
  /**
   * Resolves once the command is durable in the outbox (the moment to acknowledge it to anyone:
   * from here a crash does not lose it, and it completes whether or not the peer is reachable).
   * Rejects with the {@link ParleyError} that kept it from being stored (nothing was stored):
   * CHANNEL_DEPENDENCY_UNAVAILABLE, CHANNEL_INVALID_COMMAND, STORE_LEASE_LOST, STORE_* store
   * failures. Never rejects once the command is stored. An unobserved rejection is not reported
   * as unhandled (callers that only want the outcome see the same error there).
   */
  queued: Promise<QueuedCommand>;
  /**
   * The final outcome (one value, then complete; replayed to late subscribers). Errors with the
   * same error as `queued` when the command could not be stored, or, after it was stored, with
   * CHANNEL_CLOSED / STORE_LEASE_LOST when this channel stops serving before the final response
   * (the command stays in the outbox and completes when the channel is served again), or with
   * SYNC_FORK_LOST when resync dropped it (its object's other branch won a fork).
   */
  outcome$: Observable<CommandOutcome>;
}

export interface ChannelOptions {
  /** Resend a command with no final response after this long (doubles per attempt, capped). @default 2000 */
  retransmitMs?: number;
  /** @default 30000 */
  retransmitCapMs?: number;
  /** How often pending commands are checked for retransmission. @default 250 */
  sweepMs?: number;
  /** Frames held back by backpressure before the connection is closed (1008). @default 10000 */
  maxQueuedFrames?: number;
}

export interface ChannelDeps {
  core: ChannelCore;
  /** Injected for tests (virtual time). @default asyncScheduler */
  scheduler?: SchedulerLike;
  /** Frames that are not LIP-1 commands (heartbeats, resync) go here. */
  onControlFrame?: (frame: string, type: string, connection: Connection) => void;
}

/**
 * One channel to one peer: the durable command logic (`ChannelCore`) on top of whichever
 * authenticated connection is live. Commands are pipelined; each is retransmitted (after a
 * reconnect, after a `wait`, or when no response came in time) until its final response.
 */
export interface Channel {
  readonly peer: string;
  /** Incoming commands, after commit (hot). */
  readonly commands$: Observable<IncomingCommand>;
  /** Final outcomes of this node's commands (hot). */
  readonly outcomes$: Observable<CommandOutcome>;
  /** Current connection state (replays the latest value). */
  readonly status$: Observable<ChannelState>;
  readonly events$: Observable<ChannelEvent>;
  /**
   * Sequence a command (durable before it is sent): `queued` settles when it is durable in the
   * outbox, `outcome$` streams its final outcome. The command is sent whether or not either is
   * observed. Acknowledge a command to a user on `queued`, never earlier.
   */
  submit(input: CommandInput): SubmittedCommand;
  /**
   * `submit(input).outcome$`: the final outcome only. Errors with
   * CHANNEL_DEPENDENCY_UNAVAILABLE / CHANNEL_INVALID_COMMAND / store codes when the command
   * cannot be sequenced or stored. Use {@link submit} to learn when the command is durable.
   */
  send(input: CommandInput): Observable<CommandOutcome>;
  /** Use this connection from now on (the previous one, if any, is dropped). */
  attach(connection: Connection): void;
  readonly connection: Connection | undefined;
  /** Commands in flight (sent or queued, no final response yet). */
  readonly inflight: number;
  /** Send a control frame on the live connection; false if none or backpressured. */
  sendControl(frame: string): boolean;
  /**
   * Resend every pending command at the next sweep, whatever its backoff: after a resync the
   * peer can now accept commands it answered `wait` before.
   */
  retransmitNow(): void;
  /**
   * Stop tracking a command removed from the outbox (by resync, or abandoned by the operator):
   * `command_dropped`, and its outcome stream errors with `error`.
   */
  abandon(cid: string, error: Error): void;
  /**
   * Stop serving this channel: another replica of this VASP owns it now. The live connection is
   * closed (4421), new ones are refused until {@link resume}, and every command tracked here
   * stops being tracked: its outcome stream errors with `error` (it stays in the durable outbox,
   * and the owner replica completes it).
   */
  suspend(error: Error): void;
  /** Serve the channel again, with the pending commands the core holds (after `core.reload()`). */
  resume(): void;
  /** Whether the channel is suspended (another replica owns it). */
  readonly suspended: boolean;
  close(): Promise<void>;
}

interface Tracking {
  command: OutgoingCommand;
  attempts: number;
  nextAttemptAt: number;
  /** When it was last written to a connection. */
  sentAt: number;
  /** The peer answered `wait`: resend after the backoff whatever else happens. */
  retry: boolean;
  /** How many times the peer answered `wait`. */
  waits: number;
  outcome: ReplaySubject<CommandOutcome>;
}

export function createChannel(options: ChannelOptions, deps: ChannelDeps): Channel {
  const { core } = deps;
  const scheduler = deps.scheduler ?? asyncScheduler;
  const retransmitMs = options.retransmitMs ?? 2000;
  const retransmitCapMs = options.retransmitCapMs ?? 30_000;
  const sweepMs = options.sweepMs ?? 250;
  const maxQueuedFrames = options.maxQueuedFrames ?? 10_000;
  const peer = core.peer;

  const commands = new Subject<IncomingCommand>();
  const outcomes = new Subject<CommandOutcome>();
  const events = new Subject<ChannelEvent>();
  const status = new BehaviorSubject<ChannelState>('disconnected');
  const tracking = new Map<string, Tracking>();
  /** Frames waiting for the socket to drain (backpressure). */
  const sendQueue: string[] = [];
  let draining = false;
  let connection: Connection | undefined;
  /** False as soon as the live connection reports it closed (before `detach` runs). */
  let connectionOpen = false;
  let connectionSub: Subscription | undefined;
  let closed = false;
  let suspended = false;
  /** When the peer last answered a command of ours (or the connection came up). */
  let lastAnswerAt = 0;
  /** When the last timer resend went out (see `sweep`). */
  let lastProbeAt = 0;

  const now = (): number => scheduler.now();
  const backoff = (attempts: number): number =>
    Math.min(retransmitCapMs, retransmitMs * 2 ** Math.max(0, attempts - 1)) * (0.5 + Math.random() * 0.5);

  function track(command: OutgoingCommand): Tracking {
    let t = tracking.get(command.cid);
    if (!t) {
      t = {
        command,
        attempts: 0,
        nextAttemptAt: 0,
        sentAt: 0,
        retry: false,
        waits: 0,
        outcome: new ReplaySubject<CommandOutcome>(1),
      };
      tracking.set(command.cid, t);
    }
    return t;
  }

  // Commands recovered from the durable outbox are tracked at once and sent on connect.
  for (const command of core.pending()) track(command);

  function transmit(t: Tracking): void {
    if (!connection) return; // sent when a connection is attached
    if (t.attempts > 0 && sendQueue.length > 0) {
      // The socket is backpressured: a retransmission would only pile up behind it.
      t.nextAttemptAt = now() + backoff(t.attempts);
      return;
    }
    t.attempts++;
    t.retry = false;
    t.sentAt = now();
    t.nextAttemptAt = t.sentAt + backoff(t.attempts);
    if (t.attempts > 1) events.next({ type: 'retransmit', peer, cid: t.command.cid, attempt: t.attempts });
    write(t.command.requestJws);
  }

  function write(frame: string): void {
    if (!connection) return; // sent on the next connect
    if (sendQueue.length > 0 || !connection.send(frame)) {
      // LIP-1 HTTP: the queue holds commands waiting for a free request slot, not bytes a
      // socket could not write (each is in the durable outbox and tracked here anyway).
      if (sendQueue.length >= maxQueuedFrames && !connection.answer) {
        // The peer does not read what it asks for: never buffer without bound.
        connection.close(1008, 'peer is not reading');
        return;
      }
      sendQueue.push(frame);
      void flush();
    }
  }

  async function flush(): Promise<void> {
    if (draining) return;
    draining = true;
    try {
      while (sendQueue.length > 0 && connection && connectionOpen) {
        const live = connection;
        if (live.send(sendQueue[0]!)) {
          sendQueue.shift();
          continue;
        }
        // A refused send with nothing buffered is not backpressure: the socket is closing, and
        // `writable()` would resolve at once, so the loop would spin on microtasks and starve
        // the close event that ends it. The close (and the next attach) takes over.
        if (live.state !== 'open' || live.bufferedAmount === 0) break;
        await live.writable();
        if (connection !== live) break;
      }
    } finally {
      draining = false;
    }
  }

  function finish(outcome: ResponseOutcome): void {
    const t = tracking.get(outcome.cid);
    if (outcome.kind === 'final') {
      tracking.delete(outcome.cid);
      events.next({
        type: 'command_final',
        peer,
        cid: outcome.cid,
        status: outcome.status,
        code: outcome.code,
      });
      outcomes.next(outcome);
      if (t) {
        t.outcome.next(outcome);
        t.outcome.complete();
      }
    } else if (outcome.kind === 'retry' && t) {
      // `wait`: the peer lacks a dependency or holds the lock; retry after a backoff.
      t.retry = true;
      t.waits++;
      t.nextAttemptAt = now() + backoff(t.attempts);
      events.next({
        type: 'command_waiting',
        peer,
        cid: outcome.cid,
        referenceId: t.command.referenceId,
        waits: t.waits,
      });
    } else if (outcome.kind === 'fork') {
      events.next({ type: 'fork', peer, cid: outcome.cid });
    }
  }

  async function onFrame(frame: string, live: Connection): Promise<void> {
    if (isHeartbeatFrame(frame)) {
      // Not a JWS (PROTOCOL.md §8): routed at once, never behind a command being handled.
      deps.onControlFrame?.(frame, 'Heartbeat', live);
      return;
    }
    // Routed by the `_ObjectType` at the head of the payload; only a payload that does not
    // start with it is decoded here in full (the handlers verify and decode every frame).
    let type = peekJwsObjectType(frame);
    if (type === undefined) {
      try {
        const payload = parseJson(decodeJwsPayloadUnverified(frame)) as { _ObjectType?: unknown } | null;
        const named = payload?._ObjectType;
        // Undecodable, or no frame kind at all (`[]`, `{}`): not a frame of a later version but
        // an invalid request, which the core answers with a signed protocol error
        // (`invalid_signature` or `parsing_error`, `cid: null`; PROTOCOL.md §2.1).
        type = typeof named === 'string' ? named : 'CommandRequestObject';
      } catch {
        type = 'CommandRequestObject';
      }
    }
    if (type === 'CommandResponseObject') {
      lastAnswerAt = now();
      try {
        // LIP-1 HTTP pairs each answer with its request: a protocol error without a cid (the
        // peer could not read or verify the request) then ends the command it answers.
        finish(await core.handleResponse(frame, live.requestCidOf?.(frame)));
      } catch (err) {
        if (!isParleyError(err)) throw err;
        events.next({ type: 'frame_refused', peer, code: err.code });
      }
      return;
    }
    if (type !== 'CommandRequestObject') {
      deps.onControlFrame?.(frame, type, live);
      return;
    }
    const handled = await core.handleRequest(frame);
    if (connection === live) {
      // LIP-1 HTTP: the response is the answer to the HTTP request that carried this frame.
      if (live.answer) live.answer(frame, handled.responseJws);
      else write(handled.responseJws);
    }
    if (handled.outcome.kind === 'committed') {
      const { status: result, code, request } = handled.outcome;
      events.next({ type: 'command_received', peer, cid: request.cid, status: result, code });
      commands.next(handled.outcome);
    }
  }

  // On a live connection (TCP: in order, nothing lost) every command sent gets an answer: a
  // result, or `wait` when the peer cannot decide it now, which asks for a resend after the
  // backoff. Everything pending is resent on each new connection. A timer resend is only a
  // probe for a peer that went quiet with commands unanswered (busy resyncing, or a bug): one
  // command, the oldest due, per `retransmitMs` of quiet. Resending every command of a deep
  // pipeline on its own timer turned bursts into retransmission storms: each resend costs the
  // peer a signature check and a lookup, which delayed its answers further.
  const sweep = interval(sweepMs, scheduler).subscribe(() => {
    if (!connection) return;
    const t0 = now();
    let probe = t0 - Math.max(lastAnswerAt, lastProbeAt) >= retransmitMs;
    for (const t of tracking.values()) {
      if (t.nextAttemptAt > t0) continue;
      if (t.retry) transmit(t);
      else if (probe) {
        probe = false;
        lastProbeAt = t0;
        transmit(t);
      }
    }
  });

  /**
   * Drops the live connection and every command tracked here. Nobody waits forever: each command
   * without its final response ends for its caller with `errorFor(cid)` (it stays in the durable
   * outbox and completes when the channel is served again, here or by another replica).
   */
  function stopServing(code: number, reason: string, errorFor: (cid: string) => Error): void {
    const live = connection;
    if (live) {
      detach(code, reason);
      live.close(code, reason);
    }
    const unfinished = [...tracking.values()];
    tracking.clear();
    for (const t of unfinished) t.outcome.error(errorFor(t.command.cid));
  }

  function detach(code: number, reason: string): void {
    connectionSub?.unsubscribe();
    connectionSub = undefined;
    connection = undefined;
    connectionOpen = false;
    sendQueue.length = 0;
    if (!closed) status.next('disconnected');
    events.next({ type: 'disconnected', peer, closeCode: code, reason });
  }

  function submit(input: CommandInput): SubmittedCommand {
    const result = new ReplaySubject<CommandOutcome>(1);
    const sequenced = suspended
      ? // Not sequenced at all: the replica that owns the channel must send it.
        Promise.reject(
          new ParleyError('STORE_LEASE_LOST', `another replica serves the channel to ${peer} now`),
        )
      : core.sequence(input);
    sequenced.then(
      (command) => {
        if (closed || suspended) {
          // Durable all the same: it completes when the channel is served again (here or at the
          // replica that owns it now).
          result.error(
            closed
              ? channelClosed(command.cid)
              : new ParleyError(
                  'STORE_LEASE_LOST',
                  `another replica serves the channel to ${peer} now; ${command.cid} stays in the outbox`,
                ),
          );
          return;
        }
        const t = track(command);
        t.outcome.subscribe(result);
        events.next({ type: 'command_queued', peer, cid: command.cid, referenceId: command.referenceId });
        transmit(t);
      },
      (err: unknown) => result.error(err),
    );
    const queued = sequenced.then(({ cid, referenceId }): QueuedCommand => ({ cid, referenceId }));
    // The outcome stream carries a refusal too: a caller that only wants the outcome must not
    // get an unhandled rejection for `queued`.
    queued.catch(() => undefined);
    return { referenceId: input.payment.reference_id, queued, outcome$: result.asObservable() };
  }

  return {
    peer,
    commands$: commands.asObservable(),
    outcomes$: outcomes.asObservable(),
    status$: status.asObservable(),
    events$: events.asObservable(),
    submit,
    send: (input) => submit(input).outcome$,
    attach(next) {
      if (closed) {
        next.close(1001, 'channel closed');
        return;
      }
      if (suspended) {
        next.close(CloseCode.NOT_OWNER, NOT_OWNER_REASON);
        return;
      }
      if (connection) detach(1000, 'replaced');
      connection = next;
      connectionOpen = true;
      lastAnswerAt = now();
      status.next('connected');
      events.next({ type: 'connected', peer, dialed: next.dialed });
      connectionSub = next.frames$.subscribe({
        next: (frame) => {
          onFrame(frame, next).catch((err: unknown) => {
            // A store failure or a bug must not kill the channel: the peer will retry.
            events.next({ type: 'frame_refused', peer, code: isParleyError(err) ? err.code : 'INTERNAL' });
          });
        },
      });
      // LIP-1 HTTP: a request that got no usable answer is resent after its backoff, as after
      // `wait` (a WebSocket resends everything on its next connection instead).
      if (next.undelivered$) {
        connectionSub.add(
          next.undelivered$.subscribe((cid) => {
            const t = tracking.get(cid);
            if (!t) return;
            t.retry = true;
            t.nextAttemptAt = now() + backoff(t.attempts);
          }),
        );
      }
      void next.closed.then(({ code, reason }) => {
        if (connection !== next) return;
        connectionOpen = false;
        detach(code, reason);
      });
      // Everything still pending goes out on the new connection, oldest first.
      for (const t of tracking.values()) transmit(t);
    },
    get connection() {
      return connection;
    },
    get inflight() {
      return tracking.size;
    },
    sendControl(frame) {
      return connection ? connection.send(frame) : false;
    },
    retransmitNow() {
      for (const t of tracking.values()) t.nextAttemptAt = 0;
    },
    abandon(cid, error) {
      const t = tracking.get(cid);
      if (!t) return;
      tracking.delete(cid);
      events.next({
        type: 'command_dropped',
        peer,
        cid,
        code: isParleyError(error) ? error.code : 'INTERNAL',
      });
      t.outcome.error(error);
    },
    suspend(error) {
      suspended = true;
      stopServing(CloseCode.NOT_OWNER, NOT_OWNER_REASON, () => error);
    },
    resume() {
      suspended = false;
      for (const command of core.pending()) track(command);
    },
    get suspended() {
      return suspended;
    },
    async close() {
      if (closed) return;
      closed = true;
      sweep.unsubscribe();
      stopServing(1001, 'channel closed', channelClosed);
      status.next('closed');
      await core.drain();
      commands.complete();
      outcomes.complete();
      events.complete();
      status.complete();
    },
  };
}

/** The close reason of a connection a replica refuses or drops because another one serves the channel. */
export const NOT_OWNER_REASON = 'another replica owns this channel';

function channelClosed(cid: string): ParleyError {
  return new ParleyError(
    'CHANNEL_CLOSED',
    `the channel closed before the final response to ${cid}; it stays in the outbox`,
  );
}

/** Waits for the final outcome of a sent command. */
export function outcomeOf(outcome$: Observable<CommandOutcome>): Promise<CommandOutcome> {
  return firstValueFrom(outcome$.pipe(filter(Boolean), take(1)));
}
