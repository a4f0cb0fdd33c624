/**
 * One chaos run: start the nodes, pay and fault them for the duration, let them go quiet, stop
 * them cleanly, then check the databases (see check.ts) and run `parley check` on each.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import type { AdminStatus } from '../../src/admin/routes.js';
import {
  type CheckResult,
  type CheckStats,
  checkInvariants,
  notDurable,
  type Violation,
  type Wipe,
} from './check.js';
import { type ChaosNode, type Cluster, createCluster, repoRoot } from './cluster.js';
import { type FaultCounts, runFaults } from './faults.js';
import { type AckedPayment, type LoadCounts, startLoad } from './load.js';
import { createRng } from './rng.js';

export interface ChaosOptions {
  /** The run's own folder (created empty by the caller). */
  dir: string;
  seed: number;
  nodes: number;
  durationMs: number;
  settleMs: number;
  rate: number;
  waitShare: number;
  wipes: number;
  narrate: (line: string) => void;
}

export interface ChaosSummary {
  chaos: 'summary';
  ok: boolean;
  seed: number;
  nodes: number;
  /** The faulted phase, the wait for quiet, and the whole run (ms). */
  faultMs: number;
  settleMs: number;
  totalMs: number;
  payments: LoadCounts & { acknowledged: number };
  faults: FaultCounts;
  proxy: { connections: number; refused: number; resets: number };
  check: CheckStats | null;
  violations: Violation[];
}

type Status = { node: ChaosNode; status: AdminStatus | undefined };

function adminStatus(node: ChaosNode): Promise<AdminStatus | undefined> {
  const admin = node.admin;
  if (!admin) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const req = request(
      new URL('/admin/status', admin.url),
      { timeout: 10_000, headers: { authorization: `Bearer ${admin.token}` } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', () => resolve(undefined));
        res.on('end', () => {
          try {
            resolve(
              res.statusCode === 200
                ? (JSON.parse(Buffer.concat(chunks).toString()) as AdminStatus)
                : undefined,
            );
          } catch {
            resolve(undefined);
          }
        });
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

const quietNow = (statuses: Status[]): boolean =>
  statuses.every(
    ({ status }) =>
      status?.channels.every((c) => c.state === 'connected' && c.inflight === 0 && c.openObjects === 0) ===
      true,
  );

const describe = (statuses: Status[]): string =>
  statuses
    .map(({ node, status }) =>
      status
        ? `${node.name}: ${status.channels.map((c) => `${c.state} inflight ${c.inflight} open ${c.openObjects}`).join(', ')}`
        : `${node.name}: no status`,
    )
    .join(' | ');

/**
 * Polls every node's `/admin/status` until all channels are connected with nothing in flight
 * and nothing open, three polls in a row. @returns undefined when quiet, else the last state
 */
async function untilQuiet(cluster: Cluster, timeoutMs: number): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  let streak = 0;
  let last: Status[] = [];
  while (Date.now() < deadline) {
    last = await Promise.all(cluster.nodes.map(async (node) => ({ node, status: await adminStatus(node) })));
    streak = quietNow(last) ? streak + 1 : 0;
    if (streak >= 3) return undefined;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return describe(last);
}

/** `parley check --json` on a stopped node. @returns its problems (empty when it passes) */
function parleyCheck(configFile: string): Promise<string[]> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(repoRoot, 'src/cli/main.ts'), 'check', '--config', configFile, '--json'],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.on('close', (code) => {
      try {
        const parsed = JSON.parse(out.trim().split('\n').at(-1) ?? '') as { ok: boolean; problems: string[] };
        resolve(code === 0 && parsed.ok ? [] : parsed.problems);
      } catch {
        resolve([`parley check exited ${code}: ${out.trim().slice(-500)}`]);
      }
    });
  });
}

/** What a run keeps in its folder, so that its databases can be checked again (`--recheck`). */
export interface RunRecord {
  seed: number;
  nodes: Array<{ name: string; address: string; wipes: Wipe[] }>;
  acknowledged: AckedPayment[];
}

export const RUN_RECORD = 'run.json';

/** The invariant check and `parley check` over the stopped nodes of a run folder. */
export async function checkRun(dir: string, record: RunRecord): Promise<CheckResult> {
  const nodes = record.nodes.map((n) => ({
    ...n,
    dbPath: join(dir, n.name, 'parley.db'),
    configFile: join(dir, n.name, 'parley.config.json'),
  }));
  const result = checkInvariants(nodes, record.acknowledged);
  const checks = await Promise.all(nodes.map((node) => parleyCheck(node.configFile)));
  for (const [i, problems] of checks.entries()) {
    for (const problem of problems) {
      result.violations.push({ invariant: 'parley_check', message: `${nodes[i]!.name}: ${problem}` });
    }
  }
  return result;
}

