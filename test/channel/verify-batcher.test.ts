import { afterEach, describe, expect, it } from 'vitest';
import { createSignBatcher, createVerifyBatcher } from '../../src/channel/verify-batcher.js';
import { isParleyError } from '../../src/errors.js';
import { generatePrivateKey, signJws } from '../../src/protocol/index.js';
import { createVerifyPool, type VerifyPool } from '../../src/protocol/verify-pool.js';

/** Flips one character of the signature segment. */
function tamper(jws: string): string {
  const last = jws.at(-2) === 'A' ? 'B' : 'A';
  return `${jws.slice(0, -2)}${last}${jws.at(-1)}`;
}

describe('verify batcher (real worker threads)', () => {
  let pool: VerifyPool | undefined;
  afterEach(async () => {
    await pool?.close();
    pool = undefined;
  });

  it('verifies frames that arrive together in one pool call, each with its own verdict', async () => {
    const key = generatePrivateKey();
    const other = generatePrivateKey();
    let calls = 0;
    let largest = 0;
    pool = createVerifyPool({ threads: 2, minBatch: 1 });
    const counting = {
      verifyMany: (items: Parameters<VerifyPool['verifyMany']>[0]) => {
        calls++;
        largest = Math.max(largest, items.length);
        return pool!.verifyMany(items);
      },
    };
    const verify = createVerifyBatcher(counting);
    const payloads = Array.from({ length: 40 }, (_, i) => JSON.stringify({ i, text: 'é'.repeat(i) }));
    const frames = payloads.map((p) => signJws(p, key));
    frames[7] = tamper(frames[7]!);
    frames[13] = signJws(payloads[13]!, other); // signed by someone else
    frames[21] = 'not a jws';

    const results = await Promise.allSettled(frames.map((f) => verify(f, key.publicKey)));

    expect(calls).toBe(1);
    expect(largest).toBe(40);
    results.forEach((r, i) => {
      if (i === 7 || i === 13) {
        expect(r.status === 'rejected' && isParleyError(r.reason, 'PROTOCOL_BAD_SIGNATURE')).toBe(true);
      } else if (i === 21) {
        expect(r.status === 'rejected' && isParleyError(r.reason, 'PROTOCOL_NOT_JWS')).toBe(true);
      } else {
        expect(r).toEqual({ status: 'fulfilled', value: payloads[i] });
      }
    });
  });

  it('answers TRANSPORT_CLOSED, not a verdict, once the pool has closed', async () => {
    const key = generatePrivateKey();
    pool = createVerifyPool({ threads: 1, minBatch: 1 });
    const verify = createVerifyBatcher(pool);
    await pool.close();
    const err = await verify(signJws('{}', key), key.publicKey).catch((e: unknown) => e);
    expect(isParleyError(err, 'TRANSPORT_CLOSED')).toBe(true);
  });
});

describe('sign batcher (real worker threads)', () => {
  let pool: VerifyPool | undefined;
  afterEach(async () => {
    await pool?.close();
    pool = undefined;
  });

  it('signs payloads given together in one pool call, each as signJws does', async () => {
    const key = generatePrivateKey();
    pool = createVerifyPool({ threads: 2, signers: [key] });
    let calls = 0;
    let largest = 0;
    const counting = {
      signMany: (texts: readonly string[], k: Parameters<VerifyPool['signMany']>[1]) => {
        calls++;
        largest = Math.max(largest, texts.length);
        return pool!.signMany(texts, k);
      },
    };
    const sign = createSignBatcher(counting, key);
    const payloads = Array.from({ length: 40 }, (_, i) => JSON.stringify({ i, text: 'é€😀'.repeat(i) }));
    payloads[9] = 'lone \ud800 surrogate';
    const results = await Promise.allSettled(payloads.map((p) => sign(p)));
    expect(calls).toBe(1);
    expect(largest).toBe(40);
    results.forEach((r, i) => {
      if (i === 9) {
        expect(r.status === 'rejected' && isParleyError(r.reason, 'PROTOCOL_MALFORMED_FRAME')).toBe(true);
      } else {
        expect(r).toEqual({ status: 'fulfilled', value: signJws(payloads[i]!, key) });
      }
    });
    // A lone payload is signed at once on this thread, with the same answer.
    expect(await sign(payloads[3]!)).toBe(signJws(payloads[3]!, key));
  });

  it('signs with a key the pool does not hold, and after the pool closed, on this thread', async () => {
    const key = generatePrivateKey();
    const other = generatePrivateKey();
    pool = createVerifyPool({ threads: 1, signers: [other] });
    const sign = createSignBatcher(pool, key);
    const texts = ['{"a":1}', '{"b":2}', '{"c":3}'];
    expect(await Promise.all(texts.map((t) => sign(t)))).toEqual(texts.map((t) => signJws(t, key)));
    await pool.close();
    expect(await Promise.all(texts.map((t) => sign(t)))).toEqual(texts.map((t) => signJws(t, key)));
  });
});
