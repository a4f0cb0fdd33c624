/**
 * Detection latency of a silent peer: how long after a channel's path goes dead does the node
 * call the peer `suspect`, then `down` (real time, real sockets, default detector settings).
 *
 * Each trial is one pair of nodes (SQLite files) in this process; B dials A through a loopback
 * TCP relay. After a warm-up, at a random moment within a heartbeat period, the relay silently
 * drops everything on the connection (no FIN, no RST: a half-open path, the same signal as a
 * stopped process). The latency is the time from that moment to A's `suspect` / `down` event.
 * Trials run in batches in parallel, each with its own random offset.
 *
 * Then `reconnect_after_restart_ms`: two node processes, one stopped cleanly and started again
 * `PARLEY_BENCH_RESTARTS` times; the time from its listen to the channel connected on both sides
 * (see `_restart.ts`), for a restarted node that dials and one that waits to be dialed.
 *
 * Run: `npm run bench -- detection` (or `npx tsx scripts/bench/detection.ts`).
 * Env: `PARLEY_BENCH_DETECTION_TRIALS` (default 32), `PARLEY_BENCH_DETECTION_BATCH` (default 8),
 * `PARLEY_BENCH_DETECTION_WARMUP_MS` (default 8000), `PARLEY_BENCH_RESTARTS` (default 12, at
 * most 100), `PARLEY_BENCH_DETECTION_ONLY` (`silence` or `restart`: run only that part).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { filter, firstValueFrom, take, timeout } from 'rxjs';
import { DEFAULT_HEALTH_OPTIONS } from '../../src/health/options.js';
import type { HealthEvent } from '../../src/health/status.js';
import { createVaspNode, type VaspNode } from '../../src/node.js';
import { encodeAddress, generatePrivateKey } from '../../src/protocol/index.js';
import { measureRestarts, type RestartResult } from './_restart.js';

const TRIALS = Number(process.env['PARLEY_BENCH_DETECTION_TRIALS'] ?? 32);
const BATCH = Number(process.env['PARLEY_BENCH_DETECTION_BATCH'] ?? 8);
const WARMUP_MS = Number(process.env['PARLEY_BENCH_DETECTION_WARMUP_MS'] ?? 8000);
const RESTARTS = Math.min(100, Math.max(1, Number(process.env['PARLEY_BENCH_RESTARTS'] ?? 12)));
const ONLY = process.env['PARLEY_BENCH_DETECTION_ONLY'];
const LIMIT_MS = 30_000;

const machine = { node: process.version, cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length };
const progress = (text: string): void => void process.stderr.write(`${text}\n`);

function report(metric: string, value: number, unit: string, params: Record<string, unknown>): void {
  process.stdout.write(
    `${JSON.stringify({ bench: 'detection', metric, value: Math.round(value * 10) / 10, unit, params })}\n`,
  );
}

function identity(byte: number) {
  const key = generatePrivateKey();
  return {
    address: encodeAddress({ hrp: 'lbr', onchain: new Uint8Array(16).fill(byte) }),
    seedHex: key.seedHex,
    publicKeyHex: key.publicKey.hex,
  };
}

/** A relay whose current connections can be made to drop everything, silently. */
async function relay(targetPort: number) {
  const pairs: Array<{ client: Socket; upstream: Socket; dead: boolean }> = [];
  const server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    const pair = { client, upstream, dead: false };
    pairs.push(pair);
    client.on('data', (chunk) => void (pair.dead || upstream.write(chunk)));
    upstream.on('data', (chunk) => void (pair.dead || client.write(chunk)));
    for (const s of [client, upstream]) {
      s.on('error', () => undefined);
      s.on('close', () => {
        if (!pair.dead) {
          client.destroy();
          upstream.destroy();
        }
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `ws://127.0.0.1:${port}/parley/v1`,
    blackhole: () => {
      for (const pair of pairs) pair.dead = true;
    },
    close: async () => {
      for (const pair of pairs) {
        pair.client.destroy();
        pair.upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const stateOf = (peer: string, to: string) => (e: HealthEvent) =>
  e.kind === 'transition' && e.peer === peer && e.to === to;

function waitFor(node: VaspNode, match: (e: HealthEvent) => boolean): Promise<number> {
  return firstValueFrom(
    node.health$.pipe(
      filter(match),
      take(1),
      timeout({ first: LIMIT_MS, with: () => Promise.reject(new Error('no detection within the limit')) }),
    ),
  ).then(() => performance.now());
}

interface Trial {
  suspectMs: number;
  downMs: number;
  offsetMs: number;
}

async function trial(index: number, dir: string): Promise<Trial> {
  const a = identity(1 + ((index * 2) % 250));
  const b = identity(2 + ((index * 2) % 250));
  const config = (self: typeof a, peer: typeof b, db: string, url?: string) => ({
    address: self.address,
    privateKeySeed: self.seedHex,
    database: `file:${join(dir, db)}`,
    listen: { host: '127.0.0.1', port: 0 },
    peers: [{ address: peer.address, publicKey: peer.publicKeyHex, ...(url ? { url } : {}) }],
  });
  const nodeA = await createVaspNode(config(a, b, `a${index}.db`));
  const path = await relay(nodeA.port);
  const healthy = waitFor(nodeA, stateOf(b.address, 'healthy'));
  const nodeB = await createVaspNode(config(b, a, `b${index}.db`, path.url));
  try {
    await healthy;
    // Warm up the detector, then die at a random moment within a heartbeat period.
    const offsetMs = Math.random() * DEFAULT_HEALTH_OPTIONS.heartbeatIntervalMs;
    await new Promise((resolve) => setTimeout(resolve, WARMUP_MS + offsetMs));
    const suspect = waitFor(nodeA, stateOf(b.address, 'suspect'));
    const down = waitFor(nodeA, stateOf(b.address, 'down'));
    const t0 = performance.now();
    path.blackhole();
    const [suspectAt, downAt] = await Promise.all([suspect, down]);
    return { suspectMs: suspectAt - t0, downMs: downAt - t0, offsetMs };
  } finally {
    await Promise.all([nodeB.close(), nodeA.close()]);
    await path.close();
  }
}

function percentile(sorted: number[], p: number): number {
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo);
}

async function silence(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-bench-detection-'));
  const results: Trial[] = [];
  try {
    for (let first = 0; first < TRIALS; first += BATCH) {
      const count = Math.min(BATCH, TRIALS - first);
      progress(`detection: trials ${first + 1}–${first + count} of ${TRIALS}`);
      const batch = await Promise.all(Array.from({ length: count }, (_, i) => trial(first + i, dir)));
      results.push(...batch);
      const downs = batch.map((t) => t.downMs.toFixed(0)).join(' ');
      progress(`  down after (ms): ${downs}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const params = {
    trials: results.length,
    heartbeatIntervalMs: DEFAULT_HEALTH_OPTIONS.heartbeatIntervalMs,
    suspectPhi: DEFAULT_HEALTH_OPTIONS.suspectPhi,
    downPhi: DEFAULT_HEALTH_OPTIONS.downPhi,
    acceptablePauseMs: DEFAULT_HEALTH_OPTIONS.acceptablePauseMs,
    minStdDevMs: DEFAULT_HEALTH_OPTIONS.minStdDevMs,
    warmupMs: WARMUP_MS,
    fault: 'half-open relay (silent drop)',
    ...machine,
  };
  const downs = results.map((t) => t.downMs).sort((x, y) => x - y);
  const suspects = results.map((t) => t.suspectMs).sort((x, y) => x - y);
  report('down_latency_median', percentile(downs, 50), 'ms', params);
  report('down_latency_p99', percentile(downs, 99), 'ms', params);
  report('down_latency_max', downs.at(-1)!, 'ms', params);
  report('suspect_latency_median', percentile(suspects, 50), 'ms', params);
  report('suspect_latency_p99', percentile(suspects, 99), 'ms', params);
}

async function restart(): Promise<void> {
  progress(`detection: ${RESTARTS} clean restarts of a node that dials, then of one that waits`);
  const results: RestartResult[] = [];
  for (const kind of ['restarted-dials', 'restarted-waits'] as const) {
    results.push(await measureRestarts(kind, RESTARTS, progress));
  }
  for (const result of results) {
    const sorted = [...result.reconnectMs].sort((x, y) => x - y);
    const away = [...result.awayMs].sort((x, y) => x - y);
    const params = {
      case: result.case,
      restarts: sorted.length,
      stop: 'SIGTERM (close 1001)',
      from: 'restarted node listening',
      to: 'channel connected on both sides',
      awayMedianMs: Math.round(percentile(away, 50)),
      awayMaxMs: Math.round(away.at(-1)!),
      survivorDowns: result.survivorDowns,
      restartedDowns: result.restartedDowns,
      ...machine,
    };
    report('reconnect_after_restart_ms_p50', percentile(sorted, 50), 'ms', params);
    report('reconnect_after_restart_ms_p99', percentile(sorted, 99), 'ms', params);
    report('reconnect_after_restart_ms_max', sorted.at(-1)!, 'ms', params);
  }
}

const started = performance.now();
if (ONLY !== 'restart') await silence();
if (ONLY !== 'silence') await restart();
progress(`detection: done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
process.exit(0);
