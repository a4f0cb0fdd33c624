/**
 * Signature checks of one channel, gathered per turn of the event loop and handed to a
 * {@link JwsVerifier} together. Under load a socket read delivers many frames at once; verified
 * one WebCrypto job each, they cost the event loop about a third of what the verification
 * itself costs. Gathered, a burst goes to the node's verify pool in one message (the pool checks
 * small calls on this thread, so a lone frame is not slowed down).
 */
import { isParleyError, ParleyError } from '../errors.js';
import type { PublicKey } from '../protocol/keys.js';
import type { JwsCheck, JwsVerifier } from '../protocol/verify-pool.js';

/** Verifies one compact JWS; resolves with its payload text. */
export type VerifyJws = (jws: string, key: PublicKey) => Promise<string>;

/**
 * @returns a function that rejects with the `ParleyError` `verifyJws` would throw for a JWS
 *   that does not verify, and with `TRANSPORT_CLOSED` when the verifier is gone (closing node).
 */
export function createVerifyBatcher(verifier: JwsVerifier): VerifyJws {
  let batch: Array<{ check: JwsCheck; resolve: (payload: string) => void; reject: (err: unknown) => void }> =
    [];

  function flush(): void {
    const taken = batch;
    batch = [];
    verifier.verifyMany(taken.map((entry) => entry.check)).then(
      (results) => {
        for (let i = 0; i < taken.length; i++) {
          const result = results[i];
          const entry = taken[i]!;
          if (typeof result === 'string') entry.resolve(result);
          else entry.reject(result ?? new ParleyError('PROTOCOL_BAD_SIGNATURE', 'no verification result'));
        }
      },
      (cause: unknown) => {
        // The verifier closed or its thread died: not a verdict on any of these signatures.
        const err = isParleyError(cause, 'TRANSPORT_CLOSED')
          ? cause
          : new ParleyError('TRANSPORT_CLOSED', 'signature verification stopped', { cause });
        for (const entry of taken) entry.reject(err);
      },
    );
  }

  return (jws, key) =>
    new Promise<string>((resolve, reject) => {
      batch.push({ check: { jws, key }, resolve, reject });
      if (batch.length === 1) setImmediate(flush);
    });
}
