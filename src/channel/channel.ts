import {
  asyncScheduler,
  BehaviorSubject,
  distinctUntilChanged,
  filter,
  firstValueFrom,
  interval,
  map,
  type Observable,
  ReplaySubject,
  type SchedulerLike,
  Subject,
  Subscription,
  take,
  takeUntil,
} from 'rxjs';
import { isParleyError, ParleyError } from '../errors.js';
import { CloseCode } from '../protocol/close-codes.js';
import type { Connection } from '../transport/types.js';
import { observed } from '../util/background.js';
import type { ChannelCore, CommandInput } from './channel-core.js';
import type {
  ChannelEvent,
  ChannelState,
  CommandOutcome,
  IncomingCommand,
  QueuedCommand,
  SubmittedCommand,
} from './channel-events.js';
import { type CommandTracker, createCommandTracker, type InflightStates } from './command-tracker.js';
import { frameKindOf } from './frame-kind.js';
import { createFrameWriter, type FrameWriter } from './frame-writer.js';

export type {
  ChannelEvent,
  ChannelState,
  CommandOutcome,
  IncomingCommand,
  QueuedCommand,
  SubmittedCommand,
} from './channel-events.js';
export type { InflightStates } from './command-tracker.js';

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
  /** What the commands in flight wait on (a diagnosis of commands that stay in flight). */
  readonly inflightStates: InflightStates;
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

/**
 * The one state of a channel: serving with no connection (`idle`), serving on a `live` connection
 * (with the writer of its frames), `suspended` (another replica serves it), or `closed` (for good;
 * `suspended` when another replica served it at the time).
 */
export type ChannelLife =
  | { kind: 'idle' }
  | { kind: 'live'; connection: Connection; writer: FrameWriter; subscription: Subscription }
  | { kind: 'suspended' }
  | { kind: 'closed'; suspended: boolean };

/** What the functions of a channel share. */
interface ChannelParts {
  readonly peer: string;
  readonly core: ChannelCore;
  readonly deps: ChannelDeps;
  readonly maxQueuedFrames: number;
  readonly life: BehaviorSubject<ChannelLife>;
  readonly tracker: CommandTracker;
  readonly commands: Subject<IncomingCommand>;
  readonly outcomes: Subject<CommandOutcome>;
  readonly events: Subject<ChannelEvent>;
}

const IDLE: ChannelLife = { kind: 'idle' };

function statusOf(life: ChannelLife): ChannelState {
  return life.kind === 'live' ? 'connected' : life.kind === 'closed' ? 'closed' : 'disconnected';
}

function isSuspended(life: ChannelLife): boolean {
  return life.kind === 'suspended' || (life.kind === 'closed' && life.suspended);
}

