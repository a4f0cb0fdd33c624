// @ts-check
/**
 * The thread of a verify pool (`verify-pool.ts`): verifies batches of compact JWS with
 * `node:crypto`'s one-shot Ed25519 `verify` and answers each with its payload text or why it
 * failed.
 *
 * Plain JavaScript with `node:crypto` only, so the same file runs under tsx, vitest and plain
 * node with no loader in the thread (a TypeScript worker would need tsx registered inside it:
 * slower to start and larger per thread, and a loader path that differs per runner).
 *
 * It implements only the two protected headers seen on the wire (`{"alg":"EdDSA"}` as Parley
 * sends it, and the reference's empty header), with exactly the rules of `jws.ts`: three
 * segments, strict canonical unpadded base64url, a 64-byte signature, the signature checked over
 * the received `header.payload` bytes, a payload that is well-formed UTF-8. Any other header is
 * answered `OTHER_HEADER`, and the pool checks that JWS with `verifyJws` on its own thread, so the
 * header rules live in one place. `test/sync/verify-pool.prop.test.ts` holds the two
 * implementations to the same answers.
 *
 * A signature by a key of `workerData.signers` (`{ hex, key: KeyObject }[]`, the node's own) is
 * first compared, in constant time, with the signature this thread makes over the same bytes
 * (Ed25519 signing is deterministic and, for inputs up to 32 KiB, cheaper than verifying); only
 * when they differ, or for a larger input, is it verified. A match is a valid signature, so the
 * answer is always `verify`'s.
 *
 * Message in: `{ id, keys: string[] (raw public keys, hex), jws: string[], keyOf: number[] }`.
 * Message out: `{ id, payloads: (string | null)[], codes: (string | null)[] }`; a code is one of
 * `PROTOCOL_NOT_JWS`, `PROTOCOL_BAD_SIGNATURE`, `PROTOCOL_MALFORMED_FRAME`, `KEY_INVALID`,
 * `OTHER_HEADER`.
 *
 * It also signs, with a key of `workerData.signers`, as `signJws` of `jws.ts` does (header
 * `{"alg":"EdDSA"}`, the payload's UTF-8 bytes): message in `{ id, op: 'sign', signer: string
 * (raw public key, hex), texts: string[] }`, out `{ id, payloads: (string | null)[] (the compact
 * JWS), codes }`, a code being `PROTOCOL_MALFORMED_FRAME` (a lone surrogate: the payload has no
 * UTF-8 form) or `KEY_INVALID` (not a signer of this thread).
 *
 * With `workerData.niceness` above 0 (at most 19) the thread lowers its own scheduling priority to
 * it, when the process runs above it (on Linux, where the nice value is per thread), so that a background pool's work yields the cores
 * to the node's other threads; elsewhere, or where not allowed, it runs at the process's.
 */
