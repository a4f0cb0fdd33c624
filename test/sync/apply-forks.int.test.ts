/**
 * `applyHistories` on the losing side of forks (this node is the protocol client, the pushed
 * `replace` is the server's whole branch):
 * - a store that fails part-way through a batch keeps the forks replaced before the failure in
 *   the batch (they are committed: the caller must report them, end their commands and tell the
 *   business), with the failure as `error`; it used to throw, and those reports were lost; so
 *   does a read that fails for a later group of the batch (they are stored a group at a time);
 * - a `replace` that does not start at the create is refused: it would remove the whole local
 *   branch and then fail against its own `base`.
 * Real signatures, a real store (SQLite, or PostgreSQL with PARLEY_TEST_DB).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ParleyError } from '../../src/errors.js';
import { isProtocolServer } from '../../src/protocol/index.js';
import type { ObjectHistory } from '../../src/protocol/sync-frames.js';
import { createSyncRepository } from '../../src/store/sync-repository.js';
import { APPLY_GROUP_OBJECTS, type ApplyDeps, applyHistories } from '../../src/sync/apply.js';
import type { SyncStore } from '../../src/sync/ports.js';
import { commitItemsFor, serialExclusive, withTwoStores } from './in-memory.js';
import { buildPayment, type Party, party, signStep } from './signed-histories.js';

/** Client and server of a channel, as `isProtocolServer` says. */
function roles(x: Party, y: Party): { client: Party; server: Party } {
  return isProtocolServer(x.address, y.address) ? { server: x, client: y } : { server: y, client: x };
}

/** One object forked after its create: the client holds v1 → v2a, the server's branch is v1 → v2b. */
async function forked(client: Party, server: Party, store: SyncStore): Promise<ObjectHistory> {
  const [v1, v2a] = await buildPayment(client, server, 2);
  const v2b = signStep(server, client, v2a!.payment, v1!.cid);
  await store.commit(commitItemsFor([v1!, v2a!], client, server));
  return {
    reference_id: v1!.payment.reference_id,
    kind: 'replace',
    base: null,
    commands: [v1!.signed, v2b.signed],
  };
}

/** What applying needs on the client's side of the channel, with `store`. */
function onClient(client: Party, server: Party, store: SyncStore): ApplyDeps {
  return {
    parties: {
      me: client.address,
      peer: server.address,
      myKey: client.key.publicKey,
      peerKey: server.key.publicKey,
    },
    isServer: false,
    store,
    exclusive: serialExclusive(),
    isPending: () => false,
    dropPending: () => false,
  };
}

describe('applying the server’s branches on the client', () => {
  const stores = withTwoStores(beforeAll, afterAll);

  it('keeps the forks replaced before a store failure in the batch, with the failure as error', async () => {
    const { client, server } = roles(party(0x21), party(0x22));
    const repo = createSyncRepository(stores.a);
    const first = await forked(client, server, repo);
    const second = await forked(client, server, repo);
    let calls = 0;
    const failing: SyncStore = {
      ...repo,
      replaceBranch: (...args) => {
        calls++;
        if (calls === 2) return Promise.reject(new ParleyError('STORE_UNAVAILABLE', 'disk gone'));
        return repo.replaceBranch(...args);
      },
    };
    const batch = await applyHistories([first, second], onClient(client, server, failing));
    expect(batch.error).toMatchObject({ code: 'STORE_UNAVAILABLE' });
    expect(batch.forks.map((f) => f.referenceId)).toEqual([first.reference_id]);
    expect(batch.results).toEqual([
      { reference_id: first.reference_id, outcome: 'replaced', head: expect.any(String), code: null },
    ]);
    // The first is on the server's branch now; the second untouched.
    expect(
      (await repo.heads(server.address, [first.reference_id])).get(first.reference_id)?.headVersion,
    ).toBe(batch.results[0]!.head);
    expect(await stores.a.checkIntegrity()).toEqual([]);
  });

  it('keeps the groups stored before a failed read of a later group, with the failure as error', async () => {
    const { client, server } = roles(party(0x23), party(0x24));
    const repo = createSyncRepository(stores.a);
    const histories: ObjectHistory[] = [];
    for (let i = 0; i <= APPLY_GROUP_OBJECTS; i++) histories.push(await forked(client, server, repo));
    // The heads are read once before the groups and once per group: the second group's read fails.
    let reads = 0;
    const failing: SyncStore = {
      ...repo,
      heads: (...args) => {
        reads++;
        if (reads === 3) return Promise.reject(new ParleyError('STORE_UNAVAILABLE', 'disk gone'));
        return repo.heads(...args);
      },
    };
    const batch = await applyHistories(histories, onClient(client, server, failing));
    expect(reads).toBe(3);
    expect(batch.error).toMatchObject({ code: 'STORE_UNAVAILABLE' });
    const firstGroup = histories.slice(0, APPLY_GROUP_OBJECTS).map((h) => h.reference_id);
    expect(batch.forks.map((f) => f.referenceId)).toEqual(firstGroup);
    expect(batch.results.map((r) => [r.reference_id, r.outcome])).toEqual(
      firstGroup.map((ref) => [ref, 'replaced']),
    );
    expect(await stores.a.checkIntegrity()).toEqual([]);
  });

  it('refuses a replace that does not start at the create (SYNC_INVALID_HISTORY), changing nothing', async () => {
    const { client, server } = roles(party(0x23), party(0x24));
    const repo = createSyncRepository(stores.b);
    const history = await forked(client, server, repo);
    const ref = history.reference_id;
    const headBefore = (await repo.heads(server.address, [ref])).get(ref)?.headVersion;
    const [create] = (await repo.history(server.address, ref)).map((r) => r.cid);
    const batch = await applyHistories(
      [{ ...history, base: create!, commands: history.commands.slice(1) }],
      onClient(client, server, repo),
    );
    expect(batch.results).toEqual([
      { reference_id: ref, outcome: 'rejected', head: null, code: 'SYNC_INVALID_HISTORY' },
    ]);
    expect((await repo.heads(server.address, [ref])).get(ref)?.headVersion).toBe(headBefore);
  });
});
