import { isHeartbeatFrame } from '../protocol/heartbeat-frames.js';
import { decodeJwsPayloadUnverified, parseJson, peekJwsObjectType } from '../protocol/index.js';

/**
 * The kind of a frame that arrived on a channel: `Heartbeat` (not a JWS, PROTOCOL.md §8), or
 * the `_ObjectType` at the head of its payload. Only a payload that does not start with it is
 * decoded here in full (the handlers verify and decode every frame).
 */
export function frameKindOf(frame: string): string {
  if (isHeartbeatFrame(frame)) return 'Heartbeat';
  const type = peekJwsObjectType(frame);
  if (type !== undefined) return type;
  try {
    const payload = parseJson(decodeJwsPayloadUnverified(frame)) as { _ObjectType?: unknown } | null;
    const named = payload?._ObjectType;
    // Undecodable, or no frame kind at all (`[]`, `{}`): not a frame of a later version but
    // an invalid request, which the core answers with a signed protocol error
    // (`invalid_signature` or `parsing_error`, `cid: null`; PROTOCOL.md §2.1).
    return typeof named === 'string' ? named : 'CommandRequestObject';
  } catch {
    return 'CommandRequestObject';
  }
}
