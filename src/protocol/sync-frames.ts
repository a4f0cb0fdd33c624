/**
 * Parley's resync and network-read frames (PROTOCOL.md §7): zod schemas, codec and signing.
 * Same envelope style as LIP-1 and the handshake (`_ObjectType` PascalCase, snake_case fields);
 * each frame is a compact JWS signed with the sender's compliance key, one WebSocket text frame.
 *
 * A run is led by one side (the leader) and answered by the other (the follower):
 *
 *     leader                                   follower
 *       ── SyncBegin {summary, method} ─────────▶
 *       ◀──────────────── SyncBeginAck {summary}   equal summaries: done (2 frames)
 *       ── SyncListRequest {after, limit} ───────▶   (method `list`: one page per round)
 *       ◀──────────── SyncList {entries, next}
 *       ── SyncSketchRequest {from, to} ─────────▶   (method `riblt`: coded symbols, see
 *       ◀──────────── SyncSketch {symbols}            §7.3.1, then the keys the leader
 *       ── SyncResolve {keys} ───────────────────▶    cannot place itself)
 *       ◀──────────── SyncResolved {entries}
 *       ── SyncHistory {objects} (push) ─────────▶
 *       ◀──────────── SyncApplied {results}
 *       ── SyncGetHistory {wants} (fetch) ───────▶
 *       ◀──────────── SyncHistory {objects, last}
 *       ── SyncEnd {outcome} ────────────────────▶
 *
 * `SyncGetObject` / `SyncGetHistory` outside a run (`run_id: null`) are the network read
 * commands: get an object by `reference_id`, get its whole signed history.
 *
 * Pure: no I/O besides crypto, no timers.
 */
import { z } from 'zod';
import { isParleyError, ParleyError } from '../errors.js';
import { OpenObjectsSummary } from './channel-frames.js';
import { canonicalJson, parseJson } from './codec.js';
import { signJwsAsync, verifyJwsAsync } from './jws.js';
import type { PrivateKey, PublicKey } from './keys.js';
import type { JwsVerifier } from './verify-pool.js';

/** Most entries in one `SyncList` page, ids in one `SyncGetHistory`, objects in one `SyncHistory`. */
export const MAX_SYNC_PAGE = 1000;
/** Most commands in the history of one object. */
export const MAX_HISTORY_COMMANDS = 4096;

const RunId = z.string().regex(/^[0-9a-f]{32}$/, '16 bytes, lowercase hex');
const RequestId = z.string().min(1).max(64);
const ReferenceId = z.string().min(1).max(512);
const Version = z.string().min(1).max(256);
const Address = z.string().min(1).max(128);
const Jws = z.string().min(1);
const Count = z.int().min(0);

/**
 * How a run compares the two open-object sets: `list` pages, `scoped` named objects, `riblt`
 * rateless coded symbols (§7.3.1; only with a peer whose hello names it in `sync_methods`).
 * `restore` compares the closed objects instead, by `list` pages from a cursor, or first by
 * their coded symbols (`closed_sketch`, §7.6; only with a peer whose hello names it).
 */
export const SyncMethod = z.enum(['list', 'scoped', 'riblt', 'restore']);
export type SyncMethod = z.infer<typeof SyncMethod>;

/** Leader → follower: starts a run. `scoped` runs compare only `reference_ids`. */
export const SyncBegin = z.object({
  _ObjectType: z.literal('SyncBegin'),
  run_id: RunId,
  method: SyncMethod,
  reason: z.string().min(1).max(64),
  open_objects: OpenObjectsSummary,
  reference_ids: z.array(ReferenceId).max(MAX_SYNC_PAGE).optional(),
  /**
   * Method `restore` only, to a peer whose hello names `restore-riblt` (§7.6): the follower
   * answers with the coded symbols of its closed objects (`SyncBeginAck.sketch`).
   */
  closed_sketch: z.boolean().optional(),
});
export type SyncBegin = z.infer<typeof SyncBegin>;

/** Coded symbols (`riblt.ts`, 18 bytes each) or item keys (8 bytes each), base64url. */
const Coded = z
  .string()
  .max(24 * 1024)
  .regex(/^[A-Za-z0-9_-]*$/, 'base64url');

