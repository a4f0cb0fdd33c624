/**
 * Heartbeat frames (PROTOCOL.md §8) and the open-objects digest they carry (§8.2).
 *
 * A heartbeat needs authenticity, not non-repudiation: it is MACed with HMAC-SHA256 keyed by
 * the connection's session secret (§5.3), not signed with Ed25519 (a signature per heartbeat
 * costs far more than a MAC at many channels: docs/benchmarks.md). So it is **not** a JWS; it
 * is one text frame
 *
 *     hb1 <mac> <payload>
 *
 * `payload` is the canonical JSON of a {@link Heartbeat}; `mac` is
 * `base64url(HMAC-SHA256(session_secret, "hb1 " ‖ payload))` (43 characters), computed over the
 * received bytes, never a re-serialisation. A compact JWS never contains a space, so the channel
 * dispatcher tells the two apart with {@link isHeartbeatFrame} without parsing anything.
 *
 * Pure: no I/O besides hashing, no timers; the caller supplies the timestamps.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { ParleyError } from '../errors.js';
import { OpenObjectsSummary } from './channel-frames.js';
import { canonicalJson } from './codec.js';
import { CodedSymbols, type ItemKey, refHash, SKETCH_SYMBOLS } from './riblt.js';

/** What every heartbeat frame starts with (the format's name and version, then a space). */
export const HEARTBEAT_FRAME_PREFIX = 'hb1 ';
/** Largest heartbeat frame a receiver accepts, in bytes; real ones are about 400. */
export const MAX_HEARTBEAT_FRAME_BYTES = 1024;
/** Length of the base64url MAC field (32 bytes, unpadded). */
const MAC_CHARS = 43;

/** The digest of an empty set of open objects (§8.2): 64 zeros. */
export const EMPTY_OPEN_OBJECTS_DIGEST = '0'.repeat(64);

/** The payload of a heartbeat (PROTOCOL.md §8.1). */
export const Heartbeat = z.object({
  _ObjectType: z.literal('Heartbeat'),
  /** The sender's channel address (bech32, zero subaddress). */
  from: z.string().min(1).max(128),
  /** Per connection and direction: 0 for the first heartbeat, then +1 each. */
  seq: z.int().min(0),
  /** The sender's store epoch. */
  epoch: z.string().min(1).max(128),
  /** The sender's open objects shared with the receiver: count and digest (§8.2). */
  open_objects: OpenObjectsSummary,
  /** Commands the sender proposed that have no final response yet. */
  inflight: z.int().min(0),
  /** The sender's clock when it sent this heartbeat, ms since the Unix epoch. */
  timestamp_ms: z.int().min(0),
  /** `timestamp_ms` of the last heartbeat the sender received on this connection (null before the first). */
  echo_timestamp_ms: z.int().min(0).nullable(),
  /** How long the sender held that heartbeat before sending this one, ms (null with the echo). */
  echo_held_ms: z.int().min(0).nullable(),
});
export type Heartbeat = z.infer<typeof Heartbeat>;

/** Whether a text frame is a heartbeat frame (by its prefix; nothing is parsed). */
export function isHeartbeatFrame(frame: string): boolean {
  return frame.startsWith(HEARTBEAT_FRAME_PREFIX);
}

/**
 * The {@link Heartbeat} schema, checked by hand: the same rules as the zod schema (which stays
 * the reference, and the tests hold the two together), without its allocations. Heartbeats run
 * at 1 Hz per channel both ways, so with many channels this is on the hot path, and zod plus the
 * generic canonical JSON writer cost many times this check (docs/benchmarks.md). Returns a fresh
 * object with only the schema's members (unknown members are dropped, as zod does), or
 * undefined.
 */
function checkHeartbeat(value: unknown): Heartbeat | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const v = value as Record<string, unknown>;
  const open = v['open_objects'];
  if (open === null || typeof open !== 'object' || Array.isArray(open)) return undefined;
  const o = open as Record<string, unknown>;
  const { from, seq, epoch, inflight } = v;
  const timestamp = v['timestamp_ms'];
  const echo = v['echo_timestamp_ms'];
  const held = v['echo_held_ms'];
  const { count, digest } = o;
  if (
    v['_ObjectType'] !== 'Heartbeat' ||
    !text(from, 1) ||
    !nat(seq) ||
    !text(epoch, 1) ||
    !nat(count) ||
    !text(digest, 0) ||
    !nat(inflight) ||
    !nat(timestamp) ||
    !natOrNull(echo) ||
    !natOrNull(held)
  ) {
    return undefined;
  }
  return {
    _ObjectType: 'Heartbeat',
    from,
    seq,
    epoch,
    open_objects: { count, digest },
    inflight,
    timestamp_ms: timestamp,
    echo_timestamp_ms: echo,
    echo_held_ms: held,
  };
}

