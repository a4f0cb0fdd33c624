import { describe, expect, it } from 'vitest';
import { isParleyError } from '../../src/errors.js';
import { generatePrivateKey, signJws } from '../../src/protocol/index.js';
import { acceptingRetiredKeys, inThreadVerifier, type JwsCheck } from '../../src/protocol/verify-pool.js';

describe('acceptingRetiredKeys', () => {
  const old = generatePrivateKey();
  const current = generatePrivateKey();
  const stranger = generatePrivateKey();
  const retired = new Map([[current.publicKey.hex, [old.publicKey]]]);

  it('accepts a signature by a retired key of the same signer, after the current key failed; nothing else changes', async () => {
    let calls = 0;
    const counting = {
      verifyMany(items: readonly JwsCheck[]) {
        calls++;
        return inThreadVerifier.verifyMany(items);
      },
    };
    const verifier = acceptingRetiredKeys(counting, retired);
    const results = await verifier.verifyMany([
      { jws: signJws('"now"', current), key: current.publicKey },
      { jws: signJws('"before"', old), key: current.publicKey },
      { jws: signJws('"forged"', stranger), key: current.publicKey },
      // A retired key belongs to its signer only.
      { jws: signJws('"other"', old), key: stranger.publicKey },
    ]);
    expect(results.slice(0, 2)).toEqual(['"now"', '"before"']);
    expect(isParleyError(results[2], 'PROTOCOL_BAD_SIGNATURE')).toBe(true);
    expect(isParleyError(results[3], 'PROTOCOL_BAD_SIGNATURE')).toBe(true);
    // One call for all, one more for what failed and has a retired key to try.
    expect(calls).toBe(2);
    calls = 0;
    await verifier.verifyMany([{ jws: signJws('"now"', current), key: current.publicKey }]);
    expect(calls).toBe(1);
  });
});
