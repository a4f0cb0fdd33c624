/**
 * A run the peer leads ends here when the leader goes quiet: twice the leader's own answer limit
 * after its last frame, the follower's run is on record `aborted` (`SYNC_TIMEOUT`) and no longer
 * holds this node's own runs back. A second `SyncBegin` with the same run id is not a new run.
 * When such a run is a restore's, the restore shows `waiting` as the run ends (it resumes with
 * the leader's next run).
 * The follower's timers run on virtual time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpenObjectsSummary } from '../../src/protocol/channel-frames.js';
import { signSyncFrame } from '../../src/protocol/sync-frames.js';
import { createSyncRepository } from '../../src/store/sync-repository.js';
import type { SyncStore } from '../../src/sync/ports.js';
import { type ChannelSync, createChannelSync, type SyncLink } from '../../src/sync/resync.js';
import { DEFAULT_SYNC_PAGE_SIZE, openObjectsSummary } from '../../src/sync/summary.js';
import { virtualTime } from '../health/fakes.js';
import { changes, nextMatch } from '../helpers/wait.js';
import { memoryLink, peekFrame, syncDeps, withTwoStores } from './in-memory.js';
import { type Party, party } from './signed-histories.js';

/** B's channel sync with A, its timers on `time`; `summary` as a node's when not given. */
function followerSync(
  A: Party,
  B: Party,
  store: SyncStore,
  time: ReturnType<typeof virtualTime>,
  summary?: () => Promise<OpenObjectsSummary>,
): ChannelSync {
  return createChannelSync(
    { responseTimeoutMs: 1_000 },
    { ...syncDeps(B, A, store), scheduler: time.scheduler, ...(summary ? { summary } : {}) },
  );
}

describe('a follower whose leader goes quiet', () => {
  const stores = withTwoStores(beforeAll, afterAll);

  it('ends its run aborted (SYNC_TIMEOUT) after twice the answer limit, and counts a repeated SyncBegin once', async () => {
    const A = party(0x41);
    const B = party(0x42);
    const time = virtualTime();
    let summaries = 0;
    const syncB = createSyncRepository(stores.b);
    // Counted: each SyncBegin taken as a new run asks for this node's summary first.
    const sb = followerSync(A, B, syncB, time, () => {
      summaries++;
      return openObjectsSummary(syncB, A.address, DEFAULT_SYNC_PAGE_SIZE);
    });
    const answers: string[] = [];
    const answered = changes();
    const lb: SyncLink = memoryLink((f) => {
      answers.push(f);
      answered.changed();
    });
    const typesOf = (frames: string[]) => frames.map((f) => peekFrame(f)._ObjectType);
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
    // A list request of the run: answered only after every frame before it was taken up.
    const listRequest = await signSyncFrame(
      { _ObjectType: 'SyncListRequest', run_id: runId, after: null, limit: 10 },
      A.key,
    );
    try {
      // Twice back to back: the second arrives while the first's record is being created.
      sb.handleFrame(begin, lb);
      sb.handleFrame(begin, lb);
      await answered.until(() => answers.length === 1, 'the SyncBeginAck');
      // Then once more, the run going, and a list request behind it.
      sb.handleFrame(begin, lb);
      sb.handleFrame(listRequest, lb);
      await answered.until(() => answers.length === 2, 'the answer to the list request');
      const runs = async () => syncB.runs(A.address, 10);
      expect((await runs()).map((r) => r.outcome)).toEqual([null]);
      expect(summaries).toBe(1);
      expect(typesOf(answers)).toEqual(['SyncBeginAck', 'SyncList']);

      const finished = nextMatch(sb.events$, (e) => e.type === 'resync_finished', 'the follower run to end');
      // (Twice the limit after the list request: the clock has not moved since.)
      time.advance(1_999);
      // Its idle timer is still the one action waiting on the clock.
      expect(time.scheduler.actions).toHaveLength(1);
      expect((await runs())[0]?.outcome).toBeNull();
      time.advance(1);
      expect(time.scheduler.actions).toHaveLength(0);
      expect(await finished).toMatchObject({ outcome: 'aborted', error: 'SYNC_TIMEOUT' });
      const [record] = await runs();
      expect(record?.outcome).toBe('aborted');
      expect(record?.detail['error']).toBe('SYNC_TIMEOUT');
      expect(typesOf(answers)).toEqual(['SyncBeginAck', 'SyncList']);
    } finally {
      await sb.close();
    }
  });

  it('shows a restore whose leader went quiet as waiting once its run timed out', async () => {
    const A = party(0x43);
    const B = party(0x44);
    const time = virtualTime();
    const syncB = createSyncRepository(stores.b);
    const sb = followerSync(A, B, syncB, time);
    const answers: string[] = [];
    const answered = changes();
    const lb: SyncLink = memoryLink((f) => {
      answers.push(f);
      answered.changed();
    });
    sb.attach(lb);
    const begin = await signSyncFrame(
      {
        _ObjectType: 'SyncBegin',
        run_id: 'cd'.repeat(16),
        method: 'restore',
        reason: 'peer_state_lost',
        open_objects: { count: 0, digest: '0'.repeat(64) },
      },
      A.key,
    );
    try {
      sb.handleFrame(begin, lb);
      await answered.until(() => answers.length === 1, 'the SyncBeginAck');
      expect(peekFrame(answers[0]!)._ObjectType).toBe('SyncBeginAck');
      expect(sb.restoreStatus()).toMatchObject({
        role: 'follower',
        state: 'running',
        reason: 'peer_state_lost',
      });
      const waiting = nextMatch(
        sb.restore$,
        (e) => e.type === 'restore_progress' && e.state === 'waiting',
        'the restore to show waiting',
      );
      const finished = nextMatch(sb.events$, (e) => e.type === 'resync_finished', 'the follower run to end');
      time.advance(1_999);
      expect(sb.restoreStatus()).toMatchObject({ state: 'running' });
      time.advance(1);
      expect(await finished).toMatchObject({ outcome: 'aborted', error: 'SYNC_TIMEOUT' });
      expect(sb.restoreStatus()).toMatchObject({ state: 'waiting' });
      await waiting;
      expect(sb.restoreStatus()).toMatchObject({ role: 'follower', state: 'waiting' });
    } finally {
      await sb.close();
    }
  });
});