/**
 * Follower → leader: its own summary. Equal summaries end the run with nothing else sent.
 * Method `riblt`, summaries that differ, both sets non-empty: `sketch` holds the follower's
 * first coded symbols (§7.3.1); without it the leader compares by `list`.
 */
export const SyncBeginAck = z.object({
  _ObjectType: z.literal('SyncBeginAck'),
  run_id: RunId,
  open_objects: OpenObjectsSummary,
  sketch: Coded.optional(),
});
export type SyncBeginAck = z.infer<typeof SyncBeginAck>;

/** Leader → follower: the next page of the follower's open objects, in byte order of `reference_id`. */
export const SyncListRequest = z.object({
  _ObjectType: z.literal('SyncListRequest'),
  run_id: RunId,
  after: ReferenceId.nullable(),
  limit: z.int().min(1).max(MAX_SYNC_PAGE),
});
export type SyncListRequest = z.infer<typeof SyncListRequest>;

/** One open object as a list page names it. */
export const SyncEntry = z.object({ reference_id: ReferenceId, head: Version, version_count: Count });
export type SyncEntry = z.infer<typeof SyncEntry>;

/** Follower → leader: one page; `next` is the cursor of the following page, null at the end. */
export const SyncList = z.object({
  _ObjectType: z.literal('SyncList'),
  run_id: RunId,
  entries: z.array(SyncEntry).max(MAX_SYNC_PAGE),
  next: ReferenceId.nullable(),
});
export type SyncList = z.infer<typeof SyncList>;

/** Leader → follower (method `riblt`): the follower's coded symbols `[from, to)`, as of its `SyncBegin`. */
export const SyncSketchRequest = z.object({
  _ObjectType: z.literal('SyncSketchRequest'),
  run_id: RunId,
  from: z.int().min(0).max(4096),
  to: z.int().min(1).max(4096),
});
export type SyncSketchRequest = z.infer<typeof SyncSketchRequest>;

/** Follower → leader: coded symbols from `from` on (none: it has none to give; the leader lists). */
export const SyncSketch = z.object({
  _ObjectType: z.literal('SyncSketch'),
  run_id: RunId,
  from: z.int().min(0).max(4096),
  symbols: Coded,
});
export type SyncSketch = z.infer<typeof SyncSketch>;

/** Leader → follower (method `riblt`): the follower's open objects behind these decoded keys. */
export const SyncResolve = z.object({
  _ObjectType: z.literal('SyncResolve'),
  run_id: RunId,
  keys: Coded,
});
export type SyncResolve = z.infer<typeof SyncResolve>;

/** Follower → leader: the open objects it found for the keys (a key it cannot place is left out). */
export const SyncResolved = z.object({
  _ObjectType: z.literal('SyncResolved'),
  run_id: RunId,
  entries: z.array(SyncEntry).max(MAX_SYNC_PAGE),
});
export type SyncResolved = z.infer<typeof SyncResolved>;

/** Network read: the current state of one object. */
export const SyncGetObject = z.object({
  _ObjectType: z.literal('SyncGetObject'),
  request_id: RequestId,
  reference_id: ReferenceId,
});
export type SyncGetObject = z.infer<typeof SyncGetObject>;

/** Answer to `SyncGetObject`. `found: false` → the other fields are null / 0 / false. */
export const SyncObject = z.object({
  _ObjectType: z.literal('SyncObject'),
  request_id: RequestId,
  reference_id: ReferenceId,
  found: z.boolean(),
  head: Version.nullable(),
  version_count: Count,
  open: z.boolean(),
  payment: z.record(z.string(), z.unknown()).nullable(),
});
export type SyncObject = z.infer<typeof SyncObject>;

/** One object's history wanted: all of it (`after: null`) or what follows version `after`. */
export const SyncWant = z.object({ reference_id: ReferenceId, after: Version.nullable() });
export type SyncWant = z.infer<typeof SyncWant>;

