import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createVerifyPool } from '../../src/protocol/verify-pool.js';
import { openStore } from '../../src/store/open-store.js';
import { DEFAULT_RESTORE_OBJECTS_PER_S } from '../../src/sync/restore.js';
import { measureRestoreRtt, percentile } from './_restore-rtt.js';
import { chainTemplate, party, signChain, wireSyncPair } from './_signed-chains.js';

const N = Number(process.env['PARLEY_BENCH_RESTORE_N'] ?? 100_000);
/** `only`: the two-process part alone; `0`: without it. */
const RTT = process.env['PARLEY_BENCH_RESTORE_RTT'] ?? '1';
const RTT_N = Number(process.env['PARLEY_BENCH_RESTORE_RTT_N'] ?? 20_000);
const IDLE_SAMPLES = Number(process.env['PARLEY_BENCH_RESTORE_IDLE_SAMPLES'] ?? 300);
const machine = { node: process.version, cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length };
const progress = (text: string): void => void process.stderr.write(`${text}\n`);
const load1 = (): number => Math.round((loadavg()[0] ?? 0) * 100) / 100;
const round = (v: number): number => (v >= 100 ? Math.round(v * 10) / 10 : Math.round(v * 1000) / 1000);
function report(metric: string, value: number, unit: string, params: Record<string, unknown>): void {
  const line = {
    bench: 'restore',
    metric,
    value: round(value),
    unit,
    params: { ...params, ...machine, load1: load1() },
  };
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

const dir = mkdtempSync(join(tmpdir(), 'parley-bench-restore-'));
const a = party(0x41);
const b = party(0x42);
const pool = createVerifyPool({ signers: [b.key] });
try {
  if (RTT !== 'only') await inProcess();
  if (RTT !== '0') await twoProcesses();
} finally {
  await pool.close();
  rmSync(dir, { recursive: true, force: true });
}

/** Both sides in this process over an in-memory link: `restore_objects_per_s`. */
async function inProcess(): Promise<void> {
  const t = await chainTemplate(a, b, { steps: 12, close: true });
  const storeA = await openStore({ url: `file:${join(dir, 'a.db')}` });
  const storeB = await openStore({ url: `file:${join(dir, 'b.db')}` });
  await storeA.upsertPeer({ address: b.address, publicKeyHex: b.key.publicKey.hex });
  await storeB.upsertPeer({ address: a.address, publicKeyHex: a.key.publicKey.hex });
  for (let i = 0; i < N; i += 500) {
    const objects = await Promise.all(Array.from({ length: Math.min(500, N - i) }, () => signChain(t, a, b)));
    await storeA.commit(objects.flat());
    if ((i / 500) % 20 === 0) progress(`  built ${i + objects.length}/${N} closed objects`);
  }
  const { sa, sb } = wireSyncPair(
    { me: a, peer: b, store: storeA },
    { me: b, peer: a, store: storeB },
    pool,
    ['list', 'riblt', 'restore'],
  );
  let last = 0;
  sa.restore$.subscribe((e) => {
    if (e.moved - last >= 5000) {
      last = e.moved;
      progress(`  restored ${e.moved}/${N}`);
    }
  });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const end = await sa.restore('peer_state_lost');
  const s = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  if (end.moved !== N) throw new Error(`restored ${end.moved} of ${N}`);
  report('restore_objects_per_s', N / s, '1/s', {
    n: N,
    processes: 1,
    commands_per_object: t.steps.length,
    seconds: Math.round(s * 10) / 10,
    cpu_ms_per_object: Math.round(((cpu.user + cpu.system) / 1000 / N) * 1000) / 1000,
    pace_objects_per_s: DEFAULT_RESTORE_OBJECTS_PER_S,
    engine: 'sqlite',
  });
  await sa.close();
  await sb.close();
  await storeA.close();
  await storeB.close();
}

/**
 * Two node processes over ws (`_restore-rtt.ts`): `restore_objects_per_s` between processes, and
 * the channel's one-at-a-time round trips during the restore against idle.
 */
async function twoProcesses(): Promise<void> {
  const r = await measureRestoreRtt(dir, RTT_N, IDLE_SAMPLES, progress);
  const idleP99 = percentile(r.idle, 99);
  const duringP99 = percentile(r.during, 99);
  const params = {
    n: r.n,
    processes: 2,
    commands_per_object: r.commandsPerObject,
    pace_objects_per_s: DEFAULT_RESTORE_OBJECTS_PER_S,
    engine: 'sqlite',
  };
  report('restore_objects_per_s', r.n / r.restoreSeconds, '1/s', {
    ...params,
    seconds: Math.round(r.restoreSeconds * 10) / 10,
    cpu_ms_per_object: round(r.cpuMsPerObject),
  });
  const samples = { idle: r.idle.length, during: r.during.length, idle_after: r.idleAfter.length };
  report('idle_rtt_p99_ms', idleP99, 'ms', {
    ...params,
    samples,
    idle_rtt_p50_ms: round(percentile(r.idle, 50)),
    idle_after_rtt_p50_ms: round(percentile(r.idleAfter, 50)),
    idle_after_rtt_p99_ms: round(percentile(r.idleAfter, 99)),
  });
  report('restore_rtt_p99_ms', duringP99, 'ms', {
    ...params,
    samples,
    restore_rtt_p50_ms: round(percentile(r.during, 50)),
    restore_rtt_max_ms: round(Math.max(...r.during)),
  });
  report('restore_rtt_p99_ratio_to_idle', duringP99 / idleP99, 'ratio', { ...params, target: 1.5 });
}
