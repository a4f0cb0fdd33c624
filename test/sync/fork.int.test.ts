/**
 * A fork end to end, between two real nodes (ws on 127.0.0.1, SQLite files): after state loss,
 * both sides hold a different, fully signed extension of the same version. The resync gives the
 * object to the protocol server's branch (B, PROTOCOL.md §2.3, §7.4); the client (A) replaces
 * its own branch in one transaction, its business layer is told (`paymentForkLost`, and
 * `fork_lost` on `resync$` and `events$`), and its command that read the losing branch ends with
 * `SYNC_FORK_LOST`.
 *
 * The fork is made the only way it can happen: each node's database goes back to an earlier
 * copy of itself (SQLite file snapshots, so SQLite only).
 */
import { copyFileSync, existsSync, rmSync } from 'node:fs';
import { firstValueFrom, lastValueFrom, type Observable } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { BusinessContext, PaymentForkLost } from '../../src/business/index.js';
import type { CommandOutcome } from '../../src/channel/channel.js';
import type { NodeDeps, NodeEvent, VaspNode } from '../../src/node.js';
import { isProtocolServer, type PaymentObject } from '../../src/protocol/index.js';
import type { ResyncEvent } from '../../src/sync/resync.js';
import { headOf, type Pair, type Side, startPair, step, usePg, waitFor } from './helpers.js';

/** A business that never takes a step by itself: the test makes every version. */
function inertBusiness(): BusinessContext<undefined> {
  return {
    paymentPreProcessing: async () => undefined,
    paymentInitialProcessing: async () => undefined,
    checkAccountExistence: async () => undefined,
    validateRecipientSignature: () => undefined,
    getRecipientSignature: async () => '',
    nextKycToProvide: async () => new Set(),
    nextKycLevelToRequest: async () => 'none',
    getExtendedKyc: async () => ({ payload_type: 'KYC_DATA', payload_version: 1, type: 'individual' }),
    getAdditionalKyc: async () => ({ payload_type: 'KYC_DATA', payload_version: 1, type: 'individual' }),
    readyForSettlement: async () => false,
  };
}

/** No run on connect, no divergence trigger: the test says when resync runs. */
const quiet = (): NodeDeps =>
  ({
    business: inertBusiness(),
    sync: { onConnect: false },
    health: { divergeAfterHeartbeats: 1_000_000 },
  }) as NodeDeps;

/** Named copies of a stopped side's SQLite files. */
function files(side: Side) {
  const path = side.database.slice('file:'.length);
  const copy = (from: string, to: string): void => {
    for (const suffix of ['', '-wal', '-shm']) {
      rmSync(`${to}${suffix}`, { force: true });
      if (existsSync(`${from}${suffix}`)) copyFileSync(`${from}${suffix}`, `${to}${suffix}`);
    }
  };
  return {
    save: (name: string) => copy(path, `${path}.${name}`),
    restore: (name: string) => copy(`${path}.${name}`, path),
  };
}

/**
 * Runs `request` (a resync the test asks for) once both nodes hold a connection to each other.
 * A restarted node and its peer may both dial: one connection per pair closes one of them, and
 * a resync asked for meanwhile is answered `SYNC_ABORTED` (no connection); it is asked again.
 */
async function resyncWhenConnected<T>(a: VaspNode, b: VaspNode, request: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    await waitFor(
      [a, b],
      async () =>
        a.channel(b.address).connection !== undefined && b.channel(a.address).connection !== undefined,
    );
    try {
      return await request();
    } catch (err) {
      if ((err as { code?: string }).code !== 'SYNC_ABORTED' || attempt >= 5) throw err;
    }
  }
}

/** Starts collecting `events$` now; `stop()` gives what came. */
function collect<T>(events$: Observable<T>): () => T[] {
  const seen: T[] = [];
  const sub = events$.subscribe((e) => seen.push(e));
  return () => {
    sub.unsubscribe();
    return seen;
  };
}

