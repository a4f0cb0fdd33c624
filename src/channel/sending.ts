import { randomBytes } from 'node:crypto';
import { ParleyError } from '../errors.js';
import { checkPaymentCommand } from '../objects/index.js';
import {
  type CommandRequestObject,
  type CommandResponseObject,
  decodeRequest,
  decodeResponse,
  encodeRequest,
  type PaymentObject,
  verifyJwsAsync,
} from '../protocol/index.js';
import type { CommandRecord, CommitItem, OutboxRecord } from '../store/types.js';
import { settled } from '../util/background.js';
import type { CommandInput, OutgoingCommand, ResponseOutcome } from './channel-core.js';
import { readOf, versionRecord, writeOf } from './command-parts.js';
import type { CoreContext } from './core-context.js';
import type { ObjectState } from './object-cache.js';
import type { Pending, PendingCommands } from './pending-commands.js';
import type { ResponseOrder } from './response-order.js';

/**
 * The sending side of a channel: sequence a command (check it, lock the version it reads, make
 * it durable in the outbox), then apply the peer's response to it.
 */
export interface Sender {
  /** Forgets the pending commands held in memory and reads them again from the outbox. */
  reloadPending(): Promise<void>;
  sequence(input: CommandInput): Promise<OutgoingCommand>;
  sequenceSigned(requestJws: string): Promise<OutgoingCommand>;
  handleResponse(jws: string, expectedCid?: string): Promise<ResponseOutcome>;
  /** Commands durable in the outbox without a final response, oldest first. */
  pending(): OutgoingCommand[];
  /** Resolves once no command is being registered (sequenced, not yet durable or refused). */
  registered(): Promise<void>;
  /** Resolves once no command past its checks is still on its way to the outbox. */
  sealed(): Promise<void>;
}

interface SendState {
  readonly ctx: CoreContext;
  readonly pending: PendingCommands;
  readonly responses: ResponseOrder;
  readonly enqueue: (record: OutboxRecord) => Promise<void>;
  /** Commands being registered (sequenced, not yet durable or refused): `reload` waits for them. */
  readonly registering: Set<Promise<unknown>>;
  /**
   * Commands past their checks (their read version locked in memory) and not yet in the outbox,
   * nor refused: `exclusive` waits for them inside the queue, so what it runs (a fork's
   * replacement, which drops the outbox rows of a losing branch) never misses one. They need
   * nothing of the queue to finish.
   */
  readonly unsealed: Set<Promise<void>>;
  /**
   * Commands whose final response is applied in memory and whose commit is not settled yet: their
   * outbox rows are still there, but they are no longer pending (a reload must not bring them
   * back, or a resend of their response would be applied twice).
   */
  readonly settling: Set<string>;
}

export function createSender(
  ctx: CoreContext,
  pending: PendingCommands,
  responses: ResponseOrder,
  enqueue: (record: OutboxRecord) => Promise<void>,
): Sender {
  const s: SendState = {
    ctx,
    pending,
    responses,
    enqueue,
    registering: new Set(),
    unsealed: new Set(),
    settling: new Set(),
  };
  return {
    async reloadPending() {
      const rows = await ctx.store.outbox(ctx.peer);
      // A command still being registered is not in the outbox yet: it keeps its lock (its
      // registration ends by storing it, or by releasing it).
      const registering = [...pending.entries()].filter(([, p]) => p.requestJws === '');
      pending.clear();
      for (const row of rows) if (!s.settling.has(row.cid)) pending.addStored(row);
      for (const [cid, p] of registering) if (!pending.has(cid)) pending.add(cid, p);
    },
    sequence: async (input) => register(s, requestOf(input), null),
    async sequenceSigned(requestJws) {
      const request = decodeRequest(await verifyJwsAsync(requestJws, ctx.myKey.publicKey));
      return register(s, request, requestJws);
    },
    handleResponse(jws, expectedCid) {
      // Taken at once, in arrival order: requests received after this response may wait for it.
      const applied = responses.arrive();
      return applyResponse(s, jws, expectedCid, applied).finally(applied);
    },
    pending() {
      const out: OutgoingCommand[] = [];
      for (const [cid, p] of pending.entries()) {
        if (p.requestJws !== '') {
          out.push({ cid, referenceId: p.referenceId, requestJws: p.requestJws, request: p.request });
        }
      }
      return out;
    },
    async registered() {
      while (s.registering.size > 0) await Promise.allSettled([...s.registering]);
    },
    async sealed() {
      while (s.unsealed.size > 0) await Promise.allSettled([...s.unsealed]);
    },
  };
}

