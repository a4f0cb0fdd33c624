/**
 * Strict base64url (RFC 4648 §5) without padding, as JWS compact serialisation uses it
 * (RFC 7515 §2).
 *
 * Strict means: only the alphabet `A–Z a–z 0–9 - _`, no `=` padding, no whitespace, no length
 * that cannot occur (`length % 4 === 1`), and canonical trailing bits (RFC 4648 §3.5). The last
 * rule matters for signatures: without it, two different strings decode to the same bytes, so
 * flipping a "don't care" bit of a signature would still verify.
 */
import { type ErrorCode, ParleyError } from '../errors.js';

const BASE64URL_RE = /^[A-Za-z0-9_-]*$/;
const textDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The 6-bit value of a base64url character (the alphabet checked before). */
function sextet(code: number): number {
  if (code >= 97) return code - 71; // a–z: 26–51
  if (code >= 65) return code === 95 ? 63 : code - 65; // A–Z: 0–25, `_`: 63
  return code === 45 ? 62 : code + 4; // `-`: 62, 0–9: 52–61
}

/**
 * Whether the last character of strict-alphabet base64url of this length leaves its unused low
 * bits zero (RFC 4648 §3.5): 4 bits when the length is 2 mod 4, 2 bits when 3 mod 4, none
 * otherwise. Decoding then re-encoding gives back exactly such a text, and only such a text.
 */
function canonicalTail(text: string): boolean {
  const rest = text.length % 4;
  if (rest < 2) return true;
  const last = sextet(text.charCodeAt(text.length - 1));
  return (last & (rest === 2 ? 0x0f : 0x03)) === 0;
}

/** Encodes bytes as unpadded base64url. */
export function base64UrlEncode(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/** Encodes the UTF-8 bytes of `text` as unpadded base64url. */
export function base64UrlEncodeText(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}

/** Whether `text` is a strict, canonical, unpadded base64url string. */
export function isBase64Url(text: string): boolean {
  return tryBase64UrlDecode(text) !== undefined;
}

/**
 * Decodes strict base64url, or returns `undefined` when `text` is not strict, canonical and
 * unpadded base64url. Never throws.
 */
export function tryBase64UrlDecode(text: string): Uint8Array | undefined {
  if (typeof text !== 'string' || text.length % 4 === 1 || !BASE64URL_RE.test(text)) return undefined;
  // Canonical form: non-zero padding bits would decode to the same bytes as the zero ones.
  if (!canonicalTail(text)) return undefined;
  const bytes = Buffer.from(text, 'base64url');
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Decodes strict base64url.
 *
 * @param code - the error code to throw on bad input.
 * @throws ParleyError `code` (default `PROTOCOL_MALFORMED_FRAME`) when `text` is not strict,
 *   canonical, unpadded base64url.
 */
export function base64UrlDecode(text: string, code: ErrorCode = 'PROTOCOL_MALFORMED_FRAME'): Uint8Array {
  const bytes = tryBase64UrlDecode(text);
  if (bytes === undefined) throw new ParleyError(code, 'not strict unpadded base64url');
  return bytes;
}

/**
 * Decodes bytes as UTF-8, or returns `undefined` when they are not well-formed UTF-8.
 * A leading byte-order mark is kept, never silently dropped.
 */
export function tryDecodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return textDecoder.decode(bytes);
  } catch {
    return undefined;
  }
}
