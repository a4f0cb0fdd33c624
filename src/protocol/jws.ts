/**
 * Compact JWS (RFC 7515 §7.1) with EdDSA / Ed25519 (RFC 8037), as LIP-1 v1 frames use it
 * (lip1-v1.md §2.2, fixtures README "Quirks" 1–2).
 *
 * - We always send the protected header `{"alg":"EdDSA"}` (DIP-1).
 * - We accept that header, any other JSON-object header with `alg` `EdDSA` and no `crit`, and
 *   the reference's empty-header form `.<payload>.<signature>`.
 * - The signature is verified over the received ASCII bytes `<header>.<payload>`, never over a
 *   re-serialisation; the payload text returned is the UTF-8 of the received payload bytes.
 *
 * Sync functions use `node:crypto` one-shot `sign`/`verify` (fast, on the calling thread). The
 * `…Async` twins use WebCrypto, whose Ed25519 jobs run on the libuv thread pool, so many
 * verifications in flight do not block the event loop.
 */
import { KeyObject, sign, verify, webcrypto } from 'node:crypto';
import { ParleyError } from '../errors.js';
import { base64UrlEncode, base64UrlEncodeText, tryBase64UrlDecode, tryDecodeUtf8 } from './base64url.js';
import { parseJson } from './codec.js';
import type { PrivateKey, PublicKey } from './keys.js';

/** base64url of `{"alg":"EdDSA"}`: the protected header Parley sends. */
export const EDDSA_PROTECTED_HEADER = 'eyJhbGciOiJFZERTQSJ9';

const ED25519_SIGNATURE_BYTES = 64;
const ED25519 = { name: 'Ed25519' } as const;
const LONE_SURROGATE_RE = /\p{Cs}/u;

interface CompactJws {
  /** ASCII bytes of `<header>.<payload>`: what the signature covers. */
  readonly signingInput: Buffer;
  readonly payload: Uint8Array;
  readonly signature: Uint8Array;
}

/** The `KeyObject` of a key, checked: a caller passing no key gets a coded error. */
function keyObjectOf(key: PublicKey | PrivateKey): KeyObject {
  const keyObject = (key as { keyObject?: unknown } | null | undefined)?.keyObject;
  if (!(keyObject instanceof KeyObject)) throw new ParleyError('KEY_INVALID', 'not a key');
  return keyObject;
}

function notJws(message: string, cause?: unknown): ParleyError {
  return new ParleyError('PROTOCOL_NOT_JWS', message, cause === undefined ? undefined : { cause });
}

function badSignature(cause?: unknown): ParleyError {
  return new ParleyError(
    'PROTOCOL_BAD_SIGNATURE',
    'signature does not verify',
    cause === undefined ? undefined : { cause },
  );
}

function checkProtectedHeader(segment: string): void {
  // The two forms seen on the wire are accepted without decoding.
  if (segment === '' || segment === EDDSA_PROTECTED_HEADER) return;
  const bytes = tryBase64UrlDecode(segment);
  if (bytes === undefined) throw notJws('protected header is not base64url');
  const text = tryDecodeUtf8(bytes);
  if (text === undefined) throw notJws('protected header is not UTF-8');
  let header: unknown;
  try {
    header = parseJson(text);
  } catch (err) {
    throw notJws('protected header is not JSON', err);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    throw notJws('protected header is not a JSON object');
  }
  const members = header as Record<string, unknown>;
  if (members['alg'] !== 'EdDSA') throw notJws('protected header alg is not EdDSA');
  // We implement no extension, so any critical one must be refused (RFC 7515 §4.1.11).
  if (Object.hasOwn(members, 'crit')) throw notJws('protected header has crit');
  // Unencoded payloads (RFC 7797) would change the signing input.
  if (Object.hasOwn(members, 'b64') && members['b64'] !== true) throw notJws('protected header has b64');
}

