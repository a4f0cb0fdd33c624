import { sign } from 'node:crypto';
import { fc, it } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { isParleyError } from '../../src/errors.js';
import {
  base64UrlEncodeText,
  encodeRequest,
  generatePrivateKey,
  signJws,
  verifyJws,
  verifyJwsAsync,
} from '../../src/protocol/index.js';
import { arbCommandRequestObject } from '../helpers/arbitraries.js';

const key = generatePrivateKey();

/** The reference's empty-header form of the same payload. */
function signEmptyHeader(payload: string): string {
  const input = `.${base64UrlEncodeText(payload)}`;
  return `${input}.${sign(null, Buffer.from(input, 'latin1'), key.keyObject).toString('base64url')}`;
}

/** Flips one bit of one byte of the JWS text (ASCII bytes; a high bit gives a non-ASCII char). */
function flipBit(jws: string, index: number, bit: number): string {
  const bytes = Buffer.from(jws, 'latin1');
  bytes[index] = (bytes[index] ?? 0) ^ (1 << bit);
  return bytes.toString('latin1');
}

function rejectsTampered(tampered: string): boolean {
  try {
    verifyJws(tampered, key.publicKey);
    return false; // returned a payload: never acceptable
  } catch (err) {
    return isParleyError(err, 'PROTOCOL_NOT_JWS') || isParleyError(err, 'PROTOCOL_BAD_SIGNATURE');
  }
}

const arbPayload = fc.oneof(
  arbCommandRequestObject.map(encodeRequest),
  fc.string({ unit: 'binary', maxLength: 64 }),
  fc.string({ maxLength: 64 }),
);
const arbSigned = fc.tuple(arbPayload, fc.boolean()).map(([payload, alg]) => ({
  payload,
  jws: alg ? signJws(payload, key) : signEmptyHeader(payload),
}));

describe('jws properties', () => {
  it.prop([arbSigned])('verify(sign(p)) returns p, in both header forms', async ({ payload, jws }) => {
    expect(verifyJws(jws, key.publicKey)).toBe(payload);
    expect(await verifyJwsAsync(jws, key.publicKey)).toBe(payload);
  });

  it.prop([arbSigned, fc.nat(), fc.integer({ min: 0, max: 7 })], { numRuns: 500 })(
    'flipping any bit of any byte makes verification fail with NOT_JWS or BAD_SIGNATURE',
    async ({ jws }, position, bit) => {
      const tampered = flipBit(jws, position % jws.length, bit);
      expect(rejectsTampered(tampered)).toBe(true);
      await expect(verifyJwsAsync(tampered, key.publicKey)).rejects.toSatisfy(
        (err: unknown) =>
          isParleyError(err, 'PROTOCOL_NOT_JWS') || isParleyError(err, 'PROTOCOL_BAD_SIGNATURE'),
      );
    },
  );

  it('rejects every single-bit flip of a whole JWS, exhaustively, in both header forms', () => {
    for (const jws of [signJws('{"cid": "x"}', key), signEmptyHeader('{"cid": "x"}')]) {
      for (let position = 0; position < jws.length; position++) {
        for (let bit = 0; bit < 8; bit++) {
          expect(rejectsTampered(flipBit(jws, position, bit))).toBe(true);
        }
      }
    }
  });
});
