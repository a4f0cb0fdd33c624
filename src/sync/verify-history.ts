/**
 * The verifier of a signed history received from a peer: nothing of a history is stored unless
 * every signature verifies (the peer's and this node's own), every entry decodes, and the
 * successful commands form one unbroken version chain that the LIP-1 payment rules accept, step
 * by step, from the create (or from a version this node already holds).
 */
import { ParleyError } from '../errors.js';
import { createSlicer } from '../event-loop.js';
import { checkPaymentCommand } from '../objects/index.js';
import {
  type CommandRequestObject,
  type CommandResponseObject,
  decodeRequest,
  decodeResponse,
  type PaymentObject,
  type PublicKey,
} from '../protocol/index.js';
import type { ObjectHistory } from '../protocol/sync-frames.js';
import { inThreadVerifier, type JwsCheck, type JwsVerifier } from '../protocol/verify-pool.js';
import type { CommandRecord, CommitItem } from '../store/types.js';

/** Who is who on the channel whose history is verified. */
export interface HistoryParties {
  /** This node's channel address. */
  me: string;
  peer: string;
  myKey: PublicKey;
  peerKey: PublicKey;
}

/** One verified signed-log entry, with the fields derived from the verified request. */
export interface VerifiedCommand {
  record: CommandRecord;
  /** The payment written (successes only). */
  payment: PaymentObject | undefined;
  /** `payment` as the version record stores it, once made (see {@link paymentTextOf}). */
  paymentText?: string;
}

/** The stored text of a success's payment, made once per verified command. */
export function paymentTextOf(c: VerifiedCommand): string {
  c.paymentText ??= JSON.stringify(c.payment);
  return c.paymentText;
}

/** A history that passed every check. */
export interface VerifiedHistory {
  referenceId: string;
  /** The version the first success reads; null when the history starts at the create. */
  base: string | null;
  /** Every entry, in the order received. */
  commands: VerifiedCommand[];
  /** The successes, in chain order. */
  chain: VerifiedCommand[];
  /** The last version of the chain, or `base` when the history adds no version. */
  head: string | null;
}

/** Longest run of history checks before the event loop's other work goes first, ms. */
const SLICE_MS = 2;

const invalid = (message: string, cause?: unknown): ParleyError =>
  new ParleyError('SYNC_INVALID_HISTORY', message, cause === undefined ? undefined : { cause });

function single(map: Record<string, string>, what: string): [string, string] | null {
  const entries = Object.entries(map);
  if (entries.length > 1) throw invalid(`${what} has more than one entry`);
  return entries[0] ?? null;
}

/** One history to verify, with the payment at its `base` as this node holds it. */
export interface HistoryToVerify {
  history: ObjectHistory;
  /** Required when `history.base` is not null: the first step is checked against it. */
  basePayment?: PaymentObject | undefined;
}

/**
 * Verifies `history` (kind `history` or `replace`) for the channel of `parties`.
 *
 * `basePayment` is the payment at `history.base`, as this node holds it; required when `base`
 * is not null (the first step is checked against it). `verifier` checks the signatures
 * (default: WebCrypto on this thread's libuv pool).
 *
 * @throws ParleyError `SYNC_BAD_SIGNATURE` (a request or response does not verify with its
 *   signer's key), `SYNC_BROKEN_CHAIN` (a gap, a re-ordered or forked chain, a history not
 *   starting at a create or at `base`), `SYNC_INVALID_HISTORY` (undecodable entries, a proposer
 *   who is not a party, cids or versions repeated, a response that does not answer its request,
 *   a payment-rule violation).
 */
export async function verifyHistory(
  history: ObjectHistory,
  parties: HistoryParties,
  basePayment?: PaymentObject,
  verifier: JwsVerifier = inThreadVerifier,
): Promise<VerifiedHistory> {
  const [result] = await verifyHistories([{ history, basePayment }], parties, verifier);
  if (result instanceof ParleyError) throw result;
  return result!;
}

