/**
 * Channel leases between two replicas sharing one database (two stores opened on it), on both
 * engines: who may take a lease and when, renewal, release, and the write fence, which stops a
 * replica that was taken over from writing anything more of that channel.
 */
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { isParleyError } from '../../src/errors.js';
import { createLeaseRepository } from '../../src/store/lease-repository.js';
import { createSyncRepository } from '../../src/store/sync-repository.js';
import type { OutboxRecord, ParleyStore, StoreEngine } from '../../src/store/types.js';
import { commandItem, createStoreFixture, HAVE_PG, PEER, type StoreFixture } from '../helpers/store.js';

const OTHER = 'pdm1qotherpeer000000000000000000';
const TTL = 1_000;

function outboxRecord(cid: string, peer = PEER): OutboxRecord {
  return {
    peer,
    cid,
    referenceId: `ref-${cid}`,
    readVersion: null,
    writeVersion: `v-${cid}`,
    requestJws: `req.${cid}.sig`,
    createdAtMs: 1_000,
    attempts: 0,
  };
}

async function rejection(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    return isParleyError(err) ? err.code : String(err);
  }
  return 'resolved';
}

function describeLeases(engine: StoreEngine): void {
  describe(`channel leases (${engine})`, () => {
    let fx: StoreFixture | undefined;
    afterEach(async () => {
      await fx?.dispose();
      fx = undefined;
    });

    async function twoReplicas(): Promise<[ParleyStore, ParleyStore]> {
      fx = await createStoreFixture(engine);
      return [await fx.open(), await fx.open()];
    }

    it('gives a free lease to one replica, and a lapsed one to the next, with a new token', async () => {
      const [s1, s2] = await twoReplicas();
      const a = createLeaseRepository(s1, { owner: 'a', clock: 'caller' });
      const b = createLeaseRepository(s2, { owner: 'b', clock: 'caller' });

      expect(await a.acquire(PEER, 10_000, TTL)).toBe(true);
      expect(await b.acquire(PEER, 10_500, TTL)).toBe(false); // held until 11,000
      expect(b.holds(PEER)).toBe(false);
      expect(await a.renew(PEER, 10_900, TTL)).toBe(true); // now until 11,900
      expect(await b.acquire(PEER, 11_500, TTL)).toBe(false);
      expect(await b.acquire(PEER, 11_900, TTL)).toBe(true); // lapsed at 11,900
      expect(b.holds(PEER)).toBe(true);
      // The old owner learns it at its next renewal, and forgets the lease.
      expect(await a.renew(PEER, 11_950, TTL)).toBe(false);
      expect(a.holds(PEER)).toBe(false);
      expect(await b.renew(PEER, 12_000, TTL)).toBe(true);
      // Another channel's lease is independent.
      expect(await a.acquire(OTHER, 12_000, TTL)).toBe(true);
      expect(await a.leases()).toEqual([
        { peer: OTHER, owner: 'a', expiresAtMs: 13_000, updatedAtMs: 12_000 },
        { peer: PEER, owner: 'b', expiresAtMs: 13_000, updatedAtMs: 12_000 },
      ]);
    });

    it('lets a released lease go at once, and a replica take its own lease back after a restart', async () => {
      const [s1, s2] = await twoReplicas();
      const a = createLeaseRepository(s1, { owner: 'a', clock: 'caller' });
      const b = createLeaseRepository(s2, { owner: 'b', clock: 'caller' });
      expect(await a.acquire(PEER, 10_000, TTL)).toBe(true);
      await a.release(PEER);
      expect(a.holds(PEER)).toBe(false);
      expect(await b.acquire(PEER, 10_001, TTL)).toBe(true);

      // Replica b restarts (a new repository, same id) before its lease lapsed.
      const b2 = createLeaseRepository(s2, { owner: 'b', clock: 'caller' });
      expect(await b2.acquire(PEER, 10_002, TTL)).toBe(true);
      // The earlier incarnation's token is dead: it cannot renew.
      expect(await b.renew(PEER, 10_003, TTL)).toBe(false);
    });

    it('fences writes: a replica writes a channel only while it holds its lease, and nothing after a takeover', async () => {
      const [s1, s2] = await twoReplicas();
      const a = createLeaseRepository(s1, { owner: 'a', clock: 'caller' });
      const b = createLeaseRepository(s2, { owner: 'b', clock: 'caller' });

      // No lease yet: refused before anything is written.
      expect(await rejection(s1.commit([commandItem({ cid: 'c0', referenceId: 'r0', write: 'v1' })]))).toBe(
        'STORE_LEASE_LOST',
      );
      expect(await rejection(s1.enqueue(outboxRecord('o0')))).toBe('STORE_LEASE_LOST');

      expect(await a.acquire(PEER, 10_000, TTL)).toBe(true);
      await s1.commit([commandItem({ cid: 'c1', referenceId: 'r1', write: 'v1' })]);
      await s1.enqueue(outboxRecord('o1'));

      // a stalls past its lease; b takes over. a has not noticed, but writes nothing more.
      expect(await b.acquire(PEER, 11_000, TTL)).toBe(true);
      expect(a.holds(PEER)).toBe(true);
      expect(
        await rejection(s1.commit([commandItem({ cid: 'c2', referenceId: 'r1', read: 'v1', write: 'v2' })])),
      ).toBe('STORE_LEASE_LOST');
      expect(await rejection(s1.enqueue(outboxRecord('o2')))).toBe('STORE_LEASE_LOST');
      // A group mixing channels: only the lost channel's call fails.
      expect(await a.acquire(OTHER, 11_000, TTL)).toBe(true);
      const mixed = await Promise.allSettled([
        s1.commit([commandItem({ cid: 'c3', referenceId: 'r3', write: 'v1' })]),
        s1.commit([commandItem({ cid: 'c4', peer: OTHER, referenceId: 'r4', write: 'v1' })]),
      ]);
      expect(mixed.map((r) => r.status)).toEqual(['rejected', 'fulfilled']);
      // A fork repair of the lost channel is fenced too.
      const sync = createSyncRepository(s1);
      expect(
        await rejection(
          sync.replaceBranch(PEER, 'r1', null, [commandItem({ cid: 'c5', referenceId: 'r1', write: 'w1' })]),
        ),
      ).toBe('STORE_LEASE_LOST');

      // The new owner writes; it sees exactly what a committed before the takeover.
      await s2.commit([commandItem({ cid: 'c6', referenceId: 'r1', read: 'v1', write: 'v2' })]);
      expect((await s2.history(PEER, 'r1')).map((c) => c.cid)).toEqual(['c1', 'c6']);
      expect((await s2.outbox(PEER)).map((o) => o.cid)).toEqual(['o1']);
      for (const cid of ['c2', 'c3', 'c5']) expect(await s2.findCommand(PEER, cid)).toBeUndefined();
      expect(await s2.findCommand(OTHER, 'c4')).toBeDefined();
      expect(await s2.checkIntegrity()).toEqual([]);
    });

    it('refuses a replica id that is empty or too long', async () => {
      const [s1] = await twoReplicas();
      for (const owner of ['', 'x'.repeat(129)]) {
        expect(() => createLeaseRepository(s1, { owner })).toThrow(/replica id/);
      }
    });
  });
}

