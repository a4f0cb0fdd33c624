/**
 * The JSON bodies of the admin API, as zod schemas: the routes answer with these shapes, and the
 * OpenAPI document (`openapi.ts`) is generated from them (`z.toJSONSchema`).
 */
import { z } from 'zod';
import { PaymentStatus } from '../protocol/lip1.js';

export { PaymentStatus };

/** Every named schema of the admin API: the OpenAPI document's `components.schemas`. */
export const adminSchemas = z.registry<{ id: string }>();

/** Every refusal: `{ error: <ErrorCode>, message }`, with details for some codes. */
export const ErrorBody = z
  .object({
    /** The error code (docs/errors.md). */
    error: z.string(),
    message: z.string(),
    /** `BUSINESS_INVALID_INPUT` of a body: each problem with its path. */
    issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
    /** `HTTP_INVALID_QUERY`: each problem with a parameter. */
    problems: z.array(z.string()).optional(),
    /** A refused or undecided payment's reference id and create command. */
    referenceId: z.string().optional(),
    cid: z.string().optional(),
  })
  .register(adminSchemas, { id: 'Error' });

const PeerBehind = z.object({
  peer: z.string(),
  sinceMs: z.number(),
  commands: z.number().int(),
  cids: z.array(z.string()),
});

/** Where a closed-object restore of a channel is (PROTOCOL.md §7.6, `RestoreStatus` of `src/sync`). */
export const RestoreStatus = z
  .object({
    /** `leader`: this node leads it; `follower`: the peer restores this node. */
    role: z.enum(['leader', 'follower']),
    /** `peer_state_lost` or `on_demand`. */
    reason: z.string(),
    /** `waiting`: stopped (no link, or `error`); it resumes at the next connection. */
    state: z.enum(['running', 'waiting', 'finished']),
    compared: z.number().int(),
    moved: z.number().int(),
    /** The leader's cursor: every closed object up to it is settled. */
    after: z.string().nullable(),
    startedAtMs: z.number(),
    atMs: z.number(),
    error: z.string().optional(),
  })
  .register(adminSchemas, { id: 'RestoreStatus' });

/** `POST /admin/restore`. */
export const RestoreRequest = z
  .strictObject({ peer: z.string().min(1).max(256) })
  .register(adminSchemas, { id: 'RestoreRequest' });

/** The answer of `POST /admin/restore`: the restore started (its cursor is durable). */
export const RestoreAnswer = z
  .object({ peer: z.string(), restore: RestoreStatus })
  .register(adminSchemas, { id: 'RestoreAnswer' });

/** This node's commands in flight on a channel by where each stands (`Channel.inflightStates`). */
export const InflightStates = z
  .object({
    /** Not written to any connection yet. */
    unsent: z.number().int(),
    /** Written, and no answer since its last write. */
    unanswered: z.number().int(),
    /** The peer answered `wait`: resent after its backoff. */
    waiting: z.number().int(),
    /** Answered, but the answer could not end it here (a fork, or a command already final). */
    unapplied: z.number().int(),
    /** How long the oldest written and unanswered one has waited, ms; null when none. */
    oldestUnansweredMs: z.number().nullable(),
  })
  .register(adminSchemas, { id: 'InflightStates' });

export const ChannelStatus = z
  .object({
    peer: z.string(),
    /** The peer's name (config `peers[].name`), or its address. */
    name: z.string().optional(),
    state: z.enum(['disconnected', 'connected', 'closed']),
    inflight: z.number().int(),
    inflightStates: InflightStates.optional(),
    openObjects: z.number().int(),
    peerEpoch: z.string().nullable(),
    lease: z.enum(['owner', 'standby']).optional(),
    /** Liveness from heartbeats; `rttMs` is null while the channel is down or disconnected. */
    health: z
      .object({
        state: z.string(),
        rttMs: z.number().nullable(),
        /** Null when it is not a finite number (no heartbeat for a long time). */
        phi: z.number().nullable(),
      })
      .optional(),
    peerBehind: PeerBehind.optional(),
    /** The channel's closed-object restore, once one ran or runs in this process. */
    restore: RestoreStatus.optional(),
  })
  .register(adminSchemas, { id: 'ChannelStatus' });

export const NodeStatus = z
  .object({
    address: z.string(),
    epoch: z.string(),
    url: z.string(),
    store: z
      .object({
        store: z.enum(['ok', 'unwritable']),
        code: z.string().optional(),
        sinceMs: z.number().optional(),
      })
      .optional(),
    channels: z.array(ChannelStatus),
    /** Present while payments wait for the back office (`backoffice_unreachable`, docs/backoffice.md). */
    backoffice: z
      .array(
        z.object({ peer: z.string(), sinceMs: z.number(), requests: z.number().int(), error: z.string() }),
      )
      .optional(),
    /**
     * Present while the back-office events stopped moving (`events_undeliverable`): their
     * receiver refused `failures` deliveries in a row; later events wait behind `eventId`.
     */
    eventsUndeliverable: z
      .array(
        z.object({
          peer: z.string(),
          eventId: z.string(),
          sinceMs: z.number(),
          failures: z.number().int(),
          error: z.string(),
        }),
      )
      .optional(),
  })
  .register(adminSchemas, { id: 'NodeStatus' });

