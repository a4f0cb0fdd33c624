/**
 * The node under test of `preauth.ts`, in a process of its own so that its memory is measured
 * alone. Argument: maxFrameBytes. Prints `{"port":…}` once listening; then, on stdin, `reset`
 * (collect garbage, start a new peak from here) and `peak` (prints `{"baseline","peak"}` in
 * bytes of RSS, sampled every 10 ms).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createVaspNode } from '../../src/node.js';
import { encodeAddress, generatePrivateKey } from '../../src/protocol/index.js';

const maxFrameBytes = Number(process.argv[2]);
const dir = mkdtempSync(join(tmpdir(), 'parley-bench-preauth-'));
const key = generatePrivateKey();
const node = await createVaspNode({
  address: encodeAddress({ hrp: 'lbr', onchain: new Uint8Array(16).fill(0x51) }),
  privateKeySeed: key.seedHex,
  database: `file:${join(dir, 'node.db')}`,
  listen: { host: '127.0.0.1', port: 0 },
  maxFrameBytes,
});
const gc = (globalThis as { gc?: () => void }).gc;
let baseline = process.memoryUsage().rss;
let peak = baseline;
const sampler = setInterval(() => {
  peak = Math.max(peak, process.memoryUsage().rss);
}, 10);
process.stdout.write(`${JSON.stringify({ port: node.port })}\n`);
for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'reset') {
    gc?.();
    baseline = process.memoryUsage().rss;
    peak = baseline;
    process.stdout.write(`${JSON.stringify({ ok: true })}\n`);
  } else if (line === 'peak') {
    process.stdout.write(`${JSON.stringify({ baseline, peak })}\n`);
  } else if (line === 'stop') {
    break;
  }
}
clearInterval(sampler);
await node.close();
rmSync(dir, { recursive: true, force: true });
// stdin (a pipe from the benchmark) would keep the process alive.
process.exit(0);
