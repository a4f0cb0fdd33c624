import { randomBytes } from 'node:crypto';
import { isParleyError, ParleyError } from '../errors.js';
import { createSlicer } from '../event-loop.js';
import { checkPaymentCommand, isFinal } from '../objects/index.js';
import type { OpenObjectsSummary } from '../protocol/channel-frames.js';
import { createOpenObjectsDigest } from '../protocol/heartbeat-frames.js';
import {
  type CommandRequestObject,
  type CommandResponseObject,
  decodeRequest,
  decodeResponse,
  defaultErrorMessage,
  encodeRequest,
  encodeResponse,
  isProtocolServer,
  type PaymentObject,
  type PrivateKey,
  type PublicKey,
  signJwsAsync,
  verifyJwsAsync,
} from '../protocol/index.js';
import type { JwsVerifier } from '../protocol/verify-pool.js';
import type { CommandRecord, CommitItem, OutboxRecord, ParleyStore, VersionRecord } from '../store/types.js';
import { canonicalDigest } from './canonical.js';
import { createCommitPipe } from './commit-pipe.js';
import { createObjectCache, type ObjectState } from './object-cache.js';
import { createLimiter, createSerialQueue } from './serial-queue.js';
import { createVerifyBatcher, type VerifyJws } from './verify-batcher.js';

/** Default limit of one frame, in bytes. */
export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024;

/** Business validation of an incoming command, after the protocol rules passed. */
export type ValidateCommand = (input: {
  payment: PaymentObject;
  previous: PaymentObject | undefined;
  origin: string;
}) => string | null | Promise<string | null>;

export interface ChannelCoreOptions {
  /** This node's address (bech32, zero subaddress). */
  me: string;
  /** The peer's address (bech32, zero subaddress): the channel key. */
  peer: string;
  /** @default 1048576 */
  maxFrameBytes?: number;
  /** How many recently decided cids to remember for replay detection without a store read. @default 50000 */
  recentCidLimit?: number;
  /** @default 20000 */
  maxCachedObjects?: number;
  /** Store lookups (cid, object) in flight at once. @default 64 */
  maxConcurrentLookups?: number;
}

export interface ChannelCoreDeps {
  store: ParleyStore;
  myKey: PrivateKey;
  peerKey: PublicKey;
  validate?: ValidateCommand;
  /**
   * Checks the peer's signatures; frames that arrive together are verified together (see
   * `verify-batcher.ts`). @default WebCrypto on this thread's libuv pool, one job per frame
   */
  verifier?: JwsVerifier;
}

/** What happened to an incoming request. */
export type RequestOutcome =
  | {
      kind: 'committed';
      status: 'success' | 'failure';
      /** LIP-1 command error code on failure. */
      code: string | null;
      request: CommandRequestObject;
      record: CommandRecord;
    }
  | { kind: 'replayed'; cid: string }
  | { kind: 'protocol_error'; code: string; cid: string | null; cause?: unknown };

export interface HandledRequest {
  /** The signed response to send back (always present: every request gets an answer). */
  responseJws: string;
  outcome: RequestOutcome;
}

/** A command this node proposed, durable in the outbox and ready to send. */
export interface OutgoingCommand {
  cid: string;
  referenceId: string;
  requestJws: string;
  request: CommandRequestObject;
}

/** What a response to one of our commands meant. */
export type ResponseOutcome =
  | {
      kind: 'final';
      cid: string;
      status: 'success' | 'failure';
      code: string | null;
      request: CommandRequestObject;
      record: CommandRecord;
    }
  /** A retryable protocol error (`wait`): the command stays pending. */
  | { kind: 'retry'; cid: string; code: string }
  /** The response repeats a final outcome we already hold. */
  | { kind: 'duplicate'; cid: string }
  /** The peer accepted our command although it read a version already consumed here. */
  | { kind: 'fork'; cid: string };

/** What to send to create or update an object. */
export interface CommandInput {
  payment: PaymentObject;
  /** The version read; omit to create. */
  readVersion?: string;
  /** @default 16 random bytes, hex (the reference's choice) */
  cid?: string;
}

interface Pending {
  request: CommandRequestObject;
  requestJws: string;
  referenceId: string;
  readVersion: string | null;
  writeVersion: string;
}

