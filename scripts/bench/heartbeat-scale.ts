/**
 * Heartbeat cost at scale: 1,000 channels in one process, each heartbeating at 1 Hz both ways
 * (HMAC-SHA256 frames over real loopback WebSockets, a phi detector per channel, RTT and
 * open-objects digest comparison on every heartbeat). Reports this process's CPU (% of one
 * core) and RSS while it runs; the other end of every channel lives in a second process (the
 * peer), so the measured process does exactly the work of one node with 1,000 peers.
 *
 * Measured: what health adds per channel — timers, encode + MAC, `ws` send and receive, MAC
 * check + decode, detector, digest compare. The handshake is skipped (each connection gets a
 * session secret directly): it runs once per connection, not per heartbeat.
 *
 * Run: `npm run bench -- heartbeat-scale` (or `npx tsx scripts/bench/heartbeat-scale.ts`).
 * Env: `PARLEY_BENCH_HB_CHANNELS` (default 1000), `PARLEY_BENCH_HB_WARMUP_MS` (default 10000),
 * `PARLEY_BENCH_HB_WINDOW_MS` (default 30000), `PARLEY_BENCH_HB_INTERVAL_MS` (default 1000),
 * `PARLEY_BENCH_HB_MODE=raw-ws`: the floor — the same sockets sending a 400-byte text frame at
 * the same rate with no health code at all (timers, `ws` and the kernel only).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { cpus } from 'node:os';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Subject } from 'rxjs';
import { WebSocket, WebSocketServer } from 'ws';
import { type ChannelHealth, createChannelHealth } from '../../src/health/channel-health.js';
import { isHeartbeatFrame } from '../../src/protocol/heartbeat-frames.js';
import type { Connection } from '../../src/transport/types.js';
import { createWsConnection } from '../../src/transport/ws-connection.js';

const CHANNELS = Number(process.env['PARLEY_BENCH_HB_CHANNELS'] ?? 1000);
const WARMUP_MS = Number(process.env['PARLEY_BENCH_HB_WARMUP_MS'] ?? 10_000);
const WINDOW_MS = Number(process.env['PARLEY_BENCH_HB_WINDOW_MS'] ?? 30_000);
const INTERVAL_MS = Number(process.env['PARLEY_BENCH_HB_INTERVAL_MS'] ?? 1000);
const MODE = process.env['PARLEY_BENCH_HB_MODE'] === 'raw-ws' ? 'raw-ws' : 'health';

const machine = { node: process.version, cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length };
const progress = (text: string): void => void process.stderr.write(`${text}\n`);

/** Address-sized names (bech32 channel addresses are 50 characters). */
const nodeName = (side: 'node' | 'peer', i: number) => `lbr1${side}${String(i).padStart(41, '0')}`;
const secretOf = (i: number) => createHash('sha256').update(`heartbeat-scale ${i}`).digest('hex');
/** A realistic summary: a dozen open objects, a full digest. */
const summary = { count: 12, digest: createHash('sha256').update('open objects').digest('hex') };

/** The floor: a frame of a heartbeat's size at the same rate, nothing else. */
function rawEnd(ws: WebSocket): ChannelHealth {
  const frame = 'x'.repeat(400);
  let received = 0;
  ws.on('message', () => void received++);
  const timer = setInterval(() => ws.send(frame), INTERVAL_MS);
  ws.once('close', () => clearInterval(timer));
  return {
    state: 'healthy',
    health$: new Subject<never>(),
    snapshot: () => ({ heartbeatsReceived: received }),
    close: () => clearInterval(timer),
  } as unknown as ChannelHealth;
}

/** One channel end: a connection and its health monitor. */
function channelEnd(
  ws: WebSocket,
  i: number,
  dialed: boolean,
): { health: ChannelHealth; connection: Connection } {
  const me = nodeName(dialed ? 'peer' : 'node', i);
  const peer = nodeName(dialed ? 'node' : 'peer', i);
  const connection = createWsConnection(ws, {
    peer,
    peerEpoch: `epoch-${peer}`,
    peerSummary: summary,
    dialed,
    id: secretOf(i).slice(0, 32),
    dialedAtMs: 0,
    sessionSecret: secretOf(i),
  });
  const health = createChannelHealth(
    { heartbeatIntervalMs: INTERVAL_MS },
    { me, peer, myEpoch: `epoch-${me}`, summary: () => summary, inflight: () => 0 },
  );
  connection.frames$.subscribe((frame) => {
    if (isHeartbeatFrame(frame)) health.receive(frame, connection);
  });
  health.attach(connection);
  return { health, connection };
}

function cpuMeter() {
  let cpu = process.cpuUsage();
  let at = performance.now();
  return {
    reset() {
      cpu = process.cpuUsage();
      at = performance.now();
    },
    /** CPU time used since `reset`, as % of one core. */
    percent() {
      const used = process.cpuUsage(cpu);
      return ((used.user + used.system) / 1000 / (performance.now() - at)) * 100;
    },
  };
}

