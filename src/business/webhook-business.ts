/**
 * The webhook business: a {@link BusinessContext} that asks the VASP's back office, over HTTP, for
 * every decision (docs/backoffice.md). One `decide` request per step of a payment (what I
 * provide, what I request, ready for settlement, or abort with a LIP-1 code), and one
 * `check_recipient_signature` request when the receiver's signature arrives.
 *
 * - Bodies both ways are signed with HMAC-SHA256 (`parley-signature: t=…,kid=…,v1=…`); an answer
 *   with a bad signature or outside the replay window counts as no answer.
 * - Each request has an idempotency key (`id`, also the `idempotency-key` header) made from the
 *   payment version: a retry, a second run after a restart, asks the same question with the same key.
 * - A `decide` that gets no valid answer (timeout, refused, 5xx, bad body) is asked again after a
 *   backoff, for as long as it takes: the payment waits, nothing is decided for it. Every failed
 *   attempt and every answer is reported on `reports$` (the node turns them into the health
 *   condition `backoffice_unreachable`).
 * - `check_recipient_signature` runs while the channel decides on the counterparty's command: it
 *   is asked once (with the timeout); without an answer the command is answered `wait`, and the
 *   counterparty's resend asks again.
 */
import type { Observable } from 'rxjs';
import { channelAddress, type KycData, type Lip1AbortCode, type PaymentObject } from '../protocol/index.js';
import {
  type BackofficeReport,
  createBackofficeClient,
  type WebhookBusinessOptions,
} from './backoffice-client.js';
import {
  BACKOFFICE_CONTRACT,
  type BackofficeRequest,
  DecideAnswer,
  requestId,
  SignatureAnswer,
} from './backoffice-contract.js';
import {
  type BusinessContext,
  BusinessForceAbort,
  BusinessValidationFailure,
  type KycLevel,
  type KycToProvide,
} from './business-context.js';

export type { BackofficeReport, WebhookBusinessOptions } from './backoffice-client.js';

/** The webhook business: the decisions of the back office, and how reaching it fares. */
export interface WebhookBusiness extends BusinessContext<DecideAnswer> {
  /** Every attempt's outcome (hot; completes on `close`). */
  readonly reports$: Observable<BackofficeReport>;
  /** Stops asking: waiting steps stay undecided (whoever serves the channel next asks again). */
  close(): void;
}

export function createWebhookBusiness(options: WebhookBusinessOptions): WebhookBusiness {
  const client = createBackofficeClient(options);
  return {
    reports$: client.reports$,

    async paymentPreProcessing(payment, info) {
      const request: BackofficeRequest = {
        contract: BACKOFFICE_CONTRACT,
        type: 'decide',
        id: requestId('decide', info.me, payment),
        me: info.me,
        other: info.other,
        role: info.role,
        payment: structuredClone(payment) as PaymentObject,
      };
      return client.ask(request, (a) => DecideAnswer.parse(a), true);
    },

    async paymentInitialProcessing(_payment, decision) {
      if (decision.abort) {
        throw new BusinessForceAbort(decision.abort.code as Lip1AbortCode, decision.abort.message);
      }
    },

    async checkAccountExistence() {
      // The back office answers `abort` (e.g. `payment_invalid_libra_subaddress`) in its decision.
    },

    async validateRecipientSignature(payment) {
      const me = channelAddress(payment.sender.address);
      const request: BackofficeRequest = {
        contract: BACKOFFICE_CONTRACT,
        type: 'check_recipient_signature',
        id: requestId('check_recipient_signature', me, payment),
        me,
        other: channelAddress(payment.receiver.address),
        // Asked only when I am the sender (`validateIncoming`).
        role: 'sender',
        payment: structuredClone(payment) as PaymentObject,
      };
      const answer = await client.ask(request, (a) => SignatureAnswer.parse(a), false);
      if (!answer.valid) {
        throw new BusinessValidationFailure(
          answer.message ?? 'the back office refuses the recipient signature',
        );
      }
    },

    async getRecipientSignature(_payment, decision) {
      return decision.recipient_signature ?? '';
    },

    async nextKycToProvide(_payment, decision) {
      const provide = new Set<KycToProvide>();
      if (decision.kyc_data !== undefined) provide.add('needs_kyc_data');
      if (decision.additional_kyc_data !== undefined) provide.add('soft_match');
      if (decision.recipient_signature !== undefined) provide.add('needs_recipient_signature');
      return provide;
    },

    async nextKycLevelToRequest(_payment, decision) {
      return decision.request as KycLevel;
    },

    async getExtendedKyc(_payment, decision) {
      return decision.kyc_data as KycData;
    },

    async getAdditionalKyc(_payment, decision) {
      return decision.additional_kyc_data as KycData;
    },

    async readyForSettlement(_payment, decision) {
      return decision.ready_for_settlement;
    },

    close() {
      client.close();
    },
  };
}