interface Recent {
  request: CommandRequestObject;
  /** `canonicalDigest(request)`, computed the first time the cid comes again. */
  digest?: string;
  /** The signed response, once the command is durable; rejects when its commit failed. */
  response: Promise<string>;
}

/**
 * The transport-agnostic logic of one channel: frames in, frames out. It follows the LIP-1
 * v1 reference's receiving order (verify, parse, cid replay or `conflict`, `wait` for unknown
 * or server-locked versions, `used_dependencies`, payment rules, commit) and its sending side
 * (sequence, lock the read version, durable outbox). Command errors are stored and final;
 * protocol errors are never stored.
 */
export interface ChannelCore {
  readonly me: string;
  readonly peer: string;
  /** Whether this node is the LIP-1 protocol server of the pair. */
  readonly isServer: boolean;
  /** Load locks and pending commands from the outbox. Call once before use. */
  init(): Promise<void>;
  handleRequest(jws: string): Promise<HandledRequest>;
  /** @throws CHANNEL_DEPENDENCY_UNAVAILABLE, CHANNEL_INVALID_COMMAND */
  sequence(input: CommandInput): Promise<OutgoingCommand>;
  /**
   * Like `sequence`, for a request this node already signed (kept byte for byte): used to
   * re-adopt commands recovered from elsewhere, and to replay captured flows.
   * @throws PROTOCOL_NOT_JWS, PROTOCOL_BAD_SIGNATURE, CHANNEL_DEPENDENCY_UNAVAILABLE, CHANNEL_INVALID_COMMAND
   */
  sequenceSigned(requestJws: string): Promise<OutgoingCommand>;
  /** @throws PROTOCOL_NOT_JWS, PROTOCOL_BAD_SIGNATURE, PROTOCOL_MALFORMED_FRAME, CHANNEL_UNKNOWN_RESPONSE */
  handleResponse(jws: string, expectedCid?: string): Promise<ResponseOutcome>;
  /** Commands without a final response, oldest first (for retransmission). */
  pending(): OutgoingCommand[];
  /** The current head of an object, if known. */
  head(referenceId: string): Promise<{ version: string; payment: PaymentObject } | undefined>;
  /** Resolves when every decided command is durable. */
  drain(): Promise<void>;
  /**
   * Count and order-independent digest of the objects open on this channel, over
   * `(reference_id, head version)` (PROTOCOL.md §8.2): what hellos and heartbeats announce.
   * Kept up to date as commits become durable; read from the store once, in `init`.
   */
  openSummary(): OpenObjectsSummary;
  /**
   * Forgets everything held in memory and reads it again from the store (pending commands, the
   * open-object digest, cached objects): a replica that takes the channel over from another one
   * calls it before it serves the channel again.
   */
  reload(): Promise<void>;
  /** Recomputes {@link openSummary} from the store (after resync wrote history; call inside `exclusive`). */
  reloadSummary(): Promise<void>;
  /**
   * Runs `fn` with the receiving order paused and every decided command durable, then drops the
   * cached objects. Resync writes verified history through this, so it never races a decision
   * on the same object.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  /** Whether a command of mine with this cid is pending (no final response yet). */
  isPending(cid: string): boolean;
  /**
   * Requests of the peer waiting, before their decision, for responses already received to be
   * applied: each reads a version that only a command of mine still awaiting its response writes.
   */
  readonly waitingRequests: number;
  /**
   * Forgets a pending command whose outbox entry resync removed (it read a version of a losing
   * fork branch, so it can never complete). Call inside `exclusive`. Returns whether it was pending.
   */
  dropPending(cid: string): boolean;
}

