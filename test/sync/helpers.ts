/**
 * Fixtures of the resync tests: two nodes on loopback with SQLite files (or fresh PostgreSQL
 * databases when `PARLEY_TEST_DB=postgresql` and `TEST_PG_URL` are set), that can be stopped,
 * wiped, restored from a snapshot and restarted on the same port; and a business that holds
 * payments open until released.
 */
import { copyFileSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { firstValueFrom } from 'rxjs';
import type { BusinessContext } from '../../src/business/business-context.js';
import { createAutoBusiness, nextPaymentVersion } from '../../src/business/index.js';
import type { CommandOutcome } from '../../src/channel/channel.js';
import { createVaspNode, type NodeDeps, type VaspNode } from '../../src/node.js';
import type { PaymentObject } from '../../src/protocol/index.js';
import { freePort } from '../helpers/node-process.js';
import { nodeConfig, type TestIdentity, tempDir, testIdentity, until } from '../helpers/nodes.js';
import { createStoreFixture, HAVE_PG, type StoreFixture } from '../helpers/store.js';

/** An automatic business whose `readyForSettlement` waits until `release()`: payments stay open. */
export function heldBusiness(): { business: BusinessContext; release(): void } {
  const auto = createAutoBusiness();
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  return {
    business: {
      ...auto,
      async readyForSettlement(payment, ctx) {
        await gate;
        return auto.readyForSettlement(payment, ctx as Parameters<typeof auto.readyForSettlement>[1]);
      },
    },
    release: () => release(),
  };
}

/** Whether the pairs run on fresh PostgreSQL databases instead of SQLite files. */
export const usePg = process.env['PARLEY_TEST_DB'] === 'postgresql' && HAVE_PG;

/** One side of a pair: its identity, database and (while running) node. */
export interface Side {
  identity: TestIdentity;
  node: VaspNode;
  port: number;
  database: string;
}

export interface Pair {
  a: Side;
  b: Side;
  /** (Re)starts a side (A dials B; B only accepts). */
  start(side: Side, deps?: NodeDeps): Promise<VaspNode>;
  stop(side: Side): Promise<void>;
  /** Stops the side and deletes its database: total state loss. */
  wipe(side: Side): Promise<void>;
  /** Copies the side's (stopped) database aside, to restore it later. */
  snapshot(side: Side): Promise<() => Promise<void>>;
  dispose(): Promise<void>;
}

/** Two nodes, A (0x41…, dials) and B (0x42…, listens); B is the protocol server of the pair. */
export async function startPair(deps: { a?: NodeDeps; b?: NodeDeps } = {}): Promise<Pair> {
  const dir = tempDir();
  const fixtures: StoreFixture[] = [];
  async function database(name: string): Promise<string> {
    if (!usePg) return `file:${join(dir.path, `${name}.db`)}`;
    const f = await createStoreFixture('postgresql');
    fixtures.push(f);
    return f.url;
  }
  const a: Side = {
    identity: testIdentity(0x41),
    node: undefined as never,
    port: 0,
    database: await database('a'),
  };
  const b: Side = {
    identity: testIdentity(0x42),
    node: undefined as never,
    port: 0,
    database: await database('b'),
  };
  const running = new Set<Side>();

  async function start(side: Side, sideDeps: NodeDeps = {}): Promise<VaspNode> {
    const other = side === a ? b : a;
    // Restarts reuse the port: see `freePort` for why it is not the system's pick.
    if (side.port === 0) side.port = await freePort();
    const config =
      side === a
        ? nodeConfig(
            a.identity,
            a.database,
            [{ identity: b.identity, url: `ws://127.0.0.1:${b.port}/parley/v1` }],
            a.port,
          )
        : nodeConfig(b.identity, b.database, [{ identity: a.identity }], b.port);
    void other;
    side.node = await createVaspNode(config, sideDeps);
    side.port = side.node.port;
    running.add(side);
    return side.node;
  }
  async function stop(side: Side): Promise<void> {
    if (!running.delete(side)) return;
    await side.node.close();
  }
  async function wipe(side: Side): Promise<void> {
    await stop(side);
    const fixture = fixtures.find((f) => f.url === side.database);
    if (fixture) {
      await fixture.wipe();
      return;
    }
    const path = side.database.slice('file:'.length);
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${path}${suffix}`, { force: true });
  }
  async function snapshot(side: Side): Promise<() => Promise<void>> {
    // PostgreSQL: a copy made with CREATE DATABASE … TEMPLATE (test/helpers/store.ts).
    const fixture = fixtures.find((f) => f.url === side.database);
    if (fixture) return fixture.snapshot();
    const path = side.database.slice('file:'.length);
    const copy = `${path}.snapshot`;
    for (const suffix of ['', '-wal', '-shm']) {
      if (existsSync(`${path}${suffix}`)) copyFileSync(`${path}${suffix}`, `${copy}${suffix}`);
      else rmSync(`${copy}${suffix}`, { force: true });
    }
    return async () => {
      for (const suffix of ['', '-wal', '-shm']) {
        rmSync(`${path}${suffix}`, { force: true });
        if (existsSync(`${copy}${suffix}`)) copyFileSync(`${copy}${suffix}`, `${path}${suffix}`);
      }
    };
  }
  // B listens first, so A knows its port.
  await start(b, deps.b);
  await start(a, deps.a);
  return {
    a,
    b,
    start,
    stop,
    wipe,
    snapshot,
    async dispose() {
      for (const side of [...running]) await stop(side);
      for (const f of fixtures) await f.dispose();
      dir.dispose();
    },
  };
}

/** Whether every open object of either side has the same head on both. */
export async function headsEqual(x: VaspNode, y: VaspNode): Promise<boolean> {
  const list = async (n: VaspNode, peer: string): Promise<string[]> => {
    const out: string[] = [];
    let after: string | null = null;
    for (;;) {
      const page = await n.store.openObjects(peer, after, 1000);
      for (const h of page) out.push(`${h.referenceId}@${h.headVersion}`);
      if (page.length < 1000) return out;
      after = page[page.length - 1]!.referenceId;
    }
  };
  const [l, r] = await Promise.all([list(x, y.address), list(y, x.address)]);
  return l.length === r.length && l.every((v, i) => v === r[i]);
}

/** Waits until `check` holds, re-checked on every event of the nodes. */
export function waitFor(nodes: VaspNode[], check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  return until(nodes, check, { timeoutMs });
}

/**
 * Makes `node`'s next version of `referenceId` with the automatic business (as if its
 * business layer reacted) and sends it reading the head `node` holds. Resolves with the outcome.
 */
export async function step(node: VaspNode, peer: string, referenceId: string): Promise<CommandOutcome> {
  const versions = await node.store.versions(peer, referenceId);
  const head = versions.at(-1)!;
  const payment = await nextPaymentVersion({
    payment: JSON.parse(head.payment) as PaymentObject,
    me: node.address,
    business: createAutoBusiness(),
  });
  if (!payment) throw new Error(`no next version of ${referenceId} from ${node.address}`);
  return firstValueFrom(node.channel(peer).send({ payment, readVersion: head.version }));
}

/** The head version of an object on `node`'s channel with `peer`. */
export async function headOf(node: VaspNode, peer: string, referenceId: string): Promise<string | undefined> {
  return (await node.store.head(peer, referenceId))?.headVersion;
}
