import { describe, expect, it } from 'vitest';
import { type ErrorCode, isParleyError } from '../../src/errors.js';
import {
  type AddressHrp,
  channelAddress,
  decodeAddress,
  encodeAddress,
  isAddress,
  onchainHex,
  parseOnchainAddress,
} from '../../src/protocol/index.js';
import { HAVE_FIXTURES, readFixtureJson } from '../helpers/fixtures.js';

interface Bech32Fixture {
  cases: Array<{
    hrp: AddressHrp;
    address_hex: string;
    subaddress_hex: string;
    subaddress_given: boolean;
    bech32: string;
  }>;
  invalid: Array<{ bech32: string; expected_hrp: AddressHrp; why_invalid: string }>;
}

function thrownCode(fn: () => unknown): ErrorCode | 'no error' | 'not a ParleyError' {
  try {
    fn();
    return 'no error';
  } catch (err) {
    return isParleyError(err) ? err.code : 'not a ParleyError';
  }
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const bytes = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text, 'hex'));

describe.skipIf(!HAVE_FIXTURES)('bech32.json', () => {
  const fixture = HAVE_FIXTURES ? readFixtureJson<Bech32Fixture>('bech32.json') : undefined;

  it('encodes every case', () => {
    expect(fixture!.cases).toHaveLength(11);
    for (const c of fixture!.cases) {
      const encoded = encodeAddress({
        hrp: c.hrp,
        onchain: bytes(c.address_hex),
        ...(c.subaddress_given ? { subaddress: bytes(c.subaddress_hex) } : {}),
      });
      expect(encoded).toBe(c.bech32);
    }
  });

  it('decodes every case', () => {
    for (const c of fixture!.cases) {
      const decoded = decodeAddress(c.bech32, c.hrp);
      expect(decoded.hrp).toBe(c.hrp);
      expect(hex(decoded.onchain)).toBe(c.address_hex);
      expect(hex(decoded.subaddress)).toBe(c.subaddress_hex);
      expect(onchainHex(c.bech32)).toBe(c.address_hex);
      expect(channelAddress(c.bech32)).toBe(encodeAddress({ hrp: c.hrp, onchain: bytes(c.address_hex) }));
    }
  });

  it('rejects the 3 invalid strings with ADDRESS_INVALID', () => {
    expect(fixture!.invalid).toHaveLength(3);
    for (const c of fixture!.invalid) {
      expect(thrownCode(() => decodeAddress(c.bech32, c.expected_hrp))).toBe('ADDRESS_INVALID');
      expect(isAddress(c.bech32, c.expected_hrp)).toBe(false);
    }
  });
});

