/**
 * Zod schemas of the LIP-1 v1 envelope and payment objects, exactly as the reference
 * implementation 0.0.9 speaks them (lip1-v1.md §2.3, §4).
 *
 * - Field names and shapes follow the wire, not the v1 spec text (see §2.9).
 * - Unknown fields are dropped silently (zod's default `strip`), as the reference does.
 * - Types are strict: a string where an integer is expected fails (the reference crashed with
 *   HTTP 500 there; Parley answers `parsing_error`). Integers must be safe JS integers.
 * - Violations of `_reads` ≤ 1 / `_writes` = 1 entries are parse failures, as in the reference.
 *
 * Only `codec.ts` parses frames with these; code behind the codec trusts the types.
 */
import { z } from 'zod';
import { ParleyError } from '../errors.js';

/** A payment actor's status (`Status` in the reference). Heights: `objects/status.ts`. */
export const PaymentStatus = z.enum([
  'none',
  'needs_kyc_data',
  'needs_recipient_signature',
  'pending_review',
  'soft_match',
  'ready_for_settlement',
  'abort',
]);
export type PaymentStatus = z.infer<typeof PaymentStatus>;

/**
 * A status with its abort reason. `abort_code` and `abort_message` are required when `status`
 * is `abort` and forbidden otherwise.
 */
export const StatusObject = z
  .object({
    status: PaymentStatus,
    abort_code: z.string().optional(),
    abort_message: z.string().optional(),
  })
  .refine(
    (s) =>
      s.status === 'abort'
        ? s.abort_code !== undefined && s.abort_message !== undefined
        : s.abort_code === undefined && s.abort_message === undefined,
    { message: 'abort_code and abort_message are required iff status is abort' },
  );
export type StatusObject = z.infer<typeof StatusObject>;

/** A JSON object with free-form content (the reference types these fields as `dict`). */
const JsonDict = z.record(z.string(), z.unknown());

/**
 * KYC data attached to an actor (`KYCData`; v1's KycDataObject as the reference shapes it).
 * `payload_type` is required (DIP-1 v2 dropped it); `type` is `individual` or `entity`.
 */
export const KycData = z.object({
  payload_type: z.string(),
  payload_version: z.int(),
  type: z.enum(['individual', 'entity']),
  given_name: z.string().optional(),
  surname: z.string().optional(),
  address: JsonDict.optional(),
  dob: z.string().optional(),
  place_of_birth: JsonDict.optional(),
  national_id: JsonDict.optional(),
  legal_entity_name: z.string().optional(),
  other: JsonDict.optional(),
});
export type KycData = z.infer<typeof KycData>;

/**
 * One side of a payment. `address` is a bech32 account identifier with subaddress; it is not
 * decoded here because a bad address is a command error (`payment_invalid_libra_address`),
 * not a parsing error. `additional_kyc_data` is a KYC object, as in the reference.
 */
export const PaymentActor = z.object({
  address: z.string(),
  kyc_data: KycData.optional(),
  additional_kyc_data: KycData.optional(),
  status: StatusObject,
  metadata: z.array(z.string()),
});
export type PaymentActor = z.infer<typeof PaymentActor>;

/** What the payment does: a positive integer `amount` of `currency`, at an integer `timestamp`. */
export const PaymentAction = z.object({
  amount: z.int().positive(),
  currency: z.string(),
  action: z.string(),
  timestamp: z.int(),
});
export type PaymentAction = z.infer<typeof PaymentAction>;

/**
 * The full payment record a `PaymentCommand` carries (never a diff). The stored form's
 * `_ObjectType`, `_version` and `_previous_version` are dropped like any unknown field.
 */
export const PaymentObject = z.object({
  sender: PaymentActor,
  receiver: PaymentActor,
  reference_id: z.string(),
  original_payment_reference_id: z.string().optional(),
  description: z.string().optional(),
  action: PaymentAction,
  recipient_signature: z.string().optional(),
});
export type PaymentObject = z.infer<typeof PaymentObject>;

/** A `{reference_id: version}` map. */
const VersionMap = z.record(z.string(), z.string());

/**
 * A payment command. `_reads` is `{}` for a create or one `{reference_id: version}` entry for an
 * update; `_writes` is exactly one `{reference_id: new_version}` entry.
 */
export const PaymentCommand = z.object({
  _ObjectType: z.literal('PaymentCommand'),
  _reads: VersionMap.refine((m) => Object.keys(m).length <= 1, {
    message: '_reads has at most one entry',
  }),
  _writes: VersionMap.refine((m) => Object.keys(m).length === 1, {
    message: '_writes has exactly one entry',
  }),
  payment: PaymentObject,
});
export type PaymentCommand = z.infer<typeof PaymentCommand>;

/**
 * A LIP-1 request. For payments `cid` equals the new version in `_writes`. The stored form's
 * `response` member is dropped like any unknown field.
 */
export const CommandRequestObject = z.object({
  _ObjectType: z.literal('CommandRequestObject'),
  cid: z.string(),
  command_type: z.literal('PaymentCommand'),
  command: PaymentCommand,
});
export type CommandRequestObject = z.infer<typeof CommandRequestObject>;

/** The reference's error object: a single object, not the v1 spec's list. */
export const OffChainError = z.object({
  protocol_error: z.boolean(),
  code: z.string(),
  message: z.string(),
});
export type OffChainError = z.infer<typeof OffChainError>;

/**
 * A LIP-1 response. `cid` is `null` when the request could not be verified or parsed. `error`
 * is present exactly when `status` is `failure`.
 */
export const CommandResponseObject = z
  .object({
    _ObjectType: z.literal('CommandResponseObject'),
    cid: z.string().nullable(),
    status: z.enum(['success', 'failure']),
    error: OffChainError.optional(),
  })
  .refine((r) => (r.status === 'failure') === (r.error !== undefined), {
    message: 'error is present iff status is failure',
  });
export type CommandResponseObject = z.infer<typeof CommandResponseObject>;

/** The object a payment command reads and writes, by its `_reads` / `_writes` entries. */
export interface CommandVersions {
  /** The `_writes` key: the `reference_id` of the payment written. */
  readonly referenceId: string;
  /** The version the command creates (equals the request `cid` for payments). */
  readonly writeVersion: string;
  /** The `_reads` key, or `null` for a create. */
  readonly readReferenceId: string | null;
  /** The version the command reads, or `null` for a create. */
  readonly readVersion: string | null;
}

/**
 * Extracts the `_reads` / `_writes` entries of a parsed payment command.
 *
 * @throws ParleyError `PROTOCOL_MALFORMED_FRAME` when `_writes` is empty (never for a parsed command).
 */
export function commandVersions(command: PaymentCommand): CommandVersions {
  const [write] = Object.entries(command._writes);
  const [read] = Object.entries(command._reads);
  if (write === undefined)
    throw new ParleyError('PROTOCOL_MALFORMED_FRAME', 'PaymentCommand without _writes');
  return {
    referenceId: write[0],
    writeVersion: write[1],
    readReferenceId: read?.[0] ?? null,
    readVersion: read?.[1] ?? null,
  };
}
