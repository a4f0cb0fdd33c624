import { describe, expect, it } from 'vitest';
import { type ErrorCode, isParleyError } from '../../src/errors.js';
import {
  CHANNEL_PROTOCOL_VERSION,
  type ChannelHello,
  decodeHandshakeFrame,
  deriveSessionSecret,
  encodeHandshakeFrame,
  generateEphemeralKey,
  handshakeConnectionId,
  newHandshakeNonce,
  peekHandshakeFrame,
  signHandshakeFrame,
  verifyHandshakeFrame,
} from '../../src/protocol/index.js';
import { buildAck, buildHello, checkAck, checkConfirm, checkHello } from '../../src/transport/handshake.js';
import { createNonceCache } from '../../src/transport/replay-cache.js';
import { rawSessionSecret, signed } from '../helpers/raw-peer.js';
import { type Identity, makeIdentity } from './harness.js';

async function codeOf(promise: Promise<unknown> | (() => unknown)): Promise<ErrorCode | 'ok'> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
    return 'ok';
  } catch (err) {
    if (isParleyError(err)) return err.code;
    throw err;
  }
}

function hello(from: Identity, to: Identity, overrides: Partial<ChannelHello> = {}): ChannelHello {
  return {
    _ObjectType: 'ChannelHello',
    from: from.address,
    to: to.address,
    protocol_version: CHANNEL_PROTOCOL_VERSION,
    epoch: from.state.epoch,
    open_objects: from.state.openObjects,
    nonce: newHandshakeNonce(),
    timestamp_ms: 1_700_000_000_000,
    ephemeral_key: generateEphemeralKey().publicKeyHex,
    ...overrides,
  };
}

describe('channel frames (PROTOCOL.md §5)', () => {
  const a = makeIdentity();
  const b = makeIdentity();

  it('encodes canonically and decodes back to the same frame', () => {
    const frame = hello(a, b);
    const text = encodeHandshakeFrame(frame);
    expect(text.startsWith('{"_ObjectType":"ChannelHello","ephemeral_key"')).toBe(true);
    expect(decodeHandshakeFrame(text, 'ChannelHello')).toEqual(frame);
    expect(decodeHandshakeFrame(JSON.stringify({ ...frame, extra: 1 }), 'ChannelHello')).toEqual(frame);
  });

  it('accepts an empty digest (no open objects yet)', () => {
    const frame = hello(a, b, { open_objects: { count: 0, digest: '' } });
    expect(decodeHandshakeFrame(encodeHandshakeFrame(frame), 'ChannelHello')).toEqual(frame);
  });

  it('refuses to encode an invalid frame', async () => {
    expect(await codeOf(() => encodeHandshakeFrame(hello(a, b, { nonce: 'ABCD' })))).toBe(
      'PROTOCOL_MALFORMED_FRAME',
    );
  });

  it.each<[string, unknown, ErrorCode]>([
    ['non-JSON text', '{', 'PROTOCOL_MALFORMED_FRAME'],
    ['an array', [], 'PROTOCOL_MALFORMED_FRAME'],
    ['an unknown _ObjectType', { _ObjectType: 'Nope' }, 'PROTOCOL_MALFORMED_FRAME'],
    ['uppercase hex nonce', { nonce: 'AB'.repeat(32) }, 'PROTOCOL_MALFORMED_FRAME'],
    ['a negative count', { open_objects: { count: -1, digest: 'd' } }, 'PROTOCOL_MALFORMED_FRAME'],
    ['a fractional timestamp', { timestamp_ms: 1.5 }, 'PROTOCOL_MALFORMED_FRAME'],
    ['an empty epoch', { epoch: '' }, 'PROTOCOL_MALFORMED_FRAME'],
    ['another version', { protocol_version: 2 }, 'AUTH_UNSUPPORTED_VERSION'],
    [
      'another version in a frame that no longer fits the schema',
      { protocol_version: 3, nonce: 7 },
      'AUTH_UNSUPPORTED_VERSION',
    ],
    ['a string version', { protocol_version: '1' }, 'PROTOCOL_MALFORMED_FRAME'],
  ])('rejects %s', async (_name, change, code) => {
    const text =
      typeof change === 'string'
        ? change
        : JSON.stringify(Array.isArray(change) ? change : { ...hello(a, b), ...(change as object) });
    expect(await codeOf(() => decodeHandshakeFrame(text, 'ChannelHello'))).toBe(code);
  });

  it('rejects a valid frame of another type than expected', async () => {
    expect(
      await codeOf(() => decodeHandshakeFrame(encodeHandshakeFrame(hello(a, b)), 'ChannelHelloAck')),
    ).toBe('PROTOCOL_MALFORMED_FRAME');
  });

  it('signs and verifies; another key fails with AUTH_BAD_SIGNATURE; peek reads without verifying', async () => {
    const frame = hello(a, b);
    const jws = await signHandshakeFrame(frame, a.key);
    expect(await verifyHandshakeFrame(jws, a.key.publicKey, 'ChannelHello')).toEqual(frame);
    expect(await codeOf(verifyHandshakeFrame(jws, b.key.publicKey, 'ChannelHello'))).toBe(
      'AUTH_BAD_SIGNATURE',
    );
    expect(peekHandshakeFrame(jws, 'ChannelHello')).toEqual(frame);
    expect(await codeOf(verifyHandshakeFrame('x.y', a.key.publicKey, 'ChannelHello'))).toBe(
      'PROTOCOL_NOT_JWS',
    );
  });

  it('derives the same session secret on both ends, matching the formula of §5.3', () => {
    const dialerEphemeral = generateEphemeralKey();
    const acceptorEphemeral = generateEphemeralKey();
    const nonces = { dialerNonce: newHandshakeNonce(), acceptorNonce: newHandshakeNonce() };
    const names = { dialer: a.address, acceptor: b.address };
    const atDialer = deriveSessionSecret({
      myEphemeral: dialerEphemeral.privateKey,
      peerEphemeralKeyHex: acceptorEphemeral.publicKeyHex,
      ...nonces,
      ...names,
    });
    const atAcceptor = deriveSessionSecret({
      myEphemeral: acceptorEphemeral.privateKey,
      peerEphemeralKeyHex: dialerEphemeral.publicKeyHex,
      ...nonces,
      ...names,
    });
    expect(atDialer).toMatch(/^[0-9a-f]{64}$/);
    expect(atDialer).toBe(atAcceptor);
    expect(atDialer).toBe(
      rawSessionSecret({
        mine: dialerEphemeral.privateKey,
        peerEphemeralHex: acceptorEphemeral.publicKeyHex,
        ...nonces,
        ...names,
      }),
    );
    // Bound to the nonces and the addresses.
    const swapped = deriveSessionSecret({
      myEphemeral: dialerEphemeral.privateKey,
      peerEphemeralKeyHex: acceptorEphemeral.publicKeyHex,
      ...nonces,
      dialer: b.address,
      acceptor: a.address,
    });
    expect(swapped).not.toBe(atDialer);
    expect(handshakeConnectionId(nonces.dialerNonce, nonces.acceptorNonce)).toMatch(/^[0-9a-f]{32}$/);
  });

  it('refuses low-order and malformed X25519 keys with PROTOCOL_MALFORMED_FRAME', async () => {
    const mine = generateEphemeralKey().privateKey;
    const base = {
      myEphemeral: mine,
      dialerNonce: newHandshakeNonce(),
      acceptorNonce: newHandshakeNonce(),
      dialer: 'd',
      acceptor: 'a',
    };
    for (const key of [
      '00'.repeat(32),
      `01${'00'.repeat(31)}`,
      'e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800',
    ]) {
      expect(await codeOf(() => deriveSessionSecret({ ...base, peerEphemeralKeyHex: key }))).toBe(
        'PROTOCOL_MALFORMED_FRAME',
      );
    }
  });
});

