import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ErrorCode, ParleyError } from '../../src/errors.js';
import {
  CloseCode,
  closeCodeName,
  isSendableCloseCode,
  ObservedCloseCode,
} from '../../src/protocol/index.js';
import { backoffCeilingMs, backoffDelayMs } from '../../src/transport/backoff.js';
import { closeCodeFor, closeReason, errorForClose } from '../../src/transport/close-errors.js';
import { preferredConnection } from '../../src/transport/connection-registry.js';
import { isLoopbackHost } from '../../src/transport/loopback.js';
import { createNonceCache } from '../../src/transport/replay-cache.js';
import type { Connection } from '../../src/transport/types.js';

describe('backoff', () => {
  const options = { initialDelayMs: 100, maxDelayMs: 30_000 };

  it('doubles the ceiling per attempt up to the cap', () => {
    expect([0, 1, 2, 3, 8, 9, 10, 100, 10_000].map((n) => backoffCeilingMs(n, options))).toEqual([
      100, 200, 400, 800, 25_600, 30_000, 30_000, 30_000, 30_000,
    ]);
  });

  it('draws uniformly below the ceiling (full jitter), never at or above it', () => {
    expect(backoffDelayMs(3, options, () => 0)).toBe(0);
    expect(backoffDelayMs(3, options, () => 0.5)).toBe(400);
    expect(backoffDelayMs(3, options, () => 0.999_999)).toBe(799);
    expect(backoffDelayMs(3, options, () => 1)).toBe(799); // a broken random cannot reach the ceiling
    expect(backoffDelayMs(3, options, () => -1)).toBe(0);
  });
});

describe('nonce cache', () => {
  it('refuses a nonce seen within the window and forgets it after', () => {
    const cache = createNonceCache({ windowMs: 1000 });
    expect(cache.remember('n1', 10_000, 10_000)).toBe(true);
    expect(cache.remember('n1', 10_000, 10_500)).toBe(false);
    expect(cache.remember('n1', 10_000, 11_001)).toBe(true);
  });

  it('stays bounded, forgetting the oldest first', () => {
    const cache = createNonceCache({ windowMs: 1_000_000, maxEntries: 3 });
    for (const nonce of ['a', 'b', 'c', 'd']) expect(cache.remember(nonce, 0, 0)).toBe(true);
    expect(cache.size).toBe(3);
    expect(cache.remember('d', 0, 0)).toBe(false);
    expect(cache.remember('a', 0, 0)).toBe(true); // evicted: the handshake's nonce echo still protects
  });

  it('prunes expired nonces as it goes', () => {
    const cache = createNonceCache({ windowMs: 10 });
    for (let i = 0; i < 100; i++) cache.remember(`n${i}`, i * 100, i * 100);
    expect(cache.size).toBeLessThanOrEqual(2);
  });
});

describe('loopback detection', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.1.2.3', true],
    ['::1', true],
    ['[::1]', true],
    ['0:0:0:0:0:0:0:1', true],
    ['::ffff:127.0.0.1', true],
    ['localhost', true],
    ['LOCALHOST', true],
    ['0.0.0.0', false],
    ['::', false],
    ['10.0.0.1', false],
    ['::ffff:10.0.0.1', false],
    ['128.0.0.1', false],
    ['example.com', false],
    ['', false],
  ])('%s → %s', (host, loopback) => {
    expect(isLoopbackHost(host)).toBe(loopback);
  });
});

