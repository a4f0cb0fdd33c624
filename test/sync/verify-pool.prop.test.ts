/**
 * The verify pool (`src/protocol/verify-pool.ts`) against `verifyJws`: its threads reimplement
 * the two wire forms of the JWS rules in plain JavaScript, so both must give the same answer,
 * payload or error code, for any input: valid JWS, a flipped character anywhere, the wrong key,
 * other headers (left to `verifyJws` by the threads), non-canonical base64url, extra segments,
 * a payload that is not UTF-8. Real worker threads; no mocks. The pool under test holds
 * `alice`'s private key, so her signatures take the sign-again path and `bob`'s the verify path:
 * both must agree with `verifyJws`.
 */
import { sign, verify } from 'node:crypto';
import { fc, it } from '@fast-check/vitest';
import { afterAll, describe, expect } from 'vitest';
import { ParleyError } from '../../src/errors.js';
import {
  base64UrlEncode,
  base64UrlEncodeText,
  EDDSA_PROTECTED_HEADER,
  generatePrivateKey,
  signJws,
  verifyJws,
} from '../../src/protocol/index.js';
import {
  createVerifyPool,
  inThreadVerifier,
  type JwsCheck,
  type JwsResult,
} from '../../src/protocol/verify-pool.js';
import { signWithRandomNonce } from '../helpers/ed25519-other-nonce.js';

const alice = generatePrivateKey();
const bob = generatePrivateKey();

/** What `verifyJws` says: the payload, or the error code. */
function reference({ jws, key }: JwsCheck): string {
  try {
    return `ok:${verifyJws(jws, key)}`;
  } catch (err) {
    if (err instanceof ParleyError) return `err:${err.code}`;
    throw err;
  }
}

const shown = (r: JwsResult): string => (typeof r === 'string' ? `ok:${r}` : `err:${r.code}`);

/** A JWS over raw payload bytes with any header segment, signed by `key`. */
function signRaw(header: string, payload: Uint8Array, key = alice): string {
  const input = `${header}.${base64UrlEncode(payload)}`;
  return `${input}.${base64UrlEncode(sign(null, Buffer.from(input, 'latin1'), key.keyObject))}`;
}

const header = fc.constantFrom(
  EDDSA_PROTECTED_HEADER,
  '',
  base64UrlEncodeText('{"alg":"EdDSA","kid":"k1"}'),
  base64UrlEncodeText('{"alg":"none"}'),
  base64UrlEncodeText('{"alg":"EdDSA","crit":["b64"]}'),
  base64UrlEncodeText('{"alg":"EdDSA","b64":false}'),
  base64UrlEncodeText('not json'),
  'eyJhbGciOiJFZERTQSJ9=',
  '!!',
);

const jwsCase = fc.oneof(
  // signed text, maybe tampered at one character
  fc
    .record({
      header,
      text: fc.string({ unit: 'grapheme', maxLength: 200 }),
      signer: fc.constantFrom(alice, bob),
      flipAt: fc.option(fc.nat(), { nil: undefined }),
      to: fc.constantFrom('A', 'B', '_', '-', '.', '=', '0'),
    })
    .map(({ header: h, text, signer, flipAt, to }) => {
      let jws = signRaw(h, Buffer.from(text, 'utf8'), signer);
      if (flipAt !== undefined && jws.length > 0) {
        const at = flipAt % jws.length;
        jws = jws.slice(0, at) + to + jws.slice(at + 1);
      }
      return jws;
    }),
  // bytes that are not UTF-8
  fc.uint8Array({ maxLength: 40 }).map((bytes) => signRaw(EDDSA_PROTECTED_HEADER, bytes)),
  // arbitrary strings
  fc.string({ maxLength: 120 }),
);