export function createChannel(options: ChannelOptions, deps: ChannelDeps): Channel {
  const { core } = deps;
  const scheduler = deps.scheduler ?? asyncScheduler;
  const retransmitMs = options.retransmitMs ?? 2000;
  const peer = core.peer;
  const life = new BehaviorSubject<ChannelLife>(IDLE);
  /** Ends `status$` once the channel closed (the state itself stays readable). */
  const ended = new ReplaySubject<void>(1);
  const events = new Subject<ChannelEvent>();
  const outcomes = new Subject<CommandOutcome>();
  const tracker = createCommandTracker(
    { retransmitMs, retransmitCapMs: options.retransmitCapMs ?? 30_000 },
    {
      peer,
      scheduler,
      events,
      outcomes,
      writer: () => {
        const now = life.value;
        return now.kind === 'live' ? now.writer : undefined;
      },
    },
  );
  const p: ChannelParts = {
    peer,
    core,
    deps,
    maxQueuedFrames: options.maxQueuedFrames ?? 10_000,
    life,
    tracker,
    commands: new Subject<IncomingCommand>(),
    outcomes,
    events,
  };
  // Commands recovered from the durable outbox are tracked at once and sent on connect.
  for (const command of core.pending()) tracker.track(command);
  const sweep = interval(options.sweepMs ?? 250, scheduler).subscribe(() => tracker.sweep());

  return {
    peer,
    commands$: p.commands.asObservable(),
    outcomes$: outcomes.asObservable(),
    status$: life.pipe(map(statusOf), distinctUntilChanged(), takeUntil(ended)),
    events$: events.asObservable(),
    submit: (input) => submit(p, input),
    send: (input) => submit(p, input).outcome$,
    attach: (next) => attach(p, next),
    get connection() {
      const now = life.value;
      return now.kind === 'live' ? now.connection : undefined;
    },
    get inflight() {
      return tracker.size;
    },
    get inflightStates() {
      return tracker.states();
    },
    sendControl(frame) {
      const now = life.value;
      return now.kind === 'live' ? now.connection.send(frame) : false;
    },
    retransmitNow: () => tracker.retransmitNow(),
    abandon: (cid, error) => tracker.abandon(cid, error),
    suspend(error) {
      const now = life.value;
      const after: ChannelLife =
        now.kind === 'closed' ? { kind: 'closed', suspended: true } : { kind: 'suspended' };
      stopServing(p, CloseCode.NOT_OWNER, NOT_OWNER_REASON, () => error, after);
    },
    resume() {
      const now = life.value;
      if (now.kind === 'suspended') life.next(IDLE);
      else if (now.kind === 'closed' && now.suspended) life.next({ kind: 'closed', suspended: false });
      for (const command of core.pending()) tracker.track(command);
    },
    get suspended() {
      return isSuspended(life.value);
    },
    async close() {
      const now = life.value;
      if (now.kind === 'closed') return;
      sweep.unsubscribe();
      stopServing(p, CloseCode.GOING_AWAY, 'channel closed', channelClosed, {
        kind: 'closed',
        suspended: isSuspended(now),
      });
      await core.drain();
      p.commands.complete();
      outcomes.complete();
      events.complete();
      ended.next();
      ended.complete();
    },
  };
}

function attach(p: ChannelParts, next: Connection): void {
  const now = p.life.value;
  if (now.kind === 'closed') {
    next.close(CloseCode.GOING_AWAY, 'channel closed');
    return;
  }
  if (now.kind === 'suspended') {
    next.close(CloseCode.NOT_OWNER, NOT_OWNER_REASON);
    return;
  }
  if (now.kind === 'live') detach(p, CloseCode.NORMAL, 'replaced', IDLE);
  const isCurrent = (): boolean => {
    const at = p.life.value;
    return at.kind === 'live' && at.connection === next;
  };
  const subscription = new Subscription();
  p.life.next({
    kind: 'live',
    connection: next,
    writer: createFrameWriter(next, p.maxQueuedFrames, isCurrent),
    subscription,
  });
  p.tracker.answered();
  p.events.next({ type: 'connected', peer: p.peer, dialed: next.dialed });
  subscription.add(
    next.frames$.subscribe({
      next: (frame) => {
        onFrame(p, frame, next).catch((err: unknown) => {
          // A store failure or a bug must not kill the channel: the peer will retry.
          p.events.next({
            type: 'frame_refused',
            peer: p.peer,
            code: isParleyError(err) ? err.code : 'INTERNAL',
          });
        });
      },
    }),
  );
  // LIP-1 HTTP: a request that got no usable answer is resent after its backoff, as after
  // `wait` (a WebSocket resends everything on its next connection instead).
  if (next.undelivered$) subscription.add(next.undelivered$.subscribe((cid) => p.tracker.undelivered(cid)));
  void next.closed.then(({ code, reason }) => {
    if (isCurrent()) detach(p, code, reason, IDLE);
  });
  // Everything still pending goes out on the new connection, oldest first.
  p.tracker.transmitAll();
}