function parseCompactJws(jws: unknown): CompactJws {
  if (typeof jws !== 'string') throw notJws('a compact JWS is a string');
  const first = jws.indexOf('.');
  const second = first < 0 ? -1 : jws.indexOf('.', first + 1);
  if (second < 0 || jws.indexOf('.', second + 1) >= 0) {
    throw notJws('a compact JWS has exactly three segments');
  }
  checkProtectedHeader(jws.slice(0, first));
  const payload = tryBase64UrlDecode(jws.slice(first + 1, second));
  if (payload === undefined) throw notJws('payload is not base64url');
  const signature = tryBase64UrlDecode(jws.slice(second + 1));
  if (signature === undefined) throw notJws('signature is not base64url');
  if (signature.length !== ED25519_SIGNATURE_BYTES) {
    throw notJws(`an Ed25519 signature is ${ED25519_SIGNATURE_BYTES} bytes`);
  }
  // Every character before the second dot is base64url or '.', so latin1 is its exact ASCII.
  return { signingInput: Buffer.from(jws.slice(0, second), 'latin1'), payload, signature };
}

function payloadText(jws: CompactJws): string {
  const text = tryDecodeUtf8(jws.payload);
  if (text === undefined) throw new ParleyError('PROTOCOL_MALFORMED_FRAME', 'JWS payload is not UTF-8');
  return text;
}

function signingInputOf(payload: string): string {
  if (typeof payload !== 'string' || LONE_SURROGATE_RE.test(payload)) {
    // A lone surrogate has no UTF-8 form: the peer would verify a different text than we meant.
    throw new ParleyError('PROTOCOL_MALFORMED_FRAME', 'payload is not well-formed Unicode text');
  }
  return `${EDDSA_PROTECTED_HEADER}.${base64UrlEncodeText(payload)}`;
}

/**
 * Signs `payload` (its UTF-8 bytes) as a compact JWS with header `{"alg":"EdDSA"}`.
 * Ed25519 is deterministic: the same payload and key always give the same JWS.
 *
 * @throws ParleyError `PROTOCOL_MALFORMED_FRAME` when `payload` contains a lone surrogate;
 *   `KEY_INVALID` when `key` cannot sign.
 */
export function signJws(payload: string, key: PrivateKey): string {
  const input = signingInputOf(payload);
  const keyObject = keyObjectOf(key);
  let signature: Buffer;
  try {
    signature = sign(null, Buffer.from(input, 'latin1'), keyObject);
  } catch (err) {
    throw new ParleyError('KEY_INVALID', 'cannot sign with this key', { cause: err });
  }
  return `${input}.${base64UrlEncode(signature)}`;
}

/**
 * Verifies a compact JWS with `key` and returns its payload text.
 *
 * @throws ParleyError `PROTOCOL_NOT_JWS` when `jws` is not a compact EdDSA JWS (segments,
 *   base64url, header, signature length); `PROTOCOL_BAD_SIGNATURE` when the signature does not
 *   verify; `PROTOCOL_MALFORMED_FRAME` when the signed payload is not UTF-8; `KEY_INVALID` when
 *   `key` is not a key.
 */
export function verifyJws(jws: string, key: PublicKey): string {
  const parsed = parseCompactJws(jws);
  const keyObject = keyObjectOf(key);
  let ok: boolean;
  try {
    ok = verify(null, parsed.signingInput, keyObject, parsed.signature);
  } catch (err) {
    throw badSignature(err);
  }
  if (!ok) throw badSignature();
  return payloadText(parsed);
}

const verifyKeys = new WeakMap<PublicKey, Promise<webcrypto.CryptoKey>>();
const signKeys = new WeakMap<PrivateKey, Promise<webcrypto.CryptoKey>>();

function cached<TKey extends object>(
  cache: WeakMap<TKey, Promise<webcrypto.CryptoKey>>,
  key: TKey,
  load: () => Promise<webcrypto.CryptoKey>,
): Promise<webcrypto.CryptoKey> {
  const hit = cache.get(key);
  if (hit !== undefined) return hit;
  // `then(load)` turns a synchronous throw of `load` into a rejection as well.
  const loading = Promise.resolve()
    .then(load)
    .catch((err: unknown) => {
      cache.delete(key); // do not cache a failure
      throw new ParleyError('KEY_INVALID', 'WebCrypto refused the key', { cause: err });
    });
  cache.set(key, loading);
  return loading;
}

