import { sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type ErrorCode, isParleyError } from '../../src/errors.js';
import {
  base64UrlEncodeText,
  decodeJwsPayloadUnverified,
  EDDSA_PROTECTED_HEADER,
  generatePrivateKey,
  type PrivateKey,
  type PublicKey,
  peekJwsObjectType,
  privateKeyFromJwk,
  publicKeyFromHex,
  publicKeyFromJwk,
  signJws,
  signJwsAsync,
  verifyJws,
  verifyJwsAsync,
} from '../../src/protocol/index.js';
import { HAVE_FIXTURES, readFixtureJson, readFixtureLines } from '../helpers/fixtures.js';

interface JwsVector {
  name: string;
  valid: boolean;
  header_form: 'empty' | 'alg-EdDSA';
  public_jwk: unknown;
  public_key_hex: string;
  jws: string;
  payload_text?: string;
  payload?: unknown;
}
interface JwsFixture {
  dip1_test_vector: {
    private_jwk: unknown;
    public_jwk: unknown;
    public_key_hex: string;
    payload_text: string;
    jws: string;
  };
  vectors: JwsVector[];
}
interface Party {
  private_jwk: unknown;
  public_jwk: unknown;
  public_key_hex: string;
}
interface KeysFixture {
  parties: Record<'A' | 'B' | 'C', Party>;
}
interface FlowLine {
  flow: string;
  step: number;
  request_jws: string;
  request_payload: unknown;
  response_jws: string;
  response_payload: unknown;
  request_signed_by: 'A' | 'B';
  response_signed_by: 'A' | 'B';
}
interface ErrorLine {
  scenario: string;
  step: number;
  request_jws?: string;
  request_body_raw?: string;
  request_payload: unknown;
  response_body: string;
  response_payload: unknown;
  response_signed_by: string | null;
}

function thrownCode(fn: () => unknown): ErrorCode | 'no error' | 'not a ParleyError' {
  try {
    fn();
    return 'no error';
  } catch (err) {
    return isParleyError(err) ? err.code : 'not a ParleyError';
  }
}

async function rejectedCode(
  promise: Promise<unknown>,
): Promise<ErrorCode | 'no error' | 'not a ParleyError'> {
  try {
    await promise;
    return 'no error';
  } catch (err) {
    return isParleyError(err) ? err.code : 'not a ParleyError';
  }
}

/** Signs with an arbitrary header segment, as another implementation might. */
function signWithHeader(headerSegment: string, payload: string, key: PrivateKey): string {
  const input = `${headerSegment}.${base64UrlEncodeText(payload)}`;
  return `${input}.${sign(null, Buffer.from(input, 'latin1'), key.keyObject).toString('base64url')}`;
}

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** Flips the lowest bit of the last character: a padding bit for a 64-byte value. */
function withLowBitFlipped(segment: string): string {
  const last = B64URL.indexOf(segment.slice(-1));
  return segment.slice(0, -1) + B64URL[last ^ 1];
}

function b64Json(value: unknown): string {
  return base64UrlEncodeText(JSON.stringify(value));
}

