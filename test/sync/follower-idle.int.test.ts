/**
 * A run the peer leads ends here when the leader goes quiet: twice the leader's own answer limit
 * after its last frame, the follower's run is on record `aborted` (`SYNC_TIMEOUT`) and no longer
 * holds this node's own runs back. A second `SyncBegin` with the same run id is not a new run.
 * The follower's timers run on virtual time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isProtocolServer } from '../../src/protocol/index.js';
import { signSyncFrame } from '../../src/protocol/sync-frames.js';
import { createSyncRepository } from '../../src/store/sync-repository.js';
import { createChannelSync, type SyncLink } from '../../src/sync/resync.js';
import { virtualTime } from '../health/fakes.js';
import { memoryLink, serialExclusive, withTwoStores } from './in-memory.js';
import { party } from './signed-histories.js';

describe('a follower whose leader goes quiet', () => {
  const stores = withTwoStores(beforeAll, afterAll);

  it('ends its run aborted (SYNC_TIMEOUT) after twice the answer limit, and counts a repeated SyncBegin once', async () => {
    const A = party(0x41);
    const B = party(0x42);
    const time = virtualTime();
    const syncB = createSyncRepository(stores.b);
    const sb = createChannelSync(
      { responseTimeoutMs: 1_000 },
      {
        me: B.address,
        peer: A.address,
        myKey: B.key,
        peerKey: A.key.publicKey,
        isServer: isProtocolServer(B.address, A.address),
        store: syncB,
        exclusive: serialExclusive(),
        isPending: () => false,
        dropPending: () => false,
        scheduler: time.scheduler,
      },
    );
    const answers: string[] = [];
    const lb: SyncLink = memoryLink((f) => answers.push(f));
    sb.attach(lb);
    const runId = 'ab'.repeat(16);
    const begin = await signSyncFrame(
      {
        _ObjectType: 'SyncBegin',
        run_id: runId,
        method: 'list',
        reason: 'test',
        open_objects: { count: 1, digest: 'f'.repeat(64) },
      },
      A.key,
    );
    const settle = async (check: () => Promise<boolean>) => {
      for (let i = 0; i < 200 && !(await check()); i++) await new Promise((r) => setTimeout(r, 5));
    };
    try {
      // Twice back to back: the second arrives while the first's record is being created.
      sb.handleFrame(begin, lb);
      sb.handleFrame(begin, lb);
      await settle(async () => answers.length === 1);
      // Then once more, the run going.
      sb.handleFrame(begin, lb);
      const runs = async () => syncB.runs(A.address, 10);
      await settle(async () => (await runs()).length > 1);
      expect((await runs()).map((r) => r.outcome)).toEqual([null]);
      expect(answers).toHaveLength(1);

      time.advance(1_999);
      await new Promise((r) => setTimeout(r, 20));
      expect((await runs())[0]?.outcome).toBeNull();
      time.advance(1);
      await settle(async () => (await runs())[0]?.outcome != null);
      const [record] = await runs();
      expect(record?.outcome).toBe('aborted');
      expect(record?.detail['error']).toBe('SYNC_TIMEOUT');
    } finally {
      await sb.close();
    }
  });
});
