import type { OpenObjectsSummary } from '../protocol/channel-frames.js';
import {
  type CommandRequestObject,
  isProtocolServer,
  type PaymentObject,
  type PrivateKey,
  type PublicKey,
  signJwsAsync,
  verifyJwsAsync,
} from '../protocol/index.js';
import type { JwsSigner, JwsVerifier } from '../protocol/verify-pool.js';
import type { CommandRecord, ParleyStore } from '../store/types.js';
import { background, type ReportFailure, unreported } from '../util/background.js';
import { decodeStoredPayment } from './command-parts.js';
import { createCommitPipe } from './commit-pipe.js';
import type { CoreContext } from './core-context.js';
import { createObjectCache } from './object-cache.js';
import { createOpenObjectTracker } from './open-objects.js';
import { createOutboxBatcher } from './outbox-batch.js';
import { createPendingCommands } from './pending-commands.js';
import { createReceiver } from './receiving.js';
import { createResponseOrder } from './response-order.js';
import { createSender } from './sending.js';
import { createLimiter, createSerialQueue } from './serial-queue.js';
import { createSignBatcher, createVerifyBatcher, type SignJws } from './verify-batcher.js';

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
   * `verify-batcher.ts`). When it also signs for `myKey` (the node's verify pool), this node's
   * frames are signed there the same way. @default WebCrypto on this thread's libuv pool, one
   * job per frame
   */
  verifier?: JwsVerifier & Partial<JwsSigner>;
  /** Where a background task's failure goes (the node's `background_failed`). */
  report?: ReportFailure;
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

/** How the channel signs its frames: with the verifier's threads when it signs, else WebCrypto. */
function signerOf(verifier: ChannelCoreDeps['verifier'], key: PrivateKey): SignJws {
  if (typeof verifier?.signMany === 'function') {
    const signMany = verifier.signMany.bind(verifier);
    return createSignBatcher({ signMany }, key);
  }
  return (payload) => signJwsAsync(payload, key);
}

/**
 * Composes one channel's core: the receiving side (`receiving.ts`), the sending side
 * (`sending.ts`) and the open-object digest (`open-objects.ts`), over one serial queue, object
 * cache and commit pipe (`core-context.ts`).
 */
export function createChannelCore(options: ChannelCoreOptions, deps: ChannelCoreDeps): ChannelCore {
  const { me, peer } = options;
  const { store } = deps;
  const queue = createSerialQueue();
  const cache = createObjectCache(peer, store, decodeStoredPayment, {
    maxObjects: options.maxCachedObjects ?? 20_000,
  });
  const pipe = createCommitPipe(store, () => {
    // Everything decided in memory since the last durable point is suspect: start over from
    // the store. Pending outgoing commands are durable in the outbox and reload from it.
    receiver.forget();
    cache.clear();
    void background(
      queue.run(sender.reloadPending),
      'reload_pending',
      deps.report ?? unreported,
      options.peer,
    );
  });
  const ctx: CoreContext = {
    me,
    peer,
    isServer: isProtocolServer(me, peer),
    store,
    myKey: deps.myKey,
    peerKey: deps.peerKey,
    verifyPeer: deps.verifier ? createVerifyBatcher(deps.verifier) : verifyJwsAsync,
    sign: signerOf(deps.verifier, deps.myKey),
    maxFrameBytes: options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
    queue,
    lookups: createLimiter(options.maxConcurrentLookups ?? 64),
    cache,
    pipe,
    openObjects: createOpenObjectTracker(store, peer),
  };
  const mine = createPendingCommands();
  const responses = createResponseOrder();
  const sender = createSender(ctx, mine, responses, createOutboxBatcher(store));
  const receiver = createReceiver(ctx, {
    mine,
    responses,
    validate: deps.validate,
    recentLimit: options.recentCidLimit ?? 50_000,
  });

  return {
    me,
    peer,
    isServer: ctx.isServer,
    init: () =>
      queue.run(async () => {
        await sender.reloadPending();
        await ctx.openObjects.load();
      }),
    reload: async () => {
      // A command being registered has locked its read version in memory and may still reach
      // the outbox: let it finish (or fail) first, so the reload reads what it wrote.
      await sender.registered();
      await queue.run(async () => {
        await pipe.drain();
        receiver.forget();
        cache.clear();
        await sender.reloadPending();
        await ctx.openObjects.load();
      });
    },
    handleRequest: receiver.handleRequest,
    sequence: sender.sequence,
    sequenceSigned: sender.sequenceSigned,
    handleResponse: sender.handleResponse,
    pending: sender.pending,
    async head(referenceId) {
      const object = await cache.get(referenceId);
      if (object.head === null) return undefined;
      const version = object.versions.get(object.head)!;
      return { version: version.version, payment: version.payment };
    },
    drain: () => pipe.drain(),
    openSummary: () => ctx.openObjects.summary(),
    reloadSummary: () => ctx.openObjects.load(),
    exclusive(fn) {
      return queue.run(async () => {
        await pipe.drain();
        await sender.sealed();
        try {
          return await fn();
        } finally {
          cache.clear();
        }
      });
    },
    isPending: (cid) => mine.has(cid),
    get waitingRequests() {
      return responses.waiting;
    },
    dropPending: (cid) => mine.release(cid) !== undefined,
  };
}
