/**
 * Many compact JWS verified off the event loop: a small pool of worker threads (one per core by
 * default) that verify batches of `(jws, public key)` pairs with `node:crypto`'s one-shot
 * Ed25519 `verify`. Resync uses it to rebuild an object from its signed history, where thousands
 * of signatures arrive at once (PROTOCOL.md §7.4).
 *
 * Why threads and not WebCrypto. `verifyJwsAsync` (WebCrypto) does run on the libuv pool, but
 * each signature is one job created, dispatched and settled on the event loop (a promise, a
 * copy of the bytes, argument normalisation), and that costs the main thread a good part of
 * what the verification itself costs, on the same cores. Here one message carries
 * hundreds of pairs and comes back with their payloads; the parsing of the JWS and the base64
 * and UTF-8 decoding of its payload happen in the thread as well.
 *
 * A signature by one of the pool's own `signers` (this node's key: half of every history it
 * is sent) is checked by signing the same bytes again and comparing: Ed25519 signing is
 * deterministic (RFC 8032 §5.1.6) and cheaper than a verification. Only a signature
 * that differs is then verified, so the answer is the verification's in every case (a valid
 * signature made with another nonce, by another signer implementation, still passes) and only
 * its cost changes. The comparison is constant-time, and nothing of the signature computed here
 * leaves the thread: a sender of forged histories learns accept or reject, as with `verify`.
 *
 * The same threads sign, for the keys of `signers` (`signMany`): a channel under load signs
 * its frames in batches there rather than as one WebCrypto job each.
 *
 * A call of a single small item is done at once on the calling thread (`node:crypto`'s one-shot
 * Ed25519, no job, no thread woken): a lone frame is what a channel sees when its event loop
 * has time to spare, and there a hop to another thread costs more CPU than the signature itself
 * (docs/benchmarks.md). Under load frames arrive together and go to the threads.
 *
 * Threads start on first use and are unreferenced while idle, so a pool that is never used,
 * or idle, never keeps the process alive; `close()` terminates them.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { type ErrorCode, ParleyError } from '../errors.js';
import { observed, settled } from '../util/background.js';
import { signJws, signJwsAsync, verifyJws, verifyJwsAsync } from './jws.js';
import type { PrivateKey, PublicKey } from './keys.js';

/** One signature to check: a compact JWS and the key that must have signed it. */
export interface JwsCheck {
  jws: string;
  key: PublicKey;
}

/** The payload text of a JWS that verified, or the coded error of one that did not. */
export type JwsResult = string | ParleyError;

/** Verifies many JWS at once. */
export interface JwsVerifier {
  /**
   * Verifies every item; resolves with one result per item, in order: the payload text, or the
   * `ParleyError` `verifyJws` would have thrown (`PROTOCOL_NOT_JWS`, `PROTOCOL_BAD_SIGNATURE`,
   * `PROTOCOL_MALFORMED_FRAME`, `KEY_INVALID`). A bad item never rejects the call.
   * @throws ParleyError `SYNC_ABORTED` when the verifier closed before answering.
   */
  verifyMany(items: readonly JwsCheck[]): Promise<JwsResult[]>;
}

/** The compact JWS of a text signed, or the coded error of one that could not be. */
export type SignResult = string | ParleyError;

/** Signs many texts at once with one key. */
export interface JwsSigner {
  /**
   * Signs every text with `key` as `signJws` would (same JWS: Ed25519 is deterministic);
   * resolves with one result per text, in order: the compact JWS, or the `ParleyError`
   * `signJws` would have thrown (`PROTOCOL_MALFORMED_FRAME`, `KEY_INVALID`).
   * @throws ParleyError `SYNC_ABORTED` when the signer closed before answering.
   */
  signMany(texts: readonly string[], key: PrivateKey): Promise<SignResult[]>;
}

/** Verification on the calling thread's libuv pool (WebCrypto), one job per signature. */
export const inThreadVerifier: JwsVerifier = {
  verifyMany: (items) =>
    Promise.all(
      items.map(({ jws, key }) =>
        verifyJwsAsync(jws, key).catch((err: unknown) => {
          if (err instanceof ParleyError) return err;
          throw err;
        }),
      ),
    ),
};

