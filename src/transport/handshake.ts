/**
 * The channel handshake as functions of frames (PROTOCOL.md §5): what each side builds, and
 * what it checks, in the documented order, throwing the documented error for each rule. No
 * sockets here: `ws-server.ts` and `ws-dialer.ts` move the frames.
 *
 *     dialer                               acceptor
 *       ── ChannelHello(nonce_d) ──────────▶  checkHello
 *       ◀────────── ChannelHelloAck(nonce_a, echo nonce_d) ── buildAck
 *     checkAck
 *       ── ChannelHelloConfirm(echo nonce_a) ─▶ checkConfirm
 */
import { ParleyError } from '../errors.js';
import { SYNC_METHODS } from '../protocol/channel-frames.js';
import {
  CHANNEL_PROTOCOL_VERSION,
  type ChannelHello,
  type ChannelHelloAck,
  type ChannelHelloConfirm,
  deriveSessionSecret,
  type EphemeralKeyPair,
  generateEphemeralKey,
  type HandshakeFrame,
  handshakeConnectionId,
  newHandshakeNonce,
  type OpenObjectsSummary,
  type PrivateKey,
  type PublicKey,
  peekHandshakeFrame,
  signHandshakeFrame,
  verifyHandshakeFrame,
} from '../protocol/index.js';
import type { NonceCache } from './replay-cache.js';

/** What a node announces about its own state towards one peer in the handshake. */
export interface LocalState {
  /** This node's store epoch. */
  epoch: string;
  /** The open objects shared with that peer. */
  openObjects: OpenObjectsSummary;
}

/** What both ends learn from a completed handshake (the fields of a `Connection`). */
export interface HandshakeResult {
  peer: string;
  peerEpoch: string;
  peerSummary: OpenObjectsSummary;
  /** The resync methods the peer's hello names (`list` only when it names none). */
  peerSyncMethods?: readonly string[];
  dialed: boolean;
  id: string;
  dialedAtMs: number;
  sessionSecret: string;
}

/** This side of a handshake. */
export interface HandshakeSelf {
  me: string;
  myKey: PrivateKey;
  local: LocalState;
}

/** A frame built by this side, with the secrets it needs to finish the handshake. */
export interface SentHello<TFrame> {
  frame: TFrame;
  jws: string;
  ephemeral: EphemeralKeyPair;
}

/** Signs a frame of our own: a frame we cannot build is our failure (1011), not the peer's. */
async function signOwn(frame: HandshakeFrame, key: PrivateKey): Promise<string> {
  try {
    return await signHandshakeFrame(frame, key);
  } catch (err) {
    throw new ParleyError(
      'TRANSPORT_INTERNAL_ERROR',
      `cannot build our ${frame._ObjectType} (invalid local state?)`,
      {
        cause: err,
      },
    );
  }
}

function helloFieldsOf(self: HandshakeSelf, to: string, nowMs: number, ephemeral: EphemeralKeyPair) {
  return {
    from: self.me,
    to,
    protocol_version: CHANNEL_PROTOCOL_VERSION,
    epoch: self.local.epoch,
    open_objects: { count: self.local.openObjects.count, digest: self.local.openObjects.digest },
    sync_methods: [...SYNC_METHODS],
    nonce: newHandshakeNonce(),
    timestamp_ms: Math.trunc(nowMs),
    ephemeral_key: ephemeral.publicKeyHex,
  };
}

// ---------------------------------------------------------------- dialer

/** Dialer, step 1: the signed hello to `peer`. */
export async function buildHello(
  self: HandshakeSelf,
  peer: string,
  nowMs: number,
): Promise<SentHello<ChannelHello>> {
  const ephemeral = generateEphemeralKey();
  const frame: ChannelHello = { _ObjectType: 'ChannelHello', ...helloFieldsOf(self, peer, nowMs, ephemeral) };
  return { frame, jws: await signOwn(frame, self.myKey), ephemeral };
}

/**
 * Dialer, step 2: checks the acceptor's hello-ack and builds the signed confirm.
 *
 * @throws ParleyError `PROTOCOL_NOT_JWS` / `PROTOCOL_MALFORMED_FRAME` (4400),
 *   `AUTH_UNSUPPORTED_VERSION` (4426), `AUTH_UNKNOWN_PEER` (4403: the ack is from, or to,
 *   someone else), `AUTH_BAD_SIGNATURE` (4401: bad signature or wrong `echo_nonce`).
 */
export async function checkAck(
  ackJws: string,
  self: HandshakeSelf,
  peer: { address: string; key: PublicKey },
  hello: SentHello<ChannelHello>,
): Promise<{ confirmJws: string; result: HandshakeResult }> {
  const claimed = peekHandshakeFrame(ackJws, 'ChannelHelloAck');
  if (claimed.from !== peer.address)
    throw new ParleyError('AUTH_UNKNOWN_PEER', 'hello-ack from another address');
  const ack = await verifyHandshakeFrame(ackJws, peer.key, 'ChannelHelloAck');
  if (ack.to !== self.me) throw new ParleyError('AUTH_UNKNOWN_PEER', 'hello-ack addressed to someone else');
  if (ack.echo_nonce !== hello.frame.nonce) {
    throw new ParleyError('AUTH_BAD_SIGNATURE', 'hello-ack does not sign our nonce');
  }
  const sessionSecret = deriveSessionSecret({
    myEphemeral: hello.ephemeral.privateKey,
    peerEphemeralKeyHex: ack.ephemeral_key,
    dialerNonce: hello.frame.nonce,
    acceptorNonce: ack.nonce,
    dialer: self.me,
    acceptor: peer.address,
  });
  const confirm: ChannelHelloConfirm = {
    _ObjectType: 'ChannelHelloConfirm',
    from: self.me,
    to: peer.address,
    echo_nonce: ack.nonce,
  };
  return {
    confirmJws: await signOwn(confirm, self.myKey),
    result: {
      peer: peer.address,
      peerEpoch: ack.epoch,
      peerSummary: ack.open_objects,
      peerSyncMethods: ack.sync_methods ?? ['list'],
      dialed: true,
      id: handshakeConnectionId(hello.frame.nonce, ack.nonce),
      dialedAtMs: hello.frame.timestamp_ms,
      sessionSecret,
    },
  };
}

