/**
 * Channel benchmark: two node processes on this machine (one channel, ws on 127.0.0.1, SQLite
 * files with full durability), driven through `test/helpers/node-child.ts`.
 *
 *   npm run bench -- channel
 *
 * Metrics (one JSON line each on stdout, progress on stderr):
 * - `commands_per_s`: signed durable commands per second on one channel, pipelined (creates
 *   answered by a peer whose business never reacts; each costs two Ed25519 signs, two verifies
 *   and three durable commits: outbox, peer's log, my log);
 * - `settled_payments_per_s`: payments driven to both sides `ready_for_settlement` by the
 *   automatic business (five commands each), all started at once, and
 *   `cpu_ms_per_settled_payment` (both node processes);
 * - `rtt_p50_ms` / `rtt_p99_ms`: one create at a time, from `send` to its final outcome;
 * - `sign_per_s_per_core` / `verify_per_s_per_core`: node:crypto Ed25519 on one core, on a
 *   command-sized JWS signing input;
 * - `crypto_limit_commands_per_s`: what those rates allow per channel on this machine (every
 *   command: 2 signs + 2 verifies spread over all cores), and `commands_ratio_to_crypto_limit`;
 * - `store_cpu_ms_per_command`: the CPU of a command's durable writes alone (outbox, both logs),
 *   both stores in this process; `crypto_and_store_limit_commands_per_s` what the crypto and
 *   those writes allow per channel with every core busy on nothing else (an upper bound for any
 *   channel on this store), and `commands_ratio_to_crypto_and_store_limit`;
 * - `cpu_ms_per_command`: CPU time of both node processes per pipelined command (robust when
 *   the machine is shared: wall-clock rates are not), against `crypto_cpu_ms_per_command`;
 * - `sqlite_commit_p50_ms`: one durable SQLite commit (WAL, synchronous=FULL) on this disk; a
 *   one-at-a-time round trip needs three in a row (outbox, the peer's log, my log);
 * - `rtt_floor_ms` = 3 × `sqlite_commit_p50_ms` + `crypto_cpu_ms_per_command` (the three commits
 *   in series and the command's two signs and two verifies), and `rtt_p50_ratio_to_floor`;
 * - `settled_payments_ratio`: `settled_payments_per_s` ÷ (`crypto_and_store_limit_commands_per_s`
 *   / 5), a payment being five commands;
 * - `crypto_cpu_time_ms_per_command` (the crypto from CPU time, not from wall-clock rates),
 *   `cpu_ratio_to_crypto_and_store` and `settled_cpu_ratio`: the same ratios from CPU time
 *   alone, which the load of a shared machine changes least.
 *
 * Every line's params carry the machine and its load average: on a shared machine the wall-clock
 * figures say more about the neighbours than about Parley.
 *
 * Env: `PARLEY_BENCH_COMMANDS` (default 10000), `PARLEY_BENCH_PAYMENTS` (default 2000): enough
 * to measure a steady state rather than the ramp; `PARLEY_BENCH_RTT` (default 300). About 20 s
 * on an idle 2-core machine; killed (exit 1) past 115 s.
 */
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { openStore } from '../../src/store/index.js';
import type { CommitItem } from '../../src/store/types.js';
import {
  type ChildLine,
  createNodeProcess,
  type NodeProcess,
  waitForLine,
} from '../../test/helpers/node-process.js';
import { testIdentity } from '../../test/helpers/nodes.js';

const COMMANDS = Number(process.env['PARLEY_BENCH_COMMANDS'] ?? 10_000);
const PAYMENTS = Number(process.env['PARLEY_BENCH_PAYMENTS'] ?? 2000);
const RTT_SAMPLES = Number(process.env['PARLEY_BENCH_RTT'] ?? 300);
const STEP_TIMEOUT_MS = 90_000;
const BUDGET_MS = 115_000;

const machine = { node: process.version, cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length };

