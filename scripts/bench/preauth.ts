/**
 * Memory a node holds for what anyone can send before authentication (docs/security.md):
 * 2,000 idle TCP connections (nothing sent) and 250 upgraded sockets that each send the header
 * of a frame as large as `maxFrameBytes` and up to 1 MiB of its payload, from 32 loopback
 * addresses (127.0.0.10–41; Linux routes all of 127/8 to lo). The node runs in its own process
 * (`_preauth-node.ts`); its RSS is sampled every 10 ms, and `rss_growth_mb` is the peak over the
 * baseline taken after a garbage collection, after a warm-up; `control_growth_mb` is the same
 * measure over a window without any attack (what the process grows by itself). Run for
 * `maxFrameBytes` 1 MiB and its maximum.
 *
 * Run: `npm run bench -- preauth`. Env: `PARLEY_BENCH_PREAUTH_IDLE` (default 2000),
 * `PARLEY_BENCH_PREAUTH_PARTIAL` (default 250), to measure either part alone;
 * `PARLEY_BENCH_PREAUTH_SIZES` (comma-separated maxFrameBytes values).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { MAX_CHANNEL_MAX_FRAME_BYTES } from '../../src/transport/defaults.js';

const IDLE = Number(process.env['PARLEY_BENCH_PREAUTH_IDLE'] ?? 2000);
const PARTIAL = Number(process.env['PARLEY_BENCH_PREAUTH_PARTIAL'] ?? 250);
const ADDRESSES = 32;
const SAMPLE_MS = 1500;
const WARMUP_MS = 5000;
const here = dirname(fileURLToPath(import.meta.url));
const machine = { node: process.version, cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length };
const progress = (text: string): void => void process.stderr.write(`${text}\n`);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function startNode(maxFrameBytes: number): { child: ChildProcess; lines: Interface } {
  const child = spawn(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', join(here, '_preauth-node.ts'), String(maxFrameBytes)],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  return { child, lines: createInterface({ input: child.stdout! }) };
}

async function ask(
  node: { child: ChildProcess; lines: Interface },
  command?: string,
): Promise<Record<string, number>> {
  const next = new Promise<string>((resolve) => node.lines.once('line', resolve));
  if (command) node.child.stdin!.write(`${command}\n`);
  return JSON.parse(await next) as Record<string, number>;
}

function open(port: number, localAddress?: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', ...(localAddress ? { localAddress } : {}) }, () =>
      resolve(socket),
    );
    socket.once('error', reject);
  });
}

/** Upgrades `socket`; resolves with whether the server answered 101. */
function upgrade(socket: Socket, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    let head = '';
    const onData = (chunk: Buffer): void => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      resolve(head.startsWith('HTTP/1.1 101'));
    };
    socket.on('data', onData);
    socket.once('close', () => resolve(false));
    socket.write(
      `GET /parley/v1 HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
  });
}

/** A masked text frame header declaring `length` bytes, and `sent` bytes of its (masked) payload. */
function partialFrame(length: number, sent: number): Buffer {
  const head = Buffer.alloc(14);
  head[0] = 0x81;
  head[1] = 0x80 | 127;
  head.writeBigUInt64BE(BigInt(length), 2);
  randomBytes(4).copy(head, 10);
  return Buffer.concat([head, Buffer.alloc(sent, 0x61)]);
}

async function run(maxFrameBytes: number): Promise<void> {
  const node = startNode(maxFrameBytes);
  const { port } = await ask(node);
  // A young process grows by itself (lazy modules, compiled code): warm up, then measure the
  // same window without any attack as the control.
  await sleep(WARMUP_MS);
  await ask(node, 'reset');
  await sleep(SAMPLE_MS);
  const control = await ask(node, 'peak');
  await ask(node, 'reset');
  progress(`preauth: node on port ${port}; ${IDLE} idle sockets`);
  const sockets: Socket[] = [];
  const idle = await Promise.all(Array.from({ length: IDLE }, () => open(port!).catch(() => undefined)));
  for (const s of idle) if (s) sockets.push(s);
  progress(`preauth: ${PARTIAL} partial frames`);
  let upgraded = 0;
  let closedEarly = 0;
  const sent = Math.min(maxFrameBytes, 1024 * 1024) - 1;
  await Promise.all(
    Array.from({ length: PARTIAL }, async (_, i) => {
      const socket = await open(port!, `127.0.0.${10 + (i % ADDRESSES)}`).catch(() => undefined);
      if (!socket) return;
      socket.on('error', () => undefined);
      sockets.push(socket);
      if (!(await upgrade(socket, port!))) return;
      upgraded++;
      socket.once('close', () => closedEarly++);
      await new Promise<void>((resolve) => socket.write(partialFrame(maxFrameBytes, sent), () => resolve()));
    }),
  );
  progress('preauth: sent; sampling');
  // Let the server read what was sent (benchmarks may wait; RSS is sampled meanwhile).
  await sleep(SAMPLE_MS);
  const { baseline, peak } = await ask(node, 'peak');
  const params = {
    maxFrameBytes,
    control_growth_mb: Math.round(((control['peak']! - control['baseline']!) / 1024 / 1024) * 10) / 10,
    idle_sockets: idle.filter(Boolean).length,
    partial_frames: PARTIAL,
    upgraded,
    closed_while_sending: closedEarly,
    payload_sent_per_frame: sent,
    ...machine,
  };
  process.stdout.write(
    `${JSON.stringify({
      bench: 'preauth',
      metric: 'rss_growth_mb',
      value: Math.round(((peak! - baseline!) / 1024 / 1024) * 10) / 10,
      unit: 'MB',
      params,
    })}\n`,
  );
  for (const s of sockets) s.destroy();
  node.child.stdin!.write('stop\n');
  await new Promise<void>((resolve) => node.child.once('exit', () => resolve()));
}

const sizes = process.env['PARLEY_BENCH_PREAUTH_SIZES']?.split(',').map(Number) ?? [
  1024 * 1024,
  MAX_CHANNEL_MAX_FRAME_BYTES,
];
for (const maxFrameBytes of sizes) {
  progress(`preauth: maxFrameBytes ${maxFrameBytes}`);
  await run(maxFrameBytes);
}