describe('handshake functions (PROTOCOL.md §5.1–5.2), no sockets', () => {
  const dialer = makeIdentity();
  const acceptor = makeIdentity();
  const now = 1_700_000_000_000;
  const dialerSelf = { me: dialer.address, myKey: dialer.key, local: dialer.state };
  const acceptorSelf = { me: acceptor.address, myKey: acceptor.key, local: acceptor.state };
  const directory = new Map([[dialer.address, dialer.key.publicKey]]);
  const context = () => ({
    me: acceptor.address,
    keyOf: async (address: string) => directory.get(address),
    nowMs: now,
    maxSkewMs: 60_000,
    nonces: createNonceCache({ windowMs: 60_000 }),
  });

  it('runs all three steps and both ends end with the same result', async () => {
    const sent = await buildHello(dialerSelf, acceptor.address, now);
    const ctx = context();
    const accepted = await checkHello(sent.jws, ctx);
    const ack = await buildAck(acceptorSelf, accepted, now + 5);
    const { confirmJws, result } = await checkAck(
      ack.jws,
      dialerSelf,
      { address: acceptor.address, key: acceptor.key.publicKey },
      sent,
    );
    await checkConfirm(confirmJws, accepted, ack.frame);
    expect(result.sessionSecret).toBe(ack.result.sessionSecret);
    expect(result.id).toBe(ack.result.id);
    expect(result.dialedAtMs).toBe(now);
    expect(ack.result.dialedAtMs).toBe(now);
    expect(result).toMatchObject({ peer: acceptor.address, peerEpoch: acceptor.state.epoch, dialed: true });
    expect(ack.result).toMatchObject({ peer: dialer.address, peerEpoch: dialer.state.epoch, dialed: false });
    // The same hello again is a replay.
    expect(await codeOf(checkHello(sent.jws, ctx))).toBe('AUTH_REPLAYED_HELLO');
  });

  it('refuses a hello exactly one millisecond past the skew window, accepts one at its edge', async () => {
    const edge = await buildHello(dialerSelf, acceptor.address, now - 60_000);
    expect(await codeOf(checkHello(edge.jws, context()))).toBe('ok');
    const stale = await buildHello(dialerSelf, acceptor.address, now - 60_001);
    expect(await codeOf(checkHello(stale.jws, context()))).toBe('AUTH_STALE_HELLO');
  });

  it('refuses a confirm that echoes another nonce, or is signed by someone else', async () => {
    const sent = await buildHello(dialerSelf, acceptor.address, now);
    const accepted = await checkHello(sent.jws, context());
    const ack = await buildAck(acceptorSelf, accepted, now);
    const wrongEcho = signed(
      {
        _ObjectType: 'ChannelHelloConfirm',
        from: dialer.address,
        to: acceptor.address,
        echo_nonce: sent.frame.nonce,
      },
      dialer.key,
    );
    expect(await codeOf(checkConfirm(wrongEcho, accepted, ack.frame))).toBe('AUTH_BAD_SIGNATURE');
    const wrongSigner = signed(
      {
        _ObjectType: 'ChannelHelloConfirm',
        from: dialer.address,
        to: acceptor.address,
        echo_nonce: ack.frame.nonce,
      },
      acceptor.key,
    );
    expect(await codeOf(checkConfirm(wrongSigner, accepted, ack.frame))).toBe('AUTH_BAD_SIGNATURE');
  });
});
