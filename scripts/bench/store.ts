/**
 * Store benchmark: durable commits per second through `ParleyStore.commit`, with many concurrent
 * callers (group commit). One commit = a signed-log row + an object version + a head update, with
 * JWS and payment sizes of real LIP-1 traffic.
 *
 *   npx tsx scripts/bench/store.ts [sqlite|postgresql]     (default: both)
 *   npm run bench -- store [sqlite|postgresql]
 *
 * SQLite runs on a temp file (WAL, synchronous=FULL). PostgreSQL runs in its own temporary
 * database on the server of `TEST_PG_URL` (default postgresql://postgres@127.0.0.1:5432/postgres),
 * synchronous_commit=on; without an explicit engine argument an unreachable server is skipped.
 * Prints one JSON line per result on stdout, progress on stderr; about 20 s in all.
 * Knobs: PARLEY_BENCH_MS (measured time per engine, default 7000), PARLEY_BENCH_CALLERS (256),
 * PARLEY_BENCH_FENCED=1 (as one of several replicas: every batch checks the channel's lease),
 * PARLEY_BENCH_EVENTS=1 (every commit writes its back-office event, `events.url` set).
 *
 * On SQLite the same run also measures `raw_same_rows_commits_per_s`: better-sqlite3 alone writing
 * the same rows with the same pragmas and batching (`_raw-sqlite.ts`), and `commits_ratio_to_raw`.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { DEFAULT_MAX_BATCH, openStore } from '../../src/store/index.js';
import { createLeaseRepository } from '../../src/store/lease-repository.js';
import type { CommitItem, ParleyStore, StoreEngine } from '../../src/store/types.js';
import { rawSqliteCommits } from './_raw-sqlite.js';

const RUN_MS = Number(process.env['PARLEY_BENCH_MS'] ?? 7000);
const WARMUP_MS = 1000;
const CALLERS = Number(process.env['PARLEY_BENCH_CALLERS'] ?? 256);
const FENCED = process.env['PARLEY_BENCH_FENCED'] === '1';
const EVENTS = process.env['PARLEY_BENCH_EVENTS'] === '1';
const PG_URL = process.env['TEST_PG_URL'] || 'postgresql://postgres@127.0.0.1:5432/postgres';
const PEER = 'pdm1qbenchpeer000000000000000000';
const REQUEST_JWS = `eyJhbGciOiJFZERTQSJ9.${'x'.repeat(1400)}.${'s'.repeat(86)}`;
const RESPONSE_JWS = `eyJhbGciOiJFZERTQSJ9.${'y'.repeat(180)}.${'s'.repeat(86)}`;
const PAYMENT = JSON.stringify({ sender: { address: 'a'.repeat(50), kyc_data: 'k'.repeat(400) }, amount: 1 });

const machine = { node: process.version, cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length };

function progress(message: string): void {
  process.stderr.write(`[bench store] ${message}\n`);
}

const load1 = (): number => Math.round((loadavg()[0] ?? 0) * 100) / 100;

function report(metric: string, value: number, unit: string, params: Record<string, unknown>): void {
  const rounded = value < 10 ? Math.round(value * 1000) / 1000 : Math.round(value * 100) / 100;
  process.stdout.write(
    `${JSON.stringify({ bench: 'store', metric, value: rounded, unit, params: { ...params, ...machine, load1: load1() } })}\n`,
  );
}

function item(caller: number, seq: number): CommitItem {
  const referenceId = `bench-${caller}`;
  const cid = `c${caller}-${seq}`;
  const read = seq === 0 ? null : `v${seq - 1}`;
  const write = `v${seq}`;
  return {
    command: {
      peer: PEER,
      cid,
      direction: 'inbound',
      referenceId,
      readVersion: read,
      writeVersion: write,
      requestJws: REQUEST_JWS,
      responseJws: RESPONSE_JWS,
      status: 'success',
      errorCode: null,
    },
    version: { peer: PEER, referenceId, version: write, previousVersion: read, payment: PAYMENT, open: true },
  };
}

interface Sample {
  commits: number;
  ms: number;
  /** Process CPU time (user + system) during the measured window, microseconds. */
  cpuUs: number;
  latenciesMs: number[];
}

