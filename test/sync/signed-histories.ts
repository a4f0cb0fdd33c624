/**
 * Builds real signed histories offline: payments that the automatic business drives step by
 * step between two parties whose keys the test holds, each command signed by its proposer and
 * its response by the other party — what two nodes would have logged.
 */
import { createAutoBusiness, createPaymentObject, nextPaymentVersion } from '../../src/business/index.js';
import {
  type CommandRequestObject,
  channelAddress,
  encodeAddress,
  encodeRequest,
  encodeResponse,
  generatePrivateKey,
  type PaymentObject,
  type PrivateKey,
  signJws,
} from '../../src/protocol/index.js';
import { refHash } from '../../src/protocol/riblt.js';
import type { ObjectHistory, SignedCommand } from '../../src/protocol/sync-frames.js';

export interface Party {
  address: string;
  key: PrivateKey;
}

export function party(byte: number): Party {
  return {
    address: encodeAddress({ hrp: 'lbr', onchain: new Uint8Array(16).fill(byte) }),
    key: generatePrivateKey(),
  };
}

export interface BuiltStep {
  cid: string;
  proposer: Party;
  payment: PaymentObject;
  read: string | null;
  signed: SignedCommand;
}

let counter = 0;
const nextCid = (): string =>
  (++counter).toString(16).padStart(32, '0') + Math.random().toString(16).slice(2, 10);

/** Signs one command of `proposer` (answered by `other` with `status`). */
export function signStep(
  proposer: Party,
  other: Party,
  payment: PaymentObject,
  read: string | null,
  cid = nextCid().slice(0, 32),
  failure?: string,
): BuiltStep {
  const ref = payment.reference_id;
  const request: CommandRequestObject = {
    _ObjectType: 'CommandRequestObject',
    cid,
    command_type: 'PaymentCommand',
    command: {
      _ObjectType: 'PaymentCommand',
      _reads: read === null ? {} : { [ref]: read },
      _writes: { [ref]: cid },
      payment,
    },
  };
  const response = failure
    ? {
        _ObjectType: 'CommandResponseObject' as const,
        cid,
        status: 'failure' as const,
        error: { protocol_error: false, code: failure, message: failure },
      }
    : { _ObjectType: 'CommandResponseObject' as const, cid, status: 'success' as const };
  return {
    cid,
    proposer,
    payment,
    read,
    signed: {
      proposer: proposer.address,
      request: signJws(encodeRequest(request), proposer.key),
      response: signJws(encodeResponse(response), other.key),
    },
  };
}

/**
 * A payment created by `sender` to `receiver` and driven `steps` commands (1 = the create only;
 * at most 5, the payment is final after 5); its reference id ends with `referenceSuffix` when given.
 */
export async function buildPayment(
  sender: Party,
  receiver: Party,
  steps: number,
  referenceSuffix?: string,
): Promise<BuiltStep[]> {
  const business = createAutoBusiness();
  const out: BuiltStep[] = [];
  let payment = createPaymentObject({
    ...(referenceSuffix === undefined ? {} : { referenceSuffix }),
    me: sender.address,
    meSubaddressHex: '0000000000000001',
    to: receiver.address,
    toSubaddressHex: '0000000000000002',
    amount: 100,
    currency: 'TIK',
  });
  out.push(signStep(sender, receiver, payment, null));
  let turn: [Party, Party] = [receiver, sender];
  while (out.length < steps) {
    const next = await nextPaymentVersion({ payment, me: turn[0].address, business });
    if (!next) break;
    payment = next;
    out.push(signStep(turn[0], turn[1], payment, out.at(-1)!.cid));
    turn = [turn[1], turn[0]];
  }
  return out;
}

/** The history entry of built steps (full, from the create). */
export function historyOf(steps: BuiltStep[], base: string | null = null): ObjectHistory {
  return {
    reference_id: steps[0]!.payment.reference_id,
    kind: 'history',
    base,
    commands: steps.map((s) => s.signed),
  };
}

/** Flips one character of a JWS segment (`0` header, `1` payload, `2` signature). */
export function flip(jws: string, segment: 0 | 1 | 2): string {
  const parts = jws.split('.');
  const text = parts[segment]!;
  const at = Math.floor(text.length / 2);
  parts[segment] = text.slice(0, at) + (text[at] === 'A' ? 'B' : 'A') + text.slice(at + 1);
  return parts.join('.');
}

/**
 * Two reference suffixes whose ids, created by `origin`, have the same `refHash` (the `hi` of a
 * coded-symbol key): about 2^16 tries.
 */
export function collidingSuffixes(origin: string): [string, string] {
  const prefix = `${channelAddress(origin)}_`;
  const seen = new Map<number, string>();
  for (let i = 0; ; i++) {
    const suffix = `c${i.toString(36)}`;
    const hi = refHash(prefix + suffix);
    const other = seen.get(hi);
    if (other !== undefined) return [other, suffix];
    seen.set(hi, suffix);
  }
}
