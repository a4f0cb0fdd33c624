import { ParleyError } from '../errors.js';
import { isFinal } from '../objects/index.js';
import type { CommandRequestObject, PaymentObject } from '../protocol/index.js';
import type { VersionRecord } from '../store/types.js';

/** The object and version a request writes (exactly one `_writes` entry). */
export function writeOf(request: CommandRequestObject): { referenceId: string; version: string } {
  const [entry] = Object.entries(request.command._writes);
  if (!entry) throw new ParleyError('PROTOCOL_MALFORMED_FRAME', 'no _writes entry');
  return { referenceId: entry[0], version: entry[1] };
}

/** The object and version a request reads; null for a create. */
export function readOf(request: CommandRequestObject): { referenceId: string; version: string } | null {
  const [entry] = Object.entries(request.command._reads);
  return entry ? { referenceId: entry[0], version: entry[1] } : null;
}

/** The version row a successful command adds to the store. */
export function versionRecord(
  peer: string,
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

/** The payload of a JWS this node stored (its signature was checked when it was stored). */
export function payloadOf(jws: string): string {
  const parts = jws.split('.');
  return Buffer.from(parts[1] ?? '', 'base64url').toString('utf8');
}

export function decodeStoredPayment(json: string): PaymentObject {
  return JSON.parse(json) as PaymentObject;
}
