/**
 * `node.close()` in the middle of a rebuild: the node closes (no wait on the peer, the socket,
 * an answer or the verifying threads), its run is on record as `aborted`, and a restart
 * finishes the rebuild. Real sockets on 127.0.0.1, SQLite files.
 *
 * "In the middle" without timing: the node is closed from inside the handler of an event of
 * the run (an object rebuilt, a batch handled) while more batches are still to come (small
 * batches, one in flight). A hang fails the test by its timeout.
 */
import { firstValueFrom, type Observable } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { NodeDeps, VaspNode } from '../../src/node.js';
import type { ResyncEvent } from '../../src/sync/resync.js';
import { headsEqual, heldBusiness, type Pair, type Side, startPair, waitFor } from './helpers.js';

const N = 40;

/** Many small batches, one at a time: the run is far from its end at its first rebuilt object. */
const slow = (): NodeDeps => ({ business: heldBusiness().business, sync: { batchObjects: 4, window: 1 } });

/** Closes `node` from inside the first event of `events$` that matches; resolves once closed. */
function closeAt(
  node: VaspNode,
  events$: Observable<ResyncEvent>,
  match: (e: ResyncEvent) => boolean,
): Promise<ResyncEvent> {
  return new Promise<ResyncEvent>((resolve, reject) => {
    const sub = events$.subscribe((e) => {
      if (!match(e)) return;
      sub.unsubscribe();
      node.close().then(() => resolve(e), reject);
    });
  });
}

describe('closing a node in the middle of a rebuild (real sockets, SQLite files)', () => {
  let pair: Pair | undefined;
  afterEach(async () => {
    await pair?.dispose();
    pair = undefined;
  });

  /** N open payments A → B (held open by A's business); then `wiped` loses its database and restarts. */
  async function rebuilding(wiped: 'a' | 'b'): Promise<{ p: Pair; side: Side; other: Side; node: VaspNode }> {
    const p = await startPair({ a: slow(), b: slow() });
    pair = p;
    for (let i = 0; i < N; i++) {
      await firstValueFrom(p.a.node.pay({ to: p.b.node.address, amount: 1 + i, currency: 'TIK' }).outcome$);
    }
    await waitFor([p.a.node, p.b.node], () => headsEqual(p.a.node, p.b.node));
    const side = wiped === 'a' ? p.a : p.b;
    const other = wiped === 'a' ? p.b : p.a;
    await p.wipe(side);
    return { p, side, other, node: await p.start(side, slow()) };
  }

  it('the node being rebuilt (follower: B, wiped) closes mid-run, its run is on record as aborted, and a restart completes the rebuild', async () => {
    const { p, side, other, node } = await rebuilding('b');
    await closeAt(node, node.resync$, (e) => e.type === 'object_rebuilt');
    const again = await p.start(side, slow());
    // The run of the closed life, persisted before close() resolved (the survivor's restore of
    // closed objects, PROTOCOL.md §7.6, may have run here too: not the rebuild's run).
    const first = (await again.resyncRuns(other.node.address, 10))
      .filter((r) => r.detail['method'] !== 'restore')
      .at(-1);
    expect(first).toMatchObject({ outcome: 'aborted' });
    expect(first!.objectsReceived).toBeLessThan(N);
    await waitFor(
      [other.node, again],
      async () => (await again.store.countOpenObjects(other.node.address)) === N,
    );
    await waitFor([other.node, again], () => headsEqual(other.node, again));
    expect(await again.store.checkIntegrity()).toEqual([]);
  });

  it('the node being rebuilt (leader: A, wiped, fetching) closes mid-run, its run is on record as aborted, and a restart completes the rebuild', async () => {
    const { p, side, other, node } = await rebuilding('a');
    await closeAt(node, node.resync$, (e) => e.type === 'object_rebuilt');
    await expect(node.sync(other.node.address).run('after close')).rejects.toMatchObject({
      code: 'SYNC_ABORTED',
    });
    const again = await p.start(side, slow());
    const first = (await again.resyncRuns(other.node.address, 10)).at(-1);
    expect(first).toMatchObject({ outcome: 'aborted' });
    expect(first!.detail['role']).toBe('leader');
    await waitFor(
      [other.node, again],
      async () => (await again.store.countOpenObjects(other.node.address)) === N,
    );
    await waitFor([other.node, again], () => headsEqual(other.node, again));
  });

  it('the node leading the rebuild (A, pushing) closes mid-run; both runs end aborted on record', async () => {
    const { p, other, node } = await rebuilding('b');
    // A leads (it dials): close it once its run has handled a first batch.
    await closeAt(other.node, other.node.resync$, (e) => e.type === 'resync_progress' && e.done > 0);
    await waitFor([node], async () =>
      (await node.resyncRuns(other.node.address, 10)).some((r) => r.outcome === 'aborted'),
    );
    expect(await node.store.countOpenObjects(other.node.address)).toBeLessThan(N);
    const restartedAt = Date.now();
    const again = await p.start(other, slow());
    // The restarted node may already be leading a new run: take the last one before the restart.
    const [led] = (await again.resyncRuns(node.address, 10)).filter((r) => r.startedAtMs < restartedAt);
    expect(led).toMatchObject({ outcome: 'aborted' });
    expect(led!.detail['role']).toBe('leader');
  });
});