describe('verify pool', () => {
  const pool = createVerifyPool({ threads: 2, chunk: 7, minBatch: 1, signers: [alice] });
  afterAll(() => pool.close());

  it.prop([fc.array(fc.record({ jws: jwsCase, mine: fc.boolean() }), { minLength: 1, maxLength: 40 })], {
    numRuns: 60,
  })('gives verifyJws’s answer for every item, in order, valid or not', async (cases) => {
    const items: JwsCheck[] = cases.map((c) => ({ jws: c.jws, key: (c.mine ? alice : bob).publicKey }));
    const results = await pool.verifyMany(items);
    expect(results.map(shown)).toEqual(items.map(reference));
  });

  it('verifies large batches across its threads, and agrees with WebCrypto', async () => {
    const items: JwsCheck[] = Array.from({ length: 1500 }, (_, i) => ({
      jws: signJws(JSON.stringify({ i, pad: 'x'.repeat(i % 300) }), i % 3 === 0 ? bob : alice),
      key: (i % 3 === 0 ? bob : alice).publicKey,
    }));
    // Every 7th is signed by the other party: it must fail.
    for (let i = 0; i < items.length; i += 7)
      items[i] = { ...items[i]!, key: (i % 3 === 0 ? alice : bob).publicKey };
    const [pooled, here] = await Promise.all([pool.verifyMany(items), inThreadVerifier.verifyMany(items)]);
    expect(pooled.map(shown)).toEqual(here.map(shown));
    expect(pooled.filter((r) => typeof r !== 'string')).toHaveLength(Math.ceil(1500 / 7));
  });

  it('accepts its own key’s valid signatures made with another nonce, and refuses forgeries of it', async () => {
    const input = `${EDDSA_PROTECTED_HEADER}.${base64UrlEncodeText('{"cid":"c1"}')}`;
    const data = Buffer.from(input, 'latin1');
    const deterministic = sign(null, data, alice.keyObject);
    const other = signWithRandomNonce(data, alice);
    // Another valid signature: not the one signing again gives, yet `verify` accepts it.
    expect(other.equals(deterministic)).toBe(false);
    expect(verify(null, data, alice.publicKey.keyObject, other)).toBe(true);
    const jwsWith = (sig: Uint8Array): string => `${input}.${base64UrlEncode(sig)}`;
    const forged = Buffer.from(other);
    forged[40]! ^= 1;
    const items: JwsCheck[] = [
      { jws: jwsWith(deterministic), key: alice.publicKey },
      { jws: jwsWith(other), key: alice.publicKey },
      { jws: jwsWith(forged), key: alice.publicKey },
      { jws: jwsWith(sign(null, data, bob.keyObject)), key: alice.publicKey },
      { jws: jwsWith(other), key: bob.publicKey },
    ];
    const results = (await pool.verifyMany(items)).map(shown);
    expect(results).toEqual(items.map(reference));
    expect(results).toEqual([
      'ok:{"cid":"c1"}',
      'ok:{"cid":"c1"}',
      'err:PROTOCOL_BAD_SIGNATURE',
      'err:PROTOCOL_BAD_SIGNATURE',
      'err:PROTOCOL_BAD_SIGNATURE',
    ]);
  });

  it('takes a single large frame to a thread (minChars), valid or tampered, with verifyJws’s answer', async () => {
    // Its signer holds alice's key: past 32 KiB the thread verifies instead of signing again.
    const big = createVerifyPool({ threads: 1, signers: [alice] });
    try {
      const jws = signJws(JSON.stringify({ pad: 'p'.repeat(200_000) }), alice);
      const tampered = `${jws.slice(0, 1000)}${jws[1000] === 'A' ? 'B' : 'A'}${jws.slice(1001)}`;
      const items: JwsCheck[] = [
        { jws, key: alice.publicKey },
        { jws: tampered, key: alice.publicKey },
      ];
      expect((await big.verifyMany(items)).map(shown)).toEqual(items.map(reference));
    } finally {
      await big.close();
    }
  });

  it('close() rejects the calls in progress with SYNC_ABORTED, refuses new ones, and is idempotent', async () => {
    const own = createVerifyPool({ threads: 1, minBatch: 1 });
    const items: JwsCheck[] = Array.from({ length: 2000 }, (_, i) => ({
      jws: signJws(`{"i":${i}}`, alice),
      key: alice.publicKey,
    }));
    expect((await own.verifyMany(items.slice(0, 3))).every((r) => typeof r === 'string')).toBe(true);
    const inProgress = expect(own.verifyMany(items)).rejects.toMatchObject({ code: 'SYNC_ABORTED' });
    await Promise.all([own.close(), own.close()]);
    await inProgress;
    await expect(own.verifyMany(items.slice(0, 3))).rejects.toMatchObject({ code: 'SYNC_ABORTED' });
  });
});
