import { describe, expect, it } from 'vitest';
import { type ErrorCode, isParleyError } from '../../src/errors.js';
import {
  generatePrivateKey,
  privateKeyFromJwk,
  privateKeyFromSeedHex,
  privateKeyToJwk,
  publicKeyFromHex,
  publicKeyFromJwk,
  publicKeyFromRaw,
  publicKeyToJwk,
  signJws,
  verifyJws,
} from '../../src/protocol/index.js';
import { HAVE_FIXTURES, readFixtureJson } from '../helpers/fixtures.js';

interface Party {
  private_jwk: { kty: string; crv: string; x: string; d: string };
  public_jwk: { kty: string; crv: string; x: string };
  public_key_hex: string;
  private_seed_hex: string;
}

function thrownCode(fn: () => unknown): ErrorCode | 'no error' | 'not a ParleyError' {
  try {
    fn();
    return 'no error';
  } catch (err) {
    return isParleyError(err) ? err.code : 'not a ParleyError';
  }
}

describe.skipIf(!HAVE_FIXTURES)('keys.json', () => {
  const parties = HAVE_FIXTURES
    ? readFixtureJson<{ parties: Record<string, Party> }>('keys.json').parties
    : ({} as Record<string, Party>);

  it('derives the same key from the seed, the private JWK and the public forms', () => {
    expect(Object.keys(parties)).toEqual(['A', 'B', 'C']);
    for (const party of Object.values(parties)) {
      const fromSeed = privateKeyFromSeedHex(party.private_seed_hex);
      const fromJwk = privateKeyFromJwk(party.private_jwk);
      expect(fromSeed.seedHex).toBe(party.private_seed_hex);
      expect(fromJwk.seedHex).toBe(party.private_seed_hex);
      expect(fromSeed.publicKey.hex).toBe(party.public_key_hex);
      expect(publicKeyFromJwk(party.public_jwk).hex).toBe(party.public_key_hex);
      expect(publicKeyFromHex(party.public_key_hex).hex).toBe(party.public_key_hex);
      expect(privateKeyToJwk(fromSeed)).toEqual(party.private_jwk);
      expect(publicKeyToJwk(fromSeed.publicKey)).toEqual(party.public_jwk);
    }
  });
});

describe('Ed25519 keys', () => {
  it('generates keys that round-trip through JWK and seed', () => {
    const key = generatePrivateKey();
    expect(key.seedHex).toMatch(/^[0-9a-f]{64}$/);
    expect(key.publicKey.raw).toHaveLength(32);
    const again = privateKeyFromJwk(privateKeyToJwk(key));
    expect(again.publicKey.hex).toBe(key.publicKey.hex);
    expect(privateKeyFromSeedHex(key.seedHex.toUpperCase()).publicKey.hex).toBe(key.publicKey.hex);
    const publicKey = publicKeyFromJwk(publicKeyToJwk(key.publicKey));
    expect(verifyJws(signJws('x', again), publicKey)).toBe('x');
    expect(publicKeyFromRaw(key.publicKey.raw).hex).toBe(key.publicKey.hex);
  });

  it('accepts a private JWK without x and takes only x from a private JWK given as public', () => {
    const key = generatePrivateKey();
    const { x: _x, ...withoutX } = privateKeyToJwk(key);
    expect(privateKeyFromJwk(withoutX).publicKey.hex).toBe(key.publicKey.hex);
    expect(publicKeyFromJwk(privateKeyToJwk(key)).hex).toBe(key.publicKey.hex);
  });

  const x = generatePrivateKey();
  const jwk = privateKeyToJwk(x);
  const badInputs: Array<[string, () => unknown]> = [
    ['a short seed', () => privateKeyFromSeedHex('ab'.repeat(31))],
    ['a non-hex seed', () => privateKeyFromSeedHex('zz'.repeat(32))],
    ['a seed that is not a string', () => privateKeyFromSeedHex(5 as unknown as string)],
    ['a short public hex', () => publicKeyFromHex('ab')],
    ['a public key of 31 bytes', () => publicKeyFromRaw(new Uint8Array(31))],
    ['an RSA JWK', () => publicKeyFromJwk({ kty: 'RSA', n: 'x', e: 'AQAB' })],
    ['an X25519 JWK', () => publicKeyFromJwk({ kty: 'OKP', crv: 'X25519', x: jwk.x })],
    ['a JWK with a padded x', () => publicKeyFromJwk({ ...jwk, x: `${jwk.x}=` })],
    ['a JWK with a short x', () => publicKeyFromJwk({ ...jwk, x: jwk.x.slice(4) })],
    ['null', () => publicKeyFromJwk(null)],
    ['a string', () => privateKeyFromJwk('{"kty":"OKP"}')],
    ['a private JWK without d', () => privateKeyFromJwk({ kty: 'OKP', crv: 'Ed25519', x: jwk.x })],
    ['a private JWK with a short d', () => privateKeyFromJwk({ ...jwk, d: jwk.d.slice(2) })],
    [
      'a private JWK whose x is another key',
      () => privateKeyFromJwk({ ...jwk, x: privateKeyToJwk(generatePrivateKey()).x }),
    ],
  ];
  it.each(badInputs)('rejects %s with KEY_INVALID', (_name, fn) => {
    expect(thrownCode(fn)).toBe('KEY_INVALID');
  });
});
