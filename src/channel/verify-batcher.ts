/**
 * Signature work of one channel, gathered per turn of the event loop and handed to the node's
 * pool together: the peer's signatures to check ({@link createVerifyBatcher}) and this node's
 * frames to sign ({@link createSignBatcher}). Under load a socket read delivers many frames at
 * once; done one WebCrypto job each, they cost the event loop about a third of what the
 * signatures themselves cost. Gathered, a burst goes to the pool's threads in one message; a
 * lone frame (the channel has time to spare) is done at once on this thread by the pool, without
 * a job or a thread hop.
 */
import { isParleyError, ParleyError } from '../errors.js';
import { signJwsAsync } from '../protocol/jws.js';
import type { PrivateKey, PublicKey } from '../protocol/keys.js';
import type { JwsCheck, JwsSigner, JwsVerifier } from '../protocol/verify-pool.js';

/** Verifies one compact JWS; resolves with its payload text. */
export type VerifyJws = (jws: string, key: PublicKey) => Promise<string>;

/** Signs one payload text as a compact JWS with this node's key. */
export type SignJws = (payload: string) => Promise<string>;

interface Waiting<T> {
  input: T;
  resolve: (result: string) => void;
  reject: (err: unknown) => void;
}

/**
 * Calls `many` once per turn of the event loop with every input given during it, and settles
 * each caller with its own result (a string, or the `ParleyError` of that input).
 */
function batched<T>(
  many: (inputs: T[]) => Promise<Array<string | ParleyError | undefined>>,
  what: string,
): (input: T) => Promise<string> {
  let batch: Array<Waiting<T>> = [];

  function flush(): void {
    const taken = batch;
    batch = [];
    many(taken.map((entry) => entry.input)).then(
      (results) => {
        for (let i = 0; i < taken.length; i++) {
          const result = results[i];
          const entry = taken[i]!;
          if (typeof result === 'string') entry.resolve(result);
          else entry.reject(result ?? new ParleyError('PROTOCOL_BAD_SIGNATURE', `no ${what} result`));
        }
      },
      (cause: unknown) => {
        // The pool closed or its thread died: not a verdict on any of these inputs.
        const err = isParleyError(cause, 'TRANSPORT_CLOSED')
          ? cause
          : new ParleyError('TRANSPORT_CLOSED', `${what} stopped`, { cause });
        for (const entry of taken) entry.reject(err);
      },
    );
  }

  return (input) =>
    new Promise<string>((resolve, reject) => {
      batch.push({ input, resolve, reject });
      if (batch.length === 1) setImmediate(flush);
    });
}

/**
 * @returns a function that rejects with the `ParleyError` `verifyJws` would throw for a JWS
 *   that does not verify, and with `TRANSPORT_CLOSED` when the verifier is gone (closing node).
 */
export function createVerifyBatcher(verifier: JwsVerifier): VerifyJws {
  const verify = batched<JwsCheck>((checks) => verifier.verifyMany(checks), 'signature verification');
  return (jws, key) => verify({ jws, key });
}

/**
 * @returns a function that resolves with the JWS `signJws(payload, key)` gives, or rejects with
 *   the `ParleyError` it would throw. Once the signer is gone (a closing node) it signs on this
 *   thread: an answer being made as the node closes is still signed.
 */
export function createSignBatcher(signer: JwsSigner, key: PrivateKey): SignJws {
  const signHere = (text: string): Promise<string | ParleyError> =>
    signJwsAsync(text, key).catch((err: unknown) => {
      if (err instanceof ParleyError) return err;
      throw err;
    });
  return batched<string>(
    (texts) => signer.signMany(texts, key).catch(() => Promise.all(texts.map(signHere))),
    'signing',
  );
}
