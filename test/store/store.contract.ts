/**
 * The `ParleyStore` contract, run against every engine (libp2p-style compliance suite).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isParleyError } from '../../src/errors.js';
import type { CommitItem, ParleyStore, StoreEngine } from '../../src/store/types.js';
import { commandItem, PEER, type StoreFixture } from '../helpers/store.js';

/** Asserts that `promise` rejects with a `ParleyError` of `code`. */
async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected a rejection with ${code}`).toBeDefined();
  expect(isParleyError(err) ? err.code : err).toBe(code);
}

const outboxRecord = (cid: string, referenceId = `ref-${cid}`) => ({
  peer: PEER,
  cid,
  referenceId,
  readVersion: null,
  writeVersion: 'v1',
  requestJws: `req.${cid}.sig`,
  createdAtMs: 1_700_000_000_000,
  attempts: 0,
});

/** Registers the contract suite for `engine`; `makeFixture` gives a fresh database per test. */
export function describeStoreContract(engine: StoreEngine, makeFixture: () => Promise<StoreFixture>): void {
  describe(`ParleyStore contract (${engine})`, () => {
    let fx: StoreFixture;
    let store: ParleyStore;

    beforeEach(async () => {
      fx = await makeFixture();
      store = await fx.open();
    });

    afterEach(async () => {
      await fx.dispose();
    });

    describe('identity', () => {
      it('makes a random 128-bit epoch when the database is created', async () => {
        const id = await store.identity();
        expect(id.epoch).toMatch(/^[0-9a-f]{32}$/);
        expect(store.engine).toBe(engine);
      });

      it('keeps the epoch across reopen', async () => {
        const before = await store.identity();
        await store.close();
        const again = await fx.open();
        expect(await again.identity()).toEqual(before);
      });

      it('gets a new epoch when the database is wiped', async () => {
        const before = await store.identity();
        await store.commit([commandItem({ cid: 'c1', referenceId: 'r1', write: 'v1' })]);
        await fx.wipe();
        const fresh = await fx.open();
        expect((await fresh.identity()).epoch).not.toBe(before.epoch);
        expect(await fresh.findCommand(PEER, 'c1')).toBeUndefined();
      });

      it('agrees on one epoch and migrates once when opened concurrently', async () => {
        await fx.wipe();
        const stores = await Promise.all([fx.open(), fx.open(), fx.open()]);
        const epochs = await Promise.all(stores.map(async (s) => (await s.identity()).epoch));
        expect(new Set(epochs).size).toBe(1);
        const rows = await fx.query<{ n: unknown }>(
          'SELECT COUNT(*) AS n FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL',
        );
        const failed = await fx.query<{ n: unknown }>(
          'SELECT COUNT(*) AS n FROM _prisma_migrations WHERE finished_at IS NULL',
        );
        expect(Number(failed[0]?.n)).toBe(0);
        expect(Number(rows[0]?.n)).toBeGreaterThan(0);
      });
    });

    describe('peers', () => {
      it('stores a peer, its key and its epoch', async () => {
        expect(await store.getPeer(PEER)).toBeUndefined();
        await store.upsertPeer({ address: PEER, publicKeyHex: 'aa'.repeat(32) });
        const first = await store.getPeer(PEER);
        expect(first).toMatchObject({ address: PEER, publicKeyHex: 'aa'.repeat(32), epoch: null });
        await store.setPeerEpoch(PEER, 'e'.repeat(32));
        await store.upsertPeer({ address: PEER, publicKeyHex: 'bb'.repeat(32) });
        const second = await store.getPeer(PEER);
        expect(second).toMatchObject({ publicKeyHex: 'bb'.repeat(32), epoch: 'e'.repeat(32) });
        expect(second!.updatedAtMs).toBeGreaterThanOrEqual(first!.updatedAtMs);
      });

      it('refuses the epoch of an unknown peer', async () => {
        await expectCode(store.setPeerEpoch('nobody', 'e1'), 'STORE_INVALID_INPUT');
      });
    });

    describe('commit and reads', () => {
      it('logs commands, builds versions and heads, and reads them back in order', async () => {
        await store.commit([commandItem({ cid: 'c1', referenceId: 'r1', write: 'v1' })]);
        await store.commit([
          commandItem({ cid: 'c2', referenceId: 'r1', read: 'v1', write: 'v2' }),
          commandItem({ cid: 'c3', referenceId: 'r1', read: 'v2', write: 'v3x', status: 'failure' }),
        ]);
        await store.commit([
          commandItem({ cid: 'c4', referenceId: 'r1', read: 'v2', write: 'v3', open: false }),
        ]);

        const c3 = await store.findCommand(PEER, 'c3');
        expect(c3).toEqual(
          commandItem({ cid: 'c3', referenceId: 'r1', read: 'v2', write: 'v3x', status: 'failure' }).command,
        );
        expect(await store.findCommand(PEER, 'nope')).toBeUndefined();
        expect((await store.history(PEER, 'r1')).map((c) => c.cid)).toEqual(['c1', 'c2', 'c3', 'c4']);

        const versions = await store.versions(PEER, 'r1');
        expect(versions.map((v) => [v.previousVersion, v.version, v.open])).toEqual([
          [null, 'v1', true],
          ['v1', 'v2', true],
          ['v2', 'v3', false],
        ]);
        expect(JSON.parse(versions[2]!.payment)).toEqual({ reference_id: 'r1', version: 'v3' });
        expect(await store.head(PEER, 'r1')).toEqual({
          peer: PEER,
          referenceId: 'r1',
          headVersion: 'v3',
          open: false,
          versionCount: 3,
        });
        expect(await store.head(PEER, 'nope')).toBeUndefined();
        expect(await store.countOpenObjects(PEER)).toBe(0);
        expect(await store.checkIntegrity()).toEqual([]);
      });

      it('keeps channels apart', async () => {
        await store.commit([commandItem({ cid: 'c1', referenceId: 'r1', write: 'v1' })]);
        await store.commit([commandItem({ peer: 'other', cid: 'c1', referenceId: 'r1', write: 'w1' })]);
        expect((await store.head('other', 'r1'))?.headVersion).toBe('w1');
        expect((await store.head(PEER, 'r1'))?.headVersion).toBe('v1');
        expect(await store.countOpenObjects('other')).toBe(1);
      });

      it('pages open objects in byte order of referenceId, skipping closed ones', async () => {
        const refs = ['b', 'B', 'a', 'A', '_x', '0', 'z9', 'ä', 'Zz', 'aa', 'ab'];
        await store.commit(refs.map((r, i) => commandItem({ cid: `c${i}`, referenceId: r, write: 'v1' })));
        await store.commit([
          commandItem({ cid: 'close', referenceId: 'aa', read: 'v1', write: 'v2', open: false }),
        ]);
        const open = refs.filter((r) => r !== 'aa');
        const expected = [...open].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));

        const seen: string[] = [];
        let after: string | null = null;
        for (;;) {
          const page = await store.openObjects(PEER, after, 3);
          if (page.length === 0) break;
          expect(page.length).toBeLessThanOrEqual(3);
          for (const h of page)
            expect(h).toMatchObject({ peer: PEER, open: true, headVersion: 'v1', versionCount: 1 });
          seen.push(...page.map((h) => h.referenceId));
          after = page.at(-1)!.referenceId;
        }
        expect(seen).toEqual(expected);
        expect(await store.countOpenObjects(PEER)).toBe(open.length);
        expect(await store.openObjects(PEER, null, 0)).toEqual([]);
        await expectCode(store.openObjects(PEER, null, -1), 'STORE_INVALID_INPUT');
      });

      it('resolves an empty commit without writing', async () => {
        await store.commit([]);
        expect(await store.checkIntegrity()).toEqual([]);
      });
    });

    describe('atomicity', () => {
      it('rejects a call with a duplicate (peer, cid) and stores nothing of it', async () => {
        await expectCode(
          store.commit([
            commandItem({ cid: 'c1', referenceId: 'r1', write: 'v1' }),
            commandItem({ cid: 'c1', referenceId: 'r2', write: 'v1' }),
          ]),
          'STORE_DUPLICATE_COMMAND',
        );
        expect(await store.findCommand(PEER, 'c1')).toBeUndefined();
        expect(await store.head(PEER, 'r1')).toBeUndefined();
      });

      it('rejects a call that reuses a logged cid and stores nothing of it', async () => {
        await store.commit([commandItem({ cid: 'c1', referenceId: 'r1', write: 'v1' })]);
        await expectCode(
          store.commit([
            commandItem({ cid: 'c2', referenceId: 'r2', write: 'v1' }),
            commandItem({ cid: 'c1', referenceId: 'r3', write: 'v1' }),
          ]),
          'STORE_DUPLICATE_COMMAND',
        );
        expect(await store.findCommand(PEER, 'c2')).toBeUndefined();
        expect(await store.head(PEER, 'r2')).toBeUndefined();
        expect((await store.findCommand(PEER, 'c1'))?.referenceId).toBe('r1');
      });

      it('rejects a version consumed twice and keeps the first', async () => {
        await store.commit([commandItem({ cid: 'c1', referenceId: 'r1', write: 'v1' })]);
        await store.commit([commandItem({ cid: 'c2', referenceId: 'r1', read: 'v1', write: 'v2' })]);
        await expectCode(
          store.commit([
            commandItem({ cid: 'c9', referenceId: 'r9', write: 'v1' }),
            commandItem({ cid: 'c3', referenceId: 'r1', read: 'v1', write: 'v2b' }),
          ]),
          'STORE_VERSION_CONFLICT',
        );
        expect(await store.findCommand(PEER, 'c3')).toBeUndefined();
        expect(await store.findCommand(PEER, 'c9')).toBeUndefined();
        expect(await store.head(PEER, 'r1')).toMatchObject({ headVersion: 'v2', versionCount: 2 });
        expect(await store.checkIntegrity()).toEqual([]);
      });

      it('rejects reading a version that does not exist, and re-creating an object', async () => {
        await store.commit([commandItem({ cid: 'c1', referenceId: 'r1', write: 'v1' })]);
        await expectCode(
          store.commit([commandItem({ cid: 'c2', referenceId: 'r1', read: 'v7', write: 'v8' })]),
          'STORE_VERSION_CONFLICT',
        );
        await expectCode(
          store.commit([commandItem({ cid: 'c3', referenceId: 'r1', write: 'v1b' })]),
          'STORE_VERSION_CONFLICT',
        );
        await expectCode(
          store.commit([commandItem({ cid: 'c4', referenceId: 'r1', read: 'v1', write: 'v1' })]),
          'STORE_VERSION_CONFLICT',
        );
        expect(await store.head(PEER, 'r1')).toMatchObject({ headVersion: 'v1', versionCount: 1 });
        expect(await store.history(PEER, 'r1')).toHaveLength(1);
      });

      it('rejects items that do not chain inside one call', async () => {
        await expectCode(
          store.commit([
            commandItem({ cid: 'c1', referenceId: 'r1', write: 'v1' }),
            commandItem({ cid: 'c2', referenceId: 'r1', read: 'v0', write: 'v2' }),
          ]),
          'STORE_VERSION_CONFLICT',
        );
        expect(await store.findCommand(PEER, 'c1')).toBeUndefined();
      });

      it('rejects only the offending call of a concurrent group', async () => {
        await store.commit([commandItem({ cid: 'base', referenceId: 'shared', write: 'v1' })]);
        const calls: Array<readonly CommitItem[]> = [];
        for (let i = 0; i < 40; i++)
          calls.push([commandItem({ cid: `ok${i}`, referenceId: `r${i}`, write: 'v1' })]);
        calls.splice(10, 0, [commandItem({ cid: 'ok3', referenceId: 'dup', write: 'v1' })]);
        calls.splice(20, 0, [commandItem({ cid: 'winner', referenceId: 'shared', read: 'v1', write: 'v2' })]);
        calls.splice(30, 0, [commandItem({ cid: 'loser', referenceId: 'shared', read: 'v1', write: 'v2b' })]);
        const results = await Promise.allSettled(calls.map((items) => store.commit(items)));

        const rejected = results.flatMap((r, i) =>
          r.status === 'rejected'
            ? [[calls[i]![0]!.command.cid, isParleyError(r.reason) && r.reason.code]]
            : [],
        );
        expect(rejected).toEqual([
          ['ok3', 'STORE_DUPLICATE_COMMAND'],
          ['loser', 'STORE_VERSION_CONFLICT'],
        ]);
        for (let i = 0; i < 40; i++) expect(await store.head(PEER, `r${i}`)).toBeDefined();
        expect(await store.head(PEER, 'dup')).toBeUndefined();
        expect(await store.head(PEER, 'shared')).toMatchObject({ headVersion: 'v2', versionCount: 2 });
        expect(await store.checkIntegrity()).toEqual([]);
      });

      it('refuses malformed items', async () => {
        const ok = commandItem({ cid: 'c1', referenceId: 'r1', write: 'v1' });
        const { version: _v, ...noVersion } = ok;
        await expectCode(store.commit([noVersion]), 'STORE_INVALID_INPUT');
        const failed = commandItem({ cid: 'c2', referenceId: 'r1', write: 'v1', status: 'failure' });
        await expectCode(store.commit([{ ...failed, version: ok.version! }]), 'STORE_INVALID_INPUT');
        await expectCode(
          store.commit([{ ...ok, version: { ...ok.version!, version: 'other' } }]),
          'STORE_INVALID_INPUT',
        );
        await expectCode(
          store.commit([{ ...ok, command: { ...ok.command, cid: '' } }]),
          'STORE_INVALID_INPUT',
        );
        expect(await store.findCommand(PEER, 'c1')).toBeUndefined();
      });
    });

    describe('outbox', () => {
      it('queues, counts attempts and lists oldest first', async () => {
        await store.enqueue({ ...outboxRecord('o2'), createdAtMs: 1_700_000_000_002 });
        await store.enqueue({ ...outboxRecord('o1'), createdAtMs: 1_700_000_000_001, readVersion: 'v0' });
        await store.markAttempt(PEER, 'o1');
        await store.markAttempt(PEER, 'o1');
        await store.markAttempt(PEER, 'gone');
        expect(await store.outbox(PEER)).toEqual([
          { ...outboxRecord('o1'), createdAtMs: 1_700_000_000_001, readVersion: 'v0', attempts: 2 },
          { ...outboxRecord('o2'), createdAtMs: 1_700_000_000_002 },
        ]);
        expect(await store.outbox('other')).toEqual([]);
      });

      it('refuses a cid that is already queued or already final', async () => {
        await store.enqueue(outboxRecord('o1'));
        await expectCode(store.enqueue(outboxRecord('o1')), 'STORE_DUPLICATE_COMMAND');
        await store.commit([commandItem({ cid: 'c1', referenceId: 'r1', write: 'v1' })]);
        await expectCode(store.enqueue(outboxRecord('c1')), 'STORE_DUPLICATE_COMMAND');
        await expectCode(store.enqueue({ ...outboxRecord('o3'), attempts: -1 }), 'STORE_INVALID_INPUT');
        expect((await store.outbox(PEER)).map((o) => o.cid)).toEqual(['o1']);
      });

      it('settles an entry in the same transaction as its log entry', async () => {
        await store.enqueue(outboxRecord('o1', 'r1'));
        await store.enqueue(outboxRecord('o2', 'r2'));
        await store.commit([commandItem({ cid: 'x', referenceId: 'r2', write: 'v1' })]);
        // o2's commit fails (version conflict): its outbox entry must stay.
        await expectCode(
          store.commit([commandItem({ cid: 'o2', referenceId: 'r2', write: 'v1b', settlesOutbox: true })]),
          'STORE_VERSION_CONFLICT',
        );
        await store.commit([commandItem({ cid: 'o1', referenceId: 'r1', write: 'v1', settlesOutbox: true })]);
        expect((await store.outbox(PEER)).map((o) => o.cid)).toEqual(['o2']);
        expect(await store.findCommand(PEER, 'o1')).toBeDefined();
        expect(await store.checkIntegrity()).toEqual([]);
      });

      it('rejects only the offending enqueue of a concurrent group', async () => {
        await store.commit([commandItem({ cid: 'final', referenceId: 'r', write: 'v1' })]);
        const records = Array.from({ length: 20 }, (_, i) => outboxRecord(`o${i}`));
        records.splice(7, 0, outboxRecord('final'));
        const results = await Promise.allSettled(records.map((r) => store.enqueue(r)));
        expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
        expect(results[7]).toMatchObject({ status: 'rejected', reason: { code: 'STORE_DUPLICATE_COMMAND' } });
        expect(await store.outbox(PEER)).toHaveLength(20);
      });
    });

    describe('group commit', () => {
      it('makes 1,000 concurrent commits durable, in call order', async () => {
        const n = 1000;
        const calls = Array.from({ length: n }, (_, i) =>
          store.commit([
            commandItem({
              cid: `c${i}`,
              referenceId: 'chain',
              read: i === 0 ? null : `v${i - 1}`,
              write: `v${i}`,
            }),
            commandItem({ cid: `d${i}`, referenceId: `obj${i}`, write: 'v0' }),
          ]),
        );
        await Promise.all(calls);
        await store.close();

        const reopened = await fx.open();
        const history = await reopened.history(PEER, 'chain');
        expect(history.map((c) => c.cid)).toEqual(Array.from({ length: n }, (_, i) => `c${i}`));
        expect(await reopened.head(PEER, 'chain')).toMatchObject({
          headVersion: `v${n - 1}`,
          versionCount: n,
        });
        expect(await reopened.countOpenObjects(PEER)).toBe(n + 1);
        expect((await reopened.versions(PEER, 'chain')).map((v) => v.version)).toEqual(
          Array.from({ length: n }, (_, i) => `v${i}`),
        );
        expect(await reopened.checkIntegrity()).toEqual([]);
      });

      it('works with a batch size of one', async () => {
        const small = await fx.open({ groupCommit: { maxBatch: 1 } });
        await Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            small.commit([commandItem({ cid: `c${i}`, referenceId: `r${i}`, write: 'v1' })]),
          ),
        );
        expect(await small.countOpenObjects(PEER)).toBe(50);
      });

      it('writes a call larger than the batch size whole', async () => {
        const small = await fx.open({ groupCommit: { maxBatch: 4 } });
        const items = Array.from({ length: 30 }, (_, i) =>
          commandItem({ cid: `c${i}`, referenceId: 'r', read: i === 0 ? null : `v${i - 1}`, write: `v${i}` }),
        );
        await small.commit(items);
        expect(await small.head(PEER, 'r')).toMatchObject({ headVersion: 'v29', versionCount: 30 });
      });

      it('refuses a bad batch size', async () => {
        await expectCode(fx.open({ groupCommit: { maxBatch: 0 } }), 'CONFIG_INVALID');
      });
    });

    describe('integrity', () => {
      beforeEach(async () => {
        await store.commit([commandItem({ cid: 'c1', referenceId: 'r1', write: 'v1' })]);
        await store.commit([commandItem({ cid: 'c2', referenceId: 'r1', read: 'v1', write: 'v2' })]);
        await store.commit([commandItem({ cid: 'c3', referenceId: 'r2', write: 'v1', status: 'failure' })]);
        await store.enqueue(outboxRecord('o1'));
      });

      it('finds nothing wrong in consistent data', async () => {
        expect(await store.checkIntegrity()).toEqual([]);
      });

      it.each([
        ['a head that is not the end of its chain', "UPDATE object_head SET head_version = 'v1'"],
        ['a head at a missing version', "UPDATE object_head SET head_version = 'bogus'"],
        ['a wrong version count', 'UPDATE object_head SET version_count = 7'],
        ['a successful command without its version', "DELETE FROM object_version WHERE version = 'v2'"],
        [
          'a version whose command failed',
          "UPDATE command_log SET status = 'failure', error_code = 'x' WHERE cid = 'c2'",
        ],
        ['a version read twice', "UPDATE command_log SET read_version = NULL WHERE cid = 'c2'"],
        ['an outbox entry already final', "UPDATE outbox SET cid = 'c3'"],
        ['a head missing', 'DELETE FROM object_head'],
      ])('reports %s', async (_what, sql) => {
        await fx.exec(sql);
        const problems = await store.checkIntegrity();
        expect(problems.length).toBeGreaterThan(0);
        for (const p of problems) expect(typeof p).toBe('string');
      });
    });

    describe('lifecycle', () => {
      it('closes idempotently and refuses work afterwards', async () => {
        await Promise.all([store.close(), store.close()]);
        await store.close();
        await expectCode(store.identity(), 'STORE_CLOSED');
        await expectCode(store.findCommand(PEER, 'c1'), 'STORE_CLOSED');
        await expectCode(
          store.commit([commandItem({ cid: 'c1', referenceId: 'r1', write: 'v1' })]),
          'STORE_CLOSED',
        );
        await expectCode(store.enqueue(outboxRecord('o1')), 'STORE_CLOSED');
        await expectCode(store.markAttempt(PEER, 'o1'), 'STORE_CLOSED');
      });

      it('finishes queued commits before closing', async () => {
        const pending = Array.from({ length: 100 }, (_, i) =>
          store.commit([commandItem({ cid: `c${i}`, referenceId: `r${i}`, write: 'v1' })]),
        );
        await store.close();
        await Promise.all(pending);
        const again = await fx.open();
        expect(await again.countOpenObjects(PEER)).toBe(100);
      });
    });
  });
}