/** Drops the live connection (its frames and its writer's queue); the channel is `after` from now on. */
function detach(p: ChannelParts, code: number, reason: string, after: ChannelLife): void {
  const now = p.life.value;
  if (now.kind === 'live') now.subscription.unsubscribe();
  p.life.next(after);
  p.events.next({ type: 'disconnected', peer: p.peer, closeCode: code, reason });
}

/**
 * Drops the live connection and every command tracked here. Nobody waits forever: each command
 * without its final response ends for its caller with `errorFor(cid)` (it stays in the durable
 * outbox and completes when the channel is served again, here or by another replica).
 */
function stopServing(
  p: ChannelParts,
  code: number,
  reason: string,
  errorFor: (cid: string) => Error,
  after: ChannelLife,
): void {
  const now = p.life.value;
  if (now.kind === 'live') {
    detach(p, code, reason, after);
    now.connection.close(code, reason);
  } else {
    p.life.next(after);
  }
  p.tracker.dropAll(errorFor);
}

async function onFrame(p: ChannelParts, frame: string, live: Connection): Promise<void> {
  // A heartbeat is routed at once, never behind a command being handled.
  const type = frameKindOf(frame);
  if (type === 'CommandResponseObject') {
    p.tracker.answered();
    try {
      // LIP-1 HTTP pairs each answer with its request: a protocol error without a cid (the
      // peer could not read or verify the request) then ends the command it answers.
      p.tracker.finish(await p.core.handleResponse(frame, live.requestCidOf?.(frame)));
    } catch (err) {
      if (!isParleyError(err)) throw err;
      p.events.next({ type: 'frame_refused', peer: p.peer, code: err.code });
    }
    return;
  }
  if (type !== 'CommandRequestObject') {
    p.deps.onControlFrame?.(frame, type, live);
    return;
  }
  const handled = await p.core.handleRequest(frame);
  const now = p.life.value;
  if (now.kind === 'live' && now.connection === live) {
    // LIP-1 HTTP: the response is the answer to the HTTP request that carried this frame.
    if (live.answer) live.answer(frame, handled.responseJws);
    else now.writer.write(handled.responseJws);
  }
  if (handled.outcome.kind === 'committed') {
    const { status: result, code, request } = handled.outcome;
    p.events.next({ type: 'command_received', peer: p.peer, cid: request.cid, status: result, code });
    p.commands.next(handled.outcome);
  }
}

function submit(p: ChannelParts, input: CommandInput): SubmittedCommand {
  const { peer } = p;
  const result = new ReplaySubject<CommandOutcome>(1);
  const sequenced = isSuspended(p.life.value)
    ? // Not sequenced at all: the replica that owns the channel must send it.
      Promise.reject(new ParleyError('STORE_LEASE_LOST', `another replica serves the channel to ${peer} now`))
    : p.core.sequence(input);
  sequenced.then(
    (command) => {
      const now = p.life.value;
      if (now.kind === 'closed' || now.kind === 'suspended') {
        // Durable all the same: it completes when the channel is served again (here or at the
        // replica that owns it now).
        result.error(
          now.kind === 'closed'
            ? channelClosed(command.cid)
            : new ParleyError(
                'STORE_LEASE_LOST',
                `another replica serves the channel to ${peer} now; ${command.cid} stays in the outbox`,
              ),
        );
        return;
      }
      const t = p.tracker.track(command);
      t.outcome.subscribe(result);
      p.events.next({ type: 'command_queued', peer, cid: command.cid, referenceId: command.referenceId });
      p.tracker.transmit(t);
    },
    (err: unknown) => result.error(err),
  );
  const queued = sequenced.then(({ cid, referenceId }): QueuedCommand => ({ cid, referenceId }));
  // The outcome stream carries a refusal too: a caller that only wants the outcome must not
  // get an unhandled rejection for `queued`.
  observed(queued);
  return { referenceId: input.payment.reference_id, queued, outcome$: result.asObservable() };
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
