/**
 * The closed-object restore (PROTOCOL.md §7.6) on real sockets and real databases (SQLite files,
 * or PostgreSQL with `PARLEY_TEST_DB=postgresql`): a node with two peers loses its database
 * while each channel holds closed and open payments; both peers see `peer_state_lost` and lead
 * the restore, and the wiped node ends with the same signed log, versions and heads as each
 * peer, without a payment event for a restored object.
 */
import { firstValueFrom } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { BusinessContext } from '../../src/business/business-context.js';
import { createAutoBusiness } from '../../src/business/index.js';
import type { NodeConfigInput } from '../../src/config.js';
import { createVaspNode, type NodeDeps, type VaspNode } from '../../src/node.js';
import type { RestoreEvent } from '../../src/sync/resync.js';
import { freePort, nodeTestEngine } from '../helpers/node-process.js';
import { nodeConfig, type TestIdentity, testIdentity, until } from '../helpers/nodes.js';
import { createStoreFixture, type StoreFixture } from '../helpers/store.js';
import { channelTables } from './restore-tables.js';

/** Closed and open payments per channel. */
const CLOSED = 40;
const OPEN = 8;

/** An automatic business that holds its `ready_for_settlement` step while `hold` is on. */
function switchableBusiness(): { business: BusinessContext; hold: { on: boolean } } {
  const auto = createAutoBusiness();
  const hold = { on: false };
  return {
    hold,
    business: {
      ...auto,
      async readyForSettlement(payment, ctx) {
        if (hold.on) await new Promise<never>(() => undefined);
        return auto.readyForSettlement(payment, ctx as Parameters<typeof auto.readyForSettlement>[1]);
      },
    },
  };
}

interface Member {
  identity: TestIdentity;
  db: StoreFixture;
  port: number;
  node?: VaspNode;
}

