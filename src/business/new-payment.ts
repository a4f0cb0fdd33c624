/**
 * The first version of a payment, as the sender proposes it in its create command (lip1-v1.md
 * §2.6, §4; fixtures `flows.jsonl` step 1 of each flow).
 */
import { randomBytes } from 'node:crypto';
import { ParleyError } from '../errors.js';
import {
  channelAddress,
  decodeAddress,
  encodeAddress,
  KycData,
  type PaymentObject,
} from '../protocol/index.js';
import { AUTO_KYC_DATA } from './auto-business.js';

/** What {@link createPaymentObject} takes. I am the sender. */
export interface NewPaymentInput {
  /** My address (bech32). Its subaddress, if any, is the default of `meSubaddressHex`. */
  readonly me: string;
  /** The paying account at my VASP, 16 hex digits. @default the subaddress of `me` */
  readonly meSubaddressHex?: string;
  /** The peer VASP's address (bech32). Its subaddress, if any, is the default of `toSubaddressHex`. */
  readonly to: string;
  /** The payee's account at the peer VASP, 16 hex digits. @default the subaddress of `to` */
  readonly toSubaddressHex?: string;
  /** A positive integer amount in the currency's smallest unit. */
  readonly amount: number;
  /** The currency code, e.g. `TIK`, `LBR`, `Coin1`. */
  readonly currency: string;
  /** A human-readable description. @default none */
  readonly description?: string;
  /** The unique part of `reference_id`, at most 64 visible ASCII characters. @default 16 random bytes as hex */
  readonly referenceSuffix?: string;
  /** The payment time, in seconds since the Unix epoch. @default now */
  readonly timestamp?: number;
  /**
   * My `kyc_data`, sent with the create. A real VASP passes its customer's record here.
   * @default {@link AUTO_KYC_DATA}, the test business's sample
   */
  readonly kycData?: KycData;
}

const SUBADDRESS_HEX_RE = /^[0-9a-fA-F]{16}$/;
/** LIP-1 v1: the unique part of a reference id is at most 64 characters. */
const REFERENCE_SUFFIX_RE = /^[\x21-\x7e]{1,64}$/;

function invalid(message: string, options?: ErrorOptions): ParleyError {
  return new ParleyError('BUSINESS_INVALID_INPUT', message, options);
}

/** The actor address: `address`'s account with the given (or its own) non-zero subaddress. */
function actorAddress(address: string, subaddressHex: string | undefined, what: string): string {
  const decoded = decodeAddress(address);
  let subaddress = decoded.subaddress;
  if (subaddressHex !== undefined) {
    if (!SUBADDRESS_HEX_RE.test(subaddressHex)) throw invalid(`${what} subaddress must be 16 hex digits`);
    subaddress = Uint8Array.from(Buffer.from(subaddressHex, 'hex'));
  }
  // The reference refuses a create whose actor has no subaddress (payment_invalid_libra_subaddress).
  if (subaddress.every((byte) => byte === 0)) throw invalid(`${what} needs a non-zero subaddress`);
  return encodeAddress({ hrp: decoded.hrp, onchain: decoded.onchain, subaddress });
}

/**
 * The initial payment I propose as the sender: `reference_id` `<me, zero subaddress>_<suffix>`,
 * my status `needs_kyc_data` with my `kyc_data`, the receiver's status `none`, empty metadata,
 * action `charge`. It passes `checkPaymentCommand` as a create from me.
 *
 * @throws ParleyError `ADDRESS_INVALID` when `me` or `to` does not decode;
 *   `BUSINESS_INVALID_INPUT` when `me` and `to` are the same account, an actor would have no
 *   subaddress, or the amount, currency, suffix, timestamp or KYC record is invalid.
 */
export function createPaymentObject(input: NewPaymentInput): PaymentObject {
  const meChannel = channelAddress(input.me);
  if (meChannel === channelAddress(input.to)) throw invalid('cannot pay my own VASP');
  if (!Number.isSafeInteger(input.amount) || input.amount <= 0)
    throw invalid('amount must be a positive integer');
  if (typeof input.currency !== 'string' || input.currency === '') throw invalid('currency is required');
  const timestamp = input.timestamp ?? Math.floor(Date.now() / 1000);
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) throw invalid('timestamp must be whole seconds');
  const suffix = input.referenceSuffix ?? randomBytes(16).toString('hex');
  if (!REFERENCE_SUFFIX_RE.test(suffix))
    throw invalid('reference suffix must be 1-64 visible ASCII characters');
  const kyc = KycData.safeParse(input.kycData ?? AUTO_KYC_DATA);
  if (!kyc.success) throw invalid('kycData is not a KYC record', { cause: kyc.error });

  const payment: PaymentObject = {
    sender: {
      address: actorAddress(input.me, input.meSubaddressHex, 'sender'),
      status: { status: 'needs_kyc_data' },
      metadata: [],
      kyc_data: kyc.data,
    },
    receiver: {
      address: actorAddress(input.to, input.toSubaddressHex, 'receiver'),
      status: { status: 'none' },
      metadata: [],
    },
    reference_id: `${meChannel}_${suffix}`,
    action: { amount: input.amount, currency: input.currency, action: 'charge', timestamp },
  };
  if (input.description !== undefined) payment.description = input.description;
  return payment;
}
