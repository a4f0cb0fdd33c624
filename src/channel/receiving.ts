import { isParleyError, ParleyError } from '../errors.js';
import { checkPaymentCommand } from '../objects/index.js';
import {
  type CommandRequestObject,
  type CommandResponseObject,
  decodeRequest,
  defaultErrorMessage,
  encodeResponse,
  type PaymentObject,
} from '../protocol/index.js';
import type { CommandRecord, CommitItem } from '../store/types.js';
import { observed, settled } from '../util/background.js';
import { canonicalDigest } from './canonical.js';
import type { HandledRequest, ValidateCommand } from './channel-core.js';
import { payloadOf, readOf, versionRecord, writeOf } from './command-parts.js';
import type { CoreContext } from './core-context.js';
import type { ObjectState } from './object-cache.js';
import type { PendingCommands } from './pending-commands.js';
import type { ResponseOrder } from './response-order.js';

/**
 * The receiving side of a channel: the reference's receiving order for the peer's requests
 * (verify, parse, cid replay or `conflict`, `wait` for unknown or server-locked versions,
 * `used_dependencies`, payment rules, commit), and the signed answer to each.
 */
export interface Receiver {
  handleRequest(jws: string): Promise<HandledRequest>;
  /** Forgets the decisions remembered in memory (after a failed commit, or on reload). */
  forget(): void;
}

interface Recent {
  request: CommandRequestObject;
  /** `canonicalDigest(request)`, computed the first time the cid comes again. */
  digest?: string;
  /** The signed response, once the command is durable; rejects when its commit failed. */
  response: Promise<string>;
}

interface ReceiveState {
  readonly ctx: CoreContext;
  /** What the receiving order reads of my own pending commands. */
  readonly mine: Pick<PendingCommands, 'isLocked' | 'writes'>;
  readonly responses: Pick<ResponseOrder, 'unapplied' | 'receivedSoFar'>;
  readonly validate: ValidateCommand | undefined;
  readonly recentLimit: number;
  /** Recently decided cids, for replay detection without a store read. */
  readonly recent: Map<string, Recent>;
  /** Bumped each time `recent` is dropped. */
  generation: number;
}

export function createReceiver(
  ctx: CoreContext,
  ports: {
    mine: ReceiveState['mine'];
    responses: ReceiveState['responses'];
    validate?: ValidateCommand;
    recentLimit: number;
  },
): Receiver {
  const s: ReceiveState = {
    ctx,
    mine: ports.mine,
    responses: ports.responses,
    validate: ports.validate,
    recentLimit: ports.recentLimit,
    recent: new Map(),
    generation: 0,
  };
  return {
    handleRequest: (jws) => handleRequest(s, jws),
    forget() {
      s.generation++;
      s.recent.clear();
    },
  };
}

type Decision =
  | { kind: 'replay'; response: Promise<string> }
  /** The request reads the version of a command of mine whose response is still on its way. */
  | { kind: 'await'; answered: Promise<void> }
  | { kind: 'protocol'; code: string; message?: string }
  | Commit;

interface Commit {
  kind: 'commit';
  status: 'success' | 'failure';
  code: string | null;
  object: ObjectState;
  readVersion: string | null;
  writeVersion: string;
  referenceId: string;
}

function remember(s: ReceiveState, cid: string, entry: Recent): void {
  s.recent.set(cid, entry);
  if (s.recent.size > s.recentLimit) {
    const oldest = s.recent.keys().next().value;
    if (oldest !== undefined) s.recent.delete(oldest);
  }
}

function respond(s: ReceiveState, response: CommandResponseObject): Promise<string> {
  return s.ctx.sign(encodeResponse(response));
}

async function protocolError(
  s: ReceiveState,
  cid: string | null,
  code: string,
  cause?: unknown,
  message?: string,
): Promise<HandledRequest> {
  const responseJws = await respond(s, {
    _ObjectType: 'CommandResponseObject',
    cid,
    status: 'failure',
    error: { protocol_error: true, code, message: message ?? defaultErrorMessage(code) },
  });
  return { responseJws, outcome: { kind: 'protocol_error', code, cid, cause } };
}

/** Loads the object a request writes into the cache; errors surface later, inside `decide`. */
async function prefetch(s: ReceiveState, request: CommandRequestObject): Promise<void> {
  const [entry] = Object.entries(request.command._writes);
  if (entry) await settled(s.ctx.cache.get(entry[0]));
}