/** Fetch signed histories (in a run), or the network read "get the signed history" (`run_id: null`). */
export const SyncGetHistory = z.object({
  _ObjectType: z.literal('SyncGetHistory'),
  request_id: RequestId,
  run_id: RunId.nullable(),
  wants: z.array(SyncWant).min(1).max(MAX_SYNC_PAGE),
});
export type SyncGetHistory = z.infer<typeof SyncGetHistory>;

/** One signed-log entry exactly as it crossed the wire: who proposed it, the request and the response JWS. */
export const SignedCommand = z.object({ proposer: Address, request: Jws, response: Jws });
export type SignedCommand = z.infer<typeof SignedCommand>;

/**
 * What a history entry is:
 * - `history`: signed commands; successes form the chain from `base` (null: from the create);
 * - `replace`: the full history of the protocol server's branch, which wins a fork;
 * - `yield`: no commands: "this is a fork and your branch (the protocol server's) wins: push it";
 * - `missing`: the sender does not hold the object;
 * - `too_large`: no commands: the sender holds the object, but its history does not fit in one
 *   frame (`SYNC_HISTORY_TOO_LARGE`); sent in its place so the receiver knows and reports it.
 */
export const HistoryKind = z.enum(['history', 'replace', 'yield', 'missing', 'too_large']);
export type HistoryKind = z.infer<typeof HistoryKind>;

export const ObjectHistory = z.object({
  reference_id: ReferenceId,
  kind: HistoryKind,
  base: Version.nullable(),
  commands: z.array(SignedCommand).max(MAX_HISTORY_COMMANDS),
});
export type ObjectHistory = z.infer<typeof ObjectHistory>;

/**
 * Histories: a push (`request_id: null`, answered with `SyncApplied`) or the answer to a
 * `SyncGetHistory` (same `request_id`; `last` on its final frame).
 */
export const SyncHistory = z.object({
  _ObjectType: z.literal('SyncHistory'),
  request_id: RequestId.nullable(),
  run_id: RunId.nullable(),
  seq: Count,
  objects: z.array(ObjectHistory).max(MAX_SYNC_PAGE),
  last: z.boolean(),
});
export type SyncHistory = z.infer<typeof SyncHistory>;

/** What the receiver of a pushed history did with one object. */
export const ApplyOutcome = z.enum([
  /** verified and stored: the object is now at `head` */
  'applied',
  /** nothing new: already at that head */
  'known',
  /** the receiver is ahead: the pushed head is in its own chain */
  'ahead',
  /** one of the receiver's own pending commands is in the history: its response will settle it */
  'in_flight',
  /** the protocol server's branch replaced the receiver's losing branch */
  'replaced',
  /** neither chain contains the other's head */
  'fork',
  /** not verified (bad signature, gap, broken chain): nothing stored; `code` says why */
  'rejected',
]);
export type ApplyOutcome = z.infer<typeof ApplyOutcome>;

export const ApplyResult = z.object({
  reference_id: ReferenceId,
  outcome: ApplyOutcome,
  head: Version.nullable(),
  code: z.string().max(64).nullable(),
});
export type ApplyResult = z.infer<typeof ApplyResult>;

/** Receiver of a push → pusher: one result per pushed object, same `seq`. */
export const SyncApplied = z.object({
  _ObjectType: z.literal('SyncApplied'),
  run_id: RunId,
  seq: Count,
  results: z.array(ApplyResult).max(MAX_SYNC_PAGE),
});
export type SyncApplied = z.infer<typeof SyncApplied>;

/** How a run ended. */
export const SyncOutcome = z.enum(['in_sync', 'repaired', 'partial', 'failed', 'aborted']);
export type SyncOutcome = z.infer<typeof SyncOutcome>;

/** Leader → follower: the run is over. */
export const SyncEnd = z.object({
  _ObjectType: z.literal('SyncEnd'),
  run_id: RunId,
  outcome: SyncOutcome,
  objects_sent: Count,
  objects_received: Count,
  /** Method `restore` only (§7.6): true on the run that finished the whole restore. */
  restore_done: z.boolean().optional(),
});
export type SyncEnd = z.infer<typeof SyncEnd>;