/**
 * `ack_not_durable`: what `node` acknowledged before its SIGKILL at `at` (since its last wipe)
 * must be in its signed log or outbox, read from its files before anything else touches them.
 */
function durableAtKill(
  node: ChaosNode,
  at: number,
  acked: readonly AckedPayment[],
): { held: number; lost: Violation[] } {
  const since = node.wipes.at(-1)?.at ?? 0;
  const mine = acked.filter((p) => p.from === node.name && p.at > since && p.at <= at);
  const missing = new Set(
    notDurable(
      node.dbPath,
      mine.map((p) => p.ref),
    ),
  );
  const lost = mine
    .filter((p) => missing.has(p.ref))
    .map(
      (p): Violation => ({
        invariant: 'ack_not_durable',
        message:
          `${node.name} acknowledged ${p.ref} (to ${p.to}${p.wait ? ', ?wait=1' : ''}) ` +
          `${at - p.at} ms before its SIGKILL; it is in neither its signed log nor its outbox`,
      }),
    );
  return { held: mine.length - lost.length, lost };
}

/** Runs the scenario; the caller kills `cluster` (returned early through `onCluster`) on a deadline. */
export async function runChaos(
  options: ChaosOptions,
  onCluster: (c: Cluster) => void,
): Promise<ChaosSummary> {
  const t0 = Date.now();
  const violations: Violation[] = [];
  const say = options.narrate;
  const cluster = await createCluster(options.dir, options.nodes);
  onCluster(cluster);
  await Promise.all(cluster.nodes.map((node) => cluster.start(node)));
  say(`started ${cluster.nodes.map((n) => n.name).join(', ')}; waiting for the channels`);
  const connected = await untilQuiet(cluster, 60_000);
  if (connected !== undefined) say(`not all channels up after 60 s (${connected}); going on`);

  const seedRng = createRng(options.seed);
  const faultRng = createRng(Math.floor(seedRng() * 2 ** 32));
  const loadRng = createRng(Math.floor(seedRng() * 2 ** 32));
  const tFaults = Date.now();
  const load = startLoad(cluster, loadRng, { rate: options.rate, waitShare: options.waitShare });
  const faults = runFaults(cluster, faultRng, {
    durationMs: options.durationMs,
    wipes: options.wipes,
    burst: (from, count) => load.burst(from, count),
    killed: (node, at) => {
      const { held, lost } = durableAtKill(node, at, load.acked);
      violations.push(...lost);
      say(`  ${node.name}: ${held} of ${held + lost.length} acknowledged payments on disk`);
    },
    narrate: say,
    violation: (message) => violations.push({ invariant: 'restart', message }),
  });
  await faults.done;
  await load.stop();
  const faultMs = Date.now() - tFaults;
  say(`faults over after ${(faultMs / 1000).toFixed(1)} s; waiting for quiet`);

  const tSettle = Date.now();
  const notQuiet = await untilQuiet(cluster, options.settleMs);
  const settleMs = Date.now() - tSettle;
  if (notQuiet !== undefined) {
    violations.push({
      invariant: 'not_quiet',
      message: `not quiet ${Math.round(options.settleMs / 1000)} s after the faults: ${notQuiet}`,
    });
  } else say(`quiet after ${(settleMs / 1000).toFixed(1)} s; stopping the nodes`);

  for (const [node, code] of await Promise.all(
    cluster.nodes.map(async (node) => [node, await cluster.stop(node)] as const),
  )) {
    if (code !== 0) violations.push({ invariant: 'stop', message: `${node.name} exited ${code} on SIGTERM` });
  }
  await cluster.close();

  const acked = load.acked;
  const record: RunRecord = {
    seed: options.seed,
    nodes: cluster.nodes.map((n) => ({ name: n.name, address: n.address, wipes: n.wipes })),
    acknowledged: [...acked],
  };
  writeFileSync(join(options.dir, RUN_RECORD), `${JSON.stringify(record)}\n`);
  const result = await checkRun(options.dir, record);
  violations.push(...result.violations);
  const proxy = { connections: 0, refused: 0, resets: 0 };
  for (const link of cluster.links) {
    proxy.connections += link.proxy.counts.connections;
    proxy.refused += link.proxy.counts.refused;
    proxy.resets += link.proxy.counts.resets;
  }
  return {
    chaos: 'summary',
    ok: violations.length === 0,
    seed: options.seed,
    nodes: options.nodes,
    faultMs,
    settleMs,
    totalMs: Date.now() - t0,
    payments: { ...load.counts, acknowledged: acked.length },
    faults: faults.counts,
    proxy,
    check: result.stats,
    violations,
  };
}