describe(`restore of closed objects after a wipe (${nodeTestEngine()})`, () => {
  const members: Member[] = [];
  afterEach(async () => {
    for (const m of members) await m.node?.close();
    for (const m of members) await m.db.dispose();
    members.length = 0;
  });

  async function member(byte: number): Promise<Member> {
    const m: Member = {
      identity: testIdentity(byte),
      db: await createStoreFixture(nodeTestEngine()),
      port: await freePort(),
    };
    members.push(m);
    return m;
  }

  it('gives a wiped node with two peers every closed and open object back, signed logs identical, no payment events for restored ones', async () => {
    const [w, p, q] = [await member(0x57), await member(0x50), await member(0x51)];
    const url = (m: Member) => `ws://127.0.0.1:${m.port}/parley/v1`;
    const wConfig = (): NodeConfigInput => ({
      ...nodeConfig(
        w.identity,
        w.db.url,
        [
          { identity: p.identity, url: url(p) },
          { identity: q.identity, url: url(q) },
        ],
        w.port,
      ),
      events: { enabled: true },
    });
    // Small restore runs and batches: many runs, many cursor moves.
    const peerDeps = (): NodeDeps & { hold: { on: boolean } } => {
      const s = switchableBusiness();
      return { business: s.business, hold: s.hold, sync: { restoreRunObjects: 15, restoreBatchObjects: 4 } };
    };
    const pDeps = peerDeps();
    const qDeps = peerDeps();
    p.node = await createVaspNode(
      nodeConfig(p.identity, p.db.url, [{ identity: w.identity }], p.port),
      pDeps,
    );
    q.node = await createVaspNode(
      nodeConfig(q.identity, q.db.url, [{ identity: w.identity }], q.port),
      qDeps,
    );
    w.node = await createVaspNode(wConfig());
    const peers = [p, q];
    const all = () => members.map((m) => m.node!).filter(Boolean);

    // Closed: payments both ways, settled by both automatic businesses.
    const pays: Array<Promise<unknown>> = [];
    for (const peer of peers) {
      for (let i = 0; i < CLOSED; i++) {
        const [from, to] = i % 2 === 0 ? [w, peer] : [peer, w];
        pays.push(
          firstValueFrom(
            from.node!.pay({ to: to.identity.address, amount: 1 + i, currency: 'TIK' }).outcome$,
          ),
        );
      }
    }
    await Promise.all(pays);
    const closedOn = async (m: Member, peer: Member) =>
      (
        await m.db.query<{ n: number | string }>(
          `SELECT COUNT(*) AS n FROM object_head WHERE peer = '${peer.identity.address}' AND open = ${m.db.engine === 'sqlite' ? 0 : 'false'}`,
        )
      )[0]!.n;
    await until(
      all(),
      async () => {
        for (const peer of peers) if (Number(await closedOn(w, peer)) < CLOSED) return false;
        return true;
      },
      { timeoutMs: 60_000 },
    );

    // Open: the peers' payments to W, held open by their businesses.
    pDeps.hold.on = true;
    qDeps.hold.on = true;
    for (const peer of peers) {
      const created = [];
      for (let i = 0; i < OPEN; i++) {
        created.push(
          firstValueFrom(
            peer.node!.pay({ to: w.identity.address, amount: 500 + i, currency: 'TIK' }).outcome$,
          ),
        );
      }
      await Promise.all(created);
    }
    await until(
      all(),
      async () => {
        for (const peer of peers)
          if ((await w.node!.store.countOpenObjects(peer.identity.address)) < OPEN) return false;
        return true;
      },
      { timeoutMs: 60_000 },
    );

    // W loses its database.
    await w.node.close();
    w.node = undefined;
    await w.db.wipe();

    const events: RestoreEvent[] = [];
    for (const peer of peers) {
      peer.node!.events$.subscribe((e) => {
        if (e.type === 'restore_progress' || e.type === 'restore_finished') events.push(e);
      });
    }
    w.node = await createVaspNode(wConfig());
    const finished = (peer: Member) =>
      peer.node!.sync(w.identity.address).restoreStatus()?.state === 'finished';
    await until(all(), async () => peers.every(finished), { timeoutMs: 120_000 });
    for (const peer of peers) {
      const status = peer.node!.sync(w.identity.address).restoreStatus()!;
      expect(status).toMatchObject({
        role: 'leader',
        reason: 'peer_state_lost',
        state: 'finished',
        moved: CLOSED,
      });
      expect(
        events.filter((e) => e.peer === w.identity.address && e.type === 'restore_progress').length,
      ).toBeGreaterThan(2);
    }
    // The open objects came back by the runs on connect.
    await until(
      all(),
      async () => {
        for (const peer of peers)
          if ((await w.node!.store.countOpenObjects(peer.identity.address)) < OPEN) return false;
        return true;
      },
      { timeoutMs: 60_000 },
    );
    // W saw each peer's restore of it to its end (the leader's `SyncEnd` reaches it after).
    await until(
      all(),
      async () =>
        peers.every((peer) => {
          const mine = w.node!.sync(peer.identity.address).restoreStatus();
          return mine?.role === 'follower' && mine.state === 'finished' && mine.moved === CLOSED;
        }),
      { timeoutMs: 60_000 },
    );

    // Stopped, then the tables compared.
    for (const m of members) {
      await m.node?.close();
      m.node = undefined;
    }
    for (const peer of peers) {
      const mine = await channelTables(w.db, peer.identity.address);
      const theirs = await channelTables(peer.db, w.identity.address);
      expect(new Set(mine.log.map((r) => r['ref'])).size).toBe(CLOSED + OPEN);
      expect(mine.log).toEqual(
        theirs.log.map((r) => ({ ...r, direction: r['direction'] === 'outbound' ? 'inbound' : 'outbound' })),
      );
      expect(mine.versions).toEqual(theirs.versions);
      expect(mine.heads).toEqual(theirs.heads);
      const cursor = await peer.db.query<{
        after: string | null;
        moved: number | string;
        finished_at: unknown;
      }>(`SELECT "after", moved, finished_at FROM restore_cursor WHERE peer = '${w.identity.address}'`);
      expect(Number(cursor[0]!.moved)).toBe(CLOSED);
      expect(cursor[0]!.finished_at).not.toBeNull();
    }
    // No payment event for a restored (closed) object; restore progress instead.
    const closedRefs = new Set(
      (
        await w.db.query<{ ref: string }>(
          `SELECT reference_id AS ref FROM object_head WHERE open = ${w.db.engine === 'sqlite' ? 0 : 'false'}`,
        )
      ).map((r) => r.ref),
    );
    expect(closedRefs.size).toBe(2 * CLOSED);
    const kinds = await w.db.query<{ kind: string; ref: string | null }>(
      'SELECT kind, reference_id AS ref FROM webhook_event',
    );
    expect(kinds.filter((k) => k.ref !== null && closedRefs.has(k.ref))).toEqual([]);
    expect(kinds.some((k) => k.kind === 'restore_progress')).toBe(true);
  }, 240_000);
});