export function createChannelCore(options: ChannelCoreOptions, deps: ChannelCoreDeps): ChannelCore {
  const { me, peer } = options;
  const { store, myKey, peerKey } = deps;
  const verifyPeer: VerifyJws = deps.verifier ? createVerifyBatcher(deps.verifier) : verifyJwsAsync;
  const maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  const recentLimit = options.recentCidLimit ?? 50_000;
  const isServer = isProtocolServer(me, peer);

  const queue = createSerialQueue();
  /**
   * Store lookups in flight at once: a burst of frames (a reconnect flushes every pending
   * command) queues here rather than in the store's connection pool (PostgreSQL), where it
   * would delay every other read of the node.
   */
  const lookups = createLimiter(options.maxConcurrentLookups ?? 64);
  const cache = createObjectCache(peer, store, decodeStoredPayment, {
    maxObjects: options.maxCachedObjects ?? 20_000,
  });
  /** read version → cid of my pending command that reads it */
  const locks = new Map<string, string>();
  /** referenceIds I am creating (pending create commands) */
  const pendingCreates = new Set<string>();
  const pendingByCid = new Map<string, Pending>();
  /** write version → cid of my pending command that writes it */
  const pendingByWrite = new Map<string, string>();
  /**
   * Responses received and not yet applied, by ticket (taken in arrival order), and the requests
   * waiting for every response received before them to be applied (see `decide`).
   */
  let nextTicket = 0;
  const unappliedResponses = new Set<number>();
  let responseWaiters: Array<{ before: number; wake: () => void }> = [];
  const recent = new Map<string, Recent>();
  let generation = 0;

  const pipe = createCommitPipe(store, () => {
    // Everything decided in memory since the last durable point is suspect: start over from
    // the store. Pending outgoing commands are durable in the outbox and reload from it.
    generation++;
    cache.clear();
    recent.clear();
    void queue.run(reloadPending).catch(() => undefined);
  });

  async function reloadPending(): Promise<void> {
    locks.clear();
    pendingCreates.clear();
    pendingByCid.clear();
    pendingByWrite.clear();
    const rows = await store.outbox(peer);
    for (const row of rows) addPending(row);
  }

  function addPending(row: OutboxRecord): void {
    const request = decodeRequest(payloadOf(row.requestJws));
    pendingByCid.set(row.cid, {
      request,
      requestJws: row.requestJws,
      referenceId: row.referenceId,
      readVersion: row.readVersion,
      writeVersion: row.writeVersion,
    });
    pendingByWrite.set(row.writeVersion, row.cid);
    if (row.readVersion === null) pendingCreates.add(row.referenceId);
    else locks.set(row.readVersion, row.cid);
  }

  /** The open-object digest (PROTOCOL.md §8.2), following durable commits only. */
  const openObjects = createOpenObjectsDigest();

  async function loadSummary(): Promise<void> {
    const heads: Array<[string, string]> = [];
    let after: string | null = null;
    // Heartbeats and frames run between slices (`event-loop.ts`).
    const pause = createSlicer();
    for (;;) {
      await pause();
      const page = await store.openObjects(peer, after, 1000);
      for (const head of page) heads.push([head.referenceId, head.headVersion]);
      if (page.length < 1000) break;
      after = page[page.length - 1]!.referenceId;
    }
    openObjects.clear();
    for (const [referenceId, version] of heads) openObjects.add(referenceId, version);
  }

  /** A commit made `write` the head of `referenceId` (it read `read`, null for a create); now durable. */
  function headMoved(
    referenceId: string,
    read: string | null,
    previous: { payment: PaymentObject } | undefined,
    write: { version: string; payment: PaymentObject },
  ): void {
    if (read !== null && previous && !isFinal(previous.payment)) openObjects.remove(referenceId, read);
    if (!isFinal(write.payment)) openObjects.add(referenceId, write.version);
  }

  function remember(cid: string, entry: Recent): void {
    recent.set(cid, entry);
    if (recent.size > recentLimit) {
      const oldest = recent.keys().next().value;
      if (oldest !== undefined) recent.delete(oldest);
    }
  }

  function respond(response: CommandResponseObject): Promise<string> {
    return signJwsAsync(encodeResponse(response), myKey);
  }

  async function protocolError(
    cid: string | null,
    code: string,
    cause?: unknown,
    message?: string,
  ): Promise<HandledRequest> {
    const responseJws = await respond({
      _ObjectType: 'CommandResponseObject',
      cid,
      status: 'failure',
      error: { protocol_error: true, code, message: message ?? defaultErrorMessage(code) },
    });
    return { responseJws, outcome: { kind: 'protocol_error', code, cid, cause } };
  }

  function writeOf(request: CommandRequestObject): { referenceId: string; version: string } {
    const [entry] = Object.entries(request.command._writes);
    if (!entry) throw new ParleyError('PROTOCOL_MALFORMED_FRAME', 'no _writes entry');
    return { referenceId: entry[0], version: entry[1] };
  }

  /**
   * Outbox writes made in the same turn of the event loop, handed to the store together. The
   * store groups writes queued in one tick into one transaction, but the SQLite driver is
   * synchronous: while a transaction commits nothing else runs, so outbox records whose
   * signatures completed one callback apart each paid for their own fsync (one fsync per sent
   * command capped a channel at a few hundred commands/s). Waiting one `setImmediate` lets
   * every signature that is ready join the same transaction.
   */
  let outboxBatch: Array<{ record: OutboxRecord; done: (err?: unknown) => void }> = [];
  function enqueueSoon(record: OutboxRecord): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      outboxBatch.push({ record, done: (err) => (err === undefined ? resolve() : reject(err)) });
      if (outboxBatch.length > 1) return;
      setImmediate(() => {
        const batch = outboxBatch;
        outboxBatch = [];
        for (const { record: r, done } of batch) {
          store.enqueue(r).then(
            () => done(),
            (err: unknown) => done(err ?? new Error('enqueue failed')),
          );
        }
      });
    });
  }

  /** Loads the object a request writes into the cache; errors surface later, inside `decide`. */
  async function prefetch(request: CommandRequestObject): Promise<void> {
    const [entry] = Object.entries(request.command._writes);
    if (entry) await cache.get(entry[0]).catch(() => undefined);
  }

  function readOf(request: CommandRequestObject): { referenceId: string; version: string } | null {
    const [entry] = Object.entries(request.command._reads);
    return entry ? { referenceId: entry[0], version: entry[1] } : null;
  }

  type Decision =
    | { kind: 'replay'; response: Promise<string> }
    /** The request reads the version of a command of mine whose response is still on its way. */
    | { kind: 'await'; answered: Promise<void> }
    | { kind: 'protocol'; code: string; message?: string }
    | {
        kind: 'commit';
        status: 'success' | 'failure';
        code: string | null;
        object: ObjectState;
        readVersion: string | null;
        writeVersion: string;
        referenceId: string;
      };

  /** The receiving order of the reference, steps 2–7. Runs inside the serial queue. */
  async function decide(
    request: CommandRequestObject,
    prior: CommandRecord | undefined,
    mayAwait: boolean,
  ): Promise<Decision> {
    // Digests only when the cid was seen before: a new command (nearly all of them) needs none.
    const known = recent.get(request.cid);
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

    const write = writeOf(request);
    const read = readOf(request);
    const object = await cache.get(write.referenceId);
    const commandError = (code: string): Decision => ({
      kind: 'commit',
      status: 'failure',
      code,
      object,
      readVersion: read?.version ?? null,
      writeVersion: write.version,
      referenceId: write.referenceId,
    });

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
        if (mayAwait && pendingByWrite.has(read.version) && unappliedResponses.size > 0) {
          return { kind: 'await', answered: responsesReceivedSoFar() };
        }
        return { kind: 'protocol', code: 'wait', message: `dependencies ${read.version} are missing` };
      }
      if (isServer && locks.has(read.version)) {
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
      me,
      other: peer,
      origin: peer,
      previous,
      next: payment,
      referenceId: write.referenceId,
    });
    if (ruleError) return commandError(ruleError);
    const businessError = deps.validate ? await deps.validate({ payment, previous, origin: peer }) : null;
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
    return {
      kind: 'commit',
      status: 'success',
      code: null,
      object,
      readVersion: read?.version ?? null,
      writeVersion: write.version,
      referenceId: write.referenceId,
    };
  }

  async function handleRequest(jws: string): Promise<HandledRequest> {
    if (Buffer.byteLength(jws, 'utf8') > maxFrameBytes) {
      return protocolError(null, 'parsing_error', new ParleyError('PROTOCOL_FRAME_TOO_LARGE'));
    }
    let payload: string;
    try {
      payload = await verifyPeer(jws, peerKey);
    } catch (err) {
      // Not a verdict: the node is closing. The peer resends on its next connection.
      if (isParleyError(err, 'TRANSPORT_CLOSED')) return protocolError(null, 'wait', err, 'closing');
      if (isParleyError(err)) return protocolError(null, 'invalid_signature', err);
      throw err;
    }
    let request: CommandRequestObject;
    try {
      request = decodeRequest(payload);
    } catch (err) {
      if (isParleyError(err)) return protocolError(null, 'parsing_error', err);
      throw err;
    }

    // The store reads run before taking the queue so that they overlap instead of queueing:
    // the cid lookup (`recent` covers the cids decided while it was in flight; a cid already in
    // `recent` needs none) and the object, which `decide` then finds in the cache.
    let decision: Decision;
    const startedIn = generation;
    try {
      const lookup = await lookups.run(async () => {
        const skipped = recent.has(request.cid);
        const [found] = await Promise.all([
          skipped ? undefined : store.findCommand(peer, request.cid),
          prefetch(request),
        ]);
        return { found, skipped };
      });
      const decideInQueue = (mayAwait: boolean) =>
        queue.run(async () => {
          let prior = lookup.found;
          // `recent` was dropped (a failed commit) after the lookup was skipped: look now.
          if (lookup.skipped && generation !== startedIn && !recent.has(request.cid)) {
            prior = await store.findCommand(peer, request.cid);
          }
          return decide(request, prior, mayAwait);
        });
      decision = await decideInQueue(true);
      if (decision.kind === 'await') {
        await decision.answered;
        decision = await decideInQueue(false);
      }
    } catch (err) {
      // Never leave a request unanswered (the peer would wait for a timer): `wait` asks it to
      // resend after its backoff.
      return protocolError(request.cid, 'wait', err, 'not decided, retry later');
    }

    if (decision.kind === 'await') {
      // Not reached: a second decision never awaits.
      return protocolError(request.cid, 'wait', undefined, 'dependencies are missing');
    }
    if (decision.kind === 'replay') {
      try {
        return { responseJws: await decision.response, outcome: { kind: 'replayed', cid: request.cid } };
      } catch (err) {
        // The first copy's commit failed: neither copy is answered final.
        return protocolError(request.cid, 'wait', err, 'not committed, retry later');
      }
    }
    if (decision.kind === 'protocol') {
      return protocolError(request.cid, decision.code, undefined, decision.message);
    }

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
    const signed = respond(response);
    const record: CommandRecord = {
      peer,
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
        entry.version = versionRecord(decision.referenceId, decision, request);
      return entry;
    });
    decision.object.inflight++;
    const committed = pipe.push(item);
    // A resend of this cid while the commit is under way is answered once the command is
    // durable, never before (a response is released only after its commit); if the commit
    // fails, the resend gets `wait` as this request does.
    const durable = committed.then(() => record.responseJws);
    durable.catch(() => undefined);
    remember(request.cid, { request, response: durable });
    try {
      await committed;
      if (decision.status === 'success') {
        const read = decision.readVersion;
        headMoved(
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
      if (startedIn === generation) recent.delete(request.cid);
      return protocolError(request.cid, 'wait', err, 'not committed, retry later');
    } finally {
      decision.object.inflight--;
    }
    return {
      responseJws: record.responseJws,
      outcome: { kind: 'committed', status: decision.status, code: decision.code, request, record },
    };
  }

  function versionRecord(
    referenceId: string,
    decision: { readVersion: string | null; writeVersion: string },
    request: CommandRequestObject,
  ): VersionRecord {
    const payment = request.command.payment;
    return {
      peer,
      referenceId,
      version: decision.writeVersion,
      previousVersion: decision.readVersion,
      payment: JSON.stringify(payment),
      open: !isFinal(payment),
    };
  }

  async function sequence(input: CommandInput): Promise<OutgoingCommand> {
    const referenceId = input.payment.reference_id;
    const readVersion = input.readVersion ?? null;
    const cid = input.cid ?? randomBytes(16).toString('hex');
    const request: CommandRequestObject = {
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
    return register(request, null);
  }

  async function sequenceSigned(requestJws: string): Promise<OutgoingCommand> {
    const request = decodeRequest(await verifyJwsAsync(requestJws, myKey.publicKey));
    return register(request, requestJws);
  }

  /** Commands being registered (sequenced, not yet durable or refused): `reload` waits for them. */
  const registering = new Set<Promise<unknown>>();
  /**
   * Commands past their checks (their read version locked in memory) and not yet in the outbox,
   * nor refused: `exclusive` waits for them inside the queue, so what it runs (a fork's
   * replacement, which drops the outbox rows of a losing branch) never misses one. They need
   * nothing of the queue to finish.
   */
  const unsealed = new Set<Promise<void>>();

  /** The sending side: check, lock the read version, then make the command durable. */
  function register(request: CommandRequestObject, signedJws: string | null): Promise<OutgoingCommand> {
    const run = registerNow(request, signedJws);
    registering.add(run);
    const forget = () => registering.delete(run);
    run.then(forget, forget);
    return run;
  }

  async function registerNow(
    request: CommandRequestObject,
    signedJws: string | null,
  ): Promise<OutgoingCommand> {
    const { cid } = request;
    const write = writeOf(request);
    const read = readOf(request);
    const referenceId = write.referenceId;
    const readVersion = read?.version ?? null;
    // Load the object before taking the queue: a store read inside it would serialise them all.
    await lookups.run(() => cache.get(referenceId).catch(() => undefined));
    await queue.run(async () => {
      if (pendingByCid.has(cid))
        throw new ParleyError('CHANNEL_INVALID_COMMAND', `cid ${cid} is already pending`);
      if (read && read.referenceId !== referenceId) {
        throw new ParleyError('CHANNEL_INVALID_COMMAND', '_reads and _writes name different objects');
      }
      const object = await cache.get(referenceId);
      let previous: PaymentObject | undefined;
      if (readVersion === null) {
        if (object.head !== null || pendingCreates.has(referenceId)) {
          throw new ParleyError('CHANNEL_INVALID_COMMAND', `object ${referenceId} already exists`);
        }
      } else {
        const version = object.versions.get(readVersion);
        if (!version || version.consumed || locks.has(readVersion)) {
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
        me,
        other: peer,
        origin: me,
        previous,
        next: request.command.payment,
        referenceId,
      });
      if (ruleError) throw new ParleyError('CHANNEL_INVALID_COMMAND', `payment rule: ${ruleError}`);
      // Lock now, inside the queue, so no later decision can take the version.
      if (readVersion === null) pendingCreates.add(referenceId);
      else locks.set(readVersion, cid);
      pendingByCid.set(cid, {
        request,
        requestJws: '',
        referenceId,
        readVersion,
        writeVersion: write.version,
      });
      pendingByWrite.set(write.version, cid);
    });
    let seal: () => void = () => undefined;
    const sealed = new Promise<void>((resolve) => {
      seal = () => {
        unsealed.delete(sealed);
        resolve();
      };
    });
    unsealed.add(sealed);
    try {
      // The version read may have been decided but not yet be durable: a durable outbox row
      // must never point at a version the store does not hold.
      await pipe.drain();
      const requestJws = signedJws ?? (await signJwsAsync(encodeRequest(request), myKey));
      await enqueueSoon({
        peer,
        cid,
        referenceId,
        readVersion,
        writeVersion: write.version,
        requestJws,
        createdAtMs: Date.now(),
        attempts: 0,
      });
      const pending = pendingByCid.get(cid);
      if (pending) pending.requestJws = requestJws;
      seal();
      return { cid, referenceId, requestJws, request };
    } catch (err) {
      seal();
      await queue.run(() => releasePending(cid));
      throw err;
    }
  }

  /** Resolves once every response received until now is applied in memory (or refused). */
  function responsesReceivedSoFar(): Promise<void> {
    return new Promise<void>((wake) => responseWaiters.push({ before: nextTicket, wake }));
  }

  function responseApplied(ticket: number): void {
    unappliedResponses.delete(ticket);
    if (responseWaiters.length === 0) return;
    let oldest = nextTicket;
    for (const t of unappliedResponses) oldest = Math.min(oldest, t);
    const waiting = responseWaiters;
    responseWaiters = [];
    for (const w of waiting) {
      if (w.before <= oldest) w.wake();
      else responseWaiters.push(w);
    }
  }

  function releasePending(cid: string): Pending | undefined {
    const pending = pendingByCid.get(cid);
    if (!pending) return undefined;
    pendingByCid.delete(cid);
    if (pendingByWrite.get(pending.writeVersion) === cid) pendingByWrite.delete(pending.writeVersion);
    if (pending.readVersion === null) pendingCreates.delete(pending.referenceId);
    else if (locks.get(pending.readVersion) === cid) locks.delete(pending.readVersion);
    return pending;
  }

  function handleResponse(jws: string, expectedCid?: string): Promise<ResponseOutcome> {
    // Taken at once, in arrival order: requests received after this response may wait for it.
    const ticket = nextTicket++;
    unappliedResponses.add(ticket);
    const applied = (): void => {
      if (unappliedResponses.has(ticket)) responseApplied(ticket);
    };
    return applyResponse(jws, expectedCid, applied).finally(applied);
  }

  async function applyResponse(
    jws: string,
    expectedCid: string | undefined,
    inMemory: () => void,
  ): Promise<ResponseOutcome> {
    if (Buffer.byteLength(jws, 'utf8') > maxFrameBytes) throw new ParleyError('PROTOCOL_FRAME_TOO_LARGE');
    const response = decodeResponse(await verifyPeer(jws, peerKey));
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

    type Applied =
      | { kind: 'final'; item: CommitItem; pending: Pending; object: ObjectState | undefined }
      | { kind: 'duplicate' }
      | { kind: 'fork' };
    const applied = await queue.run(async (): Promise<Applied> => {
      const pending = pendingByCid.get(cid);
      if (!pending) {
        const stored = await store.findCommand(peer, cid);
        if (stored && stored.direction === 'outbound') return { kind: 'duplicate' };
        throw new ParleyError('CHANNEL_UNKNOWN_RESPONSE', `no pending command ${cid}`);
      }
      if (pending.requestJws === '')
        throw new ParleyError('CHANNEL_UNKNOWN_RESPONSE', `command ${cid} not sent yet`);
      const record: CommandRecord = {
        peer,
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
        object = await cache.get(pending.referenceId);
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
        item.version = versionRecord(pending.referenceId, pending, pending.request);
        object.inflight++;
      }
      releasePending(cid);
      return { kind: 'final', item, pending, object };
    });
    inMemory();
    if (applied.kind !== 'final') return { ...applied, cid };
    try {
      await pipe.push(Promise.resolve(applied.item));
      if (applied.object) {
        const read = applied.pending.readVersion;
        headMoved(
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

  return {
    me,
    peer,
    isServer,
    init: () =>
      queue.run(async () => {
        await reloadPending();
        await loadSummary();
      }),
    reload: async () => {
      // A command being registered has locked its read version in memory and may still reach
      // the outbox: let it finish (or fail) first, so the reload reads what it wrote.
      while (registering.size > 0) await Promise.allSettled([...registering]);
      await queue.run(async () => {
        await pipe.drain();
        generation++;
        cache.clear();
        recent.clear();
        await reloadPending();
        await loadSummary();
      });
    },
    handleRequest,
    sequence,
    sequenceSigned,
    handleResponse,
    pending() {
      const out: OutgoingCommand[] = [];
      for (const [cid, p] of pendingByCid) {
        if (p.requestJws !== '') {
          out.push({ cid, referenceId: p.referenceId, requestJws: p.requestJws, request: p.request });
        }
      }
      return out;
    },
    async head(referenceId) {
      const object = await cache.get(referenceId);
      if (object.head === null) return undefined;
      const version = object.versions.get(object.head)!;
      return { version: version.version, payment: version.payment };
    },
    drain: () => pipe.drain(),
    openSummary: () => openObjects.summary(),
    reloadSummary: loadSummary,
    exclusive(fn) {
      return queue.run(async () => {
        await pipe.drain();
        while (unsealed.size > 0) await Promise.allSettled([...unsealed]);
        try {
          return await fn();
        } finally {
          cache.clear();
        }
      });
    },
    isPending: (cid) => pendingByCid.has(cid),
    get waitingRequests() {
      return responseWaiters.length;
    },
    dropPending: (cid) => releasePending(cid) !== undefined,
  };
}

function payloadOf(jws: string): string {
  const parts = jws.split('.');
  return Buffer.from(parts[1] ?? '', 'base64url').toString('utf8');
}

function decodeStoredPayment(json: string): PaymentObject {
  return JSON.parse(json) as PaymentObject;
}
