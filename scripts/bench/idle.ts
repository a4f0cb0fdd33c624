/**
 * Idle memory benchmark: `parley start` as shipped (the compiled CLI, `dist/cli/main.js`, run by
 * plain `node` with no V8 flags) with the configuration `parley init` writes, and two peers (two
 * other `parley start` processes, each with this node as its only peer). After the channels are
 * up it waits `PARLEY_BENCH_IDLE_WAIT_S` (default 60) seconds of heartbeats, then samples the
 * node's resident set (`VmRSS` of /proc/PID/status) every 500 ms for `PARLEY_BENCH_IDLE_SAMPLE_S`
 * (default 30) seconds and prints the maximum as `idle_rss_mb`.
 *
 *   npm run build && npm run bench -- idle
 *
 * Without dist/ (no build) it says so and runs the TypeScript sources through tsx
 * (`bin/parley.js` in a checkout), whose loader adds to the figure: `params.runner` tells which.
 * `PARLEY_BENCH_IDLE_RUNNER=tsx` forces the tsx run. `PARLEY_BENCH_IDLE_RESTART=1` measures the
 * node's second start instead (its database already migrated: no schema engine loaded).
 * Linux only (/proc).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const WAIT_S = Number(process.env['PARLEY_BENCH_IDLE_WAIT_S'] ?? 60);
const SAMPLE_S = Number(process.env['PARLEY_BENCH_IDLE_SAMPLE_S'] ?? 30);
const RESTART = process.env['PARLEY_BENCH_IDLE_RESTART'] === '1';
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dist = join(root, 'dist', 'cli', 'main.js');
const runner = process.env['PARLEY_BENCH_IDLE_RUNNER'] === 'tsx' || !existsSync(dist) ? 'tsx' : 'dist';
const cli = runner === 'dist' ? dist : join(root, 'bin', 'parley.js');
const machine = { node: process.version, cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length };

function progress(message: string): void {
  process.stderr.write(`[bench idle] ${message}\n`);
}

function report(metric: string, value: number, unit: string, params: Record<string, unknown>): void {
  const load1 = Math.round((loadavg()[0] ?? 0) * 100) / 100;
  const line = {
    bench: 'idle',
    metric,
    value: Math.round(value * 10) / 10,
    unit,
    params: { ...params, ...machine, load1 },
  };
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

/** A TCP port free on 127.0.0.1 right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

function parley(args: string[]): string {
  const run = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`parley ${args.join(' ')}: ${run.stderr}`);
  return run.stdout;
}

interface Node {
  dir: string;
  address: string;
  publicKey: string;
  port: number;
}

async function init(base: string, name: string): Promise<Node> {
  const dir = join(base, name);
  const port = await freePort();
  const out = JSON.parse(
    parley(['init', '--random-address', '--dir', dir, '--port', String(port), '--json']),
  ) as {
    address: string;
    publicKey: string;
  };
  return { dir, address: out.address, publicKey: out.publicKey, port };
}

function addPeer(node: Node, peer: Node): void {
  parley([
    'peer',
    'add',
    '--config',
    join(node.dir, 'parley.config.json'),
    '--address',
    peer.address,
    '--public-key',
    peer.publicKey,
    '--url',
    `ws://127.0.0.1:${peer.port}/parley/v1`,
  ]);
}

/** Starts `parley start`; resolves once it has logged `connected` `peers` times. */
function start(node: Node, peers: number, children: ChildProcess[]): Promise<ChildProcess> {
  const child = spawn(process.execPath, [cli, 'start', '--config', join(node.dir, 'parley.config.json')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let connected = 0;
    const timer = setTimeout(() => reject(new Error(`${node.dir}: not connected after 60 s`)), 60_000);
    child.once('exit', (code) => reject(new Error(`${node.dir}: exited (${code})`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!line.startsWith('{')) return;
      const event = (JSON.parse(line) as { event?: string }).event;
      if (event === 'connected') connected++;
      if (peers === 0 ? event === 'started' : event === 'connected' && connected === peers) {
        clearTimeout(timer);
        resolve(child);
      }
    });
  });
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
  return kb / 1024;
}

const base = mkdtempSync(join(tmpdir(), 'parley-bench-idle-'));
const children: ChildProcess[] = [];
try {
  if (runner === 'tsx') progress('dist/ not built (or tsx asked for): running the sources through tsx');
  const [a, b, c] = [await init(base, 'a'), await init(base, 'b'), await init(base, 'c')];
  addPeer(a, b);
  addPeer(a, c);
  addPeer(b, a);
  addPeer(c, a);
  await Promise.all([start(b, 0, children), start(c, 0, children)]);
  if (RESTART) {
    const first = await start(a, 2, children);
    const exited = new Promise((resolve) => first.once('exit', resolve));
    first.kill('SIGTERM');
    await exited;
    children.pop();
  }
  const node = await start(a, 2, children);
  progress(`node up with 2 peers (pid ${node.pid}); ${WAIT_S} s of heartbeats`);
  await new Promise((resolve) => setTimeout(resolve, WAIT_S * 1000));
  const samples: number[] = [];
  const end = Date.now() + SAMPLE_S * 1000;
  while (Date.now() < end) {
    samples.push(rssMb(node.pid!));
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  const params = {
    runner,
    peers: 2,
    config: 'parley init defaults',
    start: RESTART ? 'second (database migrated before)' : 'first (fresh database, migrations applied)',
    wait_s: WAIT_S,
    sample_s: SAMPLE_S,
    samples: samples.length,
    min_mb: Math.round(Math.min(...samples) * 10) / 10,
  };
  report('idle_rss_mb', Math.max(...samples), 'MB', params);
  // The two peers (one channel each), for comparison.
  for (const child of children.slice(0, 2)) {
    if (child.pid !== undefined) report('peer_idle_rss_mb', rssMb(child.pid), 'MB', { runner, peers: 1 });
  }
} finally {
  for (const child of children) child.kill('SIGTERM');
  await Promise.all(
    children.map((child) =>
      child.exitCode === null ? new Promise((r) => child.once('exit', r)) : undefined,
    ),
  );
  rmSync(base, { recursive: true, force: true });
}