/** `CALLERS` loops, each chaining versions of its own object, for warm-up + measured time. */
async function drive(store: ParleyStore): Promise<Sample> {
  let measuring = false;
  let stop = false;
  let commits = 0;
  const latenciesMs: number[] = [];
  const caller = async (c: number) => {
    for (let seq = 0; !stop; seq++) {
      const t0 = performance.now();
      await store.commit([item(c, seq)]);
      if (measuring) {
        commits += 1;
        latenciesMs.push(performance.now() - t0);
      }
    }
  };
  const running = Promise.all(Array.from({ length: CALLERS }, (_, c) => caller(c)));
  await new Promise((resolve) => setTimeout(resolve, WARMUP_MS));
  measuring = true;
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  await new Promise((resolve) => setTimeout(resolve, RUN_MS));
  measuring = false;
  const cpu = process.cpuUsage(cpuStart);
  const ms = performance.now() - start;
  stop = true;
  await running;
  return { commits, ms, cpuUs: cpu.user + cpu.system, latenciesMs };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

/** Commits per second of the last `bench()` run (for the ratio to the raw baseline). */
let lastCommitsPerS = 0;
/** CPU microseconds per commit of the last `bench()` run. */
let lastCpuUsPerCommit = 0;

async function bench(engine: StoreEngine, url: string, durability: Record<string, string>): Promise<void> {
  const store = await openStore({ url, groupCommit: { events: EVENTS } });
  try {
    if (FENCED) {
      const leases = createLeaseRepository(store, { owner: 'bench' });
      if (!(await leases.acquire(PEER, Date.now(), 3_600_000))) throw new Error('cannot take the lease');
    }
    progress(`${engine}: ${CALLERS} concurrent callers, ${WARMUP_MS} ms warm-up + ${RUN_MS} ms`);
    const { commits, ms, cpuUs, latenciesMs } = await drive(store);
    const integrity = await store.checkIntegrity();
    if (integrity.length > 0) throw new Error(`integrity check failed: ${integrity.slice(0, 3).join('; ')}`);
    const params = {
      engine,
      callers: CALLERS,
      maxBatch: DEFAULT_MAX_BATCH,
      fenced: FENCED,
      events: EVENTS,
      durationMs: Math.round(ms),
      ...durability,
    };
    latenciesMs.sort((a, b) => a - b);
    progress(`${engine}: ${commits} commits in ${Math.round(ms)} ms`);
    lastCommitsPerS = (commits / ms) * 1000;
    report('commits_per_s', lastCommitsPerS, '1/s', params);
    // CPU per commit says what the store costs even on a busy machine (wall-clock rates do not).
    lastCpuUsPerCommit = cpuUs / commits;
    report('cpu_us_per_commit', lastCpuUsPerCommit, 'us', params);
    report('commit_latency_p50_ms', percentile(latenciesMs, 50), 'ms', params);
    report('commit_latency_p99_ms', percentile(latenciesMs, 99), 'ms', params);
  } finally {
    await store.close();
  }
}

async function benchSqlite(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'parley-bench-'));
  try {
    await bench('sqlite', `file:${join(dir, 'bench.db')}`, { journal: 'WAL', synchronous: 'FULL' });
    const [storeRate, storeCpuUs] = [lastCommitsPerS, lastCpuUsPerCommit];
    // The raw baseline on a fresh file with the same schema (migrated by opening a store).
    const rawPath = join(dir, 'raw.db');
    await (await openStore({ url: `file:${rawPath}` })).close();
    progress(
      `sqlite raw: better-sqlite3 alone, batches of ${CALLERS}, ${WARMUP_MS} ms warm-up + ${RUN_MS} ms`,
    );
    const raw = rawSqliteCommits(rawPath, item, CALLERS, WARMUP_MS, RUN_MS);
    const rawRate = (raw.commits / raw.ms) * 1000;
    const params = {
      engine: 'sqlite',
      callers: CALLERS,
      batch: CALLERS,
      journal: 'WAL',
      synchronous: 'FULL',
    };
    report('raw_same_rows_commits_per_s', rawRate, '1/s', params);
    report('raw_cpu_us_per_commit', raw.cpuUs / raw.commits, 'us', params);
    report('cpu_ratio_to_raw', raw.cpuUs / raw.commits / storeCpuUs, 'ratio', {
      ...params,
      formula: 'raw_cpu_us_per_commit / cpu_us_per_commit',
    });
    report('commits_ratio_to_raw', storeRate / rawRate, 'ratio', {
      ...params,
      commits_per_s: Math.round(storeRate),
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

async function benchPostgresql(required: boolean): Promise<void> {
  const name = `parley_bench_${randomBytes(6).toString('hex')}`;
  try {
    await admin(`CREATE DATABASE ${name}`);
  } catch (err) {
    if (required) throw err;
    progress(`postgresql: skipped, cannot reach ${PG_URL} (${(err as Error).message})`);
    return;
  }
  try {
    const url = new URL(PG_URL);
    url.pathname = `/${name}`;
    await bench('postgresql', url.toString(), { synchronous_commit: 'on' });
  } finally {
    await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }
}

const only = process.argv[2];
if (only !== undefined && only !== 'sqlite' && only !== 'postgresql') {
  progress(`unknown engine "${only}": use sqlite or postgresql`);
  process.exit(2);
}
if (only === undefined || only === 'sqlite') await benchSqlite();
if (only === undefined || only === 'postgresql') await benchPostgresql(only === 'postgresql');
