/**
 * Ed25519 compliance keys over `node:crypto`.
 *
 * LIP-1 v1 signs every frame with the VASP's compliance key: a JWK `{"kty":"OKP","crv":"Ed25519"}`
 * off chain, 32 raw public-key bytes on chain (lip1-v1.md §2.2). Keys are immutable values; the
 * `KeyObject` is what `sign`/`verify` use.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { ParleyError } from '../errors.js';
import { base64UrlEncode, tryBase64UrlDecode } from './base64url.js';

/** An Ed25519 public key. `hex` and `raw` are the 32 raw bytes (lowercase hex). */
export interface PublicKey {
  readonly hex: string;
  readonly raw: Uint8Array;
  readonly keyObject: KeyObject;
}

/** An Ed25519 private key with its public half. `seedHex` is the 32-byte RFC 8032 seed. */
export interface PrivateKey {
  readonly keyObject: KeyObject;
  readonly publicKey: PublicKey;
  readonly seedHex: string;
}

/** JWK of an Ed25519 public key (RFC 8037). Other members are ignored. */
export const Ed25519PublicJwk = z.object({
  kty: z.literal('OKP'),
  crv: z.literal('Ed25519'),
  x: z.string(),
});
export type Ed25519PublicJwk = z.infer<typeof Ed25519PublicJwk>;

/** JWK of an Ed25519 private key (RFC 8037): the public members plus the seed `d`. */
export const Ed25519PrivateJwk = Ed25519PublicJwk.extend({ d: z.string() });
export type Ed25519PrivateJwk = z.infer<typeof Ed25519PrivateJwk>;

const KEY_BYTES = 32;
const HEX_KEY_RE = /^[0-9a-fA-F]{64}$/;
// DER prefixes of PKCS#8 / SPKI for Ed25519 (RFC 8410): the 32 key bytes follow.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

function keyInvalid(message: string, cause?: unknown): ParleyError {
  return new ParleyError('KEY_INVALID', message, cause === undefined ? undefined : { cause });
}

function decodeKeyBytes(b64: string, what: string): Uint8Array {
  const bytes = tryBase64UrlDecode(b64);
  if (bytes === undefined || bytes.length !== KEY_BYTES) {
    throw keyInvalid(`${what} must be ${KEY_BYTES} bytes of unpadded base64url`);
  }
  return bytes;
}

/**
 * Builds a public key from its 32 raw bytes.
 *
 * @throws ParleyError `KEY_INVALID` unless `raw` is 32 bytes that OpenSSL accepts as a key.
 */
export function publicKeyFromRaw(raw: Uint8Array): PublicKey {
  if (!(raw instanceof Uint8Array) || raw.length !== KEY_BYTES) {
    throw keyInvalid(`an Ed25519 public key is ${KEY_BYTES} bytes`);
  }
  let keyObject: KeyObject;
  try {
    keyObject = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
  } catch (err) {
    throw keyInvalid('not an Ed25519 public key', err);
  }
  const copy = Uint8Array.from(raw);
  return Object.freeze({ hex: Buffer.from(copy).toString('hex'), raw: copy, keyObject });
}

/**
 * Builds a public key from 64 hex characters (the on-chain form), either case.
 *
 * @throws ParleyError `KEY_INVALID` on anything else.
 */
export function publicKeyFromHex(hex: string): PublicKey {
  if (typeof hex !== 'string' || !HEX_KEY_RE.test(hex)) {
    throw keyInvalid('an Ed25519 public key is 64 hex characters');
  }
  return publicKeyFromRaw(Buffer.from(hex, 'hex'));
}

/**
 * Builds a public key from an OKP/Ed25519 JWK. A private JWK is accepted; only `x` is used.
 *
 * @throws ParleyError `KEY_INVALID` when `jwk` is not an Ed25519 JWK with a 32-byte `x`.
 */
export function publicKeyFromJwk(jwk: unknown): PublicKey {
  const parsed = Ed25519PublicJwk.safeParse(jwk);
  if (!parsed.success) throw keyInvalid('not an OKP/Ed25519 JWK', parsed.error);
  return publicKeyFromRaw(decodeKeyBytes(parsed.data.x, 'JWK member "x"'));
}

/** The public JWK `{kty, crv, x}` of `key`. */
export function publicKeyToJwk(key: PublicKey): Ed25519PublicJwk {
  return { kty: 'OKP', crv: 'Ed25519', x: base64UrlEncode(key.raw) };
}

function privateKeyFromSeed(seed: Uint8Array): PrivateKey {
  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  } catch (err) {
    throw keyInvalid('not an Ed25519 private key', err);
  }
  const spki = createPublicKey(keyObject).export({ format: 'der', type: 'spki' });
  const publicKey = publicKeyFromRaw(spki.subarray(spki.length - KEY_BYTES));
  return Object.freeze({ keyObject, publicKey, seedHex: Buffer.from(seed).toString('hex') });
}

/**
 * Builds a private key from its 32-byte seed in hex (either case).
 *
 * @throws ParleyError `KEY_INVALID` unless `hex` is 64 hex characters.
 */
export function privateKeyFromSeedHex(hex: string): PrivateKey {
  if (typeof hex !== 'string' || !HEX_KEY_RE.test(hex)) {
    throw keyInvalid('an Ed25519 seed is 64 hex characters');
  }
  return privateKeyFromSeed(Buffer.from(hex, 'hex'));
}

/**
 * Builds a private key from an OKP/Ed25519 private JWK. When `x` is present it must match the
 * public key derived from `d` (a mismatched pair would sign frames no peer can verify).
 *
 * @throws ParleyError `KEY_INVALID` on a malformed JWK or an `x` that does not belong to `d`.
 */
export function privateKeyFromJwk(jwk: unknown): PrivateKey {
  const parsed = Ed25519PublicJwk.partial({ x: true }).extend({ d: z.string() }).safeParse(jwk);
  if (!parsed.success) throw keyInvalid('not an OKP/Ed25519 private JWK', parsed.error);
  const key = privateKeyFromSeed(decodeKeyBytes(parsed.data.d, 'JWK member "d"'));
  if (parsed.data.x !== undefined) {
    const x = decodeKeyBytes(parsed.data.x, 'JWK member "x"');
    if (Buffer.from(x).toString('hex') !== key.publicKey.hex) {
      throw keyInvalid('JWK member "x" is not the public key of "d"');
    }
  }
  return key;
}

/** The private JWK `{kty, crv, x, d}` of `key`. Handle with care: it contains the secret. */
export function privateKeyToJwk(key: PrivateKey): Ed25519PrivateJwk {
  return {
    kty: 'OKP',
    crv: 'Ed25519',
    x: base64UrlEncode(key.publicKey.raw),
    d: Buffer.from(key.seedHex, 'hex').toString('base64url'),
  };
}

/** Generates a fresh random Ed25519 private key. */
export function generatePrivateKey(): PrivateKey {
  const { privateKey } = generateKeyPairSync('ed25519');
  const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
  return privateKeyFromSeed(pkcs8.subarray(pkcs8.length - KEY_BYTES));
}