/**
 * `inner`, also accepting a signature that does not verify with its key when it verifies with a
 * key the same signer used before (`retired`: a current key's hex → the keys it replaced, newest
 * first). After a key rotation, signed histories made before it stay verifiable (the node uses
 * this for resync histories only: a live command must carry the current key). A retired key is
 * tried only for what failed with the current one: an old signature costs one more check per
 * retired key, a current one nothing.
 */
export function acceptingRetiredKeys(
  inner: JwsVerifier,
  retired: ReadonlyMap<string, readonly PublicKey[]>,
): JwsVerifier {
  if (retired.size === 0) return inner;
  return {
    async verifyMany(items) {
      const results = await inner.verifyMany(items);
      for (let round = 0; ; round++) {
        const again: number[] = [];
        for (let i = 0; i < items.length; i++) {
          if (typeof results[i] !== 'string' && retired.get(items[i]!.key.hex)?.[round] !== undefined)
            again.push(i);
        }
        if (again.length === 0) return results;
        const second = await inner.verifyMany(
          again.map((i) => ({ jws: items[i]!.jws, key: retired.get(items[i]!.key.hex)![round]! })),
        );
        again.forEach((i, j) => {
          if (typeof second[j] === 'string') results[i] = second[j];
        });
      }
    },
  };
}

export interface VerifyPoolOptions {
  /** Worker threads. @default availableParallelism() (one per core) */
  threads?: number;
  /** Most signatures in one message to a thread. @default 256 */
  chunk?: number;
  /**
   * Calls with fewer items than this verify (and sign) on the calling thread, without waking
   * the pool (its threads start on first use): one item at once (`node:crypto`), more as
   * WebCrypto jobs... @default 2
   */
  minBatch?: number;
  /**
   * ...unless their JWS add up to this many characters: a large frame's base64url decoding,
   * its canonical-form check and its UTF-8 decoding cost more than its signature. @default 65536
   */
  minChars?: number;
  /**
   * Keys whose signatures the threads check by signing again (see above): this node's own.
   * @default none
   */
  signers?: readonly PrivateKey[];
  /**
   * The nice value of the pool's threads (Linux, per thread; at most 19, and never a higher
   * priority than the process's own): a background pool (a resync's histories) set above 0
   * yields the cores to the node's live work when both want them, and takes them all when the
   * node is otherwise idle. @default 0
   */
  niceness?: number;
  /**
   * A thread with no job for this long ends (a new one starts on the next call), so a pool used
   * now and then holds no threads in between. @default never
   */
  idleMs?: number;
}

/**
 * The options of a background pool (the histories of a resync or a restore): its threads run at
 * nice 10 (under contention they get about a tenth of a core's time against a live thread's
 * full share) and end after 30 s without a job.
 */
export const BACKGROUND_POOL: Readonly<Pick<VerifyPoolOptions, 'niceness' | 'idleMs'>> = {
  niceness: 10,
  idleMs: 30_000,
};

/** A pool of verifying (and signing) threads. */
export interface VerifyPool extends JwsVerifier, JwsSigner {
  /** Threads the pool runs when busy. */
  readonly threads: number;
  /** Terminates the threads; calls in progress reject with `SYNC_ABORTED`. Idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

interface Reply {
  id: number;
  payloads: Array<string | null>;
  codes: Array<string | null>;
}

interface Job {
  /** Signatures it asks of the thread. */
  size: number;
  finish(reply: Reply): void;
  reject(err: unknown): void;
}

interface Thread {
  worker: Worker;
  /** Signatures sent to it and not yet answered. */
  load: number;
  jobs: Map<number, Job>;
  /** Ends the thread once it has been idle for `idleMs`. */
  idle?: NodeJS.Timeout;
}

const WORKER_URL = new URL('./verify-worker.mjs', import.meta.url);

const CODES: ReadonlySet<string> = new Set<ErrorCode>([
  'PROTOCOL_NOT_JWS',
  'PROTOCOL_BAD_SIGNATURE',
  'PROTOCOL_MALFORMED_FRAME',
  'KEY_INVALID',
]);

function failure(code: string): ParleyError {
  return new ParleyError(
    CODES.has(code) ? (code as ErrorCode) : 'PROTOCOL_BAD_SIGNATURE',
    code === 'PROTOCOL_BAD_SIGNATURE' ? 'signature does not verify' : code,
  );
}

/** `verifyJws` on this thread, as a result. For the rare header the threads leave to it. */
function verifyHere({ jws, key }: JwsCheck): JwsResult {
  try {
    return verifyJws(jws, key);
  } catch (err) {
    if (err instanceof ParleyError) return err;
    throw err;
  }
}