function report(metric: string, value: number, unit: string, params: Record<string, unknown> = {}): void {
  const rounded = value >= 100 ? Math.round(value) : Math.round(value * 1000) / 1000;
  const load1 = Math.round((loadavg()[0] ?? 0) * 100) / 100;
  const line = { bench: 'channel', metric, value: rounded, unit, params: { ...params, ...machine, load1 } };
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

const startedAt = performance.now();
function progress(message: string): void {
  const s = ((performance.now() - startedAt) / 1000).toFixed(1);
  process.stderr.write(`[bench channel +${s}s] ${message}\n`);
}

/**
 * Ed25519 sign and verify rates of node:crypto on this thread (one core), and the CPU time
 * each operation took (steadier than the rates when other work shares the cores).
 */
function cryptoRates(): { signPerS: number; verifyPerS: number; signCpuMs: number; verifyCpuMs: number } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  // About the size of a PaymentCommand request's JWS signing input.
  const data = Buffer.from('e'.repeat(1400));
  const signature = sign(null, data, privateKey);
  const rate = (fn: () => void): { perS: number; cpuMs: number } => {
    for (let i = 0; i < 200; i++) fn();
    let n = 0;
    const start = performance.now();
    const cpu = process.cpuUsage();
    let now = start;
    while (now - start < 1000) {
      for (let i = 0; i < 50; i++) fn();
      n += 50;
      now = performance.now();
    }
    const used = process.cpuUsage(cpu);
    return { perS: (n * 1000) / (now - start), cpuMs: (used.user + used.system) / 1000 / n };
  };
  const signed = rate(() => sign(null, data, privateKey));
  const verified = rate(() => verify(null, data, publicKey, signature));
  return {
    signPerS: signed.perS,
    verifyPerS: verified.perS,
    signCpuMs: signed.cpuMs,
    verifyCpuMs: verified.cpuMs,
  };
}

/** Latency of one small durable SQLite transaction (WAL, synchronous=FULL) in `dir`, ms. */
function sqliteCommitMs(dir: string): number[] {
  const db = new Database(join(dir, 'fsync.db'));
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec('CREATE TABLE t (v TEXT)');
    const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
    const row = 'x'.repeat(2000);
    const samples: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t0 = performance.now();
      db.exec('BEGIN');
      insert.run(row);
      db.exec('COMMIT');
      samples.push(performance.now() - t0);
    }
    return samples.sort((x, y) => x - y);
  } finally {
    db.close();
  }
}

/**
 * CPU of a command's durable writes alone, ms: the sender's outbox row, the receiver's log entry
 * (with its version and head) and the sender's, which settles the outbox row; both stores in this
 * process on SQLite files (WAL, synchronous=FULL), through the nodes' group commit, with 256
 * commands in flight and JWS of a create's size. With the crypto, it bounds what any channel
 * built on this store can reach on this machine, before a byte is framed, parsed or checked.
 */
async function storeCpuMsPerCommand(dir: string): Promise<number> {
  const sender = await openStore({ url: `file:${join(dir, 'floor-a.db')}` });
  const receiver = await openStore({ url: `file:${join(dir, 'floor-b.db')}` });
  const requestJws = `eyJhbGciOiJFZERTQSJ9.${'x'.repeat(1400)}.${'s'.repeat(86)}`;
  const responseJws = `eyJhbGciOiJFZERTQSJ9.${'y'.repeat(180)}.${'s'.repeat(86)}`;
  const payment = JSON.stringify({
    sender: { address: 'a'.repeat(50), kyc_data: 'k'.repeat(400) },
    amount: 1,
  });
  const item = (peer: string, cid: string, direction: 'outbound' | 'inbound'): CommitItem => ({
    command: {
      peer,
      cid,
      direction,
      referenceId: cid,
      readVersion: null,
      writeVersion: `${cid}-v`,
      requestJws,
      responseJws,
      status: 'success',
      errorCode: null,
    },
    version: { peer, referenceId: cid, version: `${cid}-v`, previousVersion: null, payment, open: true },
    ...(direction === 'outbound' ? { settlesOutbox: true } : {}),
  });
  try {
    let measuring = false;
    let stop = false;
    let commands = 0;
    const loop = async (c: number): Promise<void> => {
      for (let seq = 0; !stop; seq++) {
        const cid = `c${c}-${seq}`;
        await sender.enqueue({
          peer: 'b',
          cid,
          referenceId: cid,
          readVersion: null,
          writeVersion: `${cid}-v`,
          requestJws,
          createdAtMs: Date.now(),
          attempts: 0,
        });
        await receiver.commit([item('a', cid, 'inbound')]);
        await sender.commit([item('b', cid, 'outbound')]);
        if (measuring) commands += 1;
      }
    };
    const running = Promise.all(Array.from({ length: 256 }, (_, c) => loop(c)));
    await new Promise((resolve) => setTimeout(resolve, 500));
    measuring = true;
    const cpu = process.cpuUsage();
    await new Promise((resolve) => setTimeout(resolve, 2000));
    measuring = false;
    const used = process.cpuUsage(cpu);
    stop = true;
    await running;
    return (used.user + used.system) / 1000 / commands;
  } finally {
    await sender.close();
    await receiver.close();
  }
}

interface Pair {
  a: NodeProcess;
  b: NodeProcess;
  close(): Promise<void>;
}