if (process.argv[2] === '--peer') {
  // The other end of every channel: dials the measuring process.
  const url = process.argv[3]!;
  const meter = cpuMeter();
  const ends: ChannelHealth[] = [];
  for (let i = 0; i < CHANNELS; i += 100) {
    await Promise.all(
      Array.from({ length: Math.min(100, CHANNELS - i) }, (_, k) => {
        const ws = new WebSocket(`${url}/${i + k}`, { perMessageDeflate: false });
        return new Promise<void>((resolve, reject) => {
          ws.once('open', () => {
            ends.push(MODE === 'raw-ws' ? rawEnd(ws) : channelEnd(ws, i + k, true).health);
            resolve();
          });
          ws.once('error', reject);
        });
      }),
    );
  }
  process.stdout.write(`${JSON.stringify({ t: 'ready' })}\n`);
  createInterface({ input: process.stdin }).on('line', (line) => {
    if (line === 'mark') meter.reset();
    if (line === 'stats') {
      const unhealthy = ends.filter((h) => h.state !== 'healthy').length;
      process.stdout.write(
        `${JSON.stringify({ t: 'stats', cpuPercent: meter.percent(), rssMb: process.memoryUsage().rss / 2 ** 20, unhealthy })}\n`,
      );
    }
  });
} else {
  const started = performance.now();
  const ends: ChannelHealth[] = [];
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  server.on('connection', (ws: WebSocket, req: IncomingMessage) => {
    const i = Number((req.url ?? '/').slice(1));
    ends.push(MODE === 'raw-ws' ? rawEnd(ws) : channelEnd(ws, i, false).health);
  });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  progress(`heartbeat-scale: ${CHANNELS} channels at ${1000 / INTERVAL_MS} Hz, peer process dialing…`);
  const peer = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(import.meta.url), '--peer', `ws://127.0.0.1:${port}`],
    { stdio: ['pipe', 'pipe', 'inherit'], env: process.env },
  );
  const lines = createInterface({ input: peer.stdout! });
  const nextLine = (t: string) =>
    new Promise<Record<string, number>>((resolve) => {
      const onLine = (text: string) => {
        const line = JSON.parse(text) as Record<string, number> & { t: string };
        if (line.t === t) {
          lines.off('line', onLine);
          resolve(line);
        }
      };
      lines.on('line', onLine);
    });
  await nextLine('ready');
  progress(`heartbeat-scale: ${ends.length} channels up; warming up ${WARMUP_MS / 1000} s`);
  await new Promise((resolve) => setTimeout(resolve, WARMUP_MS));

  const meter = cpuMeter();
  const loop = monitorEventLoopDelay({ resolution: 10 });
  const transitions: string[] = [];
  const subs = ends.map((h) =>
    h.health$.subscribe((e) => {
      if (e.kind === 'transition') transitions.push(e.to);
    }),
  );
  const receivedBefore = ends.reduce((sum, h) => sum + h.snapshot().heartbeatsReceived, 0);
  loop.enable();
  meter.reset();
  peer.stdin!.write('mark\n');
  progress(`heartbeat-scale: measuring ${WINDOW_MS / 1000} s`);
  await new Promise((resolve) => setTimeout(resolve, WINDOW_MS));
  const cpuPercent = meter.percent();
  loop.disable();
  const rssMb = process.memoryUsage().rss / 2 ** 20;
  const received = ends.reduce((sum, h) => sum + h.snapshot().heartbeatsReceived, 0) - receivedBefore;
  const unhealthy = ends.filter((h) => h.state !== 'healthy').length;
  peer.stdin!.write('stats\n');
  const peerStats = await nextLine('stats');
  for (const s of subs) s.unsubscribe();

  const params = {
    mode: MODE,
    channels: ends.length,
    intervalMs: INTERVAL_MS,
    windowMs: WINDOW_MS,
    ...machine,
  };
  const report = (metric: string, value: number, unit: string) =>
    process.stdout.write(
      `${JSON.stringify({ bench: 'heartbeat-scale', metric, value: Math.round(value * 100) / 100, unit, params })}\n`,
    );
  report('cpu_percent_of_one_core', cpuPercent, '%');
  report('rss', rssMb, 'MB');
  report('heartbeats_received_per_s', received / (WINDOW_MS / 1000), '1/s');
  report('event_loop_delay_p99', loop.percentile(99) / 1e6, 'ms');
  report('false_transitions', transitions.filter((to) => to !== 'healthy').length, 'count');
  report('unhealthy_channels_at_end', unhealthy + (peerStats['unhealthy'] ?? 0), 'count');
  report('peer_process_cpu_percent_of_one_core', peerStats['cpuPercent'] ?? Number.NaN, '%');

  for (const h of ends) h.close();
  peer.kill('SIGTERM');
  server.close();
  for (const client of server.clients) client.terminate();
  progress(`heartbeat-scale: done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  process.exit(0);
}
