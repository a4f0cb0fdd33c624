/**
 * A raw WebSocket peer that speaks hand-written channel frames, to check the server and the
 * dialer against PROTOCOL.md §5–6 without our own dialer or acceptor in the loop. Frames are
 * built here as plain JSON (not canonical, not through `channel-frames.ts`) and signed with
 * the JWS primitive; the session secret is computed here from the formula in PROTOCOL.md §5.3.
 */
import {
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { type RawData, WebSocket, WebSocketServer } from 'ws';
import { type PrivateKey, type PublicKey, signJws, verifyJws } from '../../src/protocol/index.js';

/** How a raw socket ended. */
export interface RawClose {
  code: number;
  reason: string;
}

/** One raw WebSocket, with a frame queue. */
export interface RawPeer {
  readonly ws: WebSocket;
  send(text: string): void;
  sendBinary(bytes: Uint8Array): void;
  /** The next text frame; rejects when the socket closes first. */
  next(): Promise<string>;
  /** Resolves when the socket is closed, with the code and reason the other side sent. */
  readonly closed: Promise<RawClose>;
  /** Stop / restart reading from the TCP socket (the other side's writes pile up). */
  pause(): void;
  resume(): void;
  /** Drops the TCP connection without a close frame. */
  terminate(): void;
}

function wrap(ws: WebSocket): RawPeer {
  const queue: string[] = [];
  const waiters: Array<{ resolve(text: string): void; reject(err: Error): void }> = [];
  let ended: RawClose | undefined;
  const closed = new Promise<RawClose>((resolve) => {
    ws.on('close', (code, reason) => {
      ended = { code, reason: reason.toString('utf8') };
      for (const waiter of waiters.splice(0)) waiter.reject(new Error(`closed with ${code}`));
      resolve(ended);
    });
  });
  ws.on('error', () => {}); // 'close' follows
  ws.on('message', (data: RawData, isBinary) => {
    const text = isBinary ? `<binary ${(data as Buffer).length}>` : (data as Buffer).toString('utf8');
    const waiter = waiters.shift();
    if (waiter) waiter.resolve(text);
    else queue.push(text);
  });
  return {
    ws,
    send: (text) => ws.send(text),
    sendBinary: (bytes) => ws.send(bytes, { binary: true }),
    next() {
      const queued = queue.shift();
      if (queued !== undefined) return Promise.resolve(queued);
      if (ended) return Promise.reject(new Error(`closed with ${ended.code}`));
      return new Promise((resolve, reject) => waiters.push({ resolve, reject }));
    },
    closed,
    pause: () => ws.pause(),
    resume: () => ws.resume(),
    terminate: () => ws.terminate(),
  };
}

/** Opens a raw socket to `url` (a self-signed `ca` for wss; `localAddress`: the address to dial from). */
export function openRawPeer(
  url: string,
  options: { ca?: string; localAddress?: string } = {},
): Promise<RawPeer> {
  const ws = new WebSocket(url, {
    perMessageDeflate: false,
    ...(options.ca ? { ca: options.ca } : {}),
    ...(options.localAddress ? { localAddress: options.localAddress } : {}),
  });
  const peer = wrap(ws);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(peer));
    ws.once('error', reject);
  });
}

