/**
 * The JSON contract between a node and its back office (docs/backoffice.md): what the webhook
 * business asks, what the back office answers, and how both are signed. The zod schemas check
 * what the back office answers; {@link backofficeJsonSchemas} gives the same contract as JSON
 * Schema (2020-12) for an API document.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { KycData, Lip1ErrorCode, PaymentObject } from '../protocol/index.js';
import { KYC_LEVELS } from './business-context.js';

/** The version of this contract, sent in every request (`contract`). */
export const BACKOFFICE_CONTRACT = 'parley.backoffice.v1';

/** The header carrying the signature of a request or an event: `t=<ms>,kid=<key id>,v1=<hex>`. */
export const SIGNATURE_HEADER = 'parley-signature';
/** The header carrying the idempotency key of a request (the same for every retry of it). */
export const IDEMPOTENCY_HEADER = 'idempotency-key';

const ABORT_CODES = Object.entries(Lip1ErrorCode)
  .filter(([, v]) => v.kind === 'abort')
  .map(([code]) => code) as [string, ...string[]];

/** A request of the webhook business: one per decision. */
export const BackofficeRequest = z.object({
  contract: z.literal(BACKOFFICE_CONTRACT),
  /**
   * `decide`: my next step on a payment (what I provide, what I request, ready or abort);
   * `check_recipient_signature`: whether the receiver's `recipient_signature` is acceptable (I am
   * the sender).
   */
  type: z.enum(['decide', 'check_recipient_signature']),
  /** The idempotency key: the same question gets the same id at every retry and after a restart. */
  id: z.string(),
  /** My channel address and the counterparty's (bech32, zero subaddress). */
  me: z.string(),
  other: z.string(),
  role: z.enum(['sender', 'receiver']),
  /** The payment as it stands (the version the counterparty just wrote). */
  payment: PaymentObject,
});
export type BackofficeRequest = z.infer<typeof BackofficeRequest>;

/** The answer to `decide`. */
export const DecideAnswer = z.object({
  /** Abort the payment with this LIP-1 abort code (everything else in the answer is ignored). */
  abort: z.object({ code: z.enum(ABORT_CODES), message: z.string().max(1000) }).optional(),
  /** The KYC level to request from the counterparty; `none` when nothing more is needed. */
  request: z.enum(KYC_LEVELS as unknown as [string, ...string[]]).default('none'),
  /** My `kyc_data`, when I provide it in this step. */
  kyc_data: KycData.optional(),
  /** My `additional_kyc_data`, when the counterparty asked for it (`soft_match`). */
  additional_kyc_data: KycData.optional(),
  /** My `recipient_signature`, when I am the receiver. */
  recipient_signature: z.string().optional(),
  /** Whether I am ready for settlement (monotone: once true, keep answering true). */
  ready_for_settlement: z.boolean().default(false),
});
export type DecideAnswer = z.infer<typeof DecideAnswer>;

/** The answer to `check_recipient_signature`. */
export const SignatureAnswer = z.object({
  valid: z.boolean(),
  message: z.string().max(1000).optional(),
});
export type SignatureAnswer = z.infer<typeof SignatureAnswer>;

/** The contract as JSON Schema (2020-12): the request, and the answer of each request type. */
export function backofficeJsonSchemas(): Record<string, unknown> {
  const opts = { target: 'draft-2020-12', unrepresentable: 'any', io: 'input' } as const;
  return {
    BackofficeRequest: z.toJSONSchema(BackofficeRequest, opts),
    DecideAnswer: z.toJSONSchema(DecideAnswer, opts),
    SignatureAnswer: z.toJSONSchema(SignatureAnswer, opts),
  };
}

/** JSON with the keys of every object sorted: the same text for equal values, whatever their key order. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * The idempotency key of a question: the same for the same payment version, type and node (a
 * live reaction and its recovery after a restart ask with the same key).
 */
export function requestId(type: BackofficeRequest['type'], me: string, payment: PaymentObject): string {
  const hash = createHash('sha256')
    .update(`${type}\n${me}\n${canonicalJson(payment)}`)
    .digest('hex');
  return `${type}:${payment.reference_id}:${hash.slice(0, 32)}`;
}

/** A shared HMAC secret and its id (sent as `kid`, so secrets can be rotated). */
export interface HmacKey {
  readonly id: string;
  readonly secret: Buffer;
}

/** The signature header of `body` sent at `nowMs`: HMAC-SHA256 over `<t>.<body>`. */
export function signBody(key: HmacKey, body: string, nowMs: number): string {
  const mac = createHmac('sha256', key.secret).update(`${nowMs}.${body}`).digest('hex');
  return `t=${nowMs},kid=${key.id},v1=${mac}`;
}

/** Why a signature header does not hold, or `undefined` when it does. */
export function signatureProblem(
  keys: readonly HmacKey[],
  header: string | undefined,
  body: string,
  nowMs: number,
  windowMs: number,
): string | undefined {
  if (header === undefined) return `no ${SIGNATURE_HEADER} header`;
  const parts = new Map(
    header.split(',').map((p) => {
      const i = p.indexOf('=');
      return [p.slice(0, i).trim(), p.slice(i + 1).trim()] as const;
    }),
  );
  const t = Number(parts.get('t'));
  if (!Number.isSafeInteger(t)) return 'no timestamp';
  if (Math.abs(nowMs - t) > windowMs) return 'timestamp outside the replay window';
  const key = keys.find((k) => k.id === parts.get('kid'));
  if (!key) return 'unknown key id';
  const given = Buffer.from(parts.get('v1') ?? '', 'hex');
  const expected = createHmac('sha256', key.secret).update(`${t}.${body}`).digest();
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'bad signature';
  return undefined;
}
