import { createHmac, randomBytes } from 'node:crypto';
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/protocol/codec.js';
import {
  createHeartbeatCodec,
  createOpenObjectsDigest,
  EMPTY_OPEN_OBJECTS_DIGEST,
  Heartbeat,
  isHeartbeatFrame,
  MAX_HEARTBEAT_FRAME_BYTES,
  openObjectTerm,
} from '../../src/protocol/heartbeat-frames.js';

const secret = 'ab'.repeat(32);

function sample(overrides: Partial<Heartbeat> = {}): Heartbeat {
  return {
    _ObjectType: 'Heartbeat',
    from: 'lbr1p7ujcndcl7nudzwt8fglhx6wxn08kgs5tm6mz4usw5p72t',
    seq: 7,
    epoch: '0123456789abcdef0123456789abcdef',
    open_objects: { count: 2, digest: 'f'.repeat(64) },
    inflight: 1,
    timestamp_ms: 1_700_000_000_123,
    echo_timestamp_ms: 1_700_000_000_001,
    echo_held_ms: 12,
    ...overrides,
  };
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

describe('heartbeat frame (PROTOCOL.md §8.1)', () => {
  const codec = createHeartbeatCodec(secret);
  const nat = fc.maxSafeNat();
  const heartbeats = fc.record({
    _ObjectType: fc.constant('Heartbeat' as const),
    from: fc.string({ minLength: 1, maxLength: 60 }),
    seq: nat,
    epoch: fc.string({ minLength: 1, maxLength: 60 }),
    open_objects: fc.record({ count: nat, digest: fc.string({ maxLength: 80 }) }),
    inflight: nat,
    timestamp_ms: nat,
    echo_timestamp_ms: fc.option(nat, { nil: null }),
    echo_held_ms: fc.option(nat, { nil: null }),
  });
  const macFrame = (payload: string) =>
    `hb1 ${createHmac('sha256', Buffer.from(secret, 'hex')).update(`hb1 ${payload}`).digest('base64url')} ${payload}`;

  it('round-trips, is `hb1 <43-char mac> <canonical json>`, and is well under the size limit', () => {
    const hb = sample();
    const frame = codec.encode(hb);
    expect(frame).toMatch(/^hb1 [A-Za-z0-9_-]{43} \{"_ObjectType":"Heartbeat",/);
    expect(isHeartbeatFrame(frame)).toBe(true);
    expect(Buffer.byteLength(frame)).toBeLessThan(MAX_HEARTBEAT_FRAME_BYTES / 2);
    expect(codec.decode(frame)).toEqual(hb);
    expect(codec.decode(codec.encode(sample({ echo_timestamp_ms: null, echo_held_ms: null })))).toEqual(
      sample({ echo_timestamp_ms: null, echo_held_ms: null }),
    );
  });

  it('is never mistaken for a JWS and a JWS never for a heartbeat', () => {
    expect(isHeartbeatFrame('eyJhbGciOiJFZERTQSJ9.eyJhIjoxfQ.c2ln')).toBe(false);
    expect(isHeartbeatFrame('.eyJhIjoxfQ.c2ln')).toBe(false);
    expect(isHeartbeatFrame('hb1')).toBe(false);
  });

  it('refuses a MAC made with another session secret (AUTH_BAD_MAC)', () => {
    const other = createHeartbeatCodec('cd'.repeat(32));
    expect(codeOf(() => codec.decode(other.encode(sample())))).toBe('AUTH_BAD_MAC');
  });

  it('refuses a changed payload, a changed MAC, and a truncated MAC', () => {
    const frame = codec.encode(sample());
    expect(codeOf(() => codec.decode(frame.replace('"seq":7', '"seq":8')))).toBe('AUTH_BAD_MAC');
    const mac = frame.slice(4, 47);
    const flipped = `${mac[0] === 'A' ? 'B' : 'A'}${mac.slice(1)}`;
    expect(codeOf(() => codec.decode(frame.replace(mac, flipped)))).toBe('AUTH_BAD_MAC');
    expect(codeOf(() => codec.decode(frame.replace(mac, mac.slice(1))))).toBe('PROTOCOL_MALFORMED_FRAME');
  });

  it('refuses every other spelling of the right MAC: spare bits of the last character, a character outside latin1', () => {
    const frame = codec.encode(sample());
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const last = 4 + 42;
    const i = alphabet.indexOf(frame[last]!);
    // The 43rd character carries 4 bits of the MAC: its 2 low bits decode to nothing.
    const spare = `${frame.slice(0, last)}${alphabet[i ^ 1]}${frame.slice(last + 1)}`;
    expect(Buffer.from(spare.slice(4, 47), 'base64url')).toEqual(
      Buffer.from(frame.slice(4, 47), 'base64url'),
    );
    expect(codeOf(() => codec.decode(spare))).toBe('AUTH_BAD_MAC');
    // U+0100 + c has c as its low byte.
    const wide = `${frame.slice(0, 4)}${String.fromCharCode(0x100 + frame.charCodeAt(4))}${frame.slice(5)}`;
    expect(codeOf(() => codec.decode(wide))).toBe('AUTH_BAD_MAC');
    expect(codec.decode(frame)).toEqual(sample());
  });

  test.prop([fc.nat(), fc.integer({ min: 1, max: 255 })])(
    'a frame with any one byte changed never decodes',
    (position, delta) => {
      const frame = Buffer.from(codec.encode(sample()), 'utf8');
      const at = position % frame.length;
      const tampered = Buffer.from(frame);
      tampered[at] = (tampered[at]! + delta) % 256;
      const text = tampered.toString('latin1');
      expect(['AUTH_BAD_MAC', 'PROTOCOL_MALFORMED_FRAME']).toContain(codeOf(() => codec.decode(text)));
    },
  );

  it('refuses a valid MAC over a payload that is not a heartbeat (PROTOCOL_MALFORMED_FRAME)', () => {
    // MAC a bad payload by hand (the codec refuses to encode one).
    const frameFor = macFrame;
    expect(codeOf(() => codec.decode(frameFor('not json')))).toBe('PROTOCOL_MALFORMED_FRAME');
    expect(codeOf(() => codec.decode(frameFor('{"_ObjectType":"Heartbeat"}')))).toBe(
      'PROTOCOL_MALFORMED_FRAME',
    );
    expect(codec.decode(frameFor(JSON.stringify(sample())))).toEqual(sample());
  });

  test.prop([heartbeats])('writes exactly the canonical JSON of the schema', (hb) => {
    const frame = codec.encode(hb);
    expect(frame.slice(48)).toBe(canonicalJson(Heartbeat.parse(hb)));
    expect(codec.decode(frame)).toEqual(hb);
  });

  test.prop([
    fc.oneof(
      heartbeats,
      heartbeats.chain((hb) =>
        fc
          .tuple(fc.constantFrom(...Object.keys(hb)), fc.jsonValue())
          .map(([key, value]) => ({ ...hb, [key]: value })),
      ),
      heartbeats.map((hb) => ({ ...hb, extra: 1, open_objects: { ...hb.open_objects, more: true } })),
      fc.jsonValue(),
    ),
  ])('accepts exactly what the zod schema accepts, and drops unknown members as it does', (value) => {
    const text = JSON.stringify(value);
    const reference = Heartbeat.safeParse(JSON.parse(text));
    const frame = macFrame(text);
    if (reference.success && Buffer.byteLength(frame) <= MAX_HEARTBEAT_FRAME_BYTES) {
      expect(codec.decode(frame)).toEqual(reference.data);
    } else {
      expect(codeOf(() => codec.decode(frame))).toBe('PROTOCOL_MALFORMED_FRAME');
    }
  });

  it('refuses an oversized frame before checking anything else', () => {
    const frame = codec.encode(sample({ epoch: 'e'.repeat(128), from: 'f'.repeat(128) }));
    expect(Buffer.byteLength(frame)).toBeLessThan(MAX_HEARTBEAT_FRAME_BYTES);
    expect(codeOf(() => codec.decode(`${frame}${' '.repeat(MAX_HEARTBEAT_FRAME_BYTES)}`))).toBe(
      'PROTOCOL_MALFORMED_FRAME',
    );
  });

  it('refuses to encode an invalid heartbeat, and a session secret that is not 32 bytes of hex', () => {
    expect(codeOf(() => codec.encode(sample({ seq: -1 })))).toBe('PROTOCOL_MALFORMED_FRAME');
    expect(codeOf(() => createHeartbeatCodec('abc'))).toBe('KEY_INVALID');
  });
});

describe('open-objects digest (PROTOCOL.md §8.2)', () => {
  const pairs = (n: number) =>
    Array.from(
      { length: n },
      () => [randomBytes(8).toString('hex'), randomBytes(4).toString('hex')] as const,
    );

  it('is 64 zeros for no open object', () => {
    expect(createOpenObjectsDigest().summary()).toEqual({ count: 0, digest: EMPTY_OPEN_OBJECTS_DIGEST });
  });

  it('is the sum of SHA-256 terms mod 2^256 (reference computation)', () => {
    const d = createOpenObjectsDigest();
    const items = pairs(5);
    let sum = 0n;
    for (const [ref, v] of items) {
      d.add(ref, v);
      sum = (sum + openObjectTerm(ref, v)) % (1n << 256n);
    }
    expect(d.summary()).toEqual({ count: 5, digest: sum.toString(16).padStart(64, '0') });
  });

  test.prop([
    fc
      .array(fc.tuple(fc.string(), fc.string()), { maxLength: 20 })
      .chain((items) =>
        fc.tuple(fc.constant(items), fc.shuffledSubarray(items, { minLength: items.length })),
      ),
  ])('does not depend on the order of additions, and a removal undoes an addition', ([items, shuffled]) => {
    const a = createOpenObjectsDigest();
    const b = createOpenObjectsDigest();
    for (const [r, v] of items) a.add(r, v);
    for (const [r, v] of shuffled) b.add(r, v);
    expect(a.summary()).toEqual(b.summary());
    b.add('extra', '1');
    b.remove('extra', '1');
    expect(b.summary()).toEqual(a.summary());
  });

  it('follows a head moving from v1 to v2 the same as a fresh computation', () => {
    const moving = createOpenObjectsDigest();
    moving.add('ref-a', 'v1');
    moving.add('ref-b', 'v1');
    moving.remove('ref-a', 'v1');
    moving.add('ref-a', 'v2');
    const fresh = createOpenObjectsDigest();
    fresh.add('ref-b', 'v1');
    fresh.add('ref-a', 'v2');
    expect(moving.summary()).toEqual(fresh.summary());
    // The pair is hashed unambiguously: ("ab","c") and ("a","bc") differ.
    expect(openObjectTerm('ab', 'c')).not.toBe(openObjectTerm('a', 'bc'));
  });
});