describeLeases('sqlite');
describe.skipIf(!HAVE_PG)('with PostgreSQL (TEST_PG_URL)', () => {
  describeLeases('postgresql');

  describe('channel leases and row locks (postgresql)', () => {
    let fx: StoreFixture | undefined;
    let raw: pg.Client | undefined;
    afterEach(async () => {
      await raw?.end().catch(() => undefined);
      raw = undefined;
      await fx?.dispose();
      fx = undefined;
    });

    /** The owner's fenced batch, held open on a connection of its own (a replica frozen mid-commit). */
    async function heldBatch(token: string): Promise<pg.Client> {
      raw = new pg.Client({ connectionString: fx!.url });
      await raw.connect();
      await raw.query('BEGIN');
      await raw.query('UPDATE channel_lease SET token = token WHERE peer = $1 AND token = $2', [PEER, token]);
      await raw.query(
        `INSERT INTO command_log (peer, cid, direction, reference_id, read_version, write_version, request_jws,
           response_jws, status, error_code, created_at)
         VALUES ($1, 'held', 'inbound', 'r-held', NULL, 'v1', 'req', 'resp', 'failure', 'x', now())`,
        [PEER],
      );
      return raw;
    }

    const tokenOf = async (): Promise<string> =>
      (await fx!.query<{ token: string }>(`SELECT token FROM channel_lease`))[0]!.token;

    it('a takeover waits for the owner batch in flight, and the new owner sees what it wrote', async () => {
      fx = await createStoreFixture('postgresql');
      const [s1, s2] = [await fx.open(), await fx.open()];
      const a = createLeaseRepository(s1, { owner: 'a', clock: 'caller' });
      const b = createLeaseRepository(s2, { owner: 'b', clock: 'caller' });
      expect(await a.acquire(PEER, 10_000, TTL)).toBe(true);
      const batch = await heldBatch(await tokenOf());

      let acquired: boolean | undefined;
      const takeover = b.acquire(PEER, 20_000, TTL).then((ok) => {
        acquired = ok;
        return ok;
      });
      // The takeover is blocked on the lease row until the batch ends.
      for (;;) {
        const [row] = await fx.query<{ n: string }>(
          `SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`,
        );
        if (Number(row!.n) > 0) break;
      }
      expect(acquired).toBeUndefined();
      await batch.query('COMMIT');
      expect(await takeover).toBe(true);
      expect(await s2.findCommand(PEER, 'held')).toBeDefined();
    });

    it('a lease attempt does not wait for a frozen batch: it fails, and succeeds once the batch is gone', async () => {
      fx = await createStoreFixture('postgresql');
      const [s1, s2] = [await fx.open(), await fx.open()];
      const a = createLeaseRepository(s1, { owner: 'a', clock: 'caller' });
      const b = createLeaseRepository(s2, { owner: 'b', clock: 'caller' });
      expect(await a.acquire(PEER, 10_000, TTL)).toBe(true);
      expect(await b.acquire(OTHER, 10_000, TTL)).toBe(true);
      const batch = await heldBatch(await tokenOf());

      // b's attempt gives up after the lock timeout instead of stalling b's writer...
      expect(await rejection(b.acquire(PEER, 20_000, TTL))).toBe('STORE_UNAVAILABLE');
      // ...so b's other channels go on.
      expect(await b.renew(OTHER, 20_000, TTL)).toBe(true);
      await s2.commit([commandItem({ cid: 'o1', peer: OTHER, referenceId: 'q1', write: 'v1' })]);

      await batch.query('ROLLBACK');
      expect(await b.acquire(PEER, 20_000, TTL)).toBe(true);
      expect(await s2.findCommand(PEER, 'held')).toBeUndefined();
    });
  });
});
