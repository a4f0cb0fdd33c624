/**
 * A VASP node in its own process for the health tests and benchmarks (SIGSTOP/SIGCONT, a
 * restart on a wiped database, two event loops under load).
 *
 *   node --import tsx test/health/health-child.ts <spec.json>
 *
 * `spec.json`: `{ "config": NodeConfigInput, "health"?: HealthOptions }`.
 *
 * stdout, one JSON object per line:
 *   {"t":"ready","url","port","epoch","pid"}     once listening
 *   {"t":"health","event":HealthEvent}            every health event of this node
 *   {"t":"load","settled","failed","inflight","maxLoopDelayMs","p99LoopDelayMs","cpuPercent"}
 *                                                 after `stop-load`: what the load did, event-loop lag
 *   {"t":"closed"}                                after `exit` / SIGTERM
 * stdin, one JSON request per line:
 *   {"op":"load","to":<address>,"concurrency":N}  keep N payments to `to` in flight until stopped
 *   {"op":"stop-load"}
 *   {"op":"exit"}
 */
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { lastValueFrom } from 'rxjs';
import type { NodeConfigInput } from '../../src/config.js';
import type { HealthOptions } from '../../src/health/options.js';
import { createVaspNode } from '../../src/node.js';

const specFile = process.argv[2];
if (!specFile) {
  process.stderr.write('usage: health-child.ts <spec.json>\n');
  process.exit(2);
}
const spec = JSON.parse(readFileSync(specFile, 'utf8')) as {
  config: NodeConfigInput;
  health?: HealthOptions;
};
const emit = (line: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify(line)}\n`);
};

const node = await createVaspNode(spec.config, spec.health ? { health: spec.health } : {});
node.health$.subscribe((event) => emit({ t: 'health', event }));

const loopDelay = monitorEventLoopDelay({ resolution: 10 });
let loadStart = { cpu: process.cpuUsage(), at: performance.now() };
let loading = false;
let settled = 0;
let failed = 0;
let inflight = 0;

async function payLoop(to: string): Promise<void> {
  while (loading) {
    inflight++;
    try {
      const outcome = await lastValueFrom(node.pay({ to, amount: 1, currency: 'TIK' }).outcome$);
      if (outcome.status === 'success') settled++;
      else failed++;
    } catch {
      failed++;
    } finally {
      inflight--;
    }
  }
}

let stopping: Promise<void> | undefined;
function shutdown(): Promise<void> {
  stopping ??= (async () => {
    loading = false;
    await node.close();
    emit({ t: 'closed' });
    process.exit(0);
  })();
  return stopping;
}
process.on('SIGTERM', () => void shutdown());

createInterface({ input: process.stdin }).on('line', (text) => {
  const req = JSON.parse(text) as { op: string; to?: string; concurrency?: number };
  if (req.op === 'load' && req.to) {
    loading = true;
    loopDelay.reset();
    loopDelay.enable();
    loadStart = { cpu: process.cpuUsage(), at: performance.now() };
    for (let i = 0; i < (req.concurrency ?? 1); i++) void payLoop(req.to);
  } else if (req.op === 'stop-load') {
    loading = false;
    loopDelay.disable();
    const cpu = process.cpuUsage(loadStart.cpu);
    const cpuPercent = ((cpu.user + cpu.system) / 1000 / (performance.now() - loadStart.at)) * 100;
    emit({
      t: 'load',
      settled,
      failed,
      inflight,
      maxLoopDelayMs: loopDelay.max / 1e6,
      p99LoopDelayMs: loopDelay.percentile(99) / 1e6,
      cpuPercent,
    });
  } else if (req.op === 'exit') {
    void shutdown();
  }
});

emit({ t: 'ready', url: node.url, port: node.port, epoch: node.epoch, pid: process.pid });