/** A non-fatal error about a sync request or a history (`code` is a `SYNC_*` error code). */
export const SyncError = z.object({
  _ObjectType: z.literal('SyncError'),
  request_id: RequestId.nullable(),
  run_id: RunId.nullable(),
  reference_id: ReferenceId.nullable(),
  code: z.string().min(1).max(64),
  message: z.string().max(1024),
});
export type SyncError = z.infer<typeof SyncError>;

/** Any resync / network-read frame. */
export const SyncFrame = z.discriminatedUnion('_ObjectType', [
  SyncBegin,
  SyncBeginAck,
  SyncListRequest,
  SyncList,
  SyncSketchRequest,
  SyncSketch,
  SyncResolve,
  SyncResolved,
  SyncGetObject,
  SyncObject,
  SyncGetHistory,
  SyncHistory,
  SyncApplied,
  SyncEnd,
  SyncError,
]);
export type SyncFrame = z.infer<typeof SyncFrame>;
export type SyncFrameType = SyncFrame['_ObjectType'];

/** Every `_ObjectType` of a sync frame, for routing control frames. */
export const SYNC_FRAME_TYPES: ReadonlySet<string> = new Set<SyncFrameType>(
  SyncFrame.options.map((o) => o.shape._ObjectType.value),
);

/** Whether a control frame's `_ObjectType` belongs to resync. */
export function isSyncFrameType(type: string): type is SyncFrameType {
  return SYNC_FRAME_TYPES.has(type);
}

/**
 * Decodes the payload text of a sync frame.
 * @throws ParleyError `PROTOCOL_MALFORMED_FRAME` when it is not a valid sync frame.
 */
export function decodeSyncFrame(payloadText: string): SyncFrame {
  const parsed = SyncFrame.safeParse(parseJson(payloadText));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where =
      issue === undefined || issue.path.length === 0 ? '(root)' : issue.path.map(String).join('.');
    throw new ParleyError(
      'PROTOCOL_MALFORMED_FRAME',
      `not a sync frame: ${where}: ${issue?.message ?? 'invalid'}`,
      { cause: parsed.error },
    );
  }
  return parsed.data;
}

/**
 * Canonical JSON of a sync frame (the JWS payload).
 * @throws ParleyError `PROTOCOL_MALFORMED_FRAME` when the frame does not satisfy its schema.
 */
export function encodeSyncFrame(frame: SyncFrame): string {
  const parsed = SyncFrame.safeParse(frame);
  if (!parsed.success) {
    throw new ParleyError('PROTOCOL_MALFORMED_FRAME', 'refusing to encode an invalid sync frame', {
      cause: parsed.error,
    });
  }
  return canonicalJson(parsed.data);
}

/** Encodes and signs a sync frame: the compact JWS to send. */
export async function signSyncFrame(frame: SyncFrame, key: PrivateKey): Promise<string> {
  return signJwsAsync(encodeSyncFrame(frame), key);
}

/**
 * Verifies a sync frame with the peer's key and decodes it. `verifier` checks the signature
 * (a pool of threads takes the large history frames, whose base64url and UTF-8 decoding cost
 * more than their signature); default: WebCrypto on this thread.
 * @throws ParleyError `PROTOCOL_NOT_JWS`, `PROTOCOL_BAD_SIGNATURE`, `PROTOCOL_MALFORMED_FRAME`.
 */
export async function verifySyncFrame(
  jws: string,
  key: PublicKey,
  verifier?: JwsVerifier,
): Promise<SyncFrame> {
  let payload: string;
  try {
    if (verifier) {
      const [result] = await verifier.verifyMany([{ jws, key }]);
      if (typeof result !== 'string') throw result ?? new ParleyError('PROTOCOL_BAD_SIGNATURE');
      payload = result;
    } else {
      payload = await verifyJwsAsync(jws, key);
    }
  } catch (err) {
    if (isParleyError(err)) throw err;
    throw new ParleyError('PROTOCOL_BAD_SIGNATURE', 'sync frame does not verify', { cause: err });
  }
  return decodeSyncFrame(payload);
}
