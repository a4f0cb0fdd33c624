/**
 * Parley's channel handshake frames (PROTOCOL.md §5): zod schemas, codec, signing and the
 * session-key derivation. Same envelope style as LIP-1 (`_ObjectType` PascalCase, snake_case
 * fields); each frame is a compact JWS signed with the sender's compliance key, sent as one
 * WebSocket text frame.
 *
 * The handshake is three frames: `ChannelHello` (dialer → acceptor), `ChannelHelloAck`
 * (acceptor → dialer, echoes the dialer's nonce) and `ChannelHelloConfirm` (dialer → acceptor,
 * echoes the acceptor's nonce). Each side signs the other's fresh nonce, so both are
 * authenticated and a replayed frame can never complete a handshake. Both hellos carry an
 * ephemeral X25519 key; the session secret is HKDF-SHA256 over the shared secret and both nonces.
 *
 * Pure: no I/O besides crypto (randomness, signatures, key agreement), no timers. The caller
 * supplies `timestamp_ms`.
 */
import {
  createHash,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import { z } from 'zod';
import { isParleyError, ParleyError } from '../errors.js';
import { canonicalJson, parseJson } from './codec.js';
import { decodeJwsPayloadUnverified, signJwsAsync, verifyJwsAsync } from './jws.js';
import type { PrivateKey, PublicKey } from './keys.js';

/** The channel protocol version this build speaks, sent as `protocol_version` (PROTOCOL.md §5). */
export const CHANNEL_PROTOCOL_VERSION = 1;
/** Every `protocol_version` an acceptor or dialer of this build accepts. */
export const SUPPORTED_CHANNEL_PROTOCOL_VERSIONS: readonly number[] = [CHANNEL_PROTOCOL_VERSION];

/** Bytes of a handshake nonce (and of an X25519 public key). */
export const HANDSHAKE_NONCE_BYTES = 32;
/** Largest handshake frame (the JWS text) a receiver needs to accept, in bytes; real ones are < 1 KiB. */
export const MAX_HANDSHAKE_FRAME_BYTES = 4096;

/** HKDF `info` prefix of the session secret (PROTOCOL.md §5.3). */
const SESSION_INFO_PREFIX = 'parley/v1 channel session';
const X25519_ZERO = Buffer.alloc(32);

const Hex32 = z
  .string()
  .regex(/^[0-9a-f]{64}$/, '32 bytes as 64 lowercase hex characters')
  .describe('32 bytes, lowercase hex');
/** An address as it appears in a handshake frame: the channel address (bech32, zero subaddress). */
const FrameAddress = z.string().min(1).max(128);

/** The open-object summary a node announces: how many objects it has open with this peer, and their digest. */
export const OpenObjectsSummary = z.object({
  count: z.int().min(0),
  digest: z.string().max(256),
});
export type OpenObjectsSummary = z.infer<typeof OpenObjectsSummary>;

/** The resync reconciliation methods this build speaks, as its hello announces them (PROTOCOL.md §7.3). */
export const SYNC_METHODS: readonly string[] = ['list', 'riblt', 'restore', 'restore-riblt'];

const helloFields = {
  from: FrameAddress,
  to: FrameAddress,
  protocol_version: z.int().min(1),
  /** The sender's store epoch: a random id made when its database was created. */
  epoch: z.string().min(1).max(128),
  open_objects: OpenObjectsSummary,
  /** The resync reconciliation methods the sender speaks (PROTOCOL.md §7.3); absent: `list` only. */
  sync_methods: z.array(z.string().min(1).max(32)).max(16).optional(),
  /** 32 fresh random bytes; the receiver signs them back. */
  nonce: Hex32,
  /** The sender's clock, milliseconds since the Unix epoch. */
  timestamp_ms: z.int().min(0),
  /** The sender's ephemeral X25519 public key (32 raw bytes). */
  ephemeral_key: Hex32,
};

/** First frame of a channel: dialer → acceptor. */
export const ChannelHello = z.object({ _ObjectType: z.literal('ChannelHello'), ...helloFields });
export type ChannelHello = z.infer<typeof ChannelHello>;

/** Second frame: acceptor → dialer, the acceptor's own hello plus the dialer's nonce signed back. */
export const ChannelHelloAck = z.object({
  _ObjectType: z.literal('ChannelHelloAck'),
  ...helloFields,
  echo_nonce: Hex32,
});
export type ChannelHelloAck = z.infer<typeof ChannelHelloAck>;

/** Third frame: dialer → acceptor, the acceptor's nonce signed back. The channel is open after it. */
export const ChannelHelloConfirm = z.object({
  _ObjectType: z.literal('ChannelHelloConfirm'),
  from: FrameAddress,
  to: FrameAddress,
  echo_nonce: Hex32,
});
export type ChannelHelloConfirm = z.infer<typeof ChannelHelloConfirm>;

/** Any of the three handshake frames. */
export const HandshakeFrame = z.discriminatedUnion('_ObjectType', [
  ChannelHello,
  ChannelHelloAck,
  ChannelHelloConfirm,
]);
export type HandshakeFrame = z.infer<typeof HandshakeFrame>;
/** The `_ObjectType` of a handshake frame. */
export type HandshakeFrameType = HandshakeFrame['_ObjectType'];
type FrameOfType<TType extends HandshakeFrameType> = Extract<HandshakeFrame, { _ObjectType: TType }>;

function malformed(message: string, cause?: unknown): ParleyError {
  return new ParleyError('PROTOCOL_MALFORMED_FRAME', message, cause === undefined ? undefined : { cause });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/**
 * Decodes the payload text of a handshake frame and checks that it is a `TType` frame.
 *
 * The version is checked before the schema, so a peer speaking a newer protocol whose hello no
 * longer fits this schema still learns that the version is the problem.
 *
 * @throws ParleyError `AUTH_UNSUPPORTED_VERSION` for a hello or hello-ack with an integer
 *   `protocol_version` this build does not speak; `PROTOCOL_MALFORMED_FRAME` for anything
 *   that is not a valid `TType` frame.
 */
export function decodeHandshakeFrame<TType extends HandshakeFrameType>(
  payloadText: string,
  expected: TType,
): FrameOfType<TType> {
  const value = parseJson(payloadText);
  if (isRecord(value)) {
    const type = value['_ObjectType'];
    const version = value['protocol_version'];
    if (
      (type === 'ChannelHello' || type === 'ChannelHelloAck') &&
      Number.isSafeInteger(version) &&
      !SUPPORTED_CHANNEL_PROTOCOL_VERSIONS.includes(version as number)
    ) {
      throw new ParleyError(
        'AUTH_UNSUPPORTED_VERSION',
        `protocol_version ${String(version)} is not supported`,
      );
    }
  }
  const parsed = HandshakeFrame.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where =
      issue === undefined || issue.path.length === 0 ? '(root)' : issue.path.map(String).join('.');
    throw malformed(`not a handshake frame: ${where}: ${issue?.message ?? 'invalid'}`, parsed.error);
  }
  if (parsed.data._ObjectType !== expected) {
    throw malformed(`expected ${expected}, got ${parsed.data._ObjectType}`);
  }
  return parsed.data as FrameOfType<TType>;
}

/**
 * Encodes a handshake frame as canonical JSON (the JWS payload). Unknown members are dropped.
 *
 * @throws ParleyError `PROTOCOL_MALFORMED_FRAME` when `frame` does not satisfy its schema.
 */
export function encodeHandshakeFrame(frame: HandshakeFrame): string {
  const parsed = HandshakeFrame.safeParse(frame);
  if (!parsed.success) throw malformed('refusing to encode an invalid handshake frame', parsed.error);
  return canonicalJson(parsed.data);
}

/**
 * Encodes and signs a handshake frame: the compact JWS to send as one text frame.
 *
 * @throws ParleyError `PROTOCOL_MALFORMED_FRAME` for an invalid frame; `KEY_INVALID` if the key is refused.
 */
export function signHandshakeFrame(frame: HandshakeFrame, key: PrivateKey): Promise<string> {
  try {
    return signJwsAsync(encodeHandshakeFrame(frame), key);
  } catch (err) {
    return Promise.reject(err);
  }
}

/**
 * Reads a handshake frame **without verifying its signature**, to learn who claims to have
 * sent it (`from`) and so which key to verify it with. Never act on the result otherwise.
 *
 * @throws ParleyError `PROTOCOL_NOT_JWS`, `PROTOCOL_MALFORMED_FRAME`, `AUTH_UNSUPPORTED_VERSION`
 *   as {@link decodeHandshakeFrame}.
 */
export function peekHandshakeFrame<TType extends HandshakeFrameType>(
  jws: string,
  expected: TType,
): FrameOfType<TType> {
  return decodeHandshakeFrame(decodeJwsPayloadUnverified(jws), expected);
}

/**
 * Verifies a handshake frame with `key` and decodes it.
 *
 * @throws ParleyError `PROTOCOL_NOT_JWS` (not a compact EdDSA JWS), `AUTH_BAD_SIGNATURE` (the
 *   signature does not verify with `key`), `PROTOCOL_MALFORMED_FRAME`, `AUTH_UNSUPPORTED_VERSION`.
 */
export async function verifyHandshakeFrame<TType extends HandshakeFrameType>(
  jws: string,
  key: PublicKey,
  expected: TType,
): Promise<FrameOfType<TType>> {
  let payload: string;
  try {
    payload = await verifyJwsAsync(jws, key);
  } catch (err) {
    if (isParleyError(err, 'PROTOCOL_BAD_SIGNATURE')) {
      throw new ParleyError('AUTH_BAD_SIGNATURE', `${expected} signature does not verify`, { cause: err });
    }
    throw err;
  }
  return decodeHandshakeFrame(payload, expected);
}

/** A fresh handshake nonce: 32 random bytes, lowercase hex. */
export function newHandshakeNonce(): string {
  return randomBytes(HANDSHAKE_NONCE_BYTES).toString('hex');
}

/** An ephemeral X25519 key pair for one handshake. The private half never leaves the process. */
export interface EphemeralKeyPair {
  /** 32 raw public-key bytes, lowercase hex: the `ephemeral_key` of a hello. */
  readonly publicKeyHex: string;
  readonly privateKey: KeyObject;
}

/** Generates the ephemeral X25519 key pair of one handshake. */
export function generateEphemeralKey(): EphemeralKeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  const x = publicKey.export({ format: 'jwk' }).x ?? '';
  return { publicKeyHex: Buffer.from(x, 'base64url').toString('hex'), privateKey };
}

