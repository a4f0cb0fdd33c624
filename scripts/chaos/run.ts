/**
 * `npm run chaos -- [options]`: separate `parley start` processes on 127.0.0.1 under steady
 * payments, SIGKILLs, a wiped database and TCP faults, then an invariant check over their
 * databases. Prints one JSON summary line and readable lines; exits 0 when every invariant
 * held, 1 on any violation, 2 on a bad option, 3 when the hard deadline struck. docs/chaos.md.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type ChaosSummary, checkRun, RUN_RECORD, type RunRecord, runChaos } from './chaos.js';
import type { Cluster } from './cluster.js';

export const CHAOS_HELP = `Usage: npm run chaos -- [options]

  --duration T     how long payments and faults go on (default 3m; e.g. 60s, 10m, 1h)
  --settle T       how long the nodes may take to go quiet afterwards (default 2m)
  --deadline T     hard limit of the whole run; every process is killed then (default
                   duration + settle + 3m)
  --seed N         the seed of the fault schedule and the payments (default: random; printed)
  --nodes N        VASP nodes, 2-5, a channel between every two (default 3)
  --rate N         payments per second over all nodes (default 8)
  --wait-share F   share of payments sent with ?wait=1 (default 0.2)
  --wipes N        databases deleted during the run (default 1)
  --dir PATH       where the run's temp folder is made (default the system temp folder)
  --keep           keep the run's folder (databases, configs, node logs) even when all held
  --recheck DIR    check a kept run folder again (its nodes stopped), without running anything
                   (all but ack_not_durable, which is checked at each SIGKILL)
`;

/** `90`, `90s`, `5m`, `1h`, `1500ms` → ms. */
export function parseDuration(text: string, name: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!match)
    throw new Error(`--${name} must be a duration such as 90s, 5m or 1h, got ${JSON.stringify(text)}`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(match[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  return Math.round(Number(match[1]) * unit);
}

interface Cli {
  recheck: string | undefined;
  durationMs: number;
  settleMs: number;
  deadlineMs: number;
  seed: number;
  nodes: number;
  rate: number;
  waitShare: number;
  wipes: number;
  dir: string;
  keep: boolean;
}

function parseCli(argv: string[]): Cli | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      duration: { type: 'string', default: '3m' },
      settle: { type: 'string', default: '2m' },
      deadline: { type: 'string' },
      seed: { type: 'string' },
      nodes: { type: 'string', default: '3' },
      rate: { type: 'string', default: '8' },
      'wait-share': { type: 'string', default: '0.2' },
      wipes: { type: 'string', default: '1' },
      dir: { type: 'string', default: tmpdir() },
      keep: { type: 'boolean', default: false },
      recheck: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return undefined;
  const number = (name: string, text: string, min: number, max: number): number => {
    const n = Number(text);
    if (!Number.isFinite(n) || n < min || n > max)
      throw new Error(`--${name} must be a number from ${min} to ${max}`);
    return n;
  };
  const durationMs = parseDuration(values.duration, 'duration');
  const settleMs = parseDuration(values.settle, 'settle');
  return {
    recheck: values.recheck === undefined ? undefined : resolve(values.recheck),
    durationMs,
    settleMs,
    deadlineMs:
      values.deadline === undefined
        ? durationMs + settleMs + 180_000
        : parseDuration(values.deadline, 'deadline'),
    seed:
      values.seed === undefined
        ? Math.floor(Math.random() * 2 ** 31)
        : Math.floor(number('seed', values.seed, 0, 2 ** 32 - 1)),
    nodes: Math.floor(number('nodes', values.nodes, 2, 5)),
    rate: number('rate', values.rate, 0.1, 1000),
    waitShare: number('wait-share', values['wait-share'], 0, 1),
    wipes: Math.floor(number('wipes', values.wipes, 0, 100)),
    dir: resolve(values.dir),
    keep: values.keep,
  };
}

/** The readable lines after the JSON line. */
function readable(s: ChaosSummary, cli: Cli, dir: string | undefined): string {
  const p = s.payments;
  const f = s.faults;
  const c = s.check;
  const lines = [
    `chaos: seed ${s.seed}, ${s.nodes} nodes, ${(s.faultMs / 1000).toFixed(1)} s of faults, ` +
      `quiet after ${(s.settleMs / 1000).toFixed(1)} s, ${(s.totalMs / 1000).toFixed(1)} s in all`,
    `  payments: ${p.requested} requested, ${p.acknowledged} acknowledged (${p.accepted} × 202, ` +
      `${p.completed} × 200 with ?wait=1), ${p.refused} refused, ${p.unanswered} unanswered`,
    `  faults: ${f.kills} SIGKILLs (${f.burstKills} right after a burst), ${f.wipes} wipes, ${f.cuts} cuts, ${f.stalls} stalls, ${f.delays} delays; ` +
      `proxy: ${s.proxy.connections} connections, ${s.proxy.resets} resets, ${s.proxy.refused} refused`,
  ];
  if (c) {
    lines.push(
      `  checked: ${c.objects} objects, ${c.logEntries} signed-log entries; acknowledged payments: ` +
        `${c.acknowledgedOnBoth} on both nodes, ${c.acknowledgedOnSurvivorOnly} only on the survivor of a wipe, ` +
        `${c.acknowledgedLostWithWipe} lost with a wiped sender`,
    );
  }
  if (s.ok) lines.push('  OK: every invariant held');
  else {
    lines.push(`  FAILED: ${s.violations.length} violation(s)`);
    for (const v of s.violations) lines.push(`  [${v.invariant}] ${v.message}`);
  }
  if (dir) lines.push(`  databases, configs and node logs kept in ${dir}`);
  const replay = `npm run chaos -- --seed ${s.seed} --duration ${cli.durationMs / 1000}s --nodes ${cli.nodes}`;
  lines.push(`  replay the schedule: ${replay}`);
  return `${lines.join('\n')}\n`;
}

const jsonLine = (s: ChaosSummary): string => {
  const kinds: Record<string, number> = {};
  for (const v of s.violations) kinds[v.invariant] = (kinds[v.invariant] ?? 0) + 1;
  return `${JSON.stringify({ ...s, violations: s.violations.length, violationKinds: kinds })}\n`;
};

/** `--recheck DIR`: the invariant check and `parley check` over a kept run folder. */
async function recheck(dir: string): Promise<number> {
  const record = JSON.parse(readFileSync(join(dir, RUN_RECORD), 'utf8')) as RunRecord;
  const { violations, stats } = await checkRun(dir, record);
  process.stdout.write(
    `${JSON.stringify({ chaos: 'recheck', ok: violations.length === 0, dir, check: stats, violations: violations.length })}\n`,
  );
  for (const v of violations) process.stdout.write(`  [${v.invariant}] ${v.message}\n`);
  if (violations.length === 0) process.stdout.write('  OK: every invariant held\n');
  return violations.length === 0 ? 0 : 1;
}

async function main(argv: string[]): Promise<number> {
  let cli: Cli | undefined;
  try {
    cli = parseCli(argv);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${CHAOS_HELP}`);
    return 2;
  }
  if (!cli) {
    process.stdout.write(CHAOS_HELP);
    return 0;
  }
  if (cli.recheck !== undefined) return recheck(cli.recheck);
  mkdirSync(cli.dir, { recursive: true });
  // The run's own folder: the only place it creates, and deletes, files.
  const dir = mkdtempSync(join(cli.dir, 'parley-chaos-'));
  const t0 = Date.now();
  const say = (line: string): void => {
    process.stdout.write(`${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s  ${line}\n`);
  };
  say(`seed ${cli.seed}; run folder ${dir}`);

  let cluster: Cluster | undefined;
  const killAll = async (why: string, code: number): Promise<never> => {
    say(`${why}: killing every process`);
    await cluster?.close();
    process.stdout.write(
      `${JSON.stringify({ chaos: 'summary', ok: false, seed: cli.seed, aborted: why })}\n`,
    );
    process.stdout.write(`  FAILED: ${why}; the run's folder is kept in ${dir}\n`);
    process.exit(code);
  };
  setTimeout(() => void killAll(`hard deadline of ${cli.deadlineMs / 1000} s`, 3), cli.deadlineMs).unref();
  process.once('SIGINT', () => void killAll('interrupted', 130));
  process.once('SIGTERM', () => void killAll('terminated', 143));

  let summary: ChaosSummary;
  try {
    summary = await runChaos(
      {
        dir,
        seed: cli.seed,
        nodes: cli.nodes,
        durationMs: cli.durationMs,
        settleMs: cli.settleMs,
        rate: cli.rate,
        waitShare: cli.waitShare,
        wipes: cli.wipes,
        narrate: say,
      },
      (c) => {
        cluster = c;
      },
    );
  } catch (err) {
    await cluster?.close();
    process.stdout.write(
      `${JSON.stringify({ chaos: 'summary', ok: false, seed: cli.seed, error: String(err) })}\n`,
    );
    process.stdout.write(`  FAILED: ${(err as Error).stack ?? String(err)}\n  run folder kept in ${dir}\n`);
    return 1;
  }
  const keep = cli.keep || !summary.ok;
  if (!summary.ok) {
    writeFileSync(
      join(dir, 'violations.txt'),
      summary.violations.map((v) => `[${v.invariant}] ${v.message}\n`).join(''),
    );
  }
  if (!keep) rmSync(dir, { recursive: true, force: true });
  process.stdout.write(jsonLine(summary));
  process.stdout.write(readable(summary, cli, keep ? dir : undefined));
  return summary.ok ? 0 : 1;
}

process.exitCode = await main(process.argv.slice(2));
// A proxy or timer left behind must not hold the exit.
setTimeout(() => process.exit(), 2000).unref();
