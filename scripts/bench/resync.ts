/**
 * Resync benchmark: two stores (SQLite files) with `n` open objects on the full side and `d`
 * of them missing on the other; one resync run led by the full side over an in-memory link
 * (frames signed, verified and counted exactly as on a socket). Reports seconds, bytes, round
 * trips, rebuild throughput (objects/s) and signatures verified per second, plus the raw
 * history-verifier throughput (WebCrypto on the libuv pool, and the node's pool of verifying
 * threads), the signatures alone on that pool, and the store alone writing a rebuild.
 *
 * The full rebuild (d = 100 %) also runs between two node processes over real ws on 127.0.0.1
 * (`mode: two_processes`): the product's path, with the channel, the transport and the verifying
 * threads of the rebuilt node. CPU time per rebuilt object (`rebuild_cpu_ms_per_object`) is the
 * figure to compare on a shared machine; wall-clock rates carry the load average (`load1`).
 *
 * First, the reconciliation phase alone by method (`reconcile_*`, `sketch_build_ms`: `_reconcile.ts`).
 *
 * Run: `npm run bench -- resync` (or `npx tsx scripts/bench/resync.ts`).
 * Env: `PARLEY_BENCH_RESYNC_N` (default `10000,100000`), `PARLEY_BENCH_RESYNC_STEPS` (commands per
 * object for n ≤ 10,000; default 4, the longest chain of a payment that is still open; larger n
 * use 1 command, a create, to keep building the dataset within the time budget),
 * `PARLEY_BENCH_RESYNC_FULL_MAX_N` (default 10000: the 100 % case is skipped above it),
 * `PARLEY_BENCH_RESYNC_D` (the d cases to run, e.g. `100%` or `0,10,1%`; default all),
 * `PARLEY_BENCH_RESYNC_PROCESSES=0` (skip the two-process rebuild), `PARLEY_BENCH_RESYNC_IN_PROCESS=0`
 * (only the two-process rebuild). Profile the two node
 * processes with `PARLEY_CHILD_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR"`.
 *
 * Datasets are built fast: one payment chain is signed as a template, and each object gets a
 * fresh reference id and cids by rewriting the template text before signing (every signature
 * is still real); rows go straight through the store's `commit()`. The other side's database is
 * a file copy with the channel key and directions swapped, minus the missing objects.
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { isOpen } from '../../src/objects/index.js';
import type { ObjectHistory } from '../../src/protocol/sync-frames.js';
import { createVerifyPool, inThreadVerifier, type VerifyPool } from '../../src/protocol/verify-pool.js';
import { openStore } from '../../src/store/open-store.js';
import { createSyncRepository } from '../../src/store/sync-repository.js';
import { commitItemsOf, verifyHistories } from '../../src/sync/verify-history.js';
import {
  type ChildLine,
  createNodeProcess,
  type NodeProcess,
  waitForLine,
} from '../../test/helpers/node-process.js';
import { benchClosedReconcile, benchReconcile, benchUpkeep } from './_reconcile.js';
import { chainTemplate, type Party, party, signChain, wireSyncPair } from './_signed-chains.js';

/**
 * Largest n whose 100 %-missing case runs (a full rebuild of 100,000 objects takes minutes on a
 * 2-core box; its throughput is the n = 10,000 figure's). Env `PARLEY_BENCH_RESYNC_FULL_MAX_N`.
 */
const FULL_REBUILD_MAX_N = Number(process.env['PARLEY_BENCH_RESYNC_FULL_MAX_N'] ?? 10_000);

/** The full rebuild also between two node processes over ws (env `PARLEY_BENCH_RESYNC_PROCESSES=0` skips it). */
const TWO_PROCESSES = process.env['PARLEY_BENCH_RESYNC_PROCESSES'] !== '0';

/** The in-process cases (env `PARLEY_BENCH_RESYNC_IN_PROCESS=0` skips them). */
const IN_PROCESS = process.env['PARLEY_BENCH_RESYNC_IN_PROCESS'] !== '0';

