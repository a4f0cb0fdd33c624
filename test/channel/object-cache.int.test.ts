import { afterEach, describe, expect, it } from 'vitest';
import { createObjectCache } from '../../src/channel/object-cache.js';
import type { PaymentObject } from '../../src/protocol/index.js';
import { tempSqliteStore } from '../helpers/parties.js';

describe('the object cache (a real SQLite store behind it)', () => {
  const disposers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const d of disposers.splice(0)) await d();
  });

  it('evicts the least recently used objects in a batch, down to nine tenths of its limit, never one in flight', async () => {
    const side = await tempSqliteStore();
    disposers.push(side.dispose);
    const cache = createObjectCache('peer', side.store, (json) => JSON.parse(json) as PaymentObject, {
      maxObjects: 10,
    });
    const objects = [];
    for (let i = 0; i < 10; i++) objects.push(await cache.get(`r${i}`));
    expect(cache.size).toBe(10);
    objects[0]!.inflight = 1; // the oldest, with a change in flight
    await cache.get('r1'); // r1 used again: now the most recent but one
    await cache.get('r10'); // over the limit: down to 9
    expect(cache.size).toBe(9);
    // Kept: r0 (in flight), r1 (used again), r10 (just loaded) and the newest others; the two
    // least recently used that could go (r2, r3) went.
    expect(await cache.get('r0')).toBe(objects[0]);
    expect(await cache.get('r1')).toBe(objects[1]);
    expect(await cache.get('r4')).toBe(objects[4]);
    const reloaded = await cache.get('r2');
    expect(reloaded).not.toBe(objects[2]);
    expect(reloaded).toMatchObject({ referenceId: 'r2', head: null, inflight: 0 });
  });
});