/** An address or epoch (1–128 characters), or with `digest` a digest (0–256). */
function text(x: unknown, min: number): x is string {
  return typeof x === 'string' && x.length >= min && x.length <= (min === 0 ? 256 : 128);
}
function nat(x: unknown): x is number {
  return Number.isSafeInteger(x) && (x as number) >= 0;
}
function natOrNull(x: unknown): x is number | null {
  return x === null || nat(x);
}

/** Canonical JSON of a checked heartbeat (keys sorted, compact): what `canonicalJson` writes, written directly. */
function heartbeatJson(h: Heartbeat): string {
  const str = JSON.stringify;
  return (
    `{"_ObjectType":"Heartbeat","echo_held_ms":${h.echo_held_ms},"echo_timestamp_ms":${h.echo_timestamp_ms},` +
    `"epoch":${str(h.epoch)},"from":${str(h.from)},"inflight":${h.inflight},` +
    `"open_objects":{"count":${h.open_objects.count},"digest":${str(h.open_objects.digest)}},` +
    `"seq":${h.seq},"timestamp_ms":${h.timestamp_ms}}`
  );
}

/** Why `value` is not a heartbeat, in zod's words (the slow path, only for refused frames). */
function whyNotHeartbeat(value: unknown): ParleyError {
  const parsed = Heartbeat.safeParse(value);
  const issue = parsed.success ? undefined : parsed.error.issues[0];
  const where = issue === undefined || issue.path.length === 0 ? '(root)' : issue.path.join('.');
  return malformed(`not a heartbeat: ${where}: ${issue?.message ?? 'invalid'}`, parsed.error);
}

function malformed(message: string, cause?: unknown): ParleyError {
  return new ParleyError('PROTOCOL_MALFORMED_FRAME', message, cause === undefined ? undefined : { cause });
}

/** Encodes and MACs heartbeats of one connection, and checks the peer's. */
export interface HeartbeatCodec {
  /** The frame to send. @throws ParleyError `PROTOCOL_MALFORMED_FRAME` for an invalid heartbeat. */
  encode(heartbeat: Heartbeat): string;
  /**
   * Checks the MAC over the received bytes, then decodes the payload.
   * @throws ParleyError `PROTOCOL_MALFORMED_FRAME` (not a heartbeat frame, too large, not a
   *   valid payload), `AUTH_BAD_MAC` (the MAC does not verify with the session secret).
   */
  decode(frame: string): Heartbeat;
}

/**
 * The heartbeat codec of one connection, keyed by its session secret (64 hex, PROTOCOL.md §5.3).
 * @throws ParleyError `KEY_INVALID` when the secret is not 32 bytes of hex.
 */
export function createHeartbeatCodec(sessionSecretHex: string): HeartbeatCodec {
  if (!/^[0-9a-f]{64}$/.test(sessionSecretHex)) {
    throw new ParleyError('KEY_INVALID', 'session secret must be 32 bytes as 64 lowercase hex');
  }
  const key = Buffer.from(sessionSecretHex, 'hex');
  const mac = (payload: string): Buffer =>
    createHmac('sha256', key).update(HEARTBEAT_FRAME_PREFIX).update(payload, 'utf8').digest();

  return {
    encode(heartbeat) {
      const checked = checkHeartbeat(heartbeat);
      if (!checked) throw malformed('refusing to encode an invalid heartbeat', whyNotHeartbeat(heartbeat));
      const payload = heartbeatJson(checked);
      return `${HEARTBEAT_FRAME_PREFIX}${mac(payload).toString('base64url')} ${payload}`;
    },
    decode(frame) {
      if (!isHeartbeatFrame(frame)) throw malformed('not a heartbeat frame');
      if (Buffer.byteLength(frame, 'utf8') > MAX_HEARTBEAT_FRAME_BYTES) {
        throw malformed(`heartbeat frame larger than ${MAX_HEARTBEAT_FRAME_BYTES} bytes`);
      }
      const macEnd = HEARTBEAT_FRAME_PREFIX.length + MAC_CHARS;
      if (frame[macEnd] !== ' ') throw malformed('heartbeat frame: bad MAC field');
      const received = Buffer.from(frame.slice(HEARTBEAT_FRAME_PREFIX.length, macEnd), 'utf8');
      const payload = frame.slice(macEnd + 1);
      // The MAC is compared as text, not decoded: base64url decoding skips bad characters and
      // ignores the last character's two spare bits, so four spellings would decode to one MAC.
      const expected = Buffer.from(mac(payload).toString('base64url'), 'utf8');
      if (received.length !== expected.length || !timingSafeEqual(received, expected)) {
        throw new ParleyError('AUTH_BAD_MAC', 'heartbeat MAC does not verify');
      }
      // Plain JSON.parse, not `parseJson`: the frame is at most 1 KiB (its nesting cannot hurt)
      // and every member is then checked by shape.
      let value: unknown;
      try {
        value = JSON.parse(payload);
      } catch (err) {
        throw malformed('heartbeat payload is not JSON', err);
      }
      const checked = checkHeartbeat(value);
      if (!checked) throw whyNotHeartbeat(value);
      return checked;
    },
  };
}