describe('close codes', () => {
  it('are all sendable, and the observed ones are not', () => {
    for (const code of Object.values(CloseCode)) expect(isSendableCloseCode(code)).toBe(true);
    for (const code of Object.values(ObservedCloseCode)) expect(isSendableCloseCode(code)).toBe(false);
    expect([999, 1004, 1015, 2999, 5000, 4000.5].some(isSendableCloseCode)).toBe(false);
  });

  it('map to an error and back for every catalog code that closes a connection with a 4xxx code', () => {
    for (const [name, entry] of Object.entries(ErrorCode)) {
      if (entry.close === null || entry.close < 4000) continue;
      const back = errorForClose(entry.close, '').code;
      expect(ErrorCode[back].close, `${name} → ${entry.close} → ${back}`).toBe(entry.close);
    }
    expect(closeCodeFor(new ParleyError('AUTH_REPLAYED_HELLO'))).toBe(CloseCode.REPLAYED_HELLO);
    expect(closeCodeFor(new ParleyError('TRANSPORT_CLOSED'))).toBe(CloseCode.INTERNAL_ERROR);
    expect(closeCodeFor(new Error('bug'))).toBe(CloseCode.INTERNAL_ERROR);
    expect(errorForClose(1006, '').code).toBe('TRANSPORT_CLOSED');
    expect(errorForClose(4999, '').code).toBe('TRANSPORT_CLOSED');
  });

  it('cuts a close reason to 123 UTF-8 bytes on a character boundary', () => {
    expect(closeReason('short')).toBe('short');
    const cut = closeReason('€'.repeat(100));
    expect(Buffer.byteLength(cut)).toBe(123);
    expect(cut).toBe('€'.repeat(41));
  });

  it('are exactly the ones PROTOCOL.md §6 documents, with the dial error the code maps to', () => {
    const doc = readFileSync(
      fileURLToPath(new URL('../../src/protocol/PROTOCOL.md', import.meta.url)),
      'utf8',
    );
    const section = doc.slice(doc.indexOf('## 6. Close codes'), doc.indexOf('## Changes'));
    const rows = [...section.matchAll(/^\| (\d{4}) \| `([A-Z_]+)` \| [^|]+ \| [^|]+ \| `([A-Z_]+)` \|$/gm)];
    const documented = new Map(rows.map((m) => [Number(m[1]), { name: m[2], error: m[3] }]));
    const defined = [...Object.values(CloseCode), ...Object.values(ObservedCloseCode)];
    expect([...documented.keys()].sort()).toEqual([...defined].sort());
    for (const [code, { name, error }] of documented) {
      expect(closeCodeName(code)).toBe(name);
      expect(errorForClose(code, '').code).toBe(error);
    }
  });
});

describe('duplicate tie-break', () => {
  const low = 'tlb1aaa';
  const high = 'tlb1zzz';
  function conn(dialed: boolean, peer: string, dialedAtMs: number, id: string): Connection {
    return { dialed, peer, dialedAtMs, id } as Connection;
  }

  it('keeps the connection dialed by the lower address, on both ends', () => {
    // At `low`: its own dialed connection vs. one dialed by `high`.
    const atLow = [conn(true, high, 5, 'x'), conn(false, high, 9, 'y')] as const;
    expect(preferredConnection(low, atLow[0], atLow[1])).toBe(atLow[0]);
    expect(preferredConnection(low, atLow[1], atLow[0])).toBe(atLow[0]);
    // At `high`: the same two connections, seen from the other end.
    const atHigh = [conn(false, low, 5, 'x'), conn(true, low, 9, 'y')] as const;
    expect(preferredConnection(high, atHigh[0], atHigh[1]).id).toBe('x');
    expect(preferredConnection(high, atHigh[1], atHigh[0]).id).toBe('x');
  });

  it('keeps the newer connection of the same dialer, then the larger id', () => {
    const older = conn(true, high, 5, 'b');
    const newer = conn(true, high, 6, 'a');
    expect(preferredConnection(low, older, newer)).toBe(newer);
    expect(preferredConnection(low, newer, older)).toBe(newer);
    const tieA = conn(false, high, 5, 'a');
    const tieB = conn(false, high, 5, 'b');
    expect(preferredConnection(low, tieA, tieB)).toBe(tieB);
    expect(preferredConnection(low, tieB, tieA)).toBe(tieB);
  });
});
