import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, type ErrorCode as ErrorCodeName, isParleyError } from '../../src/errors.js';
import { CloseCode } from '../../src/protocol/index.js';
import type { Connection } from '../../src/transport/types.js';
import { type DialOptions, dial } from '../../src/transport/ws-dialer.js';
import {
  opened,
  type RawClose,
  type RawPeer,
  rawHello,
  rawSessionSecret,
  signed,
  startRawServer,
} from '../helpers/raw-peer.js';
import { HAVE_OPENSSL, makeSelfSignedCertificate } from '../helpers/tls.js';
import {
  closeConnection,
  createLeftovers,
  depsOf,
  entryOf,
  first,
  type Identity,
  makeIdentity,
  startServer,
  within,
} from './harness.js';

const leftovers = createLeftovers();
afterEach(() => leftovers.drain());

/** Dials and registers the connection for disposal. */
async function dialed(
  peer: Parameters<typeof dial>[0],
  options: DialOptions,
  who: Identity,
): Promise<Connection> {
  return leftovers.add(await dial(peer, options, depsOf(who)), closeConnection);
}

/** The error code `promise` rejects with. */
async function rejection(
  promise: Promise<unknown>,
): Promise<ErrorCodeName | 'resolved' | 'not a ParleyError'> {
  try {
    const value = await within(promise, 'the dial to settle');
    if (value && typeof value === 'object' && 'close' in value)
      (value as Connection).close(1000, 'unexpected');
    return 'resolved';
  } catch (err) {
    return isParleyError(err) ? err.code : 'not a ParleyError';
  }
}

/**
 * A raw acceptor run by `script` for each socket; `closes` gets how each socket ended.
 */
async function rawAcceptor(script: (peer: RawPeer) => Promise<void>) {
  const closes: Promise<RawClose>[] = [];
  const server = leftovers.add(
    await startRawServer((peer) => {
      closes.push(peer.closed);
      script(peer).catch(() => peer.terminate());
    }),
    (s) => s.close(),
  );
  return { url: server.url, closes };
}

describe('dial: against the channel server', () => {
  it('opens a connection on which both ends learn the other side and agree on the session', async () => {
    const acceptor = makeIdentity();
    const dialer = makeIdentity();
    const server = await startServer(leftovers, acceptor, [entryOf(dialer)]);
    const accepted = first(server.connections$);
    const mine = await dialed(entryOf(acceptor, server.url), {}, dialer);
    const theirs = await accepted;

    expect(mine).toMatchObject({
      peer: acceptor.address,
      dialed: true,
      peerEpoch: acceptor.state.epoch,
      peerSummary: acceptor.state.openObjects,
    });
    expect(theirs).toMatchObject({
      peer: dialer.address,
      dialed: false,
      peerEpoch: dialer.state.epoch,
      peerSummary: dialer.state.openObjects,
    });
    expect(mine.sessionSecret).toMatch(/^[0-9a-f]{64}$/);
    expect(mine.sessionSecret).toBe(theirs.sessionSecret);
    expect(mine.id).toBe(theirs.id);
    expect(mine.dialedAtMs).toBe(theirs.dialedAtMs);

    const atAcceptor = first(theirs.frames$);
    expect(mine.send('ping from dialer')).toBe(true);
    expect(await atAcceptor).toBe('ping from dialer');
    const atDialer = first(mine.frames$);
    expect(theirs.send('pong from acceptor')).toBe(true);
    expect(await atDialer).toBe('pong from acceptor');

    mine.close(CloseCode.NORMAL, 'bye');
    mine.close(CloseCode.GOING_AWAY, 'twice'); // idempotent: the first close wins
    // Each side knows who started the close.
    expect(await within(mine.closed, 'close')).toEqual({
      code: CloseCode.NORMAL,
      reason: 'bye',
      byPeer: false,
    });
    expect(await within(theirs.closed, 'close')).toEqual({
      code: CloseCode.NORMAL,
      reason: 'bye',
      byPeer: true,
    });
    expect(mine.send('late')).toBe(false);
  });

  it('rejects with AUTH_UNKNOWN_PEER when the acceptor does not know us', async () => {
    const acceptor = makeIdentity();
    const server = await startServer(leftovers, acceptor, []);
    expect(await rejection(dial(entryOf(acceptor, server.url), {}, depsOf(makeIdentity())))).toBe(
      'AUTH_UNKNOWN_PEER',
    );
  });

  it('rejects with AUTH_BAD_SIGNATURE and closes 4401 when the acceptor is not who the directory says', async () => {
    const acceptor = makeIdentity();
    const dialer = makeIdentity();
    const server = await startServer(leftovers, acceptor, [entryOf(dialer)]);
    const failure = first(server.handshakeFailures$);
    const wrongKey = { ...entryOf(acceptor, server.url), publicKeyHex: makeIdentity().key.publicKey.hex };
    expect(await rejection(dial(wrongKey, {}, depsOf(dialer)))).toBe('AUTH_BAD_SIGNATURE');
    // The acceptor saw us close with 4401 while it waited for the confirm.
    expect((await failure).error.code).toBe('AUTH_BAD_SIGNATURE');
  });

  it('rejects with TRANSPORT_CONNECT_FAILED when nothing listens', async () => {
    const acceptor = makeIdentity();
    const server = await startServer(leftovers, acceptor, []);
    const url = server.url;
    await server.close();
    expect(await rejection(dial(entryOf(acceptor, url), {}, depsOf(makeIdentity())))).toBe(
      'TRANSPORT_CONNECT_FAILED',
    );
  });

  it('rejects with TRANSPORT_CONNECT_FAILED when the path is not a channel endpoint', async () => {
    const acceptor = makeIdentity();
    const server = await startServer(leftovers, acceptor, []);
    const url = server.url.replace('/parley/v1', '/nope');
    expect(await rejection(dial(entryOf(acceptor, url), {}, depsOf(makeIdentity())))).toBe(
      'TRANSPORT_CONNECT_FAILED',
    );
  });

  it('refuses plain ws to a non-loopback host without allowInsecure, before connecting', async () => {
    const acceptor = makeIdentity();
    const peer = entryOf(acceptor, 'ws://203.0.113.9:7100/parley/v1');
    expect(await rejection(dial(peer, {}, depsOf(makeIdentity())))).toBe('TRANSPORT_INSECURE');
  });

  it('rejects with TRANSPORT_INTERNAL_ERROR, without connecting, when its own local state fails', async () => {
    const acceptor = makeIdentity();
    const server = await startServer(leftovers, acceptor, []);
    const failures: unknown[] = [];
    leftovers.add(
      server.handshakeFailures$.subscribe((f) => failures.push(f)),
      (s) => s.unsubscribe(),
    );
    const deps = { ...depsOf(makeIdentity()), localState: () => Promise.reject(new Error('store down')) };
    expect(await rejection(dial(entryOf(acceptor, server.url), {}, deps))).toBe('TRANSPORT_INTERNAL_ERROR');
    expect(failures).toEqual([]);
  });

  it('rejects with CONFIG_INVALID for a peer without a usable url', async () => {
    const acceptor = makeIdentity();
    const who = depsOf(makeIdentity());
    expect(await rejection(dial(entryOf(acceptor), {}, who))).toBe('CONFIG_INVALID');
    expect(await rejection(dial(entryOf(acceptor, 'http://127.0.0.1:1/'), {}, who))).toBe('CONFIG_INVALID');
  });
});

