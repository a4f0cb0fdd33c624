/**
 * The gate of an inbound LIP-1 HTTP request (PROTOCOL.md §2.1 steps 2–3, §4): before a request
 * may wait on the channel, it must verify with the sender's directory key and be a command
 * request. What fails is answered at once, never held: an unverifiable body with the signed
 * protocol error `invalid_signature`, a verified body that is not a valid request with
 * `parsing_error` (both `cid: null`, HTTP 400, as the channel would answer them), a verified
 * frame of another kind with plain 400. So nobody without the peer's key can hold one of the
 * peer's pending slots, however many requests they send.
 */
import { isParleyError } from '../errors.js';
import {
  type CommandResponseObject,
  decodeRequest,
  defaultErrorMessage,
  encodeResponse,
  type PrivateKey,
  type PublicKey,
  parseJson,
  signJwsAsync,
  verifyJwsAsync,
} from '../protocol/index.js';

/** Why a request did not pass the gate, and its answer. */
export interface GateRefusal {
  /** `invalid_signature`, `parsing_error` (signed answers) or `not_a_request` (plain text). */
  reason: 'invalid_signature' | 'parsing_error' | 'not_a_request';
  status: 400;
  /** The answer's body: a signed response JWS, or plain text for `not_a_request`. */
  body: string;
}

export interface Lip1RequestGate {
  /** Undefined when `body` may go to the channel; else the answer to send at once. */
  check(body: string): Promise<GateRefusal | undefined>;
}

export function createLip1RequestGate(keys: { peerKey: PublicKey; myKey: PrivateKey }): Lip1RequestGate {
  // One signature per code for the node's life (Ed25519 is deterministic: the same bytes each
  // time): refusing a flood costs a verification per request, never a signature.
  const signed = new Map<string, Promise<string>>();
  function protocolError(code: 'invalid_signature' | 'parsing_error'): Promise<string> {
    let answer = signed.get(code);
    if (!answer) {
      const response: CommandResponseObject = {
        _ObjectType: 'CommandResponseObject',
        cid: null,
        status: 'failure',
        error: { protocol_error: true, code, message: defaultErrorMessage(code) },
      };
      answer = signJwsAsync(encodeResponse(response), keys.myKey);
      signed.set(code, answer);
    }
    return answer;
  }

  return {
    async check(body) {
      let payload: string;
      try {
        payload = await verifyJwsAsync(body, keys.peerKey);
      } catch (err) {
        if (!isParleyError(err)) throw err;
        return { reason: 'invalid_signature', status: 400, body: await protocolError('invalid_signature') };
      }
      try {
        decodeRequest(payload);
        return undefined;
      } catch (err) {
        if (!isParleyError(err)) throw err;
      }
      // Signed by the peer but not a request: a frame of another kind has no business here.
      let type: unknown;
      try {
        type = (parseJson(payload) as { _ObjectType?: unknown } | null)?._ObjectType;
      } catch {
        type = undefined;
      }
      if (typeof type === 'string' && type !== 'CommandRequestObject') {
        return { reason: 'not_a_request', status: 400, body: `not a command request: ${type.slice(0, 64)}` };
      }
      return { reason: 'parsing_error', status: 400, body: await protocolError('parsing_error') };
    },
  };
}