function requestOf(input: CommandInput): CommandRequestObject {
  const referenceId = input.payment.reference_id;
  const readVersion = input.readVersion ?? null;
  const cid = input.cid ?? randomBytes(16).toString('hex');
  return {
    _ObjectType: 'CommandRequestObject',
    cid,
    command_type: 'PaymentCommand',
    command: {
      _ObjectType: 'PaymentCommand',
      _reads: readVersion === null ? {} : { [referenceId]: readVersion },
      _writes: { [referenceId]: cid },
      payment: input.payment,
    },
  };
}

/** The sending side: check, lock the read version, then make the command durable. */
function register(
  s: SendState,
  request: CommandRequestObject,
  signedJws: string | null,
): Promise<OutgoingCommand> {
  const run = registerNow(s, request, signedJws);
  s.registering.add(run);
  const forget = () => s.registering.delete(run);
  run.then(forget, forget);
  return run;
}

async function registerNow(
  s: SendState,
  request: CommandRequestObject,
  signedJws: string | null,
): Promise<OutgoingCommand> {
  const { ctx } = s;
  const { cid } = request;
  const write = writeOf(request);
  const referenceId = write.referenceId;
  const readVersion = readOf(request)?.version ?? null;
  // Load the object before taking the queue: a store read inside it would serialise them all.
  // (A failed load fails again, and is answered, in `checkAndLock`.)
  await ctx.lookups.run(() => settled(ctx.cache.get(referenceId)));
  await ctx.queue.run(() => checkAndLock(s, request));
  let seal: () => void = () => undefined;
  const sealed = new Promise<void>((resolve) => {
    seal = () => {
      s.unsealed.delete(sealed);
      resolve();
    };
  });
  s.unsealed.add(sealed);
  try {
    // The version read may have been decided but not yet be durable: a durable outbox row
    // must never point at a version the store does not hold.
    await ctx.pipe.drain();
    const requestJws = signedJws ?? (await ctx.sign(encodeRequest(request)));
    await s.enqueue({
      peer: ctx.peer,
      cid,
      referenceId,
      readVersion,
      writeVersion: write.version,
      requestJws,
      createdAtMs: Date.now(),
      attempts: 0,
    });
    const pending = s.pending.get(cid);
    if (pending) pending.requestJws = requestJws;
    seal();
    return { cid, referenceId, requestJws, request };
  } catch (err) {
    seal();
    await ctx.queue.run(() => s.pending.release(cid));
    throw err;
  }
}

/** The checks of a command of mine, then its lock; runs inside the queue. */
async function checkAndLock(s: SendState, request: CommandRequestObject): Promise<void> {
  const { ctx } = s;
  const { cid } = request;
  const write = writeOf(request);
  const read = readOf(request);
  const referenceId = write.referenceId;
  const readVersion = read?.version ?? null;
  if (s.pending.has(cid)) throw new ParleyError('CHANNEL_INVALID_COMMAND', `cid ${cid} is already pending`);
  if (read && read.referenceId !== referenceId) {
    throw new ParleyError('CHANNEL_INVALID_COMMAND', '_reads and _writes name different objects');
  }
  const object = await ctx.cache.get(referenceId);
  let previous: PaymentObject | undefined;
  if (readVersion === null) {
    if (object.head !== null || s.pending.isCreating(referenceId)) {
      throw new ParleyError('CHANNEL_INVALID_COMMAND', `object ${referenceId} already exists`);
    }
  } else {
    const version = object.versions.get(readVersion);
    if (!version || version.consumed || s.pending.isLocked(readVersion)) {
      const why = !version ? 'unknown' : version.consumed ? 'consumed' : 'locked';
      throw new ParleyError(
        'CHANNEL_DEPENDENCY_UNAVAILABLE',
        `version ${readVersion} of ${referenceId} is ${why}`,
      );
    }
    previous = version.payment;
  }
  if (object.versions.has(write.version)) {
    throw new ParleyError('CHANNEL_INVALID_COMMAND', `version ${write.version} exists`);
  }
  const ruleError = checkPaymentCommand({
    me: ctx.me,
    other: ctx.peer,
    origin: ctx.me,
    previous,
    next: request.command.payment,
    referenceId,
  });
  if (ruleError) throw new ParleyError('CHANNEL_INVALID_COMMAND', `payment rule: ${ruleError}`);
  // Lock now, inside the queue, so no later decision can take the version.
  s.pending.add(cid, { request, requestJws: '', referenceId, readVersion, writeVersion: write.version });
}