describe('LIP-5 addresses', () => {
  const a41 = 'lbr1pg9q5zs2pg9q5zs2pg9q5zs2pg9skzctpv9skzcg9kmwta';

  it('matches the examples of lip1-v1.md §2.7', () => {
    // The subaddresses are the ASCII bytes of "aaaaaaaa" and "bbbbbbbb".
    const sub = (text: string): Uint8Array => Uint8Array.from(Buffer.from(text, 'latin1'));
    expect(
      encodeAddress({ hrp: 'lbr', onchain: new Uint8Array(16).fill(0x41), subaddress: sub('aaaaaaaa') }),
    ).toBe(a41);
    expect(
      encodeAddress({ hrp: 'lbr', onchain: new Uint8Array(16).fill(0x42), subaddress: sub('bbbbbbbb') }),
    ).toBe('lbr1pgfpyysjzgfpyysjzgfpyysjzgf3xycnzvf3xycsm957ne');
    expect(channelAddress(a41)).toBe('lbr1pg9q5zs2pg9q5zs2pg9q5zs2pgyqqqqqqqqqqqqqqspa3m');
    expect(channelAddress('lbr1pg9q5zs2pg9q5zs2pg9q5zs2pgyqqqqqqqqqqqqqqspa3m')).toBe(
      'lbr1pg9q5zs2pg9q5zs2pg9q5zs2pgyqqqqqqqqqqqqqqspa3m',
    );
  });

  it('hands out its own bytes on every decode: changing them does not change the next decode', () => {
    const first = decodeAddress(a41);
    first.onchain.fill(0);
    first.subaddress.fill(0);
    const again = decodeAddress(a41);
    expect(Buffer.from(again.onchain).toString('hex')).toBe('41'.repeat(16));
    expect(Buffer.from(again.subaddress).toString('latin1')).toBe('aaaaaaaa');
  });

  it('still refuses an unexpected hrp for an identifier it decoded before', () => {
    expect(decodeAddress(a41, 'lbr').hrp).toBe('lbr');
    expect(() => decodeAddress(a41, 'tlb')).toThrow(/expected hrp tlb/);
    expect(isAddress(a41, 'tlb')).toBe(false);
  });

  it('accepts all-uppercase input and normalises it to lowercase', () => {
    expect(hex(decodeAddress(a41.toUpperCase()).onchain)).toBe('41'.repeat(16));
    expect(channelAddress(a41.toUpperCase())).toBe(channelAddress(a41));
  });

  it('round-trips the plb hrp', () => {
    const text = encodeAddress({ hrp: 'plb', onchain: new Uint8Array(16).fill(7) });
    expect(decodeAddress(text).hrp).toBe('plb');
  });

  const invalid: Array<[string, string]> = [
    ['mixed case', `${a41.slice(0, 10).toUpperCase()}${a41.slice(10)}`],
    ['an unknown hrp', 'bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4'],
    ['no separator', 'lbrpg9q5zs2pg9q5zs2pg9q5zs2pg9skzctpv9skzcg9kmwta'],
    ['a character outside the set', `${a41.slice(0, -7)}b${a41.slice(-6)}`],
    ['a changed data character', `${a41.slice(0, 10)}q${a41.slice(11)}`],
    ['an extra character', `${a41.slice(0, 10)}q${a41.slice(10)}`],
    ['an empty string', ''],
    ['a hex address', '41414141414141414141414141414141'],
  ];
  it.each(invalid)('rejects %s with ADDRESS_INVALID', (_name, text) => {
    expect(thrownCode(() => decodeAddress(text))).toBe('ADDRESS_INVALID');
  });

  it('rejects a non-string with ADDRESS_INVALID', () => {
    expect(thrownCode(() => decodeAddress(42 as unknown as string))).toBe('ADDRESS_INVALID');
  });

  it('rejects version 0 and a bech32m checksum', () => {
    // Same data, built with version 0 ('q') and a recomputed bech32 checksum.
    const v0 = rebuild('lbr', 0, bytes(`${'41'.repeat(16)}${'00'.repeat(8)}`), 1);
    expect(thrownCode(() => decodeAddress(v0))).toBe('ADDRESS_INVALID');
    const bech32m = rebuild('lbr', 1, bytes(`${'41'.repeat(16)}${'00'.repeat(8)}`), 0x2bc830a3);
    expect(thrownCode(() => decodeAddress(bech32m))).toBe('ADDRESS_INVALID');
    expect(rebuild('lbr', 1, bytes(`${'41'.repeat(16)}${'00'.repeat(8)}`), 1)).toBe(
      'lbr1pg9q5zs2pg9q5zs2pg9q5zs2pgyqqqqqqqqqqqqqqspa3m',
    );
  });

  it('rejects wrong byte lengths when encoding', () => {
    expect(thrownCode(() => encodeAddress({ hrp: 'lbr', onchain: new Uint8Array(15) }))).toBe(
      'ADDRESS_INVALID',
    );
    expect(
      thrownCode(() =>
        encodeAddress({ hrp: 'lbr', onchain: new Uint8Array(16), subaddress: new Uint8Array(9) }),
      ),
    ).toBe('ADDRESS_INVALID');
    expect(thrownCode(() => encodeAddress({ hrp: 'xyz' as AddressHrp, onchain: new Uint8Array(16) }))).toBe(
      'ADDRESS_INVALID',
    );
  });

  it('parses on-chain addresses from bech32 or 32 hex characters', () => {
    expect(hex(parseOnchainAddress('41'.repeat(16)))).toBe('41'.repeat(16));
    expect(hex(parseOnchainAddress('AB'.repeat(16)))).toBe('ab'.repeat(16));
    expect(hex(parseOnchainAddress(a41))).toBe('41'.repeat(16));
    expect(thrownCode(() => parseOnchainAddress('41'.repeat(15)))).toBe('ADDRESS_INVALID');
  });
});

/** An independent bech32 encoder (BIP-173 reference algorithm) for crafting bad strings. */
function rebuild(hrp: string, version: number, payload: Uint8Array, constant: number): string {
  const charset = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
  const gen = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
  const polymod = (values: number[]): number => {
    let chk = 1;
    for (const v of values) {
      const b = chk >>> 25;
      chk = ((chk & 0x1ffffff) << 5) ^ v;
      for (let i = 0; i < 5; i++) if ((b >>> i) & 1) chk ^= gen[i]!;
    }
    return chk >>> 0;
  };
  const groups: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const byte of payload) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      groups.push((acc >>> bits) & 31);
    }
  }
  if (bits > 0) groups.push((acc << (5 - bits)) & 31);
  const data = [version, ...groups];
  const expanded = [...hrp]
    .map((c) => c.charCodeAt(0) >> 5)
    .concat(
      [0],
      [...hrp].map((c) => c.charCodeAt(0) & 31),
    );
  const mod = (polymod([...expanded, ...data, 0, 0, 0, 0, 0, 0]) ^ constant) >>> 0;
  const checksum = Array.from({ length: 6 }, (_, i) => (mod >>> (5 * (5 - i))) & 31);
  return `${hrp}1${[...data, ...checksum].map((v) => charset[v]).join('')}`;
}