// ---------------------------------------------------------------- acceptor

/** What the acceptor needs to check a hello. */
export interface HelloCheckContext {
  me: string;
  /** The directory key of `address`, or `undefined` when the address or its key is unknown. */
  keyOf(address: string): Promise<PublicKey | undefined>;
  nowMs: number;
  maxSkewMs: number;
  nonces: NonceCache;
}

/** A hello that passed every rule, with the key that verified it. */
export interface AcceptedHello {
  hello: ChannelHello;
  peerKey: PublicKey;
}

/**
 * Acceptor, step 1: checks a hello, in the order of PROTOCOL.md §5.2. Remembers its nonce.
 *
 * @throws ParleyError `PROTOCOL_NOT_JWS` / `PROTOCOL_MALFORMED_FRAME` (4400),
 *   `AUTH_UNSUPPORTED_VERSION` (4426), `AUTH_UNKNOWN_PEER` (4403: unknown sender, or a hello
 *   for someone else), `AUTH_BAD_SIGNATURE` (4401), `AUTH_STALE_HELLO` (4411),
 *   `AUTH_REPLAYED_HELLO` (4410).
 */
export async function checkHello(helloJws: string, ctx: HelloCheckContext): Promise<AcceptedHello> {
  const claimed = peekHandshakeFrame(helloJws, 'ChannelHello');
  const peerKey = await ctx.keyOf(claimed.from);
  if (peerKey === undefined) throw new ParleyError('AUTH_UNKNOWN_PEER', 'hello from an unknown address');
  const hello = await verifyHandshakeFrame(helloJws, peerKey, 'ChannelHello');
  if (hello.to !== ctx.me) throw new ParleyError('AUTH_UNKNOWN_PEER', 'hello addressed to someone else');
  if (Math.abs(ctx.nowMs - hello.timestamp_ms) > ctx.maxSkewMs) {
    throw new ParleyError('AUTH_STALE_HELLO', 'hello timestamp is outside the accepted clock skew');
  }
  if (!ctx.nonces.remember(hello.nonce, hello.timestamp_ms, ctx.nowMs)) {
    throw new ParleyError('AUTH_REPLAYED_HELLO', 'hello nonce already seen');
  }
  return { hello, peerKey };
}

/** Acceptor, step 2: the signed hello-ack, and the session values once the dialer confirms. */
export async function buildAck(
  self: HandshakeSelf,
  accepted: AcceptedHello,
  nowMs: number,
): Promise<SentHello<ChannelHelloAck> & { result: HandshakeResult }> {
  const { hello } = accepted;
  const ephemeral = generateEphemeralKey();
  const frame: ChannelHelloAck = {
    _ObjectType: 'ChannelHelloAck',
    ...helloFieldsOf(self, hello.from, nowMs, ephemeral),
    echo_nonce: hello.nonce,
  };
  // Derive first: a peer key that is not a usable X25519 point fails before we answer.
  const sessionSecret = deriveSessionSecret({
    myEphemeral: ephemeral.privateKey,
    peerEphemeralKeyHex: hello.ephemeral_key,
    dialerNonce: hello.nonce,
    acceptorNonce: frame.nonce,
    dialer: hello.from,
    acceptor: self.me,
  });
  return {
    frame,
    jws: await signOwn(frame, self.myKey),
    ephemeral,
    result: {
      peer: hello.from,
      peerEpoch: hello.epoch,
      peerSummary: hello.open_objects,
      peerSyncMethods: hello.sync_methods ?? ['list'],
      dialed: false,
      id: handshakeConnectionId(hello.nonce, frame.nonce),
      dialedAtMs: hello.timestamp_ms,
      sessionSecret,
    },
  };
}

/**
 * Acceptor, step 3: checks the dialer's confirm.
 *
 * @throws ParleyError `PROTOCOL_NOT_JWS` / `PROTOCOL_MALFORMED_FRAME` (4400),
 *   `AUTH_BAD_SIGNATURE` (4401: bad signature, wrong addresses or wrong `echo_nonce`).
 */
export async function checkConfirm(
  confirmJws: string,
  accepted: AcceptedHello,
  ack: ChannelHelloAck,
): Promise<void> {
  const confirm = await verifyHandshakeFrame(confirmJws, accepted.peerKey, 'ChannelHelloConfirm');
  if (confirm.from !== accepted.hello.from || confirm.to !== ack.from || confirm.echo_nonce !== ack.nonce) {
    throw new ParleyError('AUTH_BAD_SIGNATURE', 'hello-confirm does not sign our nonce');
  }
}
