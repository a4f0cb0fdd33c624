/**
 * Channels spread over replicas, end to end: VASP A as three replica processes on one real
 * PostgreSQL database, six counterparties (in-process nodes, SQLite), payments both ways. The
 * replicas start one after the other, one is SIGKILLed and started again. At each stage every
 * channel is served by exactly one replica, and the channels end spread within 1 of each other;
 * a channel handed over (4421) reaches its new owner without its peer's health going `down`, at
 * most one hand-over per replica per rebalance interval (short here: 3 s), and every payment
 * acknowledged on either side ends final on both.
 */
import { interval, merge } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import type { HealthEvent } from '../../src/health/index.js';
import type { VaspNode } from '../../src/node.js';
import { CloseCode } from '../../src/protocol/close-codes.js';
import { createNodeProcess, freePort, type TaggedLine } from '../helpers/node-process.js';
import { nodeConfig, startNode, type TestIdentity, testIdentity } from '../helpers/nodes.js';
import { createStoreFixture, HAVE_PG, type StoreFixture } from '../helpers/store.js';

const LEASE = { leaseTtlMs: 3_000, renewMs: 200 };
const REBALANCE_MS = 3_000;
const PEERS = 6;
const WAIT_MS = 60_000;

describe.skipIf(!HAVE_PG)('channels spread over three replicas (PostgreSQL, processes)', () => {
  const cleanups: Array<() => Promise<unknown> | unknown> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('spreads six channels, moves a killed replica’s to the others and gives it its share back', async () => {
    const dbA = await createStoreFixture('postgresql');
    cleanups.push(() => dbA.dispose());
    const a = testIdentity(0x81);
    const ids = ['a1', 'a2', 'a3'];
    const ports = await Promise.all(ids.map(() => freePort()));

    // The counterparties, each dialing one of A's replicas (A's owner dials them too).
    const peers: Array<{ identity: TestIdentity; node: VaspNode; db: StoreFixture }> = [];
    for (let i = 0; i < PEERS; i++) {
      const identity = testIdentity(0x90 + i);
      const db = await createStoreFixture('sqlite');
      cleanups.push(() => db.dispose());
      const url = `ws://127.0.0.1:${ports[i % ids.length]}`;
      const node = await startNode(nodeConfig(identity, db.url, [{ identity: a, url }]));
      cleanups.push(() => node.close());
      peers.push({ identity, node, db });
    }

    const replicas = ids.map((id, i) => {
      const proc = createNodeProcess({
        name: id,
        identity: a,
        peers: peers.map((p) => ({ identity: p.identity, url: p.node.url })),
        database: dbA.url,
        port: ports[i]!,
        replica: { id, ...LEASE },
        env: { PARLEY_REPLICA_REBALANCE_INTERVAL_MS: String(REBALANCE_MS) },
      });
      cleanups.push(() => proc.dispose());
      return proc;
    });
    const lines: TaggedLine[] = [];
    /** Hand-overs by stage and replica. */
    const moves: Record<string, Record<string, number>> = {};
    for (const r of replicas) {
      r.lines$.subscribe((l) => {
        lines.push(l);
        if (l.line.t !== 'lease' || l.line.reason !== 'handed_over') return;
        const m = moves[stage] ?? {};
        moves[stage] = m;
        m[l.node] = (m[l.node] ?? 0) + 1;
      });
    }

    // Health of each peer's channel to A, by stage; payments acknowledged on each side.
    let stage = 'start';
    const downs: Array<{ stage: string; peer: string; cause: string }> = [];
    for (const p of peers) {
      p.node.health$.subscribe((e: HealthEvent) => {
        if (e.kind === 'transition' && e.to === 'down')
          downs.push({ stage, peer: p.node.address, cause: e.cause });
      });
    }
    const acked: Array<{ peer: VaspNode; ref: string }> = [];
    const payments = setInterval(() => {
      for (const p of peers) {
        const { referenceId, queued } = p.node.pay({ to: a.address, amount: 3, currency: 'TIK' });
        void queued.then(
          () => acked.push({ peer: p.node, ref: referenceId }),
          () => undefined,
        );
      }
      // A pays each peer at every replica: only the owner stores it (`queued` lines).
      for (const r of replicas) for (const p of peers) r.request({ op: 'pay', to: p.node.address, count: 1 });
    }, 1_000);
    cleanups.push(() => clearInterval(payments));

    /** Channels per replica from the lease rows that have not lapsed. */
    const distribution = async (): Promise<Record<string, number>> => {
      const rows = await dbA.query<{ owner: string; n: unknown }>(
        `SELECT owner, count(*) AS n FROM channel_lease
          WHERE expires_at > (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint GROUP BY owner ORDER BY owner`,
      );
      return Object.fromEntries(rows.map((r) => [r.owner, Number(r.n)]));
    };
    /** Why the last check failed. */
    let why = '';
    /** Every channel connected, at exactly one running replica, the one its lease row names. */
    const servedOnce = async (): Promise<boolean> => {
      const rows = await dbA.query<{ peer: string; owner: string }>('SELECT peer, owner FROM channel_lease');
      const owner = new Map(rows.map((r) => [r.peer, r.owner]));
      const running = replicas.filter((r) => r.running);
      const statuses = await Promise.all(running.map((r) => r.status(10_000)));
      for (const p of peers) {
        const at = running
          .filter((_, i) => statuses[i]!.connections[p.node.address] != null)
          .map((r) => r.name);
        if (at.length !== 1 || at[0] !== owner.get(p.node.address)) {
          why = `${p.node.address} connected at [${at}], lease of ${owner.get(p.node.address)}`;
          return false;
        }
        if (p.node.channel(a.address).connection === undefined) {
          why = `${p.node.address} has no connection to A`;
          return false;
        }
      }
      return true;
    };
    const settled = async (expected: Record<string, number>): Promise<boolean> =>
      JSON.stringify(await distribution()) === JSON.stringify(expected) && (await servedOnce());
    /** Re-checked at every line of a replica, every event of a peer, and every 250 ms. */
    const waitFor = (what: string, check: () => Promise<boolean>): Promise<void> =>
      new Promise((resolve, reject) => {
        let busy = false;
        const started = Date.now();
        const sub = merge(
          interval(250),
          ...replicas.map((r) => r.lines$),
          ...peers.map((p) => p.node.events$),
        ).subscribe(() => {
          if (busy) return;
          busy = true;
          check()
            .then(async (ok) => {
              busy = false;
              if (ok) {
                sub.unsubscribe();
                resolve();
              } else if (Date.now() - started > WAIT_MS) {
                sub.unsubscribe();
                reject(
                  new Error(
                    `${what}: not reached (${why}); distribution ${JSON.stringify(await distribution())}`,
                  ),
                );
              }
            })
            .catch((err: unknown) => {
              why = String(err);
              busy = false;
            });
        });
      });
    const report: Record<string, Record<string, number>> = {};
    /** Seconds from each stage's start until its distribution was reached. */
    const took: Record<string, number> = {};
    let stageStart = Date.now();
    const reached = async (name: string): Promise<void> => {
      report[name] = await distribution();
      took[name] = Math.round((Date.now() - stageStart) / 100) / 10;
      stageStart = Date.now();
    };

    // Staggered start: a1 alone takes all six, a2 and then a3 get their share by rebalancing.
    await replicas[0]!.start();
    await waitFor('a1 serves all', () => settled({ a1: 6 }));
    await reached('a1 alone');
    // From here on every peer has heard A (the startup grace before that is not a hand-over).
    stage = 'staggered';
    await replicas[1]!.start();
    await waitFor('a1 and a2 share', () => settled({ a1: 3, a2: 3 }));
    await reached('a2 up');
    expect(moves).toEqual({ staggered: { a1: 3 } });
    stage = 'third';
    await replicas[2]!.start();
    await waitFor('three share', () => settled({ a1: 2, a2: 2, a3: 2 }));
    await reached('a3 up');
    expect(moves['third']).toEqual({ a1: 1, a2: 1 });

    // a3 killed: its channels move to a1 and a2 when its leases lapse.
    stage = 'kill';
    await replicas[2]!.kill();
    await waitFor('a3 killed', () => settled({ a1: 3, a2: 3 }));
    await reached('a3 killed');
    const healthy = async (): Promise<boolean> =>
      peers.every((p) => p.node.health.snapshot().find((h) => h.peer === a.address)?.state === 'healthy');
    await waitFor('peers healthy', healthy);

    // a3 back: one channel from each of a1 and a2.
    stage = 'return';
    stageStart = Date.now();
    await replicas[2]!.start();
    await waitFor('a3 back', () => settled({ a1: 2, a2: 2, a3: 2 }));
    await reached('a3 back');
    process.stderr.write(
      `[spread] distribution by stage: ${JSON.stringify(report)}; seconds: ${JSON.stringify(took)}\n`,
    );

    // Hand-overs: each closed with 4421, at most one per replica per interval.
    const handovers = lines.filter((l) => l.line.t === 'lease' && l.line.reason === 'handed_over');
    expect(handovers.length).toBeGreaterThanOrEqual(3 + 2 + 2);
    expect(moves['return']).toEqual({ a1: 1, a2: 1 });
    const disc = lines.filter((l) => l.line.t === 'disc' && l.line.code === CloseCode.NOT_OWNER);
    expect(disc.length).toBeGreaterThanOrEqual(handovers.length);
    expect(downs.filter((d) => d.stage !== 'start' && d.stage !== 'kill')).toEqual([]);

    // Every acknowledged payment final on both sides.
    clearInterval(payments);
    const aQueued = lines.filter((l) => l.line.t === 'queued').map((l) => (l.line as { ref: string }).ref);
    expect(acked.length).toBeGreaterThan(0);
    expect(aQueued.length).toBeGreaterThan(0);
    const finalBoth = async (): Promise<boolean> => {
      const heads = await dbA.query<{ reference_id: string; head_version: string; open: boolean }>(
        'SELECT reference_id, head_version, open FROM object_head',
      );
      const atA = new Map(heads.map((h) => [h.reference_id, h]));
      for (const { peer, ref } of acked) {
        const mine = await peer.store.head(a.address, ref);
        const theirs = atA.get(ref);
        if (!mine || !theirs || mine.open || theirs.open || mine.headVersion !== theirs.head_version)
          return false;
      }
      for (const ref of aQueued) {
        const theirs = atA.get(ref);
        if (!theirs || theirs.open) return false;
        const at = await Promise.all(peers.map((p) => p.node.store.head(a.address, ref)));
        if (!at.some((h) => h && !h.open && h.headVersion === theirs.head_version)) return false;
      }
      return true;
    };
    await waitFor('payments final', finalBoth);
  }, 300_000);
});