function verifyingKey(key: PublicKey): Promise<webcrypto.CryptoKey> {
  const keyObject = keyObjectOf(key);
  return cached(verifyKeys, key, () =>
    webcrypto.subtle.importKey('spki', keyObject.export({ format: 'der', type: 'spki' }), ED25519, false, [
      'verify',
    ]),
  );
}

function signingKey(key: PrivateKey): Promise<webcrypto.CryptoKey> {
  const keyObject = keyObjectOf(key);
  return cached(signKeys, key, () =>
    webcrypto.subtle.importKey('pkcs8', keyObject.export({ format: 'der', type: 'pkcs8' }), ED25519, false, [
      'sign',
    ]),
  );
}

/**
 * {@link signJws} on the libuv thread pool (WebCrypto). Gives the same JWS as `signJws`.
 * The imported WebCrypto key is cached per `PrivateKey` object: reuse the object.
 *
 * @throws ParleyError `PROTOCOL_MALFORMED_FRAME` (lone surrogate), `KEY_INVALID` (key refused).
 */
export async function signJwsAsync(payload: string, key: PrivateKey): Promise<string> {
  const input = signingInputOf(payload);
  const cryptoKey = await signingKey(key);
  const signature = await webcrypto.subtle.sign(ED25519, cryptoKey, Buffer.from(input, 'latin1'));
  return `${input}.${base64UrlEncode(new Uint8Array(signature))}`;
}

/**
 * {@link verifyJws} on the libuv thread pool (WebCrypto): same accepted forms, same errors.
 * The imported WebCrypto key is cached per `PublicKey` object: reuse the object.
 *
 * @throws ParleyError `PROTOCOL_NOT_JWS`, `PROTOCOL_BAD_SIGNATURE`, `PROTOCOL_MALFORMED_FRAME`
 *   as {@link verifyJws}; `KEY_INVALID` if WebCrypto refuses the key.
 */
export async function verifyJwsAsync(jws: string, key: PublicKey): Promise<string> {
  const parsed = parseCompactJws(jws);
  const cryptoKey = await verifyingKey(key);
  let ok: boolean;
  try {
    ok = await webcrypto.subtle.verify(ED25519, cryptoKey, parsed.signature, parsed.signingInput);
  } catch (err) {
    throw badSignature(err);
  }
  if (!ok) throw badSignature();
  return payloadText(parsed);
}

/**
 * The payload text of a compact JWS **without verifying it**. For logs and diagnostics only:
 * never act on what it returns.
 *
 * @throws ParleyError `PROTOCOL_NOT_JWS` / `PROTOCOL_MALFORMED_FRAME` as {@link verifyJws}.
 */
export function decodeJwsPayloadUnverified(jws: string): string {
  return payloadText(parseCompactJws(jws));
}

/** The start of a payload that names its `_ObjectType` first (as Parley and the reference do). */
const OBJECT_TYPE_PREFIX_RE = /^\s*\{\s*"_ObjectType"\s*:\s*"([A-Za-z0-9_]{1,64})"/;

/**
 * The `_ObjectType` of a compact JWS's payload when the payload starts with it, read from the
 * first 96 base64url characters only (a frame can be a megabyte; routing it must not decode it
 * whole). Unverified, for routing: the handler verifies and decodes the frame. `undefined` when
 * the payload does not start that way (the caller then decodes it in full).
 */
export function peekJwsObjectType(jws: string): string | undefined {
  const dot = jws.indexOf('.');
  if (dot < 0) return undefined;
  const end = jws.indexOf('.', dot + 1);
  const segment = jws.slice(dot + 1, Math.min(end < 0 ? jws.length : end, dot + 1 + 96));
  // Whole 4-character groups only: a cut group would decode to a partial byte.
  const text = Buffer.from(segment.slice(0, segment.length - (segment.length % 4)), 'base64url').toString(
    'latin1',
  );
  return OBJECT_TYPE_PREFIX_RE.exec(text)?.[1];
}
