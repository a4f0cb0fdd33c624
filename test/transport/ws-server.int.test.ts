import { createHash } from 'node:crypto';
import type { Subscription } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { isParleyError } from '../../src/errors.js';
import { CloseCode } from '../../src/protocol/index.js';
import type { Connection } from '../../src/transport/types.js';
import { createChannelServer, type HandshakeFailure } from '../../src/transport/ws-server.js';
import { opened, openRawPeer, type RawPeer, rawDial, rawHello, signed } from '../helpers/raw-peer.js';
import {
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

async function setup(options: Parameters<typeof startServer>[3] = {}) {
  const acceptor = makeIdentity();
  const dialer = makeIdentity();
  const server = await startServer(leftovers, acceptor, [entryOf(dialer)], options);
  const connections: Connection[] = [];
  const failures: HandshakeFailure[] = [];
  leftovers.add(
    server.connections$.subscribe((c) => connections.push(c)),
    (s: Subscription) => s.unsubscribe(),
  );
  leftovers.add(
    server.handshakeFailures$.subscribe((f) => failures.push(f)),
    (s: Subscription) => s.unsubscribe(),
  );
  const acceptorKey = { address: acceptor.address, publicKey: acceptor.key.publicKey };
  return { acceptor, acceptorKey, dialer, server, connections, failures };
}

async function raw(url: string): Promise<RawPeer> {
  return leftovers.add(await openRawPeer(url), (peer) => peer.terminate());
}

async function closeCodeOf(peer: RawPeer): Promise<number> {
  return (await within(peer.closed, 'the server to close the socket')).code;
}

function helloFrom(
  signer: Identity,
  from: string,
  to: string,
  overrides: Record<string, unknown> = {},
): string {
  return signed(rawHello(from, to, overrides).payload, signer.key);
}

describe('channel server: handshake (PROTOCOL.md §5.2, raw peer)', () => {
  it('completes the three-way handshake with a hand-written dialer; both ends agree on everything', async () => {
    const { acceptor, acceptorKey, dialer, server } = await setup();
    const accepted = first(server.connections$);
    const peer = await raw(server.url);
    const result = await rawDial(peer, dialer, acceptorKey);
    const connection = await accepted;

    expect(result.ack).toMatchObject({
      _ObjectType: 'ChannelHelloAck',
      from: acceptor.address,
      to: dialer.address,
      protocol_version: 1,
      epoch: acceptor.state.epoch,
      open_objects: acceptor.state.openObjects,
      echo_nonce: result.hello.nonce,
    });
    expect(connection).toMatchObject({
      peer: dialer.address,
      dialed: false,
      peerEpoch: 'raw-epoch-0001',
      peerSummary: { count: 3, digest: 'raw-digest' },
      dialedAtMs: result.hello.payload['timestamp_ms'],
      state: 'open',
    });
    expect(connection.sessionSecret).toMatch(/^[0-9a-f]{64}$/);
    expect(connection.sessionSecret).toBe(result.sessionSecret);
    const expectedId = createHash('sha256')
      .update(Buffer.from(result.hello.nonce, 'hex'))
      .update(Buffer.from(String(result.ack['nonce']), 'hex'))
      .digest('hex')
      .slice(0, 32);
    expect(connection.id).toBe(expectedId);
  });

  it('delivers frames sent right after the confirm to the first subscriber, and sends frames back', async () => {
    const { acceptorKey, dialer, server } = await setup();
    const accepted = first(server.connections$);
    const peer = await raw(server.url);
    await rawDial(peer, dialer, acceptorKey);
    peer.send('frame-1');
    peer.send('frame-2');
    const connection = await accepted;
    const received: string[] = [];
    const twoFrames = new Promise<void>((resolve) => {
      connection.frames$.subscribe((frame) => {
        received.push(frame);
        if (received.length === 2) resolve();
      });
    });
    await within(twoFrames, 'two frames');
    expect(received).toEqual(['frame-1', 'frame-2']);
    expect(connection.send('from-server')).toBe(true);
    expect(await within(peer.next(), 'a frame from the server')).toBe('from-server');
  });

  it('closes with UNKNOWN_PEER (4403) when the sender address is not in the directory', async () => {
    const { acceptor, server, failures } = await setup();
    const stranger = makeIdentity();
    const peer = await raw(server.url);
    peer.send(helloFrom(stranger, stranger.address, acceptor.address));
    expect(await closeCodeOf(peer)).toBe(CloseCode.UNKNOWN_PEER);
    expect(failures.map((f) => f.error.code)).toEqual(['AUTH_UNKNOWN_PEER']);
  });

  it('closes with BAD_SIGNATURE (4401) when a known address signs with an unknown key', async () => {
    const { acceptor, dialer, server, connections } = await setup();
    const impostor = makeIdentity();
    const peer = await raw(server.url);
    peer.send(helloFrom(impostor, dialer.address, acceptor.address));
    expect(await closeCodeOf(peer)).toBe(CloseCode.BAD_SIGNATURE);
    expect(connections).toEqual([]);
  });

  it('closes with UNKNOWN_PEER (4403) when the directory key of that address is broken', async () => {
    const acceptor = makeIdentity();
    const dialer = makeIdentity();
    const server = await startServer(leftovers, acceptor, [{ address: dialer.address, publicKeyHex: 'zz' }]);
    const peer = await raw(server.url);
    peer.send(helloFrom(dialer, dialer.address, acceptor.address));
    // A broken directory key authenticates nobody: the address counts as unknown.
    expect(await closeCodeOf(peer)).toBe(CloseCode.UNKNOWN_PEER);
  });

  it('closes with REPLAYED_HELLO (4410) when a captured hello is sent again on a new socket', async () => {
    const { acceptorKey, dialer, server, connections } = await setup();
    const accepted = first(server.connections$);
    const result = await rawDial(await raw(server.url), dialer, acceptorKey);
    await accepted;
    const replay = await raw(server.url);
    replay.send(result.helloJws);
    expect(await closeCodeOf(replay)).toBe(CloseCode.REPLAYED_HELLO);
    expect(connections).toHaveLength(1);
  });

  it('never completes a replayed hello even before the original finished: the replayer cannot sign the nonce', async () => {
    const { acceptor, dialer, server, connections } = await setup();
    const helloJws = helloFrom(dialer, dialer.address, acceptor.address);
    const original = await raw(server.url);
    original.send(helloJws);
    await within(original.next(), 'the ack'); // the original is now waiting for its confirm
    const replay = await raw(server.url);
    replay.send(helloJws);
    expect(await closeCodeOf(replay)).toBe(CloseCode.REPLAYED_HELLO);
    expect(connections).toEqual([]);
  });

  it('closes with STALE_HELLO (4411) when the hello timestamp is outside the skew window', async () => {
    const { acceptor, dialer, server } = await setup({ helloMaxSkewMs: 60_000 });
    const peer = await raw(server.url);
    peer.send(
      helloFrom(dialer, dialer.address, acceptor.address, { timestamp_ms: Date.now() - 10 * 60_000 }),
    );
    expect(await closeCodeOf(peer)).toBe(CloseCode.STALE_HELLO);
    const future = await raw(server.url);
    future.send(
      helloFrom(dialer, dialer.address, acceptor.address, { timestamp_ms: Date.now() + 10 * 60_000 }),
    );
    expect(await closeCodeOf(future)).toBe(CloseCode.STALE_HELLO);
  });

  it('closes with UNKNOWN_PEER (4403) when a valid hello is addressed to someone else', async () => {
    const { dialer, server } = await setup();
    const someoneElse = makeIdentity();
    const peer = await raw(server.url);
    peer.send(helloFrom(dialer, dialer.address, someoneElse.address));
    expect(await closeCodeOf(peer)).toBe(CloseCode.UNKNOWN_PEER);
  });

  it.each([
    ['not a JWS', () => 'hello there'],
    [
      'a JWS whose payload is not JSON',
      (d: Identity) => signed('{', d.key).replace(/^[^.]*/, 'eyJhbGciOiJFZERTQSJ9'),
    ],
    ['a JSON array', (d: Identity) => signed([], d.key)],
    [
      'a confirm instead of a hello',
      (d: Identity, to: string) =>
        signed(
          { _ObjectType: 'ChannelHelloConfirm', from: d.address, to, echo_nonce: '00'.repeat(32) },
          d.key,
        ),
    ],
    [
      'a hello with a short nonce',
      (d: Identity, to: string) => helloFrom(d, d.address, to, { nonce: 'abcd' }),
    ],
    [
      'a hello with a string count',
      (d: Identity, to: string) => helloFrom(d, d.address, to, { open_objects: { count: '3', digest: 'x' } }),
    ],
  ])('closes with BAD_FRAME (4400) when the first frame is %s', async (_name, frame) => {
    const { acceptor, dialer, server } = await setup();
    const peer = await raw(server.url);
    peer.send(frame(dialer, acceptor.address));
    expect(await closeCodeOf(peer)).toBe(CloseCode.BAD_FRAME);
  });

  it('closes with BAD_FRAME (4400) when the ephemeral key is a low-order X25519 point', async () => {
    const { acceptor, dialer, server } = await setup();
    const peer = await raw(server.url);
    peer.send(helloFrom(dialer, dialer.address, acceptor.address, { ephemeral_key: '00'.repeat(32) }));
    expect(await closeCodeOf(peer)).toBe(CloseCode.BAD_FRAME);
  });

  it('closes with UNSUPPORTED_DATA (1003) when the first frame is binary', async () => {
    const { server } = await setup();
    const peer = await raw(server.url);
    peer.sendBinary(new Uint8Array([1, 2, 3]));
    expect(await closeCodeOf(peer)).toBe(CloseCode.UNSUPPORTED_DATA);
  });

  it('closes with UNSUPPORTED_VERSION (4426) for a hello of another protocol version', async () => {
    const { acceptor, dialer, server } = await setup();
    const peer = await raw(server.url);
    peer.send(helloFrom(dialer, dialer.address, acceptor.address, { protocol_version: 2, future_field: {} }));
    expect(await closeCodeOf(peer)).toBe(CloseCode.UNSUPPORTED_VERSION);
  });

  it('closes with HANDSHAKE_TIMEOUT (4408) when no hello arrives in time', async () => {
    const { server, failures } = await setup({ handshakeTimeoutMs: 150 });
    const peer = await raw(server.url);
    expect(await closeCodeOf(peer)).toBe(CloseCode.HANDSHAKE_TIMEOUT);
    expect(failures.map((f) => f.error.code)).toEqual(['AUTH_HANDSHAKE_TIMEOUT']);
  });

  it('closes with HANDSHAKE_TIMEOUT (4408) when the confirm never comes', async () => {
    const { acceptor, dialer, server } = await setup({ handshakeTimeoutMs: 150 });
    const peer = await raw(server.url);
    peer.send(helloFrom(dialer, dialer.address, acceptor.address));
    await within(peer.next(), 'the ack');
    expect(await closeCodeOf(peer)).toBe(CloseCode.HANDSHAKE_TIMEOUT);
  });

  it('closes with BAD_SIGNATURE (4401) when the confirm echoes the wrong nonce', async () => {
    const { acceptor, acceptorKey, dialer, server, connections } = await setup();
    const peer = await raw(server.url);
    peer.send(helloFrom(dialer, dialer.address, acceptor.address));
    opened(await within(peer.next(), 'the ack'), acceptorKey.publicKey);
    peer.send(
      signed(
        {
          _ObjectType: 'ChannelHelloConfirm',
          from: dialer.address,
          to: acceptor.address,
          echo_nonce: 'ab'.repeat(32),
        },
        dialer.key,
      ),
    );
    expect(await closeCodeOf(peer)).toBe(CloseCode.BAD_SIGNATURE);
    expect(connections).toEqual([]);
  });

  it('closes with BAD_SIGNATURE (4401) when someone else signs the confirm', async () => {
    const { acceptor, dialer, server } = await setup();
    const peer = await raw(server.url);
    peer.send(helloFrom(dialer, dialer.address, acceptor.address));
    const ack = JSON.parse(
      Buffer.from((await within(peer.next(), 'the ack')).split('.')[1] ?? '', 'base64url').toString(),
    );
    peer.send(
      signed(
        {
          _ObjectType: 'ChannelHelloConfirm',
          from: dialer.address,
          to: acceptor.address,
          echo_nonce: ack.nonce,
        },
        makeIdentity().key,
      ),
    );
    expect(await closeCodeOf(peer)).toBe(CloseCode.BAD_SIGNATURE);
  });

  it('closes with FRAME_TOO_LARGE (1009) for a first frame above maxFrameBytes', async () => {
    const { server } = await setup({ maxFrameBytes: 2048 });
    const peer = await raw(server.url);
    peer.send('x'.repeat(4096));
    expect(await closeCodeOf(peer)).toBe(CloseCode.FRAME_TOO_LARGE);
  });

  it('closes with FRAME_TOO_LARGE (1009) for a handshake frame above the handshake limit', async () => {
    const { server } = await setup();
    const peer = await raw(server.url);
    peer.send('x'.repeat(5000));
    expect(await closeCodeOf(peer)).toBe(CloseCode.FRAME_TOO_LARGE);
  });

  it('closes an established connection with FRAME_TOO_LARGE (1009) for a frame above maxFrameBytes', async () => {
    const { acceptorKey, dialer, server } = await setup({ maxFrameBytes: 4096 });
    const accepted = first(server.connections$);
    const peer = await raw(server.url);
    await rawDial(peer, dialer, acceptorKey);
    const connection = await accepted;
    peer.send('y'.repeat(8192));
    expect(await closeCodeOf(peer)).toBe(CloseCode.FRAME_TOO_LARGE);
    expect((await within(connection.closed, 'connection close')).code).toBe(CloseCode.FRAME_TOO_LARGE);
  });

  it('closes an established connection with UNSUPPORTED_DATA (1003) on a binary frame', async () => {
    const { acceptorKey, dialer, server } = await setup();
    const accepted = first(server.connections$);
    const peer = await raw(server.url);
    await rawDial(peer, dialer, acceptorKey);
    const connection = await accepted;
    const completed = new Promise<void>((resolve) => connection.frames$.subscribe({ complete: resolve }));
    peer.sendBinary(new Uint8Array(16));
    expect(await closeCodeOf(peer)).toBe(CloseCode.UNSUPPORTED_DATA);
    await within(completed, 'frames$ to complete');
    expect((await within(connection.closed, 'connection close')).code).toBe(CloseCode.UNSUPPORTED_DATA);
    expect(connection.state).toBe('closed');
  });

  it.each([
    ['throws', () => Promise.reject(new Error('store down'))],
    ['returns an invalid state', () => ({ epoch: '', openObjects: { count: 0, digest: '' } })],
  ])(
    'closes with INTERNAL_ERROR (1011) when its own local state %s, never blaming the peer',
    async (_name, localState) => {
      const acceptor = makeIdentity();
      const dialer = makeIdentity();
      const server = leftovers.add(
        createChannelServer(
          {},
          {
            ...depsOf(acceptor),
            localState,
            directory: (a) => (a === dialer.address ? entryOf(dialer) : undefined),
          },
        ),
        (s) => s.close(),
      );
      await server.listening;
      const failure = first(server.handshakeFailures$);
      const peer = await raw(server.url);
      peer.send(helloFrom(dialer, dialer.address, acceptor.address));
      expect(await closeCodeOf(peer)).toBe(CloseCode.INTERNAL_ERROR);
      expect((await failure).error.code).toBe('TRANSPORT_INTERNAL_ERROR');
    },
  );

  it('answers an upgrade on another path with HTTP 404', async () => {
    const { server } = await setup();
    await expect(openRawPeer(server.url.replace('/parley/v1', '/other'))).rejects.toThrow(/404/);
  });

  it('closes every connection with GOING_AWAY (1001) on close and completes its streams', async () => {
    const { acceptorKey, dialer, server } = await setup();
    const accepted = first(server.connections$);
    const peer = await raw(server.url);
    await rawDial(peer, dialer, acceptorKey);
    const connection = await accepted;
    const completed = new Promise<void>((resolve) => server.connections$.subscribe({ complete: resolve }));
    await within(server.close(), 'server close');
    await within(completed, 'connections$ to complete');
    expect(await closeCodeOf(peer)).toBe(CloseCode.GOING_AWAY);
    expect(connection.state).toBe('closed');
    await server.close(); // idempotent
  });
});

describe('channel server: plain ws only on loopback', () => {
  const acceptor = makeIdentity();
  const deps = { ...depsOf(acceptor), directory: () => undefined };

  it.each(['203.0.113.7', '0.0.0.0', '::', 'example.com'])(
    'refuses to start plain ws on %s without allowInsecure, before binding anything',
    (host) => {
      let thrown: unknown;
      try {
        createChannelServer({ host }, deps);
      } catch (err) {
        thrown = err;
      }
      // TRANSPORT_INSECURE (not TRANSPORT_LISTEN_FAILED): refused before any bind was tried.
      expect(isParleyError(thrown, 'TRANSPORT_INSECURE')).toBe(true);
    },
  );

  it('refuses to attach to a plain server listening on a non-loopback address', async () => {
    const server = await startServer(leftovers, acceptor, []);
    const fake = { address: () => ({ address: '10.1.2.3', family: 'IPv4', port: 1 }) };
    expect(() => server.attach(fake as never)).toThrow(
      expect.objectContaining({ code: 'TRANSPORT_INSECURE' }),
    );
  });

  it('rejects a bad option with CONFIG_INVALID', () => {
    expect(() => createChannelServer({ maxFrameBytes: -1 }, deps)).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
  });
});
