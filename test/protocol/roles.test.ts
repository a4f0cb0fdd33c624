import { describe, expect, it } from 'vitest';
import { type ErrorCode, isParleyError } from '../../src/errors.js';
import { isProtocolServer, protocolRole } from '../../src/protocol/index.js';
import { HAVE_FIXTURES, readFixtureJson } from '../helpers/fixtures.js';

interface RolesFixture {
  cases: Array<{
    a_hex: string;
    b_hex: string;
    a_bech32: string;
    b_bech32: string;
    last_bit_xor: 0 | 1;
    a_is_client: boolean;
    b_is_client: boolean;
    server: 'a' | 'b';
  }>;
}
interface KeysFixture {
  parties: Record<string, { address_hex: string; bech32: string; bech32_tlb: string }>;
  channel_roles: Record<string, { server: string; client: string }>;
}

function thrownCode(fn: () => unknown): ErrorCode | 'no error' | 'not a ParleyError' {
  try {
    fn();
    return 'no error';
  } catch (err) {
    return isParleyError(err) ? err.code : 'not a ParleyError';
  }
}

describe.skipIf(!HAVE_FIXTURES)('roles.json', () => {
  const fixture = HAVE_FIXTURES ? readFixtureJson<RolesFixture>('roles.json') : undefined;

  it('covers both XOR outcomes', () => {
    expect(fixture!.cases).toHaveLength(10);
    expect(fixture!.cases.filter((c) => c.last_bit_xor === 0)).toHaveLength(4);
  });

  it('gives every pair the reference role, from both sides, in bech32 and hex', () => {
    for (const c of fixture!.cases) {
      expect(isProtocolServer(c.a_bech32, c.b_bech32)).toBe(!c.a_is_client);
      expect(isProtocolServer(c.b_bech32, c.a_bech32)).toBe(!c.b_is_client);
      expect(isProtocolServer(c.a_hex, c.b_hex)).toBe(!c.a_is_client);
      expect(isProtocolServer(c.b_hex, c.a_hex)).toBe(!c.b_is_client);
      expect(isProtocolServer(c.a_hex, c.b_bech32)).toBe(!c.a_is_client);
      expect(protocolRole(c.a_bech32, c.b_bech32)).toBe(c.server === 'a' ? 'server' : 'client');
      // Exactly one side is the server.
      expect(isProtocolServer(c.a_bech32, c.b_bech32)).not.toBe(isProtocolServer(c.b_bech32, c.a_bech32));
    }
  });

  it('matches the channel roles of keys.json', () => {
    const keys = readFixtureJson<KeysFixture>('keys.json');
    for (const [pair, { server, client }] of Object.entries(keys.channel_roles)) {
      expect(pair.split('-').sort()).toEqual([server, client].sort());
      const s = keys.parties[server]!;
      const c = keys.parties[client]!;
      expect(isProtocolServer(s.bech32, c.bech32)).toBe(true);
      expect(isProtocolServer(c.bech32, s.bech32)).toBe(false);
      // Only the on-chain bytes count: the hrp does not change the role.
      expect(isProtocolServer(s.bech32_tlb, c.bech32_tlb)).toBe(true);
    }
  });
});

describe('isProtocolServer', () => {
  it('follows the examples of lip1-v1.md §2.5', () => {
    expect(isProtocolServer('42'.repeat(16), '41'.repeat(16))).toBe(true);
    expect(isProtocolServer('43'.repeat(16), '42'.repeat(16))).toBe(true);
    expect(isProtocolServer('41'.repeat(16), '43'.repeat(16))).toBe(true);
  });

  it('ignores the subaddress', () => {
    expect(
      isProtocolServer(
        'lbr1pgfpyysjzgfpyysjzgfpyysjzgf3xycnzvf3xycsm957ne',
        'lbr1pg9q5zs2pg9q5zs2pg9q5zs2pg9skzctpv9skzcg9kmwta',
      ),
    ).toBe(true);
  });

  it('refuses a channel with itself and unparsable addresses with ADDRESS_INVALID', () => {
    expect(thrownCode(() => isProtocolServer('41'.repeat(16), '41'.repeat(16)))).toBe('ADDRESS_INVALID');
    expect(thrownCode(() => isProtocolServer('41'.repeat(16), 'nope'))).toBe('ADDRESS_INVALID');
    expect(thrownCode(() => isProtocolServer('', '42'.repeat(16)))).toBe('ADDRESS_INVALID');
  });
});