/**
 * Verifies many histories with one call to `verifier` for all their signatures (a pool of
 * threads gets them in a few large messages). Resolves with one result per history, in order:
 * the verified history, or the `ParleyError` {@link verifyHistory} would have thrown.
 *
 * @throws ParleyError `SYNC_ABORTED` when the verifier closed meanwhile.
 */
export async function verifyHistories(
  inputs: readonly HistoryToVerify[],
  parties: HistoryParties,
  verifier: JwsVerifier = inThreadVerifier,
): Promise<Array<VerifiedHistory | ParleyError>> {
  const out: Array<VerifiedHistory | ParleyError | undefined> = new Array(inputs.length);
  // 1. Every signature of every history in one call, each with its signer's key.
  const checks: JwsCheck[] = [];
  const firstCheck: number[] = new Array(inputs.length).fill(-1);
  for (let h = 0; h < inputs.length; h++) {
    try {
      const keys = signersOf(inputs[h]!, parties);
      firstCheck[h] = checks.length;
      const { commands } = inputs[h]!.history;
      for (let i = 0; i < commands.length; i++) {
        checks.push({ jws: commands[i]!.request, key: keys[i]!.request });
        checks.push({ jws: commands[i]!.response, key: keys[i]!.response });
      }
    } catch (err) {
      if (!(err instanceof ParleyError)) throw err;
      out[h] = err;
    }
  }
  const results = checks.length > 0 ? await verifier.verifyMany(checks) : [];

  // 2. Per history: every signature verified, then decode and check the chain. A batch's
  // checks are a long run of parsing on this thread: the channel's frames go between slices.
  const pause = createSlicer(SLICE_MS);
  for (let h = 0; h < inputs.length; h++) {
    if (out[h] !== undefined) continue;
    await pause();
    const { history, basePayment } = inputs[h]!;
    const from = firstCheck[h]!;
    const payloads: Array<[string, string]> = [];
    let bad: ParleyError | undefined;
    for (let i = 0; i < history.commands.length; i++) {
      const request = results[from + 2 * i];
      const response = results[from + 2 * i + 1];
      if (typeof request !== 'string' || typeof response !== 'string') {
        bad = new ParleyError(
          'SYNC_BAD_SIGNATURE',
          `a signature in the history of ${history.reference_id} does not verify`,
          { cause: typeof request === 'string' ? response : request },
        );
        break;
      }
      payloads.push([request, response]);
    }
    try {
      if (bad) throw bad;
      out[h] = checkHistory(history, parties, basePayment, payloads);
    } catch (err) {
      if (!(err instanceof ParleyError)) throw err;
      out[h] = err;
    }
  }
  return out as Array<VerifiedHistory | ParleyError>;
}

/** The key of each request and response of a history, after the checks that need no signature. */
function signersOf(
  input: HistoryToVerify,
  parties: HistoryParties,
): Array<{ request: PublicKey; response: PublicKey }> {
  const { history, basePayment } = input;
  if (history.kind !== 'history' && history.kind !== 'replace') {
    throw invalid(`a ${history.kind} entry carries no history`);
  }
  if (history.base !== null && basePayment === undefined) {
    throw new ParleyError('SYNC_BROKEN_CHAIN', `history starts after ${history.base}, which is unknown here`);
  }
  return history.commands.map((c) => {
    if (c.proposer === parties.me) return { request: parties.myKey, response: parties.peerKey };
    if (c.proposer === parties.peer) return { request: parties.peerKey, response: parties.myKey };
    throw invalid(`proposer ${c.proposer} is not a party of the channel`);
  });
}

