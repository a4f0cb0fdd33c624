/**
 * Ed25519 signatures made with a random nonce instead of RFC 8032's deterministic one: valid for
 * any verifier (the verification equation does not see how the nonce was chosen), and different
 * from the signature `node:crypto` makes over the same bytes. What a signer other than OpenSSL
 * (an HSM, another library) may produce; tests use it to show that such a signature is still
 * accepted where the node checks its own signatures by signing again.
 *
 * Plain BigInt arithmetic on edwards25519 (RFC 8032 §5.1), for tests only: slow, not constant-time.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { PrivateKey } from '../../src/protocol/index.js';

const P = 2n ** 255n - 19n;
const L = 2n ** 252n + 27742317777372353535851937790883648493n;
const mod = (a: bigint, m = P): bigint => ((a % m) + m) % m;

function pow(base: bigint, exp: bigint): bigint {
  let result = 1n;
  let b = mod(base);
  for (let e = exp; e > 0n; e >>= 1n) {
    if (e & 1n) result = mod(result * b);
    b = mod(b * b);
  }
  return result;
}
const inv = (a: bigint): bigint => pow(a, P - 2n);
const D = mod(-121665n * inv(121666n));

/** A point in extended coordinates (X, Y, Z, T), x = X/Z, y = Y/Z, xy = T/Z. */
type Point = readonly [bigint, bigint, bigint, bigint];
const BX = 15112221349535400772501151409588531511454012693041857206046113283949847762202n;
const BY = 46316835694926478169428394003475163141307993866256225615783033603165251855960n;
const BASE: Point = [BX, BY, 1n, mod(BX * BY)];
const ZERO: Point = [0n, 1n, 1n, 0n];

function add([x1, y1, z1, t1]: Point, [x2, y2, z2, t2]: Point): Point {
  const a = mod((y1 - x1) * (y2 - x2));
  const b = mod((y1 + x1) * (y2 + x2));
  const c = mod(t1 * 2n * D * t2);
  const d = mod(z1 * 2n * z2);
  const e = b - a;
  const f = d - c;
  const g = d + c;
  const h = b + a;
  return [mod(e * f), mod(g * h), mod(f * g), mod(e * h)];
}

function times(scalar: bigint, point: Point): Point {
  let result = ZERO;
  let addend = point;
  for (let k = scalar; k > 0n; k >>= 1n) {
    if (k & 1n) result = add(result, addend);
    addend = add(addend, addend);
  }
  return result;
}

const littleEndian = (bytes: Uint8Array): bigint =>
  BigInt(`0x${Buffer.from(bytes).reverse().toString('hex') || '0'}`);
const toLittleEndian32 = (n: bigint): Buffer =>
  Buffer.from(n.toString(16).padStart(64, '0'), 'hex').reverse();

function encode([x, y, z]: Point): Buffer {
  const zi = inv(z);
  const out = toLittleEndian32(mod(y * zi));
  if (mod(x * zi) & 1n) out[31]! |= 0x80;
  return out;
}

const sha512 = (...parts: Uint8Array[]): Buffer => {
  const hash = createHash('sha512');
  for (const part of parts) hash.update(part);
  return hash.digest();
};

/** A valid Ed25519 signature of `message` by `key`, with a random nonce. */
export function signWithRandomNonce(message: Uint8Array, key: PrivateKey): Buffer {
  const h = sha512(Buffer.from(key.seedHex, 'hex'));
  const clamped = Buffer.from(h.subarray(0, 32));
  clamped[0]! &= 248;
  clamped[31]! &= 127;
  clamped[31]! |= 64;
  const a = littleEndian(clamped);
  const publicKey = encode(times(a, BASE));
  if (publicKey.toString('hex') !== key.publicKey.hex)
    throw new Error('key derivation disagrees with node:crypto');
  const r = mod(littleEndian(randomBytes(64)), L);
  const R = encode(times(r, BASE));
  const k = mod(littleEndian(sha512(R, publicKey, message)), L);
  return Buffer.concat([R, toLittleEndian32(mod(r + k * a, L))]);
}