/** One payment in a list: where it stands, without its history. */
export const PaymentSummary = z
  .object({
    peer: z.string(),
    referenceId: z.string(),
    /** The head version (the version the last successful command wrote). */
    version: z.string(),
    versionCount: z.number().int(),
    /** Open until both sides are `ready_for_settlement` or one side aborted. */
    open: z.boolean(),
    /** The last change, ISO 8601. */
    updatedAt: z.string(),
    /** This node's side of the payment (null when neither actor is this VASP's account). */
    myRole: z.enum(['sender', 'receiver']).nullable(),
    myStatus: PaymentStatus.nullable(),
    theirStatus: PaymentStatus.nullable(),
    senderStatus: PaymentStatus,
    receiverStatus: PaymentStatus,
    amount: z.number().nullable(),
    currency: z.string().nullable(),
  })
  .register(adminSchemas, { id: 'PaymentSummary' });

export const PaymentList = z
  .object({
    payments: z.array(PaymentSummary),
    /**
     * Give it as `cursor` for the next page; absent on the last page. With a status filter a page
     * may hold fewer than `limit` payments (even none) and still have a next one.
     */
    nextCursor: z.string().optional(),
  })
  .register(adminSchemas, { id: 'PaymentList' });

export const SignedCommand = z
  .object({
    cid: z.string(),
    /** `outbound`: this node proposed it; `inbound`: the peer did. */
    direction: z.enum(['outbound', 'inbound']),
    readVersion: z.string().nullable(),
    writeVersion: z.string(),
    status: z.enum(['success', 'failure']),
    /** The LIP-1 command error code of a failure. */
    errorCode: z.string().nullable(),
    /** The request as it crossed the wire (compact JWS, signed by its proposer). */
    requestJws: z.string(),
    /** The final response as it crossed the wire (compact JWS, signed by the other side). */
    responseJws: z.string(),
    /** When this node logged it, ISO 8601. */
    at: z.string(),
  })
  .register(adminSchemas, { id: 'SignedCommand' });

export const PendingCommand = z
  .object({
    cid: z.string(),
    readVersion: z.string().nullable(),
    writeVersion: z.string(),
    requestJws: z.string(),
    queuedAt: z.string(),
    attempts: z.number().int(),
  })
  .register(adminSchemas, { id: 'PendingCommand' });

export const PaymentDetail = z
  .object({
    summary: PaymentSummary,
    /** The payment object at the head version (LIP-1 v1 PaymentObject). */
    payment: z.record(z.string(), z.unknown()),
    /** Every final command of the payment, in commit order: the whole signed history. */
    history: z.array(SignedCommand),
    /** Commands of mine on it still waiting for their final response. */
    pending: z.array(PendingCommand),
  })
  .register(adminSchemas, { id: 'PaymentDetail' });

export const PayRequest = z
  .object({
    to: z.string(),
    amount: z.number().int().positive(),
    currency: z.string(),
    description: z.string().optional(),
    fromSubaddressHex: z.string().optional(),
    toSubaddressHex: z.string().optional(),
  })
  .register(adminSchemas, { id: 'PayRequest' });

/** The channel to the payee when the payment was accepted (a hint: the create waits for it). */
const PeerState = z.object({
  state: z.enum(['disconnected', 'connected', 'closed']),
  health: z.string().optional(),
});

export const PayAccepted = z
  .object({
    referenceId: z.string(),
    cid: z.string(),
    /** With `wait`: the create is durable but its outcome is not known yet (see `error`). */
    durable: z.literal(true).optional(),
    error: z.string().optional(),
    message: z.string().optional(),
    peer: PeerState.optional(),
  })
  .register(adminSchemas, { id: 'PayAccepted' });

export const PayOutcome = z
  .object({
    referenceId: z.string(),
    outcome: z.object({
      cid: z.string(),
      status: z.enum(['success', 'failure']),
      code: z.string().nullable(),
    }),
  })
  .register(adminSchemas, { id: 'PayOutcome' });

export const PeerEpochRequest = z
  .object({ peer: z.string(), epoch: z.string() })
  .register(adminSchemas, { id: 'PeerEpochRequest' });
export const PeerEpochAnswer = z
  .object({ peer: z.string(), epoch: z.string(), previousEpoch: z.string().nullable(), changed: z.boolean() })
  .register(adminSchemas, { id: 'PeerEpochAnswer' });

export const AbandonAnswer = z
  .object({
    peer: z.string(),
    cid: z.string(),
    referenceId: z.string(),
    atMs: z.number(),
    outcome: z.literal('COMMAND_ABANDONED'),
  })
  .register(adminSchemas, { id: 'AbandonAnswer' });

export const ApiKeyScopeSchema = z.enum(['read', 'pay']);

export const ApiKey = z
  .object({
    id: z.string(),
    name: z.string(),
    scopes: z.array(ApiKeyScopeSchema),
    createdAt: z.string(),
    revokedAt: z.string().nullable(),
  })
  .register(adminSchemas, { id: 'ApiKey' });

export const ApiKeyList = z.object({ keys: z.array(ApiKey) }).register(adminSchemas, { id: 'ApiKeyList' });

export const ApiKeyCreateRequest = z
  .strictObject({
    name: z.string().min(1).max(128),
    scopes: z.array(ApiKeyScopeSchema).min(1).max(2),
  })
  .register(adminSchemas, { id: 'ApiKeyCreateRequest' });

export const ApiKeyCreated = z
  .object({
    key: ApiKey,
    /** `Authorization: Bearer <secret>`. Shown this once: only its hash is stored. */
    secret: z.string(),
  })
  .register(adminSchemas, { id: 'ApiKeyCreated' });