describe.skipIf(!HAVE_FIXTURES)('jws against the golden fixtures', () => {
  const fixture = HAVE_FIXTURES ? readFixtureJson<JwsFixture>('jws.json') : undefined;
  const keys = HAVE_FIXTURES ? readFixtureJson<KeysFixture>('keys.json') : undefined;
  const publicKey = (name: 'A' | 'B' | 'C'): PublicKey => publicKeyFromJwk(keys!.parties[name].public_jwk);

  it('reproduces the DIP-1 test vector byte for byte', async () => {
    const vector = fixture!.dip1_test_vector;
    const key = privateKeyFromJwk(vector.private_jwk);
    expect(key.publicKey.hex).toBe(vector.public_key_hex);
    expect(signJws(vector.payload_text, key)).toBe(vector.jws);
    expect(await signJwsAsync(vector.payload_text, key)).toBe(vector.jws);
    expect(verifyJws(vector.jws, publicKeyFromJwk(vector.public_jwk))).toBe(vector.payload_text);
  });

  it('verifies the 6 reference-signed vectors in both header forms', async () => {
    const valid = fixture!.vectors.filter((v) => v.valid);
    expect(valid).toHaveLength(6);
    expect(new Set(valid.map((v) => v.header_form))).toEqual(new Set(['empty', 'alg-EdDSA']));
    for (const vector of valid) {
      const key = publicKeyFromJwk(vector.public_jwk);
      expect(key.hex).toBe(vector.public_key_hex);
      expect(publicKeyFromHex(vector.public_key_hex).hex).toBe(key.hex);
      const text = verifyJws(vector.jws, key);
      expect(text).toBe(vector.payload_text);
      expect(JSON.parse(text)).toEqual(vector.payload);
      expect(await verifyJwsAsync(vector.jws, key)).toBe(vector.payload_text);
    }
  });

  it('rejects the 3 negative vectors with PROTOCOL_BAD_SIGNATURE', async () => {
    const invalid = fixture!.vectors.filter((v) => !v.valid);
    expect(invalid.map((v) => v.name).sort()).toEqual([
      'payload_reserialized',
      'signature_bit_flipped',
      'wrong_key',
    ]);
    for (const vector of invalid) {
      const key = publicKeyFromJwk(vector.public_jwk);
      expect(thrownCode(() => verifyJws(vector.jws, key))).toBe('PROTOCOL_BAD_SIGNATURE');
      expect(await rejectedCode(verifyJwsAsync(vector.jws, key))).toBe('PROTOCOL_BAD_SIGNATURE');
    }
  });

  it('verifies every request and response JWS of flows.jsonl with the signer key', async () => {
    const lines = readFixtureLines<FlowLine>('flows.jsonl');
    expect(lines).toHaveLength(13);
    for (const line of lines) {
      const request = verifyJws(line.request_jws, publicKey(line.request_signed_by));
      expect(JSON.parse(request)).toEqual(line.request_payload);
      const response = verifyJws(line.response_jws, publicKey(line.response_signed_by));
      expect(JSON.parse(response)).toEqual(line.response_payload);
      expect(await verifyJwsAsync(line.request_jws, publicKey(line.request_signed_by))).toBe(request);
      // The reference signs the empty-header form.
      expect(line.request_jws.startsWith('.')).toBe(true);
    }
  });

  it('verifies every errors.jsonl request with C and every JWS response with B, except bad-signature', () => {
    const lines = readFixtureLines<ErrorLine>('errors.jsonl');
    let requests = 0;
    let responses = 0;
    for (const line of lines) {
      if (line.request_jws !== undefined) {
        requests++;
        if (line.scenario === 'bad-signature') {
          expect(thrownCode(() => verifyJws(line.request_jws!, publicKey('C')))).toBe(
            'PROTOCOL_BAD_SIGNATURE',
          );
        } else {
          expect(JSON.parse(verifyJws(line.request_jws, publicKey('C')))).toEqual(line.request_payload);
          expect(decodeJwsPayloadUnverified(line.request_jws)).toBe(
            verifyJws(line.request_jws, publicKey('C')),
          );
        }
      } else {
        // bad-json: the body is plain text, not a JWS.
        expect(thrownCode(() => verifyJws(line.request_body_raw!, publicKey('C')))).toBe('PROTOCOL_NOT_JWS');
      }
      if (line.response_signed_by === 'B') {
        responses++;
        expect(JSON.parse(verifyJws(line.response_body, publicKey('B')))).toEqual(line.response_payload);
      } else {
        // Plain-text 400/500 bodies are not JWS at all.
        expect(thrownCode(() => verifyJws(line.response_body, publicKey('B')))).toBe('PROTOCOL_NOT_JWS');
      }
    }
    expect(requests).toBe(20);
    expect(responses).toBe(19);
  });
});