/** Replay or `conflict` for a cid decided before (in memory or in the store); undefined for a new one. */
function replayOf(
  s: ReceiveState,
  request: CommandRequestObject,
  prior: CommandRecord | undefined,
): Decision | undefined {
  // Digests only when the cid was seen before: a new command (nearly all of them) needs none.
  const known = s.recent.get(request.cid);
  if (known) {
    known.digest ??= canonicalDigest(known.request);
    if (known.digest === canonicalDigest(request)) return { kind: 'replay', response: known.response };
    return { kind: 'protocol', code: 'conflict' };
  }
  if (prior) {
    const stored = decodeRequest(payloadOf(prior.requestJws));
    if (canonicalDigest(stored) === canonicalDigest(request))
      return { kind: 'replay', response: Promise.resolve(prior.responseJws) };
    return { kind: 'protocol', code: 'conflict' };
  }
  return undefined;
}

/** The receiving order of the reference, steps 2–7. Runs inside the serial queue. */
async function decide(
  s: ReceiveState,
  request: CommandRequestObject,
  prior: CommandRecord | undefined,
  mayAwait: boolean,
): Promise<Decision> {
  const replay = replayOf(s, request, prior);
  if (replay) return replay;
  const { ctx } = s;
  const write = writeOf(request);
  const read = readOf(request);
  const object = await ctx.cache.get(write.referenceId);
  const commit = (status: 'success' | 'failure', code: string | null): Commit => ({
    kind: 'commit',
    status,
    code,
    object,
    readVersion: read?.version ?? null,
    writeVersion: write.version,
    referenceId: write.referenceId,
  });
  const commandError = (code: string): Decision => commit('failure', code);

  let previous: PaymentObject | undefined;
  if (read) {
    if (read.referenceId !== write.referenceId) return commandError('payment_wrong_structure');
    const version = object.versions.get(read.version);
    if (!version) {
      // The peer read a version only my pending command writes: it accepted that command, and
      // its response, sent before this request, is likely still being checked here. Waiting
      // for the responses already received costs microseconds; answering `wait` would cost the
      // peer a resend after its backoff (common: the peer's business reacts at once). Only
      // frames already received are awaited, so a peer that never answers cannot hold this.
      if (mayAwait && s.mine.writes(read.version) && s.responses.unapplied) {
        return { kind: 'await', answered: s.responses.receivedSoFar() };
      }
      return { kind: 'protocol', code: 'wait', message: `dependencies ${read.version} are missing` };
    }
    if (ctx.isServer && s.mine.isLocked(read.version)) {
      return { kind: 'protocol', code: 'wait', message: `dependencies ${read.version} are locked` };
    }
    if (version.consumed) return commandError('used_dependencies');
    previous = version.payment;
  } else if (object.head !== null) {
    // A create for an object that already exists (a byte-identical replay was caught above).
    return commandError('payment_wrong_structure');
  }
  if (object.versions.has(write.version)) return commandError('payment_wrong_structure');

  const payment = request.command.payment;
  const ruleError = checkPaymentCommand({
    me: ctx.me,
    other: ctx.peer,
    origin: ctx.peer,
    previous,
    next: payment,
    referenceId: write.referenceId,
  });
  if (ruleError) return commandError(ruleError);
  const businessError = s.validate ? await s.validate({ payment, previous, origin: ctx.peer }) : null;
  if (businessError) return commandError(businessError);

  // Success: the new version exists from now on for every later decision.
  if (read) object.versions.get(read.version)!.consumed = true;
  object.versions.set(write.version, {
    version: write.version,
    previous: read?.version ?? null,
    payment,
    consumed: false,
  });
  object.head = write.version;
  return commit('success', null);
}

/** Step 1: the size, the signature and the shape of a request; a signed protocol error when one fails. */
async function verifyRequest(
  s: ReceiveState,
  jws: string,
): Promise<{ request: CommandRequestObject } | { refused: HandledRequest }> {
  const { ctx } = s;
  if (Buffer.byteLength(jws, 'utf8') > ctx.maxFrameBytes) {
    return {
      refused: await protocolError(s, null, 'parsing_error', new ParleyError('PROTOCOL_FRAME_TOO_LARGE')),
    };
  }
  let payload: string;
  try {
    payload = await ctx.verifyPeer(jws, ctx.peerKey);
  } catch (err) {
    // Not a verdict: the node is closing. The peer resends on its next connection.
    if (isParleyError(err, 'TRANSPORT_CLOSED'))
      return { refused: await protocolError(s, null, 'wait', err, 'closing') };
    if (isParleyError(err)) return { refused: await protocolError(s, null, 'invalid_signature', err) };
    throw err;
  }
  try {
    return { request: decodeRequest(payload) };
  } catch (err) {
    if (isParleyError(err)) return { refused: await protocolError(s, null, 'parsing_error', err) };
    throw err;
  }
}

/**
 * Decides a verified request. The store reads run before taking the queue so that they overlap
 * instead of queueing: the cid lookup (`recent` covers the cids decided while it was in flight;
 * a cid already in `recent` needs none) and the object, which `decide` then finds in the cache.
 */