describe('dial: against a hand-written acceptor (PROTOCOL.md §5.1)', () => {
  it('sends a hello and confirm that follow the spec, and derives the same session secret', async () => {
    const acceptor = makeIdentity();
    const dialer = makeIdentity();
    let resolveSecret!: (secret: string) => void;
    const secretAtAcceptor = new Promise<string>((resolve) => {
      resolveSecret = resolve;
    });
    const { url } = await rawAcceptor(async (peer) => {
      const hello = opened(await peer.next(), dialer.key.publicKey);
      expect(hello).toMatchObject({
        _ObjectType: 'ChannelHello',
        from: dialer.address,
        to: acceptor.address,
        protocol_version: 1,
        epoch: dialer.state.epoch,
        open_objects: dialer.state.openObjects,
      });
      const ack = rawHello(
        acceptor.address,
        dialer.address,
        { echo_nonce: hello['nonce'] },
        'ChannelHelloAck',
      );
      peer.send(signed(ack.payload, acceptor.key));
      const confirm = opened(await peer.next(), dialer.key.publicKey);
      expect(confirm).toEqual({
        _ObjectType: 'ChannelHelloConfirm',
        from: dialer.address,
        to: acceptor.address,
        echo_nonce: ack.nonce,
      });
      resolveSecret(
        rawSessionSecret({
          mine: ack.ephemeral,
          peerEphemeralHex: String(hello['ephemeral_key']),
          dialerNonce: String(hello['nonce']),
          acceptorNonce: ack.nonce,
          dialer: dialer.address,
          acceptor: acceptor.address,
        }),
      );
    });
    const connection = await dialed(entryOf(acceptor, url), {}, dialer);
    expect(connection.peerEpoch).toBe('raw-epoch-0001');
    expect(connection.sessionSecret).toBe(await within(secretAtAcceptor, 'the raw acceptor'));
  });

  /** A raw acceptor that answers the hello with `ack(hello)` (a JWS), then waits. */
  async function answering(
    ack: (hello: Record<string, unknown>, acceptor: Identity, dialer: Identity) => string,
  ) {
    const acceptor = makeIdentity();
    const dialer = makeIdentity();
    const { url, closes } = await rawAcceptor(async (peer) => {
      const hello = opened(await peer.next(), dialer.key.publicKey);
      peer.send(ack(hello, acceptor, dialer));
      await peer.closed;
    });
    return { acceptor, dialer, url, closes };
  }

  it.each<[string, ErrorCodeName, (h: Record<string, unknown>, a: Identity, d: Identity) => string]>([
    [
      'an ack that does not echo our nonce',
      'AUTH_BAD_SIGNATURE',
      (_h, a, d) =>
        signed(
          rawHello(a.address, d.address, { echo_nonce: 'cd'.repeat(32) }, 'ChannelHelloAck').payload,
          a.key,
        ),
    ],
    [
      'an ack signed by another key',
      'AUTH_BAD_SIGNATURE',
      (h, a, d) =>
        signed(
          rawHello(a.address, d.address, { echo_nonce: h['nonce'] }, 'ChannelHelloAck').payload,
          makeIdentity().key,
        ),
    ],
    [
      'an ack from another address',
      'AUTH_UNKNOWN_PEER',
      (h, a, d) =>
        signed(
          rawHello(makeIdentity().address, d.address, { echo_nonce: h['nonce'] }, 'ChannelHelloAck').payload,
          a.key,
        ),
    ],
    [
      'an ack addressed to someone else',
      'AUTH_UNKNOWN_PEER',
      (h, a) =>
        signed(
          rawHello(a.address, makeIdentity().address, { echo_nonce: h['nonce'] }, 'ChannelHelloAck').payload,
          a.key,
        ),
    ],
    [
      'an ack of another protocol version',
      'AUTH_UNSUPPORTED_VERSION',
      (h, a, d) =>
        signed(
          rawHello(a.address, d.address, { echo_nonce: h['nonce'], protocol_version: 7 }, 'ChannelHelloAck')
            .payload,
          a.key,
        ),
    ],
    [
      'a hello instead of an ack',
      'PROTOCOL_MALFORMED_FRAME',
      (_h, a, d) => signed(rawHello(a.address, d.address).payload, a.key),
    ],
    ['garbage', 'PROTOCOL_NOT_JWS', () => 'garbage'],
    [
      'an ack with a low-order ephemeral key',
      'PROTOCOL_MALFORMED_FRAME',
      (h, a, d) =>
        signed(
          rawHello(
            a.address,
            d.address,
            { echo_nonce: h['nonce'], ephemeral_key: '00'.repeat(32) },
            'ChannelHelloAck',
          ).payload,
          a.key,
        ),
    ],
  ])('rejects %s with %s and closes with its code', async (_name, code, ack) => {
    const { acceptor, dialer, url, closes } = await answering(ack);
    expect(await rejection(dial(entryOf(acceptor, url), {}, depsOf(dialer)))).toBe(code);
    const close = await within(
      closes[0] ?? Promise.reject(new Error('no socket')),
      'the raw socket to close',
    );
    expect(close.code).toBe(ErrorCode[code].close);
  });

  it('rejects with AUTH_HANDSHAKE_TIMEOUT and closes 4408 when no ack comes', async () => {
    const acceptor = makeIdentity();
    const { url, closes } = await rawAcceptor(async (peer) => {
      await peer.closed;
    });
    const outcome = rejection(
      dial(entryOf(acceptor, url), { handshakeTimeoutMs: 150 }, depsOf(makeIdentity())),
    );
    expect(await outcome).toBe('AUTH_HANDSHAKE_TIMEOUT');
    expect((await within(closes[0] ?? Promise.reject(new Error('no socket')), 'close')).code).toBe(
      CloseCode.HANDSHAKE_TIMEOUT,
    );
  });

  it('rejects with TRANSPORT_GOING_AWAY and closes 1001 when aborted', async () => {
    const acceptor = makeIdentity();
    let helloSeen!: () => void;
    const seen = new Promise<void>((resolve) => {
      helloSeen = resolve;
    });
    const { url, closes } = await rawAcceptor(async (peer) => {
      await peer.next();
      helloSeen();
      await peer.closed;
    });
    const controller = new AbortController();
    const outcome = rejection(
      dial(entryOf(acceptor, url), { signal: controller.signal }, depsOf(makeIdentity())),
    );
    await within(seen, 'the hello');
    controller.abort();
    expect(await outcome).toBe('TRANSPORT_GOING_AWAY');
    expect((await within(closes[0] ?? Promise.reject(new Error('no socket')), 'close')).code).toBe(
      CloseCode.GOING_AWAY,
    );
  });
});

describe.skipIf(!HAVE_OPENSSL)('dial: wss with a self-signed certificate (needs /usr/bin/openssl)', () => {
  it('connects when the certificate is trusted through `tls.ca`, and refuses it otherwise', async () => {
    const certificate = makeSelfSignedCertificate();
    const acceptor = makeIdentity();
    const dialer = makeIdentity();
    const server = await startServer(leftovers, acceptor, [entryOf(dialer)], { tls: certificate });
    expect(server.url).toMatch(/^wss:\/\/127\.0\.0\.1:\d+\/parley\/v1$/);
    const accepted = first(server.connections$);
    const connection = await dialed(entryOf(acceptor, server.url), { tls: { ca: certificate.cert } }, dialer);
    expect(connection.sessionSecret).toBe((await accepted).sessionSecret);
    expect(await rejection(dial(entryOf(acceptor, server.url), {}, depsOf(dialer)))).toBe(
      'TRANSPORT_CONNECT_FAILED',
    );
  });
});