type Applied =
  | { kind: 'final'; item: CommitItem; pending: Pending; object: ObjectState | undefined }
  | { kind: 'duplicate' }
  | { kind: 'fork' };

async function applyResponse(
  s: SendState,
  jws: string,
  expectedCid: string | undefined,
  inMemory: () => void,
): Promise<ResponseOutcome> {
  const { ctx } = s;
  if (Buffer.byteLength(jws, 'utf8') > ctx.maxFrameBytes) throw new ParleyError('PROTOCOL_FRAME_TOO_LARGE');
  const response = decodeResponse(await ctx.verifyPeer(jws, ctx.peerKey));
  const cid = response.cid ?? expectedCid;
  if (cid === undefined) throw new ParleyError('CHANNEL_UNKNOWN_RESPONSE', 'response without cid');
  if (expectedCid !== undefined && response.cid !== null && response.cid !== expectedCid) {
    throw new ParleyError(
      'CHANNEL_UNKNOWN_RESPONSE',
      `response for ${response.cid}, expected ${expectedCid}`,
    );
  }
  const error = response.status === 'failure' ? response.error : undefined;
  if (response.status === 'failure' && !error) {
    throw new ParleyError('PROTOCOL_MALFORMED_FRAME', 'failure response without error');
  }
  if (error?.protocol_error && (error.code === 'wait' || error.code === 'missing_dependencies')) {
    return { kind: 'retry', cid, code: error.code };
  }
  const applied = await ctx.queue.run(() => applyInMemory(s, jws, cid, response));
  inMemory();
  if (applied.kind !== 'final') return { ...applied, cid };
  try {
    await ctx.pipe.push(Promise.resolve(applied.item)).finally(() => s.settling.delete(cid));
    if (applied.object) {
      const read = applied.pending.readVersion;
      ctx.openObjects.headMoved(
        applied.pending.referenceId,
        read,
        read === null ? undefined : applied.object.versions.get(read),
        {
          version: applied.pending.writeVersion,
          payment: applied.pending.request.command.payment,
        },
      );
    }
  } finally {
    if (applied.object) applied.object.inflight--;
  }
  return {
    kind: 'final',
    cid,
    status: response.status,
    code: error ? error.code : null,
    request: applied.pending.request,
    record: applied.item.command,
  };
}

/** A final response to a pending command: its effect in memory, and what to commit. Runs inside the queue. */
async function applyInMemory(
  s: SendState,
  jws: string,
  cid: string,
  response: CommandResponseObject,
): Promise<Applied> {
  const { ctx } = s;
  const error = response.status === 'failure' ? response.error : undefined;
  const pending = s.pending.get(cid);
  if (!pending) {
    const stored = await ctx.store.findCommand(ctx.peer, cid);
    if (stored && stored.direction === 'outbound') return { kind: 'duplicate' };
    throw new ParleyError('CHANNEL_UNKNOWN_RESPONSE', `no pending command ${cid}`);
  }
  if (pending.requestJws === '')
    throw new ParleyError('CHANNEL_UNKNOWN_RESPONSE', `command ${cid} not sent yet`);
  const record: CommandRecord = {
    peer: ctx.peer,
    cid,
    direction: 'outbound',
    referenceId: pending.referenceId,
    readVersion: pending.readVersion,
    writeVersion: pending.writeVersion,
    requestJws: pending.requestJws,
    responseJws: jws,
    status: response.status,
    // A protocol error other than `wait` (conflict, parsing_error, invalid_signature) would
    // repeat forever for the same bytes: it ends the command like a command error does.
    errorCode: error ? error.code : null,
  };
  const item: CommitItem = { command: record, settlesOutbox: true };
  let object: ObjectState | undefined;
  if (response.status === 'success') {
    object = await ctx.cache.get(pending.referenceId);
    if (pending.readVersion !== null) {
      const read = object.versions.get(pending.readVersion);
      if (!read || read.consumed) return { kind: 'fork' };
      read.consumed = true;
    } else if (object.head !== null) {
      return { kind: 'fork' };
    }
    const payment = pending.request.command.payment;
    object.versions.set(pending.writeVersion, {
      version: pending.writeVersion,
      previous: pending.readVersion,
      payment,
      consumed: false,
    });
    object.head = pending.writeVersion;
    item.version = versionRecord(ctx.peer, pending.referenceId, pending, pending.request);
    object.inflight++;
  }
  s.pending.release(cid);
  s.settling.add(cid);
  return { kind: 'final', item, pending, object };
}