async function decideRequest(
  s: ReceiveState,
  request: CommandRequestObject,
  startedIn: number,
): Promise<Decision> {
  const { ctx } = s;
  const lookup = await ctx.lookups.run(async () => {
    const skipped = s.recent.has(request.cid);
    const [found] = await Promise.all([
      skipped ? undefined : ctx.store.findCommand(ctx.peer, request.cid),
      prefetch(s, request),
    ]);
    return { found, skipped };
  });
  const decideInQueue = (mayAwait: boolean) =>
    ctx.queue.run(async () => {
      let prior = lookup.found;
      // `recent` was dropped (a failed commit) after the lookup was skipped: look now.
      if (lookup.skipped && s.generation !== startedIn && !s.recent.has(request.cid)) {
        prior = await ctx.store.findCommand(ctx.peer, request.cid);
      }
      return decide(s, request, prior, mayAwait);
    });
  let decision = await decideInQueue(true);
  if (decision.kind === 'await') {
    await decision.answered;
    decision = await decideInQueue(false);
  }
  return decision;
}

async function handleRequest(s: ReceiveState, jws: string): Promise<HandledRequest> {
  const verified = await verifyRequest(s, jws);
  if ('refused' in verified) return verified.refused;
  const { request } = verified;
  let decision: Decision;
  const startedIn = s.generation;
  try {
    decision = await decideRequest(s, request, startedIn);
  } catch (err) {
    // Never leave a request unanswered (the peer would wait for a timer): `wait` asks it to
    // resend after its backoff.
    return protocolError(s, request.cid, 'wait', err, 'not decided, retry later');
  }
  if (decision.kind === 'await') {
    // Not reached: a second decision never awaits.
    return protocolError(s, request.cid, 'wait', undefined, 'dependencies are missing');
  }
  if (decision.kind === 'replay') {
    try {
      return { responseJws: await decision.response, outcome: { kind: 'replayed', cid: request.cid } };
    } catch (err) {
      // The first copy's commit failed: neither copy is answered final.
      return protocolError(s, request.cid, 'wait', err, 'not committed, retry later');
    }
  }
  if (decision.kind === 'protocol') {
    return protocolError(s, request.cid, decision.code, undefined, decision.message);
  }
  return commitDecision(s, jws, request, decision, startedIn);
}

/** Signs the answer, commits the command with it, and releases the answer once durable. */
async function commitDecision(
  s: ReceiveState,
  jws: string,
  request: CommandRequestObject,
  decision: Commit,
  startedIn: number,
): Promise<HandledRequest> {
  const { ctx } = s;
  const response: CommandResponseObject =
    decision.status === 'success'
      ? { _ObjectType: 'CommandResponseObject', cid: request.cid, status: 'success' }
      : {
          _ObjectType: 'CommandResponseObject',
          cid: request.cid,
          status: 'failure',
          error: {
            protocol_error: false,
            code: decision.code!,
            message: defaultErrorMessage(decision.code!),
          },
        };
  const signed = respond(s, response);
  const record: CommandRecord = {
    peer: ctx.peer,
    cid: request.cid,
    direction: 'inbound',
    referenceId: decision.referenceId,
    readVersion: decision.readVersion,
    writeVersion: decision.writeVersion,
    requestJws: jws,
    responseJws: '',
    status: decision.status,
    errorCode: decision.code,
  };
  const item = signed.then((responseJws): CommitItem => {
    record.responseJws = responseJws;
    const entry: CommitItem = { command: record };
    if (decision.status === 'success')
      entry.version = versionRecord(ctx.peer, decision.referenceId, decision, request);
    return entry;
  });
  decision.object.inflight++;
  const committed = ctx.pipe.push(item);
  // A resend of this cid while the commit is under way is answered once the command is
  // durable, never before (a response is released only after its commit); if the commit
  // fails, the resend gets `wait` as this request does.
  const durable = committed.then(() => record.responseJws);
  observed(durable);
  remember(s, request.cid, { request, response: durable });
  try {
    await committed;
    if (decision.status === 'success') {
      const read = decision.readVersion;
      ctx.openObjects.headMoved(
        decision.referenceId,
        read,
        read === null ? undefined : decision.object.versions.get(read),
        {
          version: decision.writeVersion,
          payment: request.command.payment,
        },
      );
    }
  } catch (err) {
    // Not stored: the peer gets a retryable answer and will send the command again.
    if (startedIn === s.generation) s.recent.delete(request.cid);
    return protocolError(s, request.cid, 'wait', err, 'not committed, retry later');
  } finally {
    decision.object.inflight--;
  }
  return {
    responseJws: record.responseJws,
    outcome: { kind: 'committed', status: decision.status, code: decision.code, request, record },
  };
}
