/**
 * The JSON body of a back-office event (docs/backoffice.md, "Events"), the same for the signed
 * webhook and the Server-Sent Events stream.
 */
import { myRole, otherRole } from '../objects/index.js';
import type { PaymentObject } from '../protocol/index.js';
import type { StoredEvent } from '../store/event-repository.js';

/** A payment event's view of the payment. */
export interface PaymentEventData {
  reference_id: string;
  /** The command that caused the event. */
  cid: string | null;
  /** `outbound`: my command; `inbound`: the counterparty's. */
  direction: string | null;
  /** The command's outcome: `success`, or `failure` with `error_code`. */
  command_status: string | null;
  error_code: string | null;
  /** My status and the counterparty's after the command (absent for a failed command). */
  my_status?: string;
  their_status?: string;
  /** The payment as the command wrote it (absent for a failed command). */
  payment?: PaymentObject;
}

export interface EventBody {
  /** Unique per database and event: the same at every delivery of the event (deduplicate on it). */
  id: string;
  /** Increases with every event of this node's database (per-payment order follows it). */
  sequence: number;
  type: string;
  /** When the change happened (ISO 8601). */
  created_at: string;
  /** This node (bech32, zero subaddress) and the channel's counterparty. */
  node: string;
  peer: string;
  /** Payment events. */
  payment?: PaymentEventData;
  /** Channel events: what the health record or resync run says. */
  detail?: Record<string, unknown>;
}

/** The body of a stored event. `epoch` is the store's epoch (event ids stay unique across databases). */
export function eventBody(row: StoredEvent, me: string, epoch: string): EventBody {
  const body: EventBody = {
    id: `${epoch}-${row.id}`,
    sequence: row.id,
    type: row.kind,
    created_at: new Date(row.createdAtMs).toISOString(),
    node: me,
    peer: row.peer,
  };
  if (row.referenceId !== null) {
    const data: PaymentEventData = {
      reference_id: row.referenceId,
      cid: row.cid,
      direction: row.command?.direction ?? null,
      command_status: row.command?.status ?? null,
      error_code: row.command?.errorCode ?? null,
    };
    if (row.payment !== undefined) {
      const payment = JSON.parse(row.payment) as PaymentObject;
      const role = myRole(payment, me);
      if (role !== undefined) {
        data.my_status = payment[role].status.status;
        data.their_status = payment[otherRole(role)].status.status;
      }
      data.payment = payment;
    }
    body.payment = data;
  }
  if (row.detail !== null) body.detail = row.detail;
  return body;
}