/** A raw acceptor on 127.0.0.1: `onPeer` gets each socket. */
export async function startRawServer(
  onPeer: (peer: RawPeer) => void,
): Promise<{ url: string; close(): Promise<void> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  const peers = new Set<RawPeer>();
  wss.on('connection', (ws) => {
    const peer = wrap(ws);
    peers.add(peer);
    onPeer(peer);
  });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const { port } = wss.address() as AddressInfo;
  return {
    url: `ws://127.0.0.1:${port}/parley/v1`,
    close: async () => {
      for (const peer of peers) peer.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

/** Someone who signs frames. */
export interface RawIdentity {
  address: string;
  key: PrivateKey;
}

/** A hand-written hello or hello-ack, with the secrets behind it. */
export interface RawHello {
  payload: Record<string, unknown>;
  nonce: string;
  ephemeral: KeyObject;
}

/** An ephemeral X25519 key pair: the private key and the 32 raw public bytes in hex. */
export function rawEphemeral(): { privateKey: KeyObject; publicHex: string } {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  const x = publicKey.export({ format: 'jwk' }).x ?? '';
  return { privateKey, publicHex: Buffer.from(x, 'base64url').toString('hex') };
}

/** The fields of PROTOCOL.md §5.1 for a `ChannelHello` (or, with `echo_nonce`, an ack). */
export function rawHello(
  from: string,
  to: string,
  overrides: Record<string, unknown> = {},
  type: 'ChannelHello' | 'ChannelHelloAck' = 'ChannelHello',
): RawHello {
  const nonce = randomBytes(32).toString('hex');
  const { privateKey, publicHex } = rawEphemeral();
  const payload = {
    _ObjectType: type,
    from,
    to,
    protocol_version: 1,
    epoch: 'raw-epoch-0001',
    open_objects: { count: 3, digest: 'raw-digest' },
    nonce,
    timestamp_ms: Date.now(),
    ephemeral_key: publicHex,
    ...overrides,
  };
  return { payload, nonce: String(payload.nonce), ephemeral: privateKey };
}

/** Signs a hand-written payload (plain `JSON.stringify`, not canonical JSON). */
export function signed(payload: unknown, key: PrivateKey): string {
  return signJws(JSON.stringify(payload), key);
}

/** The payload of a JWS verified with `key`. */
export function opened(jws: string, key: PublicKey): Record<string, unknown> {
  return JSON.parse(verifyJws(jws, key)) as Record<string, unknown>;
}

/** PROTOCOL.md §5.3, computed independently of `channel-frames.ts`. */
export function rawSessionSecret(input: {
  mine: KeyObject;
  peerEphemeralHex: string;
  dialerNonce: string;
  acceptorNonce: string;
  dialer: string;
  acceptor: string;
}): string {
  const peerKey = createPublicKey({
    key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(input.peerEphemeralHex, 'hex').toString('base64url') },
    format: 'jwk',
  });
  const shared = diffieHellman({ privateKey: input.mine, publicKey: peerKey });
  const salt = Buffer.concat([
    Buffer.from(input.dialerNonce, 'hex'),
    Buffer.from(input.acceptorNonce, 'hex'),
  ]);
  const info = `parley/v1 channel session ${input.dialer} ${input.acceptor}`;
  return Buffer.from(hkdfSync('sha256', shared, salt, info, 32)).toString('hex');
}

/** What a raw dialer learned from a completed handshake. */
export interface RawDialResult {
  helloJws: string;
  hello: RawHello;
  ack: Record<string, unknown>;
  sessionSecret: string;
}

/**
 * Runs the dialer side of the handshake by hand on `peer`: hello, verify the ack, confirm.
 * `helloOverrides` change fields of the hello.
 */
export async function rawDial(
  peer: RawPeer,
  me: RawIdentity,
  acceptor: { address: string; publicKey: PublicKey },
  helloOverrides: Record<string, unknown> = {},
): Promise<RawDialResult> {
  const hello = rawHello(me.address, acceptor.address, helloOverrides);
  const helloJws = signed(hello.payload, me.key);
  peer.send(helloJws);
  const ack = opened(await peer.next(), acceptor.publicKey);
  if (ack['_ObjectType'] !== 'ChannelHelloAck' || ack['echo_nonce'] !== hello.nonce) {
    throw new Error('not a valid ChannelHelloAck');
  }
  peer.send(
    signed(
      {
        _ObjectType: 'ChannelHelloConfirm',
        from: me.address,
        to: acceptor.address,
        echo_nonce: ack['nonce'],
      },
      me.key,
    ),
  );
  return {
    helloJws,
    hello,
    ack,
    sessionSecret: rawSessionSecret({
      mine: hello.ephemeral,
      peerEphemeralHex: String(ack['ephemeral_key']),
      dialerNonce: hello.nonce,
      acceptorNonce: String(ack['nonce']),
      dialer: me.address,
      acceptor: acceptor.address,
    }),
  };
}
