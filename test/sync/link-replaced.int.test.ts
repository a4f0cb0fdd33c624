/**
 * A new connection attached while the old one's close is not through yet (a WebSocket's close
 * waits for the peer's close frame, up to its timeout): the run under way on the old one ends
 * `aborted` at once, as it would at the old one's close, instead of waiting out its answer limit.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSyncRepository } from '../../src/store/sync-repository.js';
import type { SyncLink } from '../../src/sync/resync.js';
import { changes } from '../helpers/wait.js';
import { memorySync, withTwoStores } from './in-memory.js';
import { party } from './signed-histories.js';

/**
 * A link that takes frames and delivers none, and never finishes closing; `sent` counts them
 * (`onSend` after each).
 */
const stalled = (onSend: () => void = () => undefined): SyncLink & { sent: number } => {
  const link = {
    sent: 0,
    state: 'open' as const,
    closed: new Promise<never>(() => undefined),
    send: () => {
      link.sent++;
      onSend();
      return true;
    },
    writable: async () => undefined,
    close() {},
  };
  return link;
};

describe('a connection replaced before its close is through', () => {
  const stores = withTwoStores(beforeAll, afterAll);

  it('ends the run under way on the old one (SYNC_ABORTED), at once', async () => {
    const A = party(0x71);
    const B = party(0x72);
    const syncA = createSyncRepository(stores.a);
    // An answer limit far beyond the test's own: only the replacement can end the run in time.
    const sa = memorySync(A, B, syncA, { responseTimeoutMs: 600_000 });
    const sends = changes();
    const first = stalled(sends.changed);
    sa.attach(first);
    try {
      const run = sa.run('test');
      // Its SyncBegin is out on the first link, unanswered.
      await sends.until(() => first.sent > 0, 'the SyncBegin on the first link');
      sa.attach(stalled());
      await expect(run).rejects.toMatchObject({ code: 'SYNC_ABORTED' });
      const [record] = await syncA.runs(B.address, 1);
      expect(record?.outcome).toBe('aborted');
    } finally {
      await sa.close();
    }
  });
});
