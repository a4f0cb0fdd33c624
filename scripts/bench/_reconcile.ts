/**
 * The reconciliation phase of a resync run (PROTOCOL.md §7.3), by method: bytes (both ways) and
 * round trips until the leader knows the differences, for n open objects and d differing ones
 * (half held by one side only, alternately by each, half at another head on the follower), and
 * at the largest n with d = 100 the CPU time of both sides and the time to build the coded
 * symbols from the store (`sketch_build_ms`).
 *
 * The sets are written straight into the store's index table (`object_head`) with SQL, then the
 * stores are opened as a node opens them, each side's open-objects digest is built from the
 * store page by page (what a channel core does at start-up: `loadSummary`), and one run goes
 * through `createChannelSync` over an in-memory link whose frames are signed, verified and
 * counted as on a socket. Only the frames of the reconciliation are counted (begin, list pages,
 * coded symbols, resolved keys); the history transfer that follows is not (the objects have no
 * signed log here: the repair finds nothing to move).
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import Database from 'better-sqlite3';
import {
  createOpenObjectsDigest,
  type OpenObjectsDigest,
  openObjectTerm,
} from '../../src/protocol/heartbeat-frames.js';
import {
  encodeAddress,
  generatePrivateKey,
  isProtocolServer,
  type PrivateKey,
} from '../../src/protocol/index.js';
import { inThreadVerifier } from '../../src/protocol/verify-pool.js';
import { openStore } from '../../src/store/open-store.js';
import { createSyncRepository } from '../../src/store/sync-repository.js';
import type { ParleyStore } from '../../src/store/types.js';
import { type ChannelSync, createChannelSync, type SyncLink } from '../../src/sync/resync.js';
import { memoryLink, peekFrame, serialExclusive } from '../../test/sync/in-memory.js';

type Report = (metric: string, value: number, unit: string, params: Record<string, unknown>) => void;

interface Party {
  address: string;
  key: PrivateKey;
}

const RECONCILE_TYPES = new Set([
  'SyncBegin',
  'SyncBeginAck',
  'SyncListRequest',
  'SyncList',
  'SyncSketchRequest',
  'SyncSketch',
  'SyncResolve',
  'SyncResolved',
]);
const REQUESTS = new Set(['SyncBegin', 'SyncListRequest', 'SyncSketchRequest', 'SyncResolve']);

const refOf = (i: number): string => `ref-${i.toString().padStart(8, '0')}`;
const headOf = (): string => randomBytes(32).toString('hex');

/** A fresh store file at `path` (its schema), then `rows` written straight into `object_head`. */
async function writeStore(
  path: string,
  peer: string,
  rows: Iterable<[string, string]>,
  open: 0 | 1 = 1,
): Promise<void> {
  const store = await openStore({ url: `file:${path}` });
  await store.close();
  const db = new Database(path);
  try {
    const insert = db.prepare(
      'INSERT INTO object_head (peer, reference_id, head_version, open, version_count, updated_at) VALUES (?, ?, ?, ?, 1, ?)',
    );
    const now = Date.now();
    db.transaction(() => {
      for (const [ref, head] of rows) insert.run(peer, ref, head, open, now);
    })();
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}

/** B's store: a copy of A's under B's channel key, with `d` differences. */
function deriveB(pathA: string, pathB: string, peerB: string, n: number, d: number, open: 0 | 1 = 1): void {
  for (const suffix of ['', '-wal', '-shm']) rmSync(`${pathB}${suffix}`, { force: true });
  copyFileSync(pathA, pathB);
  const db = new Database(pathB);
  try {
    const changed = Math.floor(d / 2);
    const oneSided = d - changed;
    const now = Date.now();
    db.transaction(() => {
      db.prepare('UPDATE object_head SET peer = ?').run(peerB);
      const update = db.prepare('UPDATE object_head SET head_version = ? WHERE reference_id = ?');
      const remove = db.prepare('DELETE FROM object_head WHERE reference_id = ?');
      const insert = db.prepare(
        'INSERT INTO object_head (peer, reference_id, head_version, open, version_count, updated_at) VALUES (?, ?, ?, ?, 1, ?)',
      );
      // Spread over the set: every (n / d)-th object.
      const step = Math.max(1, Math.floor(n / Math.max(1, d)));
      for (let k = 0; k < changed; k++) update.run(headOf(), refOf(k * step));
      for (let k = 0; k < oneSided; k++) {
        if (k % 2 === 0) insert.run(peerB, refOf(n + k), headOf(), open, now);
        else remove.run(refOf(k * step + 1));
      }
    })();
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}

/** The digest a channel core builds at start-up: its open objects, read a page at a time. */
async function buildDigest(
  store: ParleyStore,
  peer: string,
): Promise<{ digest: OpenObjectsDigest; ms: number }> {
  const started = performance.now();
  const digest = createOpenObjectsDigest();
  const repo = createSyncRepository(store);
  let after: string | null = null;
  for (;;) {
    const page = await repo.openObjects(peer, after, 1000);
    for (const h of page) digest.add(h.referenceId, h.headVersion);
    if (page.length < 1000) break;
    after = page[page.length - 1]!.referenceId;
  }
  return { digest, ms: performance.now() - started };
}

interface Counted {
  bytes: number;
  roundTrips: number;
  cpuMs: number;
  method: string;
}

/**
 * A full collection before a measured run, and the time for its sweeping to end: building two
 * sets of a million objects leaves garbage that a node pays for at start-up, not during a run.
 */
async function collectGarbage(): Promise<void> {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
  // The collector's threads sweep on after it returns, and the process's CPU time counts them.
  await new Promise((resolve) => setTimeout(resolve, 2000));
}

/** One run led by A; the reconciliation frames of that run counted. */
/** Two syncs joined by in-memory links that speak `methods`, every frame counted on its way. */
function linkPair(sa: ChannelSync, sb: ChannelSync, count: (frame: string) => void, methods: string[]): void {
  const link = (to: ChannelSync, back: () => SyncLink): SyncLink => ({
    ...memoryLink((f) => {
      count(f);
      to.handleFrame(f, back());
    }, setImmediate),
    peerSyncMethods: methods,
  });
  const la: SyncLink = link(sb, () => lb);
  const lb: SyncLink = link(sa, () => la);
  sa.attach(la);
  sb.attach(lb);
}

async function runOnce(
  sides: Array<{ me: Party; peer: Party; store: ParleyStore; digest: OpenObjectsDigest }>,
  method: 'riblt' | 'list',
): Promise<Counted> {
  await collectGarbage();
  let runId: string | undefined;
  const counted = { bytes: 0, roundTrips: 0, cpuMs: 0, method };
  const cpu = process.cpuUsage();
  let reconciled = false;
  const count = (frame: string): void => {
    const f = peekFrame(frame) as { _ObjectType?: string; run_id?: string };
    if (f._ObjectType === 'SyncBegin' && runId === undefined) runId = f.run_id;
    if (f.run_id !== runId || !f._ObjectType) return;
    if (RECONCILE_TYPES.has(f._ObjectType)) {
      counted.bytes += frame.length;
      if (REQUESTS.has(f._ObjectType)) counted.roundTrips++;
    } else if (!reconciled) {
      reconciled = true;
      const used = process.cpuUsage(cpu);
      counted.cpuMs = (used.user + used.system) / 1000;
    }
  };
  const syncs: ChannelSync[] = sides.map((side) =>
    createChannelSync(
      { methods: [method] },
      {
        me: side.me.address,
        peer: side.peer.address,
        myKey: side.me.key,
        peerKey: side.peer.key.publicKey,
        isServer: isProtocolServer(side.me.address, side.peer.address),
        store: createSyncRepository(side.store),
        summary: async () => side.digest.summary(),
        exclusive: serialExclusive(),
        isPending: () => false,
        dropPending: () => false,
        verifier: inThreadVerifier,
      },
    ),
  );
  const [sa, sb] = syncs as [ChannelSync, ChannelSync];
  linkPair(sa, sb, count, ['list', 'riblt']);
  try {
    await sa.run('bench');
  } catch {
    // the repair may fail on objects without a signed log; the reconciliation is what is counted
  }
  if (!reconciled) {
    const used = process.cpuUsage(cpu);
    counted.cpuMs = (used.user + used.system) / 1000;
  }
  await Promise.all(syncs.map((s) => s.close()));
  return counted;
}

/**
 * The digest's upkeep per commit that moves a head (remove the old pair, add the new one), with
 * the coded symbols and the reference-id map, beside the digest alone (what it cost before the
 * symbols): to compare with the `store` benchmark's CPU time per commit.
 */
export function benchUpkeep(report: Report, n: number): void {
  const heads = Array.from({ length: n }, headOf);
  const moves = Array.from({ length: n }, headOf);
  const MOD = 1n << 256n;
  for (let round = 0; round < 2; round++) {
    const digest = createOpenObjectsDigest();
    for (let i = 0; i < n; i++) digest.add(refOf(i), heads[i]!);
    let started = performance.now();
    for (let i = 0; i < n; i++) {
      digest.remove(refOf(i), heads[i]!);
      digest.add(refOf(i), moves[i]!);
    }
    const withSymbols = ((performance.now() - started) * 1000) / n;
    // What the digest did before it kept the symbols: the two terms, summed mod 2^256.
    let sum = 0n;
    started = performance.now();
    for (let i = 0; i < n; i++) {
      sum = (sum - openObjectTerm(refOf(i), heads[i]!) + MOD) % MOD;
      sum = (sum + openObjectTerm(refOf(i), moves[i]!)) % MOD;
    }
    const termOnly = ((performance.now() - started) * 1000) / n;
    // The first round warms the code up; the second is reported.
    if (round === 1) {
      report('digest_upkeep_us_per_commit', withSymbols, 'us', { n, with: 'symbols' });
      report('digest_upkeep_us_per_commit', termOnly, 'us', { n, with: 'digest alone (before)' });
    }
  }
}

/** Every (n, d) case; `listMaxN`: the largest n also run with `list`, to compare. */
export async function benchReconcile(
  report: Report,
  progress: (text: string) => void,
  dir: string,
  sizes: readonly number[],
  ds: readonly number[],
  listMaxN: number,
): Promise<void> {
  const party = (byte: number): Party => ({
    address: encodeAddress({ hrp: 'lbr', onchain: new Uint8Array(16).fill(byte) }),
    key: generatePrivateKey(),
  });
  const a = party(0x51);
  const b = party(0x52);
  for (const n of sizes) {
    const pathA = join(dir, `reconcile-a-${n}.db`);
    const pathB = join(dir, `reconcile-b-${n}.db`);
    progress(`reconcile: writing ${n} open objects`);
    await writeStore(
      pathA,
      b.address,
      (function* () {
        for (let i = 0; i < n; i++) yield [refOf(i), headOf()] as [string, string];
      })(),
    );
    for (const d of ds) {
      deriveB(pathA, pathB, a.address, n, d);
      const [storeA, storeB] = await Promise.all([
        openStore({ url: `file:${pathA}` }),
        openStore({ url: `file:${pathB}` }),
      ]);
      try {
        const builtA = await buildDigest(storeA, b.address);
        const builtB = await buildDigest(storeB, a.address);
        const sides = [
          { me: a, peer: b, store: storeA, digest: builtA.digest },
          { me: b, peer: a, store: storeB, digest: builtB.digest },
        ];
        for (const method of n <= listMaxN ? (['riblt', 'list'] as const) : (['riblt'] as const)) {
          const c = await runOnce(sides, method);
          const params = { n, d, method };
          progress(
            `reconcile n=${n} d=${d} ${method}: ${c.bytes} B, ${c.roundTrips} round trips, ${Math.round(c.cpuMs)} ms CPU`,
          );
          report('reconcile_bytes', c.bytes, 'B', params);
          report('reconcile_round_trips', c.roundTrips, '1', params);
          if (d === 100 || method === 'riblt') report('reconcile_cpu_ms', c.cpuMs, 'ms', params);
        }
        if (d === 100) report('sketch_build_ms', builtA.ms, 'ms', { n, d });
      } finally {
        await Promise.all([storeA.close(), storeB.close()]);
      }
    }
    for (const p of [pathA, pathB])
      for (const suffix of ['', '-wal', '-shm']) rmSync(`${p}${suffix}`, { force: true });
  }
}

/**
 * An operator's restore of closed objects (PROTOCOL.md §7.6) led by A: the first restore run's
 * reconciliation frames counted, by coded symbols (`riblt`: the peer names `restore-riblt`) or by
 * list pages (one run over the whole set). The objects have no signed log: the repair that
 * follows fails, and only the reconciliation is counted.
 */
async function runClosedOnce(
  sides: Array<{ me: Party; peer: Party; store: ParleyStore }>,
  method: 'riblt' | 'list',
  n: number,
): Promise<Counted> {
  let runId: string | undefined;
  const counted = { bytes: 0, roundTrips: 0, cpuMs: 0, method };
  const cpu = process.cpuUsage();
  const count = (frame: string): void => {
    const f = peekFrame(frame) as { _ObjectType?: string; run_id?: string };
    if (f._ObjectType === 'SyncBegin' && runId === undefined) runId = f.run_id;
    if (f.run_id !== runId || !f._ObjectType) return;
    if (RECONCILE_TYPES.has(f._ObjectType)) {
      counted.bytes += frame.length;
      if (REQUESTS.has(f._ObjectType)) counted.roundTrips++;
    }
  };
  const syncs: ChannelSync[] = sides.map((side) =>
    createChannelSync(
      { restoreRunObjects: n * 2, restoreObjectsPerS: 1e9 },
      {
        me: side.me.address,
        peer: side.peer.address,
        myKey: side.me.key,
        peerKey: side.peer.key.publicKey,
        isServer: isProtocolServer(side.me.address, side.peer.address),
        store: createSyncRepository(side.store),
        exclusive: serialExclusive(),
        isPending: () => false,
        dropPending: () => false,
        verifier: inThreadVerifier,
      },
    ),
  );
  const [sa, sb] = syncs as [ChannelSync, ChannelSync];
  linkPair(sa, sb, count, method === 'riblt' ? ['list', 'restore', 'restore-riblt'] : ['list', 'restore']);
  try {
    await sa.restore('on_demand');
  } catch {
    // the repair fails on objects without a signed log; the reconciliation is what is counted
  }
  const used = process.cpuUsage(cpu);
  counted.cpuMs = (used.user + used.system) / 1000;
  await Promise.all(syncs.map((s) => s.close()));
  return counted;
}

/** `reconcile_bytes` / `reconcile_round_trips` of an on-demand closed-object restore (`params.scope: closed`). */
export async function benchClosedReconcile(
  report: Report,
  progress: (text: string) => void,
  dir: string,
  n: number,
  d: number,
): Promise<void> {
  const party = (byte: number): Party => ({
    address: encodeAddress({ hrp: 'lbr', onchain: new Uint8Array(16).fill(byte) }),
    key: generatePrivateKey(),
  });
  const a = party(0x53);
  const b = party(0x54);
  const pathA = join(dir, `closed-a-${n}.db`);
  const pathB = join(dir, `closed-b-${n}.db`);
  progress(`reconcile (closed): writing ${n} closed objects`);
  await writeStore(
    pathA,
    b.address,
    (function* () {
      for (let i = 0; i < n; i++) yield [refOf(i), headOf()] as [string, string];
    })(),
    0,
  );
  deriveB(pathA, pathB, a.address, n, d, 0);
  const [storeA, storeB] = await Promise.all([
    openStore({ url: `file:${pathA}` }),
    openStore({ url: `file:${pathB}` }),
  ]);
  try {
    const sides = [
      { me: a, peer: b, store: storeA },
      { me: b, peer: a, store: storeB },
    ];
    for (const method of ['riblt', 'list'] as const) {
      const c = await runClosedOnce(sides, method, n);
      const params = { n, d, method, scope: 'closed' };
      progress(`reconcile (closed) n=${n} d=${d} ${method}: ${c.bytes} B, ${c.roundTrips} round trips`);
      report('reconcile_bytes', c.bytes, 'B', params);
      report('reconcile_round_trips', c.roundTrips, '1', params);
    }
  } finally {
    await Promise.all([storeA.close(), storeB.close()]);
    for (const p of [pathA, pathB])
      for (const suffix of ['', '-wal', '-shm']) rmSync(`${p}${suffix}`, { force: true });
  }
}
