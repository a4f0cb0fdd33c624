/**
 * What a leader takes from a follower that lies (frames re-signed with the follower's real key:
 * only their content lies).
 *
 * The leader checks each page of the follower's list: at most the entries asked for, in
 * strictly increasing order after the cursor, `next` its last entry. A follower that sends its
 * cursor back (or pages out of order) would otherwise keep the run going forever, the list
 * growing with each page. It applies only the objects it asked for from a history answer, and
 * takes from a resolve answer only the objects behind the keys it asked about, once each.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeSyncFrame, type SyncFrame, signSyncFrame } from '../../src/protocol/sync-frames.js';
import { createSyncRepository } from '../../src/store/sync-repository.js';
import type { SyncStore } from '../../src/sync/ports.js';
import type { ChannelSync, SyncLink } from '../../src/sync/resync.js';
import { nextMatch } from '../helpers/wait.js';
import { digestSync, memoryLink, memorySync, seedOpenPayments, withTwoStores } from './in-memory.js';
import { buildPayment, historyOf, type Party, party } from './signed-histories.js';

type SyncList = Extract<SyncFrame, { _ObjectType: 'SyncList' }>;

const lies: Record<string, (page: SyncList) => SyncList> = {
  'sends its cursor back': (page) => ({ ...page, next: page.entries[0]!.reference_id }),
  'repeats an entry': (page) => ({ ...page, entries: [page.entries[0]!, ...page.entries] }),
  'sends entries out of order': (page) => ({ ...page, entries: [...page.entries].reverse() }),
};

describe('a follower whose list pages lie', () => {
  const stores = withTwoStores(beforeAll, afterAll);
  let byte = 0x10;

  for (const [name, lie] of Object.entries(lies)) {
    it(`${name}: the run fails (PROTOCOL_MALFORMED_FRAME) instead of going on`, async () => {
      const A = party(byte++);
      const B = party(byte++);
      const syncA = createSyncRepository(stores.a);
      const syncB = createSyncRepository(stores.b);
      await seedOpenPayments(syncB, B, A, 3);
      const make = (me: Party, peer: Party, store: SyncStore): ChannelSync =>
        memorySync(me, peer, store, { pageSize: 2, responseTimeoutMs: 5_000 });
      const sa = make(A, B, syncA);
      const sb = make(B, A, syncB);
      const la: SyncLink = memoryLink((f) => sb.handleFrame(f, lb));
      const lb: SyncLink = memoryLink((f) => {
        const frame = decodeSyncFrame(Buffer.from(f.split('.')[1]!, 'base64url').toString('utf8'));
        if (frame._ObjectType !== 'SyncList' || frame.entries.length < 2) {
          sa.handleFrame(f, la);
          return;
        }
        void signSyncFrame(lie(frame), B.key).then((forged) => sa.handleFrame(forged, la));
      });
      sa.attach(la);
      sb.attach(lb);
      // (Its run record is written before `resync_finished`. Left without a SyncEnd, it would
      // end `aborted` only after twice the answer limit.)
      const followerFinished = nextMatch(
        sb.events$,
        (e) => e.type === 'resync_finished',
        'the follower run to end',
      );
      try {
        await expect(sa.run('test')).rejects.toMatchObject({ code: 'PROTOCOL_MALFORMED_FRAME' });
        const [record] = await syncA.runs(B.address, 1);
        expect(record?.outcome).toBe('failed');
        // The follower hears that the run is over (SyncEnd), instead of keeping it open.
        expect(await followerFinished).toMatchObject({ outcome: 'failed' });
        expect((await syncB.runs(A.address, 1))[0]?.outcome).toBe('failed');
      } finally {
        await sa.close();
        await sb.close();
      }
    });
  }

  it('an answer carrying an object not asked for: only what was asked for is applied', async () => {
    const A = party(byte++);
    const B = party(byte++);
    const syncA = createSyncRepository(stores.a);
    const syncB = createSyncRepository(stores.b);
    await seedOpenPayments(syncB, B, A, 2);
    const [asked, other] = (await syncB.openObjects(A.address, null, 10)).map((h) => h.referenceId);
    // A valid, fully signed history of an object neither side holds.
    const stranger = historyOf(await buildPayment(B, A, 2));
    const sa = memorySync(A, B, syncA, { responseTimeoutMs: 5_000 });
    const sb = memorySync(B, A, syncB, {});
    const la: SyncLink = memoryLink((f) => sb.handleFrame(f, lb));
    const lb: SyncLink = memoryLink((f) => {
      const frame = decodeSyncFrame(Buffer.from(f.split('.')[1]!, 'base64url').toString('utf8'));
      if (frame._ObjectType !== 'SyncHistory' || frame.request_id === null) {
        sa.handleFrame(f, la);
        return;
      }
      void signSyncFrame({ ...frame, objects: [...frame.objects, stranger] }, B.key).then((forged) =>
        sa.handleFrame(forged, la),
      );
    });
    sa.attach(la);
    sb.attach(lb);
    try {
      const result = await sa.run('scoped', [asked!]);
      expect(result.outcome).toBe('repaired');
      expect(result.objectsReceived).toBe(1);
      expect((await syncA.openObjects(B.address, null, 10)).map((h) => h.referenceId)).toEqual([asked]);
      expect(await syncA.heads(B.address, [other!, stranger.reference_id])).toEqual(new Map());
    } finally {
      await sa.close();
      await sb.close();
    }
  });

  it('a resolve answer naming objects not asked for: only the objects behind the keys asked for are differences', async () => {
    const A = party(byte++);
    const B = party(byte++);
    const syncA = createSyncRepository(stores.a);
    const syncB = createSyncRepository(stores.b);
    await seedOpenPayments(syncA, A, B, 2);
    await seedOpenPayments(syncB, B, A, 3);
    const speaks = { peerSyncMethods: ['list', 'riblt'] };
    // With an open-objects digest (as a channel core keeps), so the run compares by symbols.
    const sa = digestSync(A, B, syncA, { responseTimeoutMs: 5_000 });
    const sb = digestSync(B, A, syncB, { responseTimeoutMs: 5_000 });
    let lied = 0;
    const la: SyncLink = { ...memoryLink((f) => sb.handleFrame(f, lb)), ...speaks };
    const lb: SyncLink = {
      ...memoryLink((f) => {
        const frame = decodeSyncFrame(Buffer.from(f.split('.')[1]!, 'base64url').toString('utf8'));
        if (frame._ObjectType !== 'SyncResolved') {
          sa.handleFrame(f, la);
          return;
        }
        lied++;
        const made = { reference_id: 'not-asked-for', head: 'v-none', version_count: 1 };
        void signSyncFrame({ ...frame, entries: [...frame.entries, frame.entries[0]!, made] }, B.key).then(
          (forged) => sa.handleFrame(forged, la),
        );
      }),
      ...speaks,
    };
    sa.attach(la);
    sb.attach(lb);
    try {
      const result = await sa.run('test');
      expect(lied).toBe(1);
      expect(result).toMatchObject({ outcome: 'repaired', differences: 5 });
      const [record] = await syncA.runs(B.address, 1);
      expect(record?.detail['method']).toBe('riblt');
      expect(await syncA.heads(B.address, ['not-asked-for'])).toEqual(new Map());
      expect((await syncA.openObjects(B.address, null, 10)).length).toBe(5);
    } finally {
      await sa.close();
      await sb.close();
    }
  });

  it('an answer that never ends (parts without last): not held past what was asked for, the run fails', async () => {
    const A = party(byte++);
    const B = party(byte++);
    const syncA = createSyncRepository(stores.a);
    const syncB = createSyncRepository(stores.b);
    await seedOpenPayments(syncB, B, A, 1);
    const [ref] = (await syncB.openObjects(A.address, null, 10)).map((h) => h.referenceId);
    // One object asked for, frames of at most 20 KB: an honest answer stays under 40 KB.
    const sa = memorySync(A, B, syncA, { maxFrameBytes: 20_000, responseTimeoutMs: 20_000 });
    const sb = memorySync(B, A, syncB, {});
    const la: SyncLink = memoryLink((f) => sb.handleFrame(f, lb));
    const lb: SyncLink = memoryLink((f) => {
      const frame = decodeSyncFrame(Buffer.from(f.split('.')[1]!, 'base64url').toString('utf8'));
      if (frame._ObjectType !== 'SyncHistory' || frame.request_id === null) {
        sa.handleFrame(f, la);
        return;
      }
      void (async () => {
        for (let seq = 0; seq < 100; seq++) {
          sa.handleFrame(await signSyncFrame({ ...frame, seq, last: false }, B.key), la);
        }
      })();
    });
    sa.attach(la);
    sb.attach(lb);
    try {
      await expect(sa.run('scoped', [ref!])).rejects.toMatchObject({ code: 'PROTOCOL_MALFORMED_FRAME' });
      expect(await syncA.heads(B.address, [ref!])).toEqual(new Map());
    } finally {
      await sa.close();
      await sb.close();
    }
  });
});