const MOD_256 = 1n << 256n;

/** SHA-256 of the canonical JSON `[reference_id, version]`: the digest term's bytes (§8.2). */
function termHash(referenceId: string, headVersion: string): Buffer {
  return createHash('sha256')
    .update(canonicalJson([referenceId, headVersion]), 'utf8')
    .digest();
}

/** The digest term of one open object (§8.2): SHA-256 of the canonical JSON `[reference_id, version]`, as an integer. */
export function openObjectTerm(referenceId: string, headVersion: string): bigint {
  return BigInt(`0x${termHash(referenceId, headVersion).toString('hex')}`);
}

/** The key of an open object in the coded symbols (`riblt.ts`): its reference id's hash, and its term's. */
export function openObjectKey(referenceId: string, headVersion: string): ItemKey {
  return { hi: refHash(referenceId), lo: termHash(referenceId, headVersion).readUInt32BE(0) };
}

/**
 * The coded symbols of a set of open objects (PROTOCOL.md §7.3.1), kept by its digest: the
 * first {@link SKETCH_SYMBOLS} symbols, and which reference ids hash to a key's `hi` (to turn
 * decoded keys back into objects without reading the whole set).
 */
export interface OpenObjectsSketch {
  /** The live symbols (take a `snapshot()` to keep them as of now). */
  readonly symbols: CodedSymbols;
  /** The open reference ids whose hash (`refHash`) is `hi`. */
  refsOf(hi: number): readonly string[];
}

const SKETCH = Symbol('open-objects sketch');

/** The coded symbols behind a summary that {@link createOpenObjectsDigest} made, if it did. */
export function openObjectsSketchOf(summary: OpenObjectsSummary): OpenObjectsSketch | undefined {
  return (summary as { [SKETCH]?: OpenObjectsSketch })[SKETCH];
}

/**
 * The order-independent digest of a set of open objects `(reference_id, head version)`
 * (PROTOCOL.md §8.2): the sum of their terms mod 2^256, 64 lowercase hex. A sum, not a XOR, so
 * that a pair counted twice by mistake does not cancel out. Maintained incrementally: adding
 * and removing a pair costs one SHA-256 (the term), plus a MurmurHash3 of the reference id and
 * about 13 updates of the coded symbols it keeps up to date as well ({@link openObjectsSketchOf}).
 */
export interface OpenObjectsDigest {
  add(referenceId: string, headVersion: string): void;
  remove(referenceId: string, headVersion: string): void;
  clear(): void;
  summary(): OpenObjectsSummary;
}

/** An empty {@link OpenObjectsDigest}. */
export function createOpenObjectsDigest(): OpenObjectsDigest {
  let sum = 0n;
  let count = 0;
  const symbols = new CodedSymbols(SKETCH_SYMBOLS);
  /** Reference ids by their hash (`refHash`; a bucket of several on a collision). */
  const refs = new Map<number, string | string[]>();
  const sketch: OpenObjectsSketch = {
    symbols,
    refsOf(hi) {
      const bucket = refs.get(hi);
      return bucket === undefined ? [] : typeof bucket === 'string' ? [bucket] : bucket;
    },
  };
  /** The summary is read on every heartbeat and changes only on commits: keep it (frozen). */
  let cached: OpenObjectsSummary | undefined;
  function toggle(referenceId: string, headVersion: string, sign: 1 | -1): void {
    const term = termHash(referenceId, headVersion);
    const value = BigInt(`0x${term.toString('hex')}`);
    sum = (sum + (sign === 1 ? value : MOD_256 - value)) % MOD_256;
    count += sign;
    const hi = refHash(referenceId);
    symbols.toggle(hi, term.readUInt32BE(0), sign);
    const bucket = refs.get(hi);
    if (sign === 1) {
      if (bucket === undefined) refs.set(hi, referenceId);
      else if (typeof bucket === 'string') refs.set(hi, [bucket, referenceId]);
      else bucket.push(referenceId);
    } else if (bucket === referenceId) refs.delete(hi);
    else if (Array.isArray(bucket)) {
      const at = bucket.indexOf(referenceId);
      if (at >= 0) bucket.splice(at, 1);
      if (bucket.length === 1) refs.set(hi, bucket[0]!);
    }
    cached = undefined;
  }
  return {
    add: (referenceId, headVersion) => toggle(referenceId, headVersion, 1),
    remove: (referenceId, headVersion) => toggle(referenceId, headVersion, -1),
    clear() {
      sum = 0n;
      count = 0;
      symbols.clear();
      refs.clear();
      cached = undefined;
    },
    summary() {
      if (cached === undefined) {
        const made = { count, digest: sum.toString(16).padStart(64, '0') };
        Object.defineProperty(made, SKETCH, { value: sketch, enumerable: false });
        cached = Object.freeze(made);
      }
      return cached;
    },
  };
}