/** `signJws` on this thread, as a result. */
function signHere(text: string, key: PrivateKey): SignResult {
  try {
    return signJws(text, key);
  } catch (err) {
    if (err instanceof ParleyError) return err;
    throw err;
  }
}

/** The results of a verification job from its thread's reply. */
function verifyResults(items: readonly JwsCheck[], reply: Reply): JwsResult[] {
  const results: JwsResult[] = new Array(items.length);
  for (let i = 0; i < items.length; i++) {
    const code = reply.codes[i];
    if (code === null || code === undefined) results[i] = reply.payloads[i] ?? '';
    else if (code === 'OTHER_HEADER') results[i] = verifyHere(items[i]!);
    else results[i] = failure(code);
  }
  return results;
}

/** The results of a signing job from its thread's reply. */
function signResults(count: number, reply: Reply): SignResult[] {
  const results: SignResult[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const code = reply.codes[i];
    const jws = reply.payloads[i];
    if ((code === null || code === undefined) && typeof jws === 'string') results[i] = jws;
    else if (code === 'PROTOCOL_MALFORMED_FRAME')
      results[i] = new ParleyError(code, 'payload is not well-formed Unicode text');
    else results[i] = new ParleyError('KEY_INVALID', 'cannot sign with this key');
  }
  return results;
}

/**
 * `run` over `items` in parts of `per` (even shares for the threads, each at most `chunk`
 * signatures per message), the results joined in order.
 */
async function inParts<T, R>(
  items: readonly T[],
  per: number,
  run: (part: readonly T[]) => Promise<R[]>,
): Promise<R[]> {
  const parts: Array<Promise<R[]>> = [];
  for (let i = 0; i < items.length; i += per) {
    const part = run(items.slice(i, i + per));
    // One rejection rejects the call; the other parts' (the same close) are handled here.
    observed(part);
    parts.push(part);
  }
  return (await Promise.all(parts)).flat();
}

/** The threads of a pool: started on demand up to `size`, each job to the least loaded. */
function createThreads(size: number, workerData: { signers: unknown[]; niceness: number }, idleMs: number) {
  const threads: Thread[] = [];
  let nextId = 0;

  function fail(thread: Thread, err: unknown): void {
    clearTimeout(thread.idle);
    const at = threads.indexOf(thread);
    if (at >= 0) threads.splice(at, 1);
    for (const job of thread.jobs.values()) job.reject(err);
    thread.jobs.clear();
    // A worker that fails to stop has failed already: its jobs are rejected above.
    observed(thread.worker.terminate());
  }

  function spawn(): Thread {
    const worker = new Worker(WORKER_URL, { name: 'parley-verify', workerData });
    const thread: Thread = { worker, load: 0, jobs: new Map() };
    worker.unref();
    worker.on('message', (reply: Reply) => {
      const job = thread.jobs.get(reply.id);
      if (!job) return;
      thread.jobs.delete(reply.id);
      thread.load -= job.size;
      if (thread.jobs.size === 0) {
        worker.unref();
        if (Number.isFinite(idleMs)) {
          thread.idle = setTimeout(() => retire(thread), idleMs);
          thread.idle.unref();
        }
      }
      job.finish(reply);
    });
    worker.on('error', (err) =>
      fail(thread, new ParleyError('SYNC_ABORTED', 'verify thread failed', { cause: err })),
    );
    worker.on('exit', () => fail(thread, new ParleyError('SYNC_ABORTED', 'verify thread exited')));
    threads.push(thread);
    return thread;
  }

  /** Ends an idle thread (its `exit` finds no job to fail). */
  function retire(thread: Thread): void {
    if (thread.jobs.size > 0) return;
    const at = threads.indexOf(thread);
    if (at >= 0) threads.splice(at, 1);
    observed(thread.worker.terminate());
  }

  /** The least loaded thread, starting one while fewer than `size` run. */
  function pick(): Thread {
    let best: Thread | undefined;
    for (const t of threads) if (!best || t.load < best.load) best = t;
    if (threads.length < size && (!best || best.load > 0)) return spawn();
    return best ?? spawn();
  }

  return {
    /** Posts `message` (given its `id`) to the least loaded thread as a job of `size` signatures. */
    post(
      jobSize: number,
      message: (id: number) => object,
      finish: Job['finish'],
      reject: Job['reject'],
    ): void {
      const thread = pick();
      const id = nextId++;
      clearTimeout(thread.idle);
      thread.jobs.set(id, { size: jobSize, finish, reject });
      thread.load += jobSize;
      thread.worker.ref();
      thread.worker.postMessage(message(id));
    },
    /** Terminates every thread; their jobs reject with `SYNC_ABORTED`. */
    async close(): Promise<void> {
      const all = threads.splice(0);
      for (const t of all) {
        clearTimeout(t.idle);
        for (const job of t.jobs.values()) job.reject(new ParleyError('SYNC_ABORTED', 'verify pool closed'));
        t.jobs.clear();
      }
      // Closing: a worker that fails to stop is gone either way.
      await Promise.all(all.map((t) => settled(t.worker.terminate())));
    },
  };
}