import { createPublicKey, sign, timingSafeEqual, verify } from 'node:crypto';
import { getPriority, setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';

const niceness = Math.min(19, Number(workerData?.niceness ?? 0));
if (niceness > 0 && process.platform === 'linux') {
  try {
    // On Linux the nice value is per thread, and setpriority(2) for "process 0" sets the
    // calling thread's alone (elsewhere it would set the whole process's: not done there).
    // Never above the priority the process already runs at.
    if (getPriority(0) < niceness) setPriority(0, niceness);
  } catch {
    // Not allowed: the thread keeps the process's priority (documented above).
  }
}

const EDDSA_PROTECTED_HEADER = 'eyJhbGciOiJFZERTQSJ9';
const BASE64URL_RE = /^[A-Za-z0-9_-]*$/;
const LONE_SURROGATE_RE = /\p{Cs}/u;
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const HEX_KEY_RE = /^[0-9a-f]{64}$/;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** @type {Map<string, import('node:crypto').KeyObject | null>} */
const keys = new Map();

/** Raw public key (hex) → the private key that makes its signatures. */
const signerOf = new Map(
  /** @type {{ hex: string, key: import('node:crypto').KeyObject }[]} */ (workerData?.signers ?? []).map(
    (s) => [s.hex, s.key],
  ),
);

/**
 * Largest signed input checked by signing again: signing hashes its input twice, verifying once,
 * so past a few tens of KiB (with SHA-512 at about 2 ns a byte) signing costs more.
 */
const SIGN_AGAIN_MAX_BYTES = 32 * 1024;

/**
 * Whether `signature` is valid over `data` for `key` (`hex`): the same signature made again
 * when this thread holds the private key and `data` is small, else (or when it differs)
 * Ed25519 verification.
 * @param {string} hex
 * @param {import('node:crypto').KeyObject} key
 * @param {Buffer} data
 * @param {Buffer} signature
 */
function valid(hex, key, data, signature) {
  const signer = signerOf.get(hex);
  if (
    signer !== undefined &&
    data.length <= SIGN_AGAIN_MAX_BYTES &&
    timingSafeEqual(sign(null, data, signer), signature)
  )
    return true;
  return verify(null, data, key, signature);
}

/** @param {string} hex */
function keyOf(hex) {
  let key = keys.get(hex);
  if (key === undefined) {
    key = null;
    if (HEX_KEY_RE.test(hex)) {
      try {
        key = createPublicKey({
          key: Buffer.concat([SPKI_PREFIX, Buffer.from(hex, 'hex')]),
          format: 'der',
          type: 'spki',
        });
      } catch {
        key = null;
      }
    }
    keys.set(hex, key);
  }
  return key;
}

/**
 * The 6-bit value of a base64url character (the alphabet checked before).
 * @param {number} code
 */
function sextet(code) {
  if (code >= 97) return code - 71;
  if (code >= 65) return code === 95 ? 63 : code - 65;
  return code === 45 ? 62 : code + 4;
}

/**
 * Strict base64url as `base64url.ts` decodes it, or undefined.
 * @param {string} text
 */
function decode(text) {
  const rest = text.length % 4;
  if (rest === 1 || !BASE64URL_RE.test(text)) return undefined;
  // Canonical form (as `base64url.ts`): the last character's unused low bits are zero.
  if (rest > 1 && (sextet(text.charCodeAt(text.length - 1)) & (rest === 2 ? 0x0f : 0x03)) !== 0)
    return undefined;
  return Buffer.from(text, 'base64url');
}

/**
 * @param {unknown} jws
 * @param {string} hex
 * @param {import('node:crypto').KeyObject | null} key
 * @returns {[string, null] | [null, string]}
 */
function check(jws, hex, key) {
  if (typeof jws !== 'string') return [null, 'PROTOCOL_NOT_JWS'];
  const first = jws.indexOf('.');
  const second = first < 0 ? -1 : jws.indexOf('.', first + 1);
  if (second < 0 || jws.indexOf('.', second + 1) >= 0) return [null, 'PROTOCOL_NOT_JWS'];
  const header = jws.slice(0, first);
  if (header !== '' && header !== EDDSA_PROTECTED_HEADER) return [null, 'OTHER_HEADER'];
  const payload = decode(jws.slice(first + 1, second));
  if (payload === undefined) return [null, 'PROTOCOL_NOT_JWS'];
  const signature = decode(jws.slice(second + 1));
  if (signature === undefined || signature.length !== 64) return [null, 'PROTOCOL_NOT_JWS'];
  if (key === null) return [null, 'KEY_INVALID'];
  let ok = false;
  try {
    ok = valid(hex, key, Buffer.from(jws.slice(0, second), 'latin1'), signature);
  } catch {
    ok = false;
  }
  if (!ok) return [null, 'PROTOCOL_BAD_SIGNATURE'];
  try {
    return [utf8.decode(payload), null];
  } catch {
    return [null, 'PROTOCOL_MALFORMED_FRAME'];
  }
}

/**
 * Signs each text as a compact JWS with the signer `hex`.
 * @param {{ id: number, signer: string, texts: string[] }} message
 */
function signAll(message) {
  const signer = signerOf.get(message.signer);
  /** @type {(string | null)[]} */
  const payloads = new Array(message.texts.length);
  /** @type {(string | null)[]} */
  const codes = new Array(message.texts.length);
  for (let i = 0; i < message.texts.length; i++) {
    const text = message.texts[i];
    payloads[i] = null;
    if (signer === undefined) codes[i] = 'KEY_INVALID';
    else if (typeof text !== 'string' || LONE_SURROGATE_RE.test(text)) codes[i] = 'PROTOCOL_MALFORMED_FRAME';
    else {
      const input = `${EDDSA_PROTECTED_HEADER}.${Buffer.from(text, 'utf8').toString('base64url')}`;
      try {
        payloads[i] = `${input}.${sign(null, Buffer.from(input, 'latin1'), signer).toString('base64url')}`;
        codes[i] = null;
      } catch {
        codes[i] = 'KEY_INVALID';
      }
    }
  }
  parentPort?.postMessage({ id: message.id, payloads, codes });
}

parentPort?.on(
  'message',
  /** @param {{ id: number, op?: 'sign', signer: string, texts: string[], keys: string[], jws: string[], keyOf: number[] }} message */
  (message) => {
    if (message.op === 'sign') {
      signAll(message);
      return;
    }
    const resolved = message.keys.map(keyOf);
    /** @type {(string | null)[]} */
    const payloads = new Array(message.jws.length);
    /** @type {(string | null)[]} */
    const codes = new Array(message.jws.length);
    for (let i = 0; i < message.jws.length; i++) {
      const k = message.keyOf[i] ?? -1;
      const [payload, code] = check(message.jws[i], message.keys[k] ?? '', resolved[k] ?? null);
      payloads[i] = payload;
      codes[i] = code;
    }
    parentPort?.postMessage({ id: message.id, payloads, codes });
  },
);