async function startPair(dir: string, name: string, business: 'auto' | 'inert'): Promise<Pair> {
  const idA = testIdentity(0x61);
  const idB = testIdentity(0x62);
  const b = createNodeProcess({
    name: `${name}-B`,
    identity: idB,
    peers: [{ identity: idA }],
    database: `file:${join(dir, `${name}-b.db`)}`,
    business,
    quiet: true,
    retransmitMs: 5000,
  });
  await b.start();
  const a = createNodeProcess({
    name: `${name}-A`,
    identity: idA,
    peers: [{ identity: idB, url: b.url }],
    database: `file:${join(dir, `${name}-a.db`)}`,
    business,
    quiet: true,
    retransmitMs: 5000,
  });
  const connected = waitForLine(
    a.lines$,
    (line): line is Extract<ChildLine, { t: 'conn' }> => line.t === 'conn',
    STEP_TIMEOUT_MS,
    'A connected',
  );
  await a.start();
  await connected;
  return {
    a,
    b,
    async close() {
      await a.stop();
      await b.stop();
      await a.dispose();
      await b.dispose();
    },
  };
}

let requestSeq = 0;
async function ask<T extends ChildLine>(
  proc: NodeProcess,
  request: Record<string, unknown>,
  t: T['t'],
): Promise<T> {
  const id = `r${++requestSeq}`;
  const answer = waitForLine(
    proc.lines$,
    (line): line is T => line.t === t && 'id' in line && line.id === id,
    STEP_TIMEOUT_MS,
    `${t} from ${proc.name}`,
  );
  const failure = waitForLine(
    proc.lines$,
    (line): line is Extract<ChildLine, { t: 'error' }> => line.t === 'error',
    STEP_TIMEOUT_MS,
    'an error',
  ).then((line) => {
    throw new Error(`${proc.name}: ${line.where}: ${line.message}`);
  });
  failure.catch(() => undefined);
  proc.request({ ...request, id });
  return Promise.race([answer, failure]);
}

type BatchLine = Extract<ChildLine, { t: 'batch' }>;
type CpuLine = Extract<ChildLine, { t: 'cpu' }>;

/** CPU ms both processes of a pair have used so far. */
async function pairCpuMs(pair: Pair): Promise<number> {
  const [a, b] = await Promise.all([
    ask<CpuLine>(pair.a, { op: 'cpu' }, 'cpu'),
    ask<CpuLine>(pair.b, { op: 'cpu' }, 'cpu'),
  ]);
  return a.ms + b.ms;
}
type RttLine = Extract<ChildLine, { t: 'rtt' }>;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