describe('signJws / verifyJws', () => {
  const key = generatePrivateKey();
  const other = generatePrivateKey();

  it('round-trips text, including non-ASCII and the empty string', async () => {
    for (const payload of ['{"a": 1}', 'Café €5 🙂', '', 'x'.repeat(10_000)]) {
      const jws = signJws(payload, key);
      expect(jws.startsWith(`${EDDSA_PROTECTED_HEADER}.`)).toBe(true);
      expect(verifyJws(jws, key.publicKey)).toBe(payload);
      expect(await verifyJwsAsync(jws, key.publicKey)).toBe(payload);
      expect(await signJwsAsync(payload, key)).toBe(jws);
    }
  });

  it('accepts the empty-header form and other JSON headers with alg EdDSA', async () => {
    const payload = '{"cid": "x"}';
    for (const header of ['', b64Json({ alg: 'EdDSA', typ: 'JOSE' }), b64Json({ kid: 'k1', alg: 'EdDSA' })]) {
      const jws = signWithHeader(header, payload, key);
      expect(verifyJws(jws, key.publicKey)).toBe(payload);
      expect(await verifyJwsAsync(jws, key.publicKey)).toBe(payload);
    }
  });

  it('fails with PROTOCOL_BAD_SIGNATURE under the wrong key', async () => {
    const jws = signJws('hello', key);
    expect(thrownCode(() => verifyJws(jws, other.publicKey))).toBe('PROTOCOL_BAD_SIGNATURE');
    expect(await rejectedCode(verifyJwsAsync(jws, other.publicKey))).toBe('PROTOCOL_BAD_SIGNATURE');
  });

  it('fails with PROTOCOL_BAD_SIGNATURE when the header form is swapped after signing', () => {
    const jws = signJws('hello', key);
    const swapped = jws.slice(EDDSA_PROTECTED_HEADER.length);
    expect(thrownCode(() => verifyJws(swapped, key.publicKey))).toBe('PROTOCOL_BAD_SIGNATURE');
  });

  const good = signJws('{"ok": true}', key);
  const [h, p, s] = good.split('.') as [string, string, string];
  const notJws: Array<[string, unknown]> = [
    ['plain text', 'this is not a jws'],
    ['an empty string', ''],
    ['two segments', `${h}.${p}`],
    ['four segments', `${good}.`],
    ['JSON serialisation', JSON.stringify({ protected: h, payload: p, signature: s })],
    ['padding in the signature', `${good}==`],
    ['a space', ` ${good}`],
    ['a trailing newline', `${good}\n`],
    ['standard base64 characters', `${h}.${p}+.${s}`],
    ['a 63-byte signature', `${h}.${p}.${Buffer.alloc(63, 1).toString('base64url')}`],
    ['a 65-byte signature', `${h}.${p}.${Buffer.alloc(65, 1).toString('base64url')}`],
    ['an empty signature', `${h}.${p}.`],
    ['non-canonical trailing bits in the signature', `${h}.${p}.${withLowBitFlipped(s)}`],
    ['alg none', `${b64Json({ alg: 'none' })}.${p}.${s}`],
    ['alg HS256', `${b64Json({ alg: 'HS256' })}.${p}.${s}`],
    ['no alg', `${b64Json({ typ: 'JWT' })}.${p}.${s}`],
    ['crit', `${b64Json({ alg: 'EdDSA', crit: ['exp'] })}.${p}.${s}`],
    ['b64 false', `${b64Json({ alg: 'EdDSA', b64: false })}.${p}.${s}`],
    ['a JSON array header', `${b64Json(['EdDSA'])}.${p}.${s}`],
    ['a JSON string header', `${b64Json('EdDSA')}.${p}.${s}`],
    ['a non-JSON header', `${base64UrlEncodeText('{alg:EdDSA}')}.${p}.${s}`],
    ['a non-UTF-8 header', `${Buffer.from([0xff, 0xfe]).toString('base64url')}.${p}.${s}`],
    ['a number', 42],
    ['null', null],
  ];
  it.each(notJws)('fails with PROTOCOL_NOT_JWS for %s', async (_name, input) => {
    expect(thrownCode(() => verifyJws(input as string, key.publicKey))).toBe('PROTOCOL_NOT_JWS');
    expect(await rejectedCode(verifyJwsAsync(input as string, key.publicKey))).toBe('PROTOCOL_NOT_JWS');
    expect(thrownCode(() => decodeJwsPayloadUnverified(input as string))).toBe('PROTOCOL_NOT_JWS');
  });

  it('reports a signed payload that is not UTF-8 as PROTOCOL_MALFORMED_FRAME', () => {
    const input = `${EDDSA_PROTECTED_HEADER}.${Buffer.from([0x7b, 0xc3, 0x28, 0x7d]).toString('base64url')}`;
    const jws = `${input}.${sign(null, Buffer.from(input, 'latin1'), key.keyObject).toString('base64url')}`;
    expect(thrownCode(() => verifyJws(jws, key.publicKey))).toBe('PROTOCOL_MALFORMED_FRAME');
  });

  it('refuses to sign a lone surrogate with PROTOCOL_MALFORMED_FRAME', async () => {
    expect(thrownCode(() => signJws('a\ud83db', key))).toBe('PROTOCOL_MALFORMED_FRAME');
    expect(await rejectedCode(signJwsAsync('\ude42', key))).toBe('PROTOCOL_MALFORMED_FRAME');
  });

  it('reports a missing or broken key as KEY_INVALID', async () => {
    const jws = signJws('x', key);
    const noKey = undefined as unknown as PublicKey;
    expect(thrownCode(() => verifyJws(jws, noKey))).toBe('KEY_INVALID');
    expect(await rejectedCode(verifyJwsAsync(jws, noKey))).toBe('KEY_INVALID');
    expect(thrownCode(() => signJws('x', {} as PrivateKey))).toBe('KEY_INVALID');
    expect(await rejectedCode(signJwsAsync('x', { keyObject: 'k' } as unknown as PrivateKey))).toBe(
      'KEY_INVALID',
    );
    // A public key cannot sign.
    const publicOnly = { ...key, keyObject: key.publicKey.keyObject } as PrivateKey;
    expect(thrownCode(() => signJws('x', publicOnly))).toBe('KEY_INVALID');
    expect(await rejectedCode(signJwsAsync('x', publicOnly))).toBe('KEY_INVALID');
    // The key is still usable afterwards (a failed import is not cached).
    expect(await signJwsAsync('x', key)).toBe(jws);
  });

  it('decodes a payload without verifying it, for diagnostics', () => {
    const forged = `${h}.${base64UrlEncodeText('forged')}.${s}`;
    expect(decodeJwsPayloadUnverified(forged)).toBe('forged');
    expect(thrownCode(() => verifyJws(forged, key.publicKey))).toBe('PROTOCOL_BAD_SIGNATURE');
  });

  it('verifies many JWS concurrently with WebCrypto', async () => {
    const payloads = Array.from({ length: 200 }, (_, i) => `{"n": ${i}}`);
    const signed = await Promise.all(payloads.map((payload) => signJwsAsync(payload, key)));
    expect(await Promise.all(signed.map((jws) => verifyJwsAsync(jws, key.publicKey)))).toEqual(payloads);
  });
});