describe.skipIf(usePg)('a fork between two real nodes (B is the protocol server, A the client)', () => {
  let pair: Pair | undefined;
  afterEach(async () => {
    await pair?.dispose();
    pair = undefined;
  });

  for (const leader of ['B (the server)', 'A (the client)'] as const) {
    it(`after state loss on both sides, ${leader} leads the resync: B's branch wins, A replaces its own and is told (fork_lost, SYNC_FORK_LOST)`, async () => {
      pair = await startPair({ a: quiet(), b: quiet() });
      const p = pair;
      const { a, b } = p;
      expect(isProtocolServer(b.node.address, a.node.address)).toBe(true);
      const fa = files(a);
      const fb = files(b);

      // v1 (A creates), v2 (B answers): both hold v2.
      const { referenceId: ref, outcome$ } = a.node.pay({ to: b.node.address, amount: 9, currency: 'TIK' });
      await firstValueFrom(outcome$);
      await waitFor([a.node, b.node], async () => (await headOf(b.node, a.node.address, ref)) !== undefined);
      expect(await step(b.node, a.node.address, ref)).toMatchObject({ status: 'success' });
      const v2 = await headOf(a.node, b.node.address, ref);
      await p.stop(a);
      await p.stop(b);
      fa.save('v2');
      fb.save('v2');

      // Timeline 1: A extends v2 with v3a; both accept it. A keeps this database.
      await p.start(b, quiet());
      await p.start(a, quiet());
      await waitFor([a.node, b.node], async () => a.node.channel(b.node.address).connection !== undefined);
      expect(await step(a.node, b.node.address, ref)).toMatchObject({ status: 'success' });
      const v3a = await headOf(a.node, b.node.address, ref);
      await waitFor([a.node, b.node], async () => (await headOf(b.node, a.node.address, ref)) === v3a);
      await p.stop(a);
      await p.stop(b);
      fa.save('v3a');

      // Timeline 2: both go back to v2; A extends v2 again, with v3b; both accept it. B keeps it.
      fa.restore('v2');
      fb.restore('v2');
      await p.start(b, quiet());
      await p.start(a, quiet());
      await waitFor([a.node, b.node], async () => a.node.channel(b.node.address).connection !== undefined);
      expect(await step(a.node, b.node.address, ref)).toMatchObject({ status: 'success' });
      const v3b = await headOf(a.node, b.node.address, ref);
      await waitFor([a.node, b.node], async () => (await headOf(b.node, a.node.address, ref)) === v3b);
      expect(v3b).not.toBe(v3a);

      // A comes back with timeline 1: a fork of v2 (A holds v3a, B holds v3b). Its business
      // hears of the fork (when A leads, its hook fails: reported, and nothing else changes).
      await p.stop(a);
      fa.restore('v3a');
      const told: PaymentForkLost[] = [];
      const hookFails = leader.startsWith('A');
      const client = await p.start(a, {
        ...quiet(),
        business: {
          ...inertBusiness(),
          paymentForkLost: (fork) => {
            told.push(fork);
            if (hookFails) throw new Error('fork hook failed');
          },
        },
      } as NodeDeps);
      const server = b.node;
      await waitFor([client, server], async () => client.channel(server.address).connection !== undefined);
      expect(await headOf(client, server.address, ref)).toBe(v3a);
      expect((await client.store.versions(server.address, ref)).map((v) => v.version)).toContain(v2);

      // A's next command reads v3a: B lacks that version and answers `wait`, so it stays pending.
      // (A aborts: a move a sender may always make while the payment is open.)
      const head = JSON.parse(
        (await client.store.versions(server.address, ref)).at(-1)!.payment,
      ) as PaymentObject;
      const abort: PaymentObject = {
        ...head,
        sender: {
          ...head.sender,
          status: { status: 'abort', abort_code: 'no_kyc_needed', abort_message: 'changed my mind' },
        },
      };
      const doomed = lastValueFrom(
        client.channel(server.address).send({ payment: abort, readVersion: v3a! }),
      ).then(
        (o: CommandOutcome) => ({ outcome: o }),
        (err: { code?: string }) => ({ error: err.code }),
      );
      await waitFor([client, server], async () => client.channel(server.address).inflight === 1);

      const clientResync = collect<ResyncEvent>(client.resync$);
      const clientEvents = collect<NodeEvent>(client.events$);
      const serverResync = collect<ResyncEvent>(server.resync$);
      const run = await resyncWhenConnected(client, server, () =>
        leader.startsWith('B')
          ? server.requestResync(client.address, 'test')
          : client.requestResync(server.address, 'test'),
      );
      expect(run.outcome).toBe('repaired');

      // B's branch everywhere, A's signed log equal to B's, nothing of v3a left at A.
      await waitFor([client, server], async () => (await headOf(client, server.address, ref)) === v3b);
      expect(await headOf(server, client.address, ref)).toBe(v3b);
      const log = async (n: VaspNode, peer: string) =>
        (await n.store.history(peer, ref)).map((r) => [r.cid, r.requestJws, r.responseJws]);
      expect(await log(client, server.address)).toEqual(await log(server, client.address));
      expect((await client.store.versions(server.address, ref)).map((v) => v.version)).not.toContain(v3a);
      expect(await client.store.checkIntegrity()).toEqual([]);

      // A's business layer is told: fork_lost (with the dropped command) and SYNC_FORK_LOST.
      expect(await doomed).toEqual({ error: 'SYNC_FORK_LOST' });
      const lost = clientResync().filter((e) => e.type === 'fork_lost');
      expect(lost).toHaveLength(1);
      expect(lost[0]).toMatchObject({ referenceId: ref, keep: v2, droppedCids: [v3a] });
      expect((lost[0] as { droppedPending: string[] }).droppedPending).toHaveLength(1);
      await waitFor([client, server], async () => told.length > 0);
      expect(told).toHaveLength(1);
      expect(told[0]).toMatchObject({
        other: server.address,
        referenceId: ref,
        keep: v2,
        droppedCids: [v3a],
      });
      expect(told[0]!.droppedPending).toEqual((lost[0] as { droppedPending: string[] }).droppedPending);
      const winning = (await client.store.versions(server.address, ref)).at(-1)!;
      expect(winning.version).toBe(v3b);
      expect(told[0]!.payment).toEqual(JSON.parse(winning.payment));
      const seen = clientEvents();
      expect(seen.some((e) => e.type === 'fork_lost')).toBe(true);
      expect(seen.filter((e) => e.type === 'business_error' && e.message === 'fork hook failed').length).toBe(
        hookFails ? 1 : 0,
      );
      expect(client.channel(server.address).inflight).toBe(0);
      if (leader.startsWith('B')) {
        expect(
          serverResync()
            .filter((e) => e.type === 'fork_won')
            .map((e) => e.referenceId),
        ).toEqual([ref]);
      } else {
        serverResync();
      }
      // The losing branch is kept as evidence in the client's persisted run (as follower, its
      // record is finished when the leader's SyncEnd arrives).
      const forksOnRecord = async () =>
        (await client.resyncRuns(server.address, 5))
          .filter((r) => r.outcome !== null)
          .flatMap(
            (r) => (r.detail['forks'] as Array<{ referenceId: string; dropped: string[] }> | undefined) ?? [],
          );
      await waitFor([client, server], async () => (await forksOnRecord()).length > 0);
      const [evidence] = await forksOnRecord();
      expect(evidence!.referenceId).toBe(ref);
      expect(evidence!.dropped).toHaveLength(1);
    });
  }
});