/** Which d cases run (comma-separated labels: `0,10,1%,100%`). Env `PARLEY_BENCH_RESYNC_D`; default all. */
const CASES = process.env['PARLEY_BENCH_RESYNC_D']?.split(',') ?? null;

const machine = { node: process.version, cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length };
const progress = (text: string): void => void process.stderr.write(`${text}\n`);

/** One JSON line; params carry the machine and its load (on a shared machine, wall-clock rates say more about the neighbours). */
function report(metric: string, value: number, unit: string, params: Record<string, unknown>): void {
  const load1 = Math.round((loadavg()[0] ?? 0) * 100) / 100;
  process.stdout.write(
    `${JSON.stringify({ bench: 'resync', metric, value: value < 10 ? Math.round(value * 1000) / 1000 : Math.round(value * 100) / 100, unit, params: { ...params, ...machine, load1 } })}\n`,
  );
}

/** A copy of A's database as B's: channel key and directions swapped, `missing` objects removed. */
function deriveB(pathA: string, pathB: string, a: Party, missing: 'all' | number): void {
  for (const suffix of ['', '-wal', '-shm']) rmSync(`${pathB}${suffix}`, { force: true });
  copyFileSync(pathA, pathB);
  const db = new Database(pathB);
  try {
    db.pragma('journal_mode = WAL');
    db.transaction(() => {
      db.prepare('UPDATE identity SET epoch = ?').run(randomBytes(16).toString('hex'));
      db.prepare('UPDATE peer SET address = ?').run(a.address);
      db.prepare(
        "UPDATE command_log SET peer = ?, direction = CASE direction WHEN 'outbound' THEN 'inbound' ELSE 'outbound' END",
      ).run(a.address);
      db.prepare('UPDATE object_version SET peer = ?').run(a.address);
      db.prepare('UPDATE object_head SET peer = ?').run(a.address);
      db.exec('DELETE FROM resync_run');
      if (missing === 'all') {
        db.exec('DELETE FROM object_version; DELETE FROM command_log; DELETE FROM object_head;');
      } else if (missing > 0) {
        db.exec(
          `CREATE TEMP TABLE gone AS SELECT reference_id FROM object_head ORDER BY random() LIMIT ${missing}`,
        );
        db.exec(
          'DELETE FROM object_version WHERE reference_id IN (SELECT reference_id FROM gone); ' +
            'DELETE FROM command_log WHERE reference_id IN (SELECT reference_id FROM gone); ' +
            'DELETE FROM object_head WHERE reference_id IN (SELECT reference_id FROM gone);',
        );
      }
    })();
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}

/** `pool_signatures_per_s` of the current dataset, measured in this run before its rebuilds. */
let poolSignaturesPerS = Number.NaN;
/** CPU time per signature of that measure (all threads of this process). */
let poolCpuMsPerSignature = Number.NaN;

/**
 * `rebuild_cpu_ratio_to_pool`: the pool's CPU per signature against a rebuild's CPU per
 * signature (both sides): steadier than the rates when other work shares the cores.
 */
function reportCpuRatioToPool(
  cpuMsPerObject: number,
  sigsPerObject: number,
  params: Record<string, unknown>,
): void {
  report('rebuild_cpu_ratio_to_pool', poolCpuMsPerSignature / (cpuMsPerObject / sigsPerObject), 'ratio', {
    ...params,
    rebuild_cpu_ms_per_signature: Math.round((cpuMsPerObject / sigsPerObject) * 1000) / 1000,
    pool_cpu_ms_per_signature: Math.round(poolCpuMsPerSignature * 1000) / 1000,
  });
}

/** `rebuild_ratio_to_pool`: a rebuild's signatures verified per second against the pool alone. */
function reportRatioToPool(signaturesPerS: number, params: Record<string, unknown>): void {
  report('rebuild_ratio_to_pool', signaturesPerS / poolSignaturesPerS, 'ratio', {
    ...params,
    rebuild_signatures_verified_per_s: Math.round(signaturesPerS),
    pool_signatures_per_s: Math.round(poolSignaturesPerS),
  });
}

async function benchN(n: number, steps: number, dir: string): Promise<void> {
  const a = party(0x41);
  const b = party(0x42);
  await pool?.close();
  pool = createVerifyPool({ signers: [b.key] });
  const pathA = join(dir, `a-${n}.db`);
  const pathB = join(dir, `b-${n}.db`);
  const t = await chainTemplate(a, b, { steps, close: false });
  const sigsPerObject = t.steps.length * 2;

  // Build A's side.
  const built0 = performance.now();
  let storeA = await openStore({ url: `file:${pathA}` });
  await storeA.upsertPeer({ address: b.address, publicKeyHex: b.key.publicKey.hex });
  const chunk = 500;
  for (let i = 0; i < n; i += chunk) {
    const objects = await Promise.all(
      Array.from({ length: Math.min(chunk, n - i) }, () => signChain(t, a, b)),
    );
    await storeA.commit(objects.flat());
    if ((i / chunk) % 20 === 0) progress(`  built ${i + objects.length}/${n} objects`);
  }
  const buildS = (performance.now() - built0) / 1000;
  report('dataset_build_objects_per_s', n / buildS, '1/s', {
    n,
    steps: t.steps.length,
    signatures: n * sigsPerObject,
  });
  await storeA.close();

  // The verifier alone, many histories in flight.
  {
    storeA = await openStore({ url: `file:${pathA}` });
    const repo = createSyncRepository(storeA);
    const page = await storeA.openObjects(b.address, null, Math.min(n, 2000));
    const histories: ObjectHistory[] = [];
    for (const h of page) {
      const log = await repo.history(b.address, h.referenceId);
      histories.push({
        reference_id: h.referenceId,
        kind: 'history',
        base: null,
        commands: log.map((r) => ({
          proposer: r.direction === 'outbound' ? a.address : b.address,
          request: r.requestJws,
          response: r.responseJws,
        })),
      });
    }
    const parties = { me: b.address, peer: a.address, myKey: b.key.publicKey, peerKey: a.key.publicKey };
    for (const [name, verifier] of [
      ['webcrypto', inThreadVerifier],
      ['pool', pool],
    ] as const) {
      const t0 = performance.now();
      const verified = await verifyHistories(
        histories.map((history) => ({ history })),
        parties,
        verifier,
      );
      const s = (performance.now() - t0) / 1000;
      if (verified.some((v) => v instanceof Error)) throw new Error('a history did not verify');
      report('verify_signatures_per_s', (histories.length * sigsPerObject) / s, '1/s', {
        verifier: name,
        histories: histories.length,
        steps: t.steps.length,
        in_flight: histories.length * sigsPerObject,
      });
    }
    // The signatures alone on the pool (no decoding, no chain checks): the crypto ceiling.
    {
      const checks = histories.flatMap((h) =>
        h.commands.flatMap((c) => {
          const [requestKey, responseKey] =
            c.proposer === a.address
              ? [a.key.publicKey, b.key.publicKey]
              : [b.key.publicKey, a.key.publicKey];
          return [
            { jws: c.request, key: requestKey },
            { jws: c.response, key: responseKey },
          ];
        }),
      );
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      await pool.verifyMany(checks);
      poolSignaturesPerS = checks.length / ((performance.now() - t0) / 1000);
      const cpu = process.cpuUsage(cpu0);
      poolCpuMsPerSignature = (cpu.user + cpu.system) / 1000 / checks.length;
      report('pool_cpu_ms_per_signature', poolCpuMsPerSignature, 'ms', { threads: pool.threads });
      report('pool_signatures_per_s', poolSignaturesPerS, '1/s', {
        threads: pool.threads,
        signatures: checks.length,
      });
    }
    // The store alone: the verified histories written into an empty store the way a rebuild
    // writes them (one commit per 200 objects): the ceiling the store puts on a rebuild.
    {
      const verified = await verifyHistories(
        histories.map((history) => ({ history })),
        parties,
        pool,
      );
      const items = verified.map((v) => {
        if (v instanceof Error) throw v;
        return commitItemsOf(v, isOpen);
      });
      const path = join(dir, `store-${n}.db`);
      const empty = await openStore({ url: `file:${path}` });
      await empty.upsertPeer({ address: a.address, publicKeyHex: a.key.publicKey.hex });
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      for (let i = 0; i < items.length; i += 200) await empty.commit(items.slice(i, i + 200).flat());
      const s = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      report('store_rebuild_commit_objects_per_s', items.length / s, '1/s', {
        objects: items.length,
        rows_per_object: sigsPerObject + 1,
        cpu_ms_per_object: (cpu.user + cpu.system) / 1000 / items.length,
      });
      await empty.close();
      for (const suffix of ['', '-wal', '-shm']) rmSync(`${path}${suffix}`, { force: true });
    }
    await storeA.close();
  }

  if (n <= FULL_REBUILD_MAX_N && (CASES === null || CASES.includes('100%')) && TWO_PROCESSES) {
    await benchTwoProcesses(n, pathA, a, b, sigsPerObject, dir);
  }

  const all: Array<{ label: string; missing: 'all' | number }> = [
    { label: '0', missing: 0 },
    { label: '10', missing: 10 },
    { label: '1%', missing: Math.round(n / 100) },
    { label: '100%', missing: 'all' },
  ];
  const cases = all.filter(
    (c) =>
      IN_PROCESS &&
      (c.missing !== 'all' || n <= FULL_REBUILD_MAX_N) &&
      (CASES === null || CASES.includes(c.label)),
  );
  for (const c of cases) {
    deriveB(pathA, pathB, a, c.missing);
    storeA = await openStore({ url: `file:${pathA}` });
    const storeB = await openStore({ url: `file:${pathB}` });
    await storeB.upsertPeer({ address: a.address, publicKeyHex: a.key.publicKey.hex });
    const { sa, sb } = wireSyncPair(
      { me: a, peer: b, store: storeA },
      { me: b, peer: a, store: storeB },
      pool,
    );
    progress(`  n=${n} d=${c.label}: resync…`);
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const run = await sa.run('bench');
    const s = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const rebuilt = await storeB.countOpenObjects(a.address);
    if (rebuilt !== n) throw new Error(`n=${n} d=${c.label}: B holds ${rebuilt} open objects after the run`);
    const params = {
      n,
      d: c.label,
      missing: c.missing === 'all' ? n : c.missing,
      steps: t.steps.length,
      outcome: run.outcome,
    };
    report('seconds', s, 's', params);
    report('bytes', run.bytesSent + run.bytesReceived, 'B', params);
    report('round_trips', run.rounds, '1', params);
    // Throughput only where rebuilding dominates (with few differences the list exchange does).
    if (c.missing === 'all') {
      report('rebuild_objects_per_s', run.objectsSent / s, '1/s', params);
      report('rebuild_signatures_verified_per_s', (run.objectsSent * sigsPerObject) / s, '1/s', params);
      reportRatioToPool((run.objectsSent * sigsPerObject) / s, params);
      // Both sides and the verifying threads: how many of the machine's cores the run kept busy,
      // and the CPU time per rebuilt object (robust on a shared machine, where wall clock is not).
      const cpuMs = (cpu.user + cpu.system) / 1000;
      report('rebuild_cpu_cores_busy', cpuMs / 1000 / s, 'cores', params);
      report('rebuild_cpu_ms_per_object', cpuMs / run.objectsSent, 'ms', params);
      reportCpuRatioToPool(cpuMs / run.objectsSent, sigsPerObject, params);
    }
    await sa.close();
    await sb.close();
    await storeA.close();
    await storeB.close();
  }
}

/**
 * The full rebuild as two node processes (`test/helpers/node-child.ts`, inert businesses) over
 * real ws on 127.0.0.1: A holds the dataset, B starts on an empty database; A dials B and its
 * run on connect pushes everything; B verifies on its pool of threads. Timed from A's `ready`
 * to B's run on record, polled every 50 ms from a read-only connection to B's file.
 */
async function benchTwoProcesses(
  n: number,
  pathA: string,
  a: Party,
  b: Party,
  sigsPerObject: number,
  dir: string,
): Promise<void> {
  const id = (p: Party) => ({
    address: p.address,
    seedHex: p.key.seedHex,
    publicKeyHex: p.key.publicKey.hex,
  });
  const pathB = join(dir, `b-proc-${n}.db`);
  for (const suffix of ['', '-wal', '-shm']) rmSync(`${pathB}${suffix}`, { force: true });
  const procB = createNodeProcess({
    name: 'B',
    identity: id(b),
    peers: [{ identity: id(a) }],
    database: `file:${pathB}`,
    business: 'inert',
    quiet: true,
  });
  let procA: NodeProcess | undefined;
  const cpuOf = async (proc: NodeProcess, tag: string): Promise<number> => {
    const answer = waitForLine(
      proc.lines$,
      (line): line is Extract<ChildLine, { t: 'cpu' }> => line.t === 'cpu' && line.id === tag,
      30_000,
      `cpu of ${proc.name}`,
    );
    proc.request({ op: 'cpu', id: tag });
    return (await answer).ms;
  };
  try {
    await procB.start();
    procA = createNodeProcess({
      name: 'A',
      identity: id(a),
      peers: [{ identity: id(b), url: procB.url }],
      database: `file:${pathA}`,
      business: 'inert',
      quiet: true,
    });
    const cpuB0 = await cpuOf(procB, 'b0');
    progress(`  n=${n} d=100% (two processes): resync…`);
    await procA.start();
    const t0 = performance.now();
    const cpuA0 = await cpuOf(procA, 'a0');
    // Done when B holds all n objects open (a run that ends early is followed by another: the
    // product's own retry); then every run is on record, with its outcome.
    const db = new Database(pathB, { readonly: true, fileMustExist: true });
    type RunRow = {
      outcome: string | null;
      objects_received: number;
      bytes_received: number;
      detail: string;
    };
    let runs: RunRow[] = [];
    let s = 0;
    try {
      const open = db.prepare('SELECT count(*) AS n FROM object_head WHERE open = 1');
      const all = db.prepare(
        'SELECT outcome, objects_received, bytes_received, detail FROM resync_run ORDER BY id',
      );
      while ((open.get() as { n: number }).n < n) {
        if (performance.now() - t0 > 900_000) throw new Error('two-process rebuild did not finish in 900 s');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      s = (performance.now() - t0) / 1000;
      for (;;) {
        runs = all.all() as RunRow[];
        if (runs.every((r) => r.outcome !== null)) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      db.close();
    }
    const [cpuA1, cpuB1] = await Promise.all([cpuOf(procA, 'a1'), cpuOf(procB, 'b1')]);
    // The leader's view of its runs: outcome and the apply outcome of every object it handled.
    const dbA = new Database(pathA, { readonly: true, fileMustExist: true });
    const led = (
      dbA.prepare('SELECT reason, outcome, detail FROM resync_run ORDER BY id').all() as Array<{
        reason: string;
        outcome: string | null;
        detail: string;
      }>
    ).map(
      (r) =>
        `${r.reason}:${r.outcome}:${JSON.stringify((JSON.parse(r.detail) as { results?: unknown }).results ?? {})}`,
    );
    // Health transitions each side recorded meanwhile (a channel dropped under load shows here).
    const transitions = (path: string): string[] => {
      const db = new Database(path, { readonly: true, fileMustExist: true });
      try {
        return (
          db
            .prepare("SELECT kind, to_state FROM health_event WHERE kind NOT IN ('epoch_seen') ORDER BY id")
            .all() as Array<{ kind: string; to_state: string | null }>
        ).map((r) => (r.to_state ? `${r.kind}:${r.to_state}` : r.kind));
      } finally {
        db.close();
      }
    };
    const health = { a: transitions(pathA), b: transitions(pathB) };
    dbA.close();
    const params = {
      n,
      d: '100%',
      missing: n,
      mode: 'two_processes',
      led,
      health,
      // Every run B took part in: outcome[:error]:objects received.
      runs: runs.map((r) => {
        const error = (JSON.parse(r.detail) as { error?: string }).error;
        return `${r.outcome}${error ? `:${error}` : ''}:${r.objects_received}`;
      }),
    };
    report('seconds', s, 's', params);
    report(
      'bytes_received_by_rebuilt_node',
      runs.reduce((sum, r) => sum + r.bytes_received, 0),
      'B',
      params,
    );
    report('rebuild_objects_per_s', n / s, '1/s', params);
    report('rebuild_signatures_verified_per_s', (n * sigsPerObject) / s, '1/s', params);
    reportRatioToPool((n * sigsPerObject) / s, params);
    report('rebuild_cpu_ms_per_object', (cpuA1 - cpuA0 + cpuB1 - cpuB0) / n, 'ms', params);
    reportCpuRatioToPool((cpuA1 - cpuA0 + cpuB1 - cpuB0) / n, sigsPerObject, params);
    report('rebuilt_node_cpu_ms_per_object', (cpuB1 - cpuB0) / n, 'ms', params);
  } finally {
    await procA?.stop();
    await procA?.dispose();
    await procB.stop();
    await procB.dispose();
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${pathB}${suffix}`, { force: true });
  }
}

/**
 * The reconciliation phase by method (`_reconcile.ts`): n from `PARLEY_BENCH_RESYNC_RECONCILE_N`
 * (default `10000,100000,1000000`), d from `PARLEY_BENCH_RESYNC_RECONCILE_D` (default
 * `0,1,10,100,1000`), `list` beside `riblt` up to `PARLEY_BENCH_RESYNC_RECONCILE_LIST_MAX_N`
 * (default 100000); an operator's restore of closed objects at n from `PARLEY_BENCH_RESYNC_CLOSED_N`
 * (default 100000), d = 10, by coded symbols beside list pages (`params.scope: closed`).
 * `PARLEY_BENCH_RESYNC_RECONCILE=0` skips it, `=only` runs only it.
 */
const RECONCILE = process.env['PARLEY_BENCH_RESYNC_RECONCILE'] ?? '1';
const numbers = (name: string, fallback: string): number[] =>
  (process.env[name] ?? fallback).split(',').map(Number);
const sizes = (process.env['PARLEY_BENCH_RESYNC_N'] ?? '10000,100000').split(',').map(Number);
const steps = Number(process.env['PARLEY_BENCH_RESYNC_STEPS'] ?? 4);
const dir = mkdtempSync(join(tmpdir(), 'parley-bench-resync-'));
/**
 * The receiving side's verifier: a pool of threads, one per core, as a node runs it (B's own
 * signatures checked by signing again). One per dataset, whose B has a key of its own.
 */
let pool: VerifyPool | undefined;
try {
  if (RECONCILE !== '0') {
    benchUpkeep(report, 100_000);
    await benchReconcile(
      report,
      progress,
      dir,
      numbers('PARLEY_BENCH_RESYNC_RECONCILE_N', '10000,100000,1000000'),
      numbers('PARLEY_BENCH_RESYNC_RECONCILE_D', '0,1,10,100,1000'),
      Number(process.env['PARLEY_BENCH_RESYNC_RECONCILE_LIST_MAX_N'] ?? 100_000),
    );
    // An operator's restore of closed objects: coded symbols beside list pages.
    for (const n of numbers('PARLEY_BENCH_RESYNC_CLOSED_N', '100000')) {
      await benchClosedReconcile(report, progress, dir, n, 10);
    }
  }
  for (const n of RECONCILE === 'only' ? [] : sizes) {
    progress(`resync bench: n=${n}`);
    await benchN(n, n <= 10_000 ? steps : 1, dir);
  }
} finally {
  await pool?.close();
  rmSync(dir, { recursive: true, force: true });
}
