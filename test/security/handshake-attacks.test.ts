/**
 * Handshake attacks on a real node (PROTOCOL.md §5.2, close codes §6): no hello, an unknown
 * key, a replayed hello, a wrong nonce, a stale timestamp, a forged epoch and a slowloris hello
 * sent byte by byte. Each is closed with its code and writes no row.
 */
import { connect as tcpConnect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { CloseCode, privateKeyFromSeedHex, publicKeyFromHex } from '../../src/protocol/index.js';
import { nodeConfig, type TestIdentity, testIdentity } from '../helpers/nodes.js';
import { opened, openRawPeer, type RawPeer, rawDial, rawHello, signed } from '../helpers/raw-peer.js';
import { rowCounts, type SecuredNode, startSecuredNode } from './harness.js';

const HANDSHAKE_TIMEOUT_MS = 400;

describe('handshake attacks on a node', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function setup(): Promise<{ secured: SecuredNode; a: TestIdentity; b: TestIdentity }> {
    const a = testIdentity(0xa7);
    const b = testIdentity(0xb7);
    const secured = await startSecuredNode(
      (url) => ({
        ...nodeConfig(a, url, [{ identity: b }]),
        listen: { host: '127.0.0.1', port: 0, limits: { handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS } },
      }),
      { sync: { onConnect: false } },
    );
    cleanups.push(() => secured.dispose());
    return { secured, a, b };
  }

  async function raw(url: string): Promise<RawPeer> {
    const peer = await openRawPeer(url);
    cleanups.push(() => peer.terminate());
    return peer;
  }

  async function expectNothingWritten(secured: SecuredNode): Promise<void> {
    expect(await rowCounts(secured.db)).toEqual({
      command_log: 0,
      outbox: 0,
      object_head: 0,
      object_version: 0,
    });
  }

  it('closes a socket that sends no hello with HANDSHAKE_TIMEOUT (4408)', async () => {
    const { secured } = await setup();
    const peer = await raw(secured.node.url);
    expect((await peer.closed).code).toBe(CloseCode.HANDSHAKE_TIMEOUT);
    await expectNothingWritten(secured);
  });

  it('closes a hello signed with a key the directory does not hold with BAD_SIGNATURE (4401), and an unknown address with 4403', async () => {
    const { secured, a, b } = await setup();
    const stranger = testIdentity(0xc7);
    const wrongKey = await raw(secured.node.url);
    wrongKey.send(signed(rawHello(b.address, a.address).payload, privateKeyFromSeedHex(stranger.seedHex)));
    expect((await wrongKey.closed).code).toBe(CloseCode.BAD_SIGNATURE);
    const unknown = await raw(secured.node.url);
    unknown.send(
      signed(rawHello(stranger.address, a.address).payload, privateKeyFromSeedHex(stranger.seedHex)),
    );
    expect((await unknown.closed).code).toBe(CloseCode.UNKNOWN_PEER);
    await expectNothingWritten(secured);
  });

  it('closes a replayed hello with REPLAYED_HELLO (4410)', async () => {
    const { secured, a, b } = await setup();
    const dialer = await raw(secured.node.url);
    const me = { address: b.address, key: privateKeyFromSeedHex(b.seedHex) };
    const { helloJws } = await rawDial(dialer, me, {
      address: a.address,
      publicKey: publicKeyFromHex(a.publicKeyHex),
    });
    const replay = await raw(secured.node.url);
    replay.send(helloJws);
    expect((await replay.closed).code).toBe(CloseCode.REPLAYED_HELLO);
    await expectNothingWritten(secured);
  });

  it('closes a confirm that echoes the wrong nonce with BAD_SIGNATURE (4401)', async () => {
    const { secured, a, b } = await setup();
    const key = privateKeyFromSeedHex(b.seedHex);
    const peer = await raw(secured.node.url);
    peer.send(signed(rawHello(b.address, a.address).payload, key));
    const ack = opened(await peer.next(), publicKeyFromHex(a.publicKeyHex));
    expect(ack['_ObjectType']).toBe('ChannelHelloAck');
    peer.send(
      signed(
        { _ObjectType: 'ChannelHelloConfirm', from: b.address, to: a.address, echo_nonce: '00'.repeat(32) },
        key,
      ),
    );
    expect((await peer.closed).code).toBe(CloseCode.BAD_SIGNATURE);
    await expectNothingWritten(secured);
  });

  it('closes a hello whose timestamp is outside the skew window with STALE_HELLO (4411)', async () => {
    const { secured, a, b } = await setup();
    const key = privateKeyFromSeedHex(b.seedHex);
    for (const timestamp_ms of [Date.now() - 3_600_000, Date.now() + 3_600_000]) {
      const peer = await raw(secured.node.url);
      peer.send(signed(rawHello(b.address, a.address, { timestamp_ms }).payload, key));
      expect((await peer.closed).code).toBe(CloseCode.STALE_HELLO);
    }
    await expectNothingWritten(secured);
  });

  it('closes a captured hello whose epoch was rewritten (the signature no longer covers it) with BAD_SIGNATURE (4401)', async () => {
    const { secured, a, b } = await setup();
    const hello = signed(rawHello(b.address, a.address).payload, privateKeyFromSeedHex(b.seedHex));
    const [header, payload, signature] = hello.split('.');
    const fields = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8')) as Record<
      string,
      unknown
    >;
    fields['epoch'] = 'forged-epoch-9999';
    const forged = `${header}.${Buffer.from(JSON.stringify(fields)).toString('base64url')}.${signature}`;
    const peer = await raw(secured.node.url);
    peer.send(forged);
    expect((await peer.closed).code).toBe(CloseCode.BAD_SIGNATURE);
    await expectNothingWritten(secured);
  });

  it('closes a hello sent one byte at a time (slowloris) with HANDSHAKE_TIMEOUT (4408) before it is whole', async () => {
    const { secured, a, b } = await setup();
    const hello = Buffer.from(
      signed(rawHello(b.address, a.address).payload, privateKeyFromSeedHex(b.seedHex)),
    );
    const { port } = new URL(secured.node.url);
    const path = new URL(secured.node.url).pathname;
    const socket = tcpConnect(Number(port), '127.0.0.1');
    cleanups.push(() => void socket.destroy());
    let received = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      received = Buffer.concat([received, d]);
    });
    // Ends when the node's close frame (0x88 after the 101 response) arrives, or the socket ends.
    const ended = new Promise<void>((resolve) => {
      socket.on('close', () => resolve());
      socket.on('data', () => {
        const at = received.indexOf('\r\n\r\n');
        if (at >= 0 && received.length >= at + 8) resolve();
      });
    });
    socket.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    // A masked text frame (mask 0): 126 = 16-bit length follows.
    const frame = Buffer.concat([
      Buffer.from([0x81, 0x80 | 126, hello.length >> 8, hello.length & 0xff, 0, 0, 0, 0]),
      hello,
    ]);
    let sent = 0;
    const drip = setInterval(() => {
      if (sent < frame.length && !socket.destroyed) socket.write(frame.subarray(sent, ++sent));
    }, 5);
    cleanups.push(() => clearInterval(drip));
    await ended;
    clearInterval(drip);
    expect(sent).toBeLessThan(frame.length);
    const head = received.indexOf('\r\n\r\n');
    expect(received.subarray(0, head).toString()).toMatch(/^HTTP\/1\.1 101/);
    const close = received.subarray(head + 4);
    expect(close[0]).toBe(0x88);
    expect(close.readUInt16BE(2)).toBe(CloseCode.HANDSHAKE_TIMEOUT);
    await expectNothingWritten(secured);
  });
});