/** Starts a pool of verifying threads (lazily: none runs until the first large call). */
export function createVerifyPool(options: VerifyPoolOptions = {}): VerifyPool {
  const size = Math.max(1, options.threads ?? availableParallelism());
  const chunk = Math.max(1, options.chunk ?? 256);
  const minBatch = options.minBatch ?? 2;
  const minChars = options.minChars ?? 65_536;
  const signers = (options.signers ?? []).map((k) => ({ hex: k.publicKey.hex, key: k.keyObject }));
  const signing = new Set(signers.map((k) => k.hex));
  const niceness = Math.max(0, Math.trunc(options.niceness ?? 0));
  const { post, close } = createThreads(
    size,
    { signers, niceness },
    options.idleMs ?? Number.POSITIVE_INFINITY,
  );
  let closed: Promise<void> | undefined;

  function send(items: readonly JwsCheck[]): Promise<JwsResult[]> {
    return new Promise<JwsResult[]>((resolve, reject) => {
      // Few distinct keys per call (the two parties): each travels once, as hex.
      const keyIndex = new Map<string, number>();
      const keys: string[] = [];
      const keyOf: number[] = new Array(items.length);
      const jws: string[] = new Array(items.length);
      for (let i = 0; i < items.length; i++) {
        const { hex } = items[i]!.key;
        let k = keyIndex.get(hex);
        if (k === undefined) {
          k = keys.length;
          keys.push(hex);
          keyIndex.set(hex, k);
        }
        keyOf[i] = k;
        jws[i] = items[i]!.jws;
      }
      post(
        items.length,
        (id) => ({ id, keys, jws, keyOf }),
        (reply) => resolve(verifyResults(items, reply)),
        reject,
      );
    });
  }

  const pool: VerifyPool = {
    threads: size,
    async verifyMany(items) {
      if (closed !== undefined) throw new ParleyError('SYNC_ABORTED', 'verify pool closed');
      if (items.length < minBatch) {
        let chars = 0;
        for (const item of items) chars += typeof item.jws === 'string' ? item.jws.length : 0;
        if (chars < minChars)
          return items.length === 1 ? [verifyHere(items[0]!)] : inThreadVerifier.verifyMany(items);
      }
      return inParts(items, Math.min(chunk, Math.ceil(items.length / size)), send);
    },
    async signMany(texts, key) {
      if (closed !== undefined) throw new ParleyError('SYNC_ABORTED', 'verify pool closed');
      const hex = (key as { publicKey?: PublicKey } | null | undefined)?.publicKey?.hex;
      let chars = 0;
      for (const text of texts) chars += typeof text === 'string' ? text.length : 0;
      if (hex === undefined || !signing.has(hex) || (texts.length < minBatch && chars < minChars)) {
        if (texts.length === 1) return [signHere(texts[0]!, key)];
        return Promise.all(
          texts.map((text) =>
            signJwsAsync(text, key).catch((err: unknown) => {
              if (err instanceof ParleyError) return err;
              throw err;
            }),
          ),
        );
      }
      const signIn = (part: readonly string[]) =>
        new Promise<SignResult[]>((resolve, reject) =>
          post(
            part.length,
            (id) => ({ id, op: 'sign', signer: hex, texts: part }),
            (reply) => resolve(signResults(part.length, reply)),
            reject,
          ),
        );
      return inParts(texts, Math.min(chunk, Math.ceil(texts.length / size)), signIn);
    },
    close() {
      closed ??= close();
      return closed;
    },
    [Symbol.asyncDispose]() {
      return pool.close();
    },
  };
  return pool;
}