const dir = mkdtempSync(join(tmpdir(), 'parley-bench-channel-'));
const pairs: Pair[] = [];
// Bounded whatever the machine does: past the budget, kill the nodes and fail.
const budget = setTimeout(() => {
  progress(`over the ${BUDGET_MS / 1000} s budget: stopping`);
  void Promise.all(pairs.flatMap((p) => [p.a.kill(), p.b.kill()])).finally(() => {
    rmSync(dir, { recursive: true, force: true });
    process.exit(1);
  });
}, BUDGET_MS);
budget.unref();
try {
  progress('crypto limit (node:crypto Ed25519, one core)');
  const { signPerS, verifyPerS, signCpuMs, verifyCpuMs } = cryptoRates();
  report('sign_per_s_per_core', signPerS, '1/s', { alg: 'Ed25519', bytes: 1400 });
  report('verify_per_s_per_core', verifyPerS, '1/s', { alg: 'Ed25519', bytes: 1400 });
  // Per command: two signs and two verifies (request and response), on whichever core.
  const cpuSecondsPerCommand = 2 / signPerS + 2 / verifyPerS;
  const cryptoLimit = machine.cores / cpuSecondsPerCommand;
  report('crypto_limit_commands_per_s', cryptoLimit, '1/s', {
    formula: 'cores / (2/sign + 2/verify)',
  });
  report('crypto_cpu_ms_per_command', cpuSecondsPerCommand * 1000, 'ms', { formula: '2/sign + 2/verify' });
  // The same from CPU time rather than wall-clock rates (a shared machine inflates the rates' inverse).
  const cryptoCpuTimeMs = 2 * signCpuMs + 2 * verifyCpuMs;
  report('crypto_cpu_time_ms_per_command', cryptoCpuTimeMs, 'ms', { formula: '2 sign + 2 verify, CPU time' });

  progress('durable SQLite commit latency');
  const commits = sqliteCommitMs(dir);
  const commitP50 = percentile(commits, 50);
  report('sqlite_commit_p50_ms', commitP50, 'ms', { samples: commits.length });
  const rttFloor = 3 * commitP50 + cpuSecondsPerCommand * 1000;
  report('rtt_floor_ms', rttFloor, 'ms', { formula: '3 * sqlite_commit_p50 + 2/sign + 2/verify' });

  progress("a command's durable writes alone (both stores in this process)");
  const storeMs = await storeCpuMsPerCommand(dir);
  report('store_cpu_ms_per_command', storeMs, 'ms', { writes: 'outbox + both logs', callers: 256 });
  // Crypto and durable writes at 100 % of every core, and nothing else: an upper bound.
  const floorLimit = machine.cores / (cpuSecondsPerCommand + storeMs / 1000);
  report('crypto_and_store_limit_commands_per_s', floorLimit, '1/s', {
    formula: 'cores / (2/sign + 2/verify + store_cpu_per_command)',
  });

  progress('starting two node processes (inert business: creates only)');
  const inert = await startPair(dir, 'inert', 'inert');
  pairs.push(inert);
  await ask<BatchLine>(inert.a, { op: 'batch', to: inert.b.address, count: 200, until: 'created' }, 'batch');

  progress(`${COMMANDS} creates pipelined on one channel`);
  const cpuBefore = await pairCpuMs(inert);
  const batch = await ask<BatchLine>(
    inert.a,
    { op: 'batch', to: inert.b.address, count: COMMANDS, until: 'created' },
    'batch',
  );
  if (batch.failures > 0) throw new Error(`${batch.failures} creates failed`);
  const cpuPerCommand = ((await pairCpuMs(inert)) - cpuBefore) / batch.count;
  const commandsPerS = (batch.count * 1000) / batch.ms;
  const params = { commands: COMMANDS, durability: 'sqlite synchronous=FULL, WAL', processes: 2 };
  report('commands_per_s', commandsPerS, '1/s', params);
  report('commands_ratio_to_crypto_limit', commandsPerS / cryptoLimit, 'ratio', params);
  report('commands_ratio_to_crypto_and_store_limit', commandsPerS / floorLimit, 'ratio', {
    ...params,
    commands_per_s: Math.round(commandsPerS),
    limit: Math.round(floorLimit),
  });
  report('cpu_ms_per_command', cpuPerCommand, 'ms', { ...params, both_processes: true });
  // CPU time against CPU time: what the load of a shared machine changes least.
  report('cpu_ratio_to_crypto_and_store', (cryptoCpuTimeMs + storeMs) / cpuPerCommand, 'ratio', {
    formula: '(crypto_cpu_time_ms_per_command + store_cpu_ms_per_command) / cpu_ms_per_command',
  });

  progress(`${RTT_SAMPLES} creates one at a time`);
  await ask<RttLine>(inert.a, { op: 'rtt', to: inert.b.address, count: 50 }, 'rtt');
  const rtt = await ask<RttLine>(inert.a, { op: 'rtt', to: inert.b.address, count: RTT_SAMPLES }, 'rtt');
  const sorted = [...rtt.samples].sort((x, y) => x - y);
  report('rtt_p50_ms', percentile(sorted, 50), 'ms', { samples: sorted.length });
  report('rtt_p99_ms', percentile(sorted, 99), 'ms', { samples: sorted.length });
  report('rtt_p50_ratio_to_floor', percentile(sorted, 50) / rttFloor, 'ratio', {
    rtt_p50_ms: Math.round(percentile(sorted, 50) * 1000) / 1000,
    rtt_floor_ms: Math.round(rttFloor * 1000) / 1000,
  });
  progress('stopping');
  await inert.close();
  pairs.pop();

  progress('starting two node processes (automatic business)');
  const auto = await startPair(dir, 'auto', 'auto');
  pairs.push(auto);
  await ask<BatchLine>(auto.a, { op: 'batch', to: auto.b.address, count: 50, until: 'settled' }, 'batch');
  progress(`${PAYMENTS} payments to settlement`);
  const settleCpuBefore = await pairCpuMs(auto);
  const settled = await ask<BatchLine>(
    auto.a,
    { op: 'batch', to: auto.b.address, count: PAYMENTS, until: 'settled' },
    'batch',
  );
  if (settled.failures > 0) throw new Error(`${settled.failures} payments failed`);
  const settledPerS = (settled.count * 1000) / settled.ms;
  report('settled_payments_per_s', settledPerS, '1/s', { payments: PAYMENTS, commands_per_payment: 5 });
  report('settled_payments_ratio', settledPerS / (floorLimit / 5), 'ratio', {
    formula: 'settled_payments_per_s / (crypto_and_store_limit_commands_per_s / 5)',
    settled_payments_per_s: Math.round(settledPerS),
    limit_payments_per_s: Math.round(floorLimit / 5),
  });
  const cpuPerPayment = ((await pairCpuMs(auto)) - settleCpuBefore) / settled.count;
  report('cpu_ms_per_settled_payment', cpuPerPayment, 'ms', { payments: PAYMENTS, both_processes: true });
  report('settled_cpu_ratio', (5 * (cryptoCpuTimeMs + storeMs)) / cpuPerPayment, 'ratio', {
    formula: '5 * (crypto_cpu_time_ms_per_command + store_cpu_ms_per_command) / cpu_ms_per_settled_payment',
  });
} finally {
  for (const pair of pairs) await pair.close().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
  clearTimeout(budget);
}