describe('peekJwsObjectType (routing without decoding a whole frame)', () => {
  const key = generatePrivateKey();

  it('reads the _ObjectType at the head of a payload, whatever the size of the rest', () => {
    const big = `{"_ObjectType":"SyncHistories","histories":["${'x'.repeat(200_000)}"]}`;
    expect(peekJwsObjectType(signJws(big, key))).toBe('SyncHistories');
    expect(peekJwsObjectType(signJws('{"_ObjectType":"CommandResponseObject","cid":"c"}', key))).toBe(
      'CommandResponseObject',
    );
    expect(peekJwsObjectType(signJws(' { "_ObjectType" : "X1" }', key))).toBe('X1');
  });

  it('gives undefined when the payload does not start with it, or is not a JWS', () => {
    expect(
      peekJwsObjectType(signJws('{"cid":"c","_ObjectType":"CommandRequestObject"}', key)),
    ).toBeUndefined();
    expect(peekJwsObjectType(signJws('[1,2]', key))).toBeUndefined();
    expect(peekJwsObjectType('no dots at all')).toBeUndefined();
    expect(peekJwsObjectType('a.%%%%.b')).toBeUndefined();
    expect(peekJwsObjectType('')).toBeUndefined();
  });
});

describe.skipIf(!HAVE_FIXTURES)('peekJwsObjectType on the reference frames', () => {
  it('gives undefined for every reference frame (cid first), so they are routed by a full decode', () => {
    const flows = readFixtureLines<{ request_jws?: string; response_jws?: string }>('flows.jsonl');
    const frames = flows.flatMap((f) => [f.request_jws, f.response_jws]).filter((j) => typeof j === 'string');
    expect(frames.length).toBeGreaterThan(0);
    for (const jws of frames) expect(peekJwsObjectType(jws as string)).toBeUndefined();
  });
});