/** Decodes the verified payloads of a history and checks its chain and the payment rules. */
function checkHistory(
  history: ObjectHistory,
  parties: HistoryParties,
  basePayment: PaymentObject | undefined,
  payloads: ReadonlyArray<[string, string]>,
): VerifiedHistory {
  const { me, peer } = parties;
  const referenceId = history.reference_id;

  // 2. Decode each entry and derive its log record from the verified bytes only.
  const commands: VerifiedCommand[] = [];
  const cids = new Set<string>();
  for (let i = 0; i < payloads.length; i++) {
    const [requestText, responseText] = payloads[i]!;
    const signed = history.commands[i]!;
    let request: CommandRequestObject;
    let response: CommandResponseObject;
    try {
      request = decodeRequest(requestText);
      response = decodeResponse(responseText);
    } catch (err) {
      throw invalid(`entry ${i} does not decode`, err);
    }
    if (response.cid !== request.cid) throw invalid(`entry ${i}: the response answers another cid`);
    if (cids.has(request.cid)) throw invalid(`cid ${request.cid} appears twice`);
    cids.add(request.cid);
    const write = single(request.command._writes, '_writes');
    if (!write) throw invalid(`entry ${i}: no _writes entry`);
    const read = single(request.command._reads, '_reads');
    if (write[0] !== referenceId || (read && read[0] !== referenceId)) {
      throw invalid(`entry ${i} is about another object`);
    }
    let errorCode: string | null = null;
    if (response.status === 'failure') {
      if (!response.error || response.error.protocol_error) {
        throw invalid(`entry ${i}: a protocol error is never part of a history`);
      }
      errorCode = response.error.code;
    }
    commands.push({
      record: {
        peer,
        cid: request.cid,
        direction: signed.proposer === me ? 'outbound' : 'inbound',
        referenceId,
        readVersion: read ? read[1] : null,
        writeVersion: write[1],
        requestJws: signed.request,
        responseJws: signed.response,
        status: response.status,
        errorCode,
      },
      payment: response.status === 'success' ? request.command.payment : undefined,
    });
  }

  // 3. The successes form one chain from `base`, each step allowed by the payment rules.
  const chain = commands.filter((c) => c.record.status === 'success');
  if (history.base === null && chain.length === 0) {
    throw new ParleyError('SYNC_BROKEN_CHAIN', `history of ${referenceId} has no create`);
  }
  const written = new Set<string>();
  if (history.base !== null) written.add(history.base);
  let previousVersion = history.base;
  let previous = basePayment;
  for (const step of chain) {
    const { record } = step;
    if (record.readVersion !== previousVersion) {
      throw new ParleyError(
        'SYNC_BROKEN_CHAIN',
        `${record.cid} reads ${record.readVersion ?? 'nothing'}, expected ${previousVersion ?? 'a create'}`,
      );
    }
    if (written.has(record.writeVersion)) {
      throw new ParleyError('SYNC_BROKEN_CHAIN', `version ${record.writeVersion} is written twice`);
    }
    const rule = checkPaymentCommand({
      me,
      other: peer,
      origin: record.direction === 'outbound' ? me : peer,
      previous,
      next: step.payment!,
      referenceId,
    });
    if (rule) throw invalid(`${record.cid} breaks the payment rules (${rule})`);
    written.add(record.writeVersion);
    previousVersion = record.writeVersion;
    previous = step.payment;
  }
  return { referenceId, base: history.base, commands, chain, head: previousVersion };
}

/**
 * The commit items of a verified history, skipping commands whose cid is in `known` (already in
 * this node's signed log). Successes come with their version record.
 */
export function commitItemsOf(
  verified: VerifiedHistory,
  isOpen: (payment: PaymentObject) => boolean,
  known: ReadonlySet<string> = new Set(),
): CommitItem[] {
  const items: CommitItem[] = [];
  // Successes first, in chain order (the store checks that each reads the previous head), then
  // failures (they create no version).
  for (const c of verified.chain) {
    if (known.has(c.record.cid)) continue;
    items.push({
      command: c.record,
      version: {
        peer: c.record.peer,
        referenceId: c.record.referenceId,
        version: c.record.writeVersion,
        previousVersion: c.record.readVersion,
        payment: paymentTextOf(c),
        open: isOpen(c.payment!),
      },
    });
  }
  for (const c of verified.commands) {
    if (c.record.status === 'failure' && !known.has(c.record.cid)) items.push({ command: c.record });
  }
  return items;
}
