import { randomBytes } from 'node:crypto';
import { firstValueFrom, type Subscription } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { NodeDeps } from '../../src/node.js';
import { decodeJwsPayloadUnverified, privateKeyFromSeedHex } from '../../src/protocol/index.js';
import { type ApplyResult, signSyncFrame } from '../../src/protocol/sync-frames.js';
import type { ResyncEvent } from '../../src/sync/resync.js';
import { headOf, headsEqual, heldBusiness, type Pair, startPair, waitFor } from './helpers.js';
import { buildPayment, flip, historyOf, type Party } from './signed-histories.js';

const quiet = (business: NodeDeps['business']): NodeDeps =>
  ({
    business,
    sync: { onConnect: false },
    health: { divergeAfterHeartbeats: 1_000_000 },
  }) as NodeDeps;

describe('resync over real sockets and SQLite files', () => {
  let pair: Pair | undefined;
  const subs: Subscription[] = [];
  afterEach(async () => {
    for (const s of subs.splice(0)) s.unsubscribe();
    await pair?.dispose();
    pair = undefined;
  });

  it('refuses a pushed history with a flipped byte, a missing version or a re-ordered chain, and stores nothing of it', async () => {
    pair = await startPair({ a: quiet(heldBusiness().business), b: quiet(heldBusiness().business) });
    const { a, b } = pair;
    await waitFor([a.node, b.node], async () => a.node.channel(b.node.address).connection !== undefined);
    const pa: Party = { address: a.node.address, key: privateKeyFromSeedHex(a.identity.seedHex) };
    const pb: Party = { address: b.node.address, key: privateKeyFromSeedHex(b.identity.seedHex) };
    const valid = await buildPayment(pa, pb, 3);
    const flipped = await buildPayment(pa, pb, 3);
    const gap = await buildPayment(pa, pb, 3);
    const reordered = await buildPayment(pa, pb, 4);
    const flippedHistory = historyOf(flipped);
    flippedHistory.commands[1] = {
      ...flippedHistory.commands[1]!,
      response: flip(flippedHistory.commands[1]!.response, 1),
    };
    const objects = [
      historyOf(valid),
      flippedHistory,
      historyOf([gap[0]!, gap[2]!]),
      historyOf([reordered[0]!, reordered[2]!, reordered[1]!, reordered[3]!]),
    ];

    const rejected: ResyncEvent[] = [];
    subs.push(b.node.resync$.subscribe((e) => e.type === 'history_rejected' && rejected.push(e)));
    const connection = a.node.channel(b.node.address).connection!;
    const answer = new Promise<ApplyResult[]>((resolve) => {
      subs.push(
        connection.frames$.subscribe((frame) => {
          let payload: { _ObjectType?: string; results?: ApplyResult[] };
          try {
            payload = JSON.parse(decodeJwsPayloadUnverified(frame)) as typeof payload;
          } catch {
            return; // heartbeats are not JWS
          }
          if (payload._ObjectType === 'SyncApplied') resolve(payload.results!);
        }),
      );
    });
    const frame = await signSyncFrame(
      {
        _ObjectType: 'SyncHistory',
        request_id: null,
        run_id: randomBytes(16).toString('hex'),
        seq: 0,
        objects,
        last: true,
      },
      pa.key,
    );
    expect(connection.send(frame)).toBe(true);

    const results = await answer;
    expect(results.map((r) => [r.outcome, r.code])).toEqual([
      ['rejected', 'SYNC_BAD_SIGNATURE'],
      ['rejected', 'SYNC_BROKEN_CHAIN'],
      ['rejected', 'SYNC_BROKEN_CHAIN'],
      ['applied', null],
    ]);
    expect(rejected.map((e) => (e.type === 'history_rejected' ? e.code : ''))).toEqual([
      'SYNC_BAD_SIGNATURE',
      'SYNC_BROKEN_CHAIN',
      'SYNC_BROKEN_CHAIN',
    ]);
    // The valid one was stored whole; nothing of the others.
    expect(await headOf(b.node, a.node.address, valid[0]!.payment.reference_id)).toBe(valid[2]!.cid);
    for (const steps of [flipped, gap, reordered]) {
      expect(await b.node.store.head(a.node.address, steps[0]!.payment.reference_id)).toBeUndefined();
      for (const s of steps) expect(await b.node.store.findCommand(a.node.address, s.cid)).toBeUndefined();
    }
    expect(await b.node.store.checkIntegrity()).toEqual([]);
  });

  it('a plain reconnect with no differences exchanges only the two summary frames (persisted run)', async () => {
    pair = await startPair({ a: { business: heldBusiness().business } });
    const { a, b } = pair;
    const refs: string[] = [];
    for (let i = 0; i < 5; i++) {
      const { referenceId, outcome$ } = a.node.pay({ to: b.node.address, amount: 1 + i, currency: 'TIK' });
      refs.push(referenceId);
      await firstValueFrom(outcome$);
    }
    await waitFor([a.node, b.node], async () => {
      for (const ref of refs)
        if ((await b.node.store.head(a.node.address, ref))?.versionCount !== 2) return false;
      return (await headsEqual(a.node, b.node)) && a.node.channel(b.node.address).inflight === 0;
    });
    const before = (await a.node.resyncRuns(b.node.address, 1))[0]?.id ?? 0;

    a.node.channel(b.node.address).connection!.close(1000, 'test: reconnect');
    const latest = async () => (await a.node.resyncRuns(b.node.address, 1))[0];
    await waitFor([a.node, b.node], async () => {
      const run = await latest();
      return run !== undefined && run.id > before && run.reason === 'connect' && run.outcome !== null;
    });
    const run = (await latest())!;
    expect(run).toMatchObject({ outcome: 'in_sync', rounds: 1, objectsSent: 0, objectsReceived: 0 });
    // One SyncBegin out, one SyncBeginAck back: a few hundred bytes whatever the set size.
    expect(run.bytesSent).toBeGreaterThan(0);
    expect(run.bytesSent).toBeLessThan(1024);
    expect(run.bytesReceived).toBeGreaterThan(0);
    expect(run.bytesReceived).toBeLessThan(1024);
    await waitFor(
      [a.node, b.node],
      async () => (await b.node.resyncRuns(a.node.address, 1))[0]?.outcome != null,
    );
    expect((await b.node.resyncRuns(a.node.address, 1))[0]).toMatchObject({
      outcome: 'in_sync',
      rounds: 1,
      objectsSent: 0,
      objectsReceived: 0,
    });
  });

  it('network reads: get an object and its whole verified signed history from the peer', async () => {
    pair = await startPair({ a: { business: heldBusiness().business } });
    const { a, b } = pair;
    const { referenceId, outcome$ } = a.node.pay({ to: b.node.address, amount: 3, currency: 'TIK' });
    await firstValueFrom(outcome$);
    await waitFor(
      [a.node, b.node],
      async () => (await b.node.store.head(a.node.address, referenceId))?.versionCount === 2,
    );
    const object = await a.node.sync(b.node.address).getObject(referenceId);
    expect(object).toMatchObject({ found: true, version_count: 2, open: true });
    expect(object.head).toBe(await headOf(b.node, a.node.address, referenceId));
    expect((object.payment as { reference_id: string }).reference_id).toBe(referenceId);
    const history = await a.node.sync(b.node.address).getHistory(referenceId);
    expect(history.chain.map((c) => c.record.cid)).toEqual(
      (await a.node.store.history(b.node.address, referenceId)).map((r) => r.cid),
    );
    await expect(a.node.sync(b.node.address).getHistory('nope_1')).rejects.toMatchObject({
      code: 'SYNC_UNKNOWN_OBJECT',
    });
    expect(await a.node.sync(b.node.address).getObject('nope_1')).toMatchObject({ found: false, head: null });
  });
});