/** What {@link deriveSessionSecret} takes. Nonces and keys are lowercase hex. */
export interface SessionSecretInput {
  /** My ephemeral private key. */
  readonly myEphemeral: KeyObject;
  /** The peer's `ephemeral_key`. */
  readonly peerEphemeralKeyHex: string;
  readonly dialerNonce: string;
  readonly acceptorNonce: string;
  /** The dialer's address (the `from` of the hello). */
  readonly dialer: string;
  /** The acceptor's address (the `to` of the hello). */
  readonly acceptor: string;
}

/**
 * The per-connection session secret (PROTOCOL.md §5.3), 32 bytes as hex:
 * `HKDF-SHA256(ikm = X25519(mine, peer's), salt = dialer_nonce ‖ acceptor_nonce,
 * info = "parley/v1 channel session " ‖ dialer ‖ " " ‖ acceptor, length = 32)`.
 * Both ends compute the same value; nobody who only saw the frames can.
 *
 * @throws ParleyError `PROTOCOL_MALFORMED_FRAME` when the peer's key is not a usable X25519
 *   public key (including low-order points, whose shared secret is all zeros).
 */
export function deriveSessionSecret(input: SessionSecretInput): string {
  let shared: Buffer;
  try {
    const peerKey = createPublicKey({
      key: {
        kty: 'OKP',
        crv: 'X25519',
        x: Buffer.from(input.peerEphemeralKeyHex, 'hex').toString('base64url'),
      },
      format: 'jwk',
    });
    shared = diffieHellman({ privateKey: input.myEphemeral, publicKey: peerKey });
  } catch (err) {
    throw malformed('ephemeral_key is not a usable X25519 public key', err);
  }
  if (shared.equals(X25519_ZERO)) throw malformed('ephemeral_key is a low-order point');
  const salt = Buffer.concat([
    Buffer.from(input.dialerNonce, 'hex'),
    Buffer.from(input.acceptorNonce, 'hex'),
  ]);
  const info = Buffer.from(`${SESSION_INFO_PREFIX} ${input.dialer} ${input.acceptor}`, 'utf8');
  return Buffer.from(hkdfSync('sha256', shared, salt, info, 32)).toString('hex');
}

/**
 * The identifier both ends give a connection: the first 16 bytes of
 * `SHA-256(dialer_nonce ‖ acceptor_nonce)`, hex. Public (it is derived from public values); for
 * logs and for the duplicate-connection tie-break.
 */
export function handshakeConnectionId(dialerNonce: string, acceptorNonce: string): string {
  return createHash('sha256')
    .update(Buffer.from(dialerNonce, 'hex'))
    .update(Buffer.from(acceptorNonce, 'hex'))
    .digest('hex')
    .slice(0, 32);
}
