/**
 * Failover benchmark: VASP A as several replicas (real node processes) on one PostgreSQL
 * database, a counterparty B (a process of its own, its own database), payments both ways.
 *
 *   npm run bench -- failover [--kills N] [--duration S] [--replicas R] [--ttl MS --renew MS]
 *                             [--no-load] [--no-stop]
 *
 * - `failover_ms` (p50, p99, max): the owner of the channel is SIGKILLed `--kills` times (default
 *   5; restarted as a standby after each); from the kill until both the first A→B command and
 *   the first B→A command succeed after it (payments are started every 200 ms on both sides, at
 *   every replica of A: a standby refuses them).
 * - `sigstop_lease_kept` (1 kept, 0 lost), for a 1 s and a 10 s SIGSTOP of the owner, under load:
 *   a 1 s pause must keep the lease, a 10 s one must lose it.
 * - `false_takeovers`: lease changes (a new token on the channel's lease row, polled every 50 ms)
 *   with no owner killed or stopped, during a loaded run of `--duration` seconds (default 300):
 *   two busy processes per core and steady payments both ways.
 *
 * The lease timing is the configuration's defaults unless `--ttl`/`--renew` are given. PostgreSQL
 * is the server of `TEST_PG_URL` (default postgresql://postgres@127.0.0.1:5432/postgres). One
 * JSON line per result on stdout, progress on stderr.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import pg from 'pg';

process.env['TEST_PG_URL'] ||= 'postgresql://postgres@127.0.0.1:5432/postgres';
const { parseNodeConfig } = await import('../../src/config.js');
const { createStoreFixture } = await import('../../test/helpers/store.js');
const { createNodeProcess } = await import('../../test/helpers/node-process.js');
const { nodeConfig, testIdentity } = await import('../../test/helpers/nodes.js');
type NodeProcess = import('../../test/helpers/node-process.js').NodeProcess;
type TaggedLine = import('../../test/helpers/node-process.js').TaggedLine;

const { values: opts } = parseArgs({
  options: {
    kills: { type: 'string', default: '5' },
    duration: { type: 'string', default: '300' },
    replicas: { type: 'string', default: '2' },
    ttl: { type: 'string' },
    renew: { type: 'string' },
    'no-load': { type: 'boolean', default: false },
    'no-stop': { type: 'boolean', default: false },
  },
});

const a = testIdentity(0x71);
const b = testIdentity(0x72);
const defaults = parseNodeConfig({
  ...nodeConfig(a, 'postgresql://probe@127.0.0.1/probe', []),
  replica: { id: 'probe' },
}).replica!;
const lease = {
  leaseTtlMs: opts.ttl === undefined ? defaults.leaseTtlMs : Number(opts.ttl),
  renewMs: opts.renew === undefined ? defaults.renewMs : Number(opts.renew),
};
const KILLS = Number(opts.kills);
const DURATION_S = Number(opts.duration);
const REPLICAS = Math.max(2, Number(opts.replicas));
/** A failover slower than this fails the run. */
const LIMIT_MS = 120_000;
const PAY_EVERY_MS = 200;
/** How often the lease row is read. */
const WATCH_MS = 50;
const machine = { node: process.version, cores: cpus().length };
const params = { ...lease, replicas: REPLICAS, ...machine };

function progress(message: string): void {
  process.stderr.write(`[bench failover] ${message}\n`);
}

function report(metric: string, value: number, unit: string, extra: Record<string, unknown> = {}): void {
  const line = { bench: 'failover', metric, value: Math.round(value), unit, params: { ...params, ...extra } };
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The lease row of the channel, as the database has it: who owns it, with which token. */
interface LeaseSample {
  at: number;
  owner: string | null;
  token: string | null;
}

/** Polls the lease row every 50 ms; `changes` are the token changes seen (each a takeover or a re-take). */
function watchLease(client: pg.Client) {
  let last: LeaseSample = { at: 0, owner: null, token: null };
  const changes: LeaseSample[] = [];
  /** Time between two renewals of one token, by the database's clock (0 while not renewed since the last read). */
  const gaps: number[] = [];
  let lastRenewed: number | undefined;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const { rows } = await client.query<{ owner: string; token: string; renewed: string }>(
        `SELECT owner, token, (EXTRACT(EPOCH FROM updated_at) * 1000)::bigint AS renewed
           FROM channel_lease WHERE peer = $1`,
        [b.address],
      );
      const row = rows[0];
      const sample = { at: performance.now(), owner: row?.owner ?? null, token: row?.token ?? null };
      if (sample.token !== last.token && sample.token !== null) changes.push(sample);
      else if (row && sample.token !== null && lastRenewed !== undefined) {
        gaps.push(Number(row.renewed) - lastRenewed);
      }
      lastRenewed = row ? Number(row.renewed) : undefined;
      last = sample;
      await sleep(WATCH_MS);
    }
  })();
  return {
    changes,
    gaps,
    current: () => last,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

/** Two busy processes per core (a loaded machine); stopped by the returned function. */
function burn(): () => void {
  const burners: ChildProcess[] = [];
  for (let i = 0; i < 2 * cpus().length; i++) {
    burners.push(spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
  }
  return () => {
    for (const p of burners) p.kill('SIGKILL');
  };
}

async function main(): Promise<void> {
  const dbA = await createStoreFixture('postgresql');
  const dbB = await createStoreFixture('postgresql');
  const watcher = new pg.Client({ connectionString: dbA.url.replace(/^postgres(ql)?:/, 'postgresql:') });
  const procs: NodeProcess[] = [];
  let stopBurning: (() => void) | undefined;
  const pids = new Map<string, number>();
  let paying: ReturnType<typeof setInterval> | undefined;
  try {
    // B has no URL of A: A's owner dials B (as after every takeover).
    const nodeB = createNodeProcess({ name: 'b', identity: b, peers: [{ identity: a }], database: dbB.url });
    procs.push(nodeB);
    await nodeB.start();
    const replicas: NodeProcess[] = [];
    for (let i = 0; i < REPLICAS; i++) {
      const id = `a${i + 1}`;
      const proc = createNodeProcess({
        name: id,
        identity: a,
        peers: [{ identity: b, url: nodeB.url }],
        database: dbA.url,
        replica: { id, ...lease },
      });
      procs.push(proc);
      replicas.push(proc);
      pids.set(id, (await proc.start()).pid);
    }
    await watcher.connect();
    const lease$ = watchLease(watcher);
    const owner = async (): Promise<NodeProcess> => {
      const end = performance.now() + LIMIT_MS;
      for (;;) {
        const id = lease$.current().owner;
        const proc = replicas.find((r) => r.name === id && r.running);
        if (proc) return proc;
        if (performance.now() > end) throw new Error('no replica took the lease');
        await sleep(50);
      }
    };

    /** Arrival times of successful outbound commands, per side. */
    const succeeded = { ab: [] as number[], ba: [] as number[] };
    const onLine = ({ node, line }: TaggedLine): void => {
      if (line.t !== 'cmd' || line.dir !== 'out' || line.status !== 'success') return;
      (node === 'b' ? succeeded.ba : succeeded.ab).push(performance.now());
    };
    for (const proc of procs) proc.lines$.subscribe(onLine);
    paying = setInterval(() => {
      nodeB.request({ op: 'pay', to: a.address });
      for (const r of replicas) if (r.running) r.request({ op: 'pay', to: b.address });
    }, PAY_EVERY_MS);
    const firstAfter = async (list: number[], t0: number): Promise<number> => {
      for (;;) {
        const hit = list.find((t) => t > t0);
        if (hit !== undefined) return hit;
        if (performance.now() - t0 > LIMIT_MS) throw new Error('no command succeeded after the failover');
        await sleep(10);
      }
    };
    const takenAfter = async (t0: number): Promise<LeaseSample> => {
      for (;;) {
        const change = lease$.changes.find((c) => c.at > t0);
        if (change) return change;
        if (performance.now() - t0 > LIMIT_MS) throw new Error('no replica took the lease over');
        await sleep(10);
      }
    };
    /** Both directions work now. */
    const flowing = async (): Promise<void> => {
      const t = performance.now();
      await Promise.all([firstAfter(succeeded.ab, t), firstAfter(succeeded.ba, t)]);
    };
    await flowing();
    progress(`A's channel served by ${(await owner()).name}; lease ${JSON.stringify(lease)}`);

    // Loaded run: false takeovers, and SIGSTOP of the owner.
    if (!opts['no-load']) {
      stopBurning = burn();
      const before = lease$.changes.length;
      const gapsBefore = lease$.gaps.length;
      const t0 = performance.now();
      let paid = succeeded.ab.length + succeeded.ba.length;
      progress(`loaded run: ${2 * cpus().length} busy processes, ${DURATION_S} s`);
      while (performance.now() - t0 < DURATION_S * 1000) await sleep(1000);
      paid = succeeded.ab.length + succeeded.ba.length - paid;
      for (const c of lease$.changes.slice(before)) {
        progress(`lease taken by ${c.owner} at ${Math.round((c.at - t0) / 100) / 10} s of the loaded run`);
      }
      const gaps = lease$.gaps.slice(gapsBefore).filter((g) => g > 0);
      report('renewal_gap_ms_max', Math.max(...gaps), 'ms', { durationS: DURATION_S, loaded: true });
      report('false_takeovers', lease$.changes.length - before, 'count', {
        durationS: DURATION_S,
        busyProcesses: 2 * cpus().length,
        commandsSucceeded: paid,
      });
      if (!opts['no-stop']) {
        for (const stopMs of [1_000, 10_000]) {
          const victim = await owner();
          const pid = pids.get(victim.name)!;
          const changes = lease$.changes.length;
          process.kill(pid, 'SIGSTOP');
          await sleep(stopMs);
          process.kill(pid, 'SIGCONT');
          // Long enough after the pause for any takeover it caused to show.
          await sleep(lease.leaseTtlMs + 2 * lease.renewMs);
          const kept = lease$.changes.length === changes ? 1 : 0;
          report('sigstop_lease_kept', kept, 'bool', { stopMs, loaded: true });
          progress(`SIGSTOP ${stopMs} ms of ${victim.name}: lease ${kept ? 'kept' : 'lost'}`);
          await flowing();
        }
      }
      stopBurning();
      stopBurning = undefined;
    }

    const failovers: number[] = [];
    /** From the kill to the new token on the lease row (polled: up to WATCH_MS late). */
    const takeovers: number[] = [];
    for (let k = 0; k < KILLS; k++) {
      const victim = await owner();
      const t0 = performance.now();
      await victim.kill();
      // Served by the new owner only once it took the lease: a success reported before (a
      // response the dead owner sent just before the kill) does not count.
      const taken = await takenAfter(t0);
      const from = Math.max(t0, taken.at - WATCH_MS);
      const [ab, ba] = await Promise.all([firstAfter(succeeded.ab, from), firstAfter(succeeded.ba, from)]);
      const ms = Math.max(ab, ba) - t0;
      failovers.push(ms);
      const takenMs = Math.round(taken.at - t0);
      takeovers.push(takenMs);
      progress(
        `kill ${k + 1}/${KILLS} of ${victim.name}: lease taken after ${takenMs} ms, A→B ${Math.round(ab - t0)} ms, B→A ${Math.round(ba - t0)} ms`,
      );
      pids.set(victim.name, (await victim.start()).pid); // back, as a standby
      await sleep(lease.renewMs * 2);
      await flowing();
    }
    if (failovers.length > 0) {
      const sorted = [...failovers].sort((x, y) => x - y);
      report('failover_ms_p50', percentile(sorted, 50), 'ms', { kills: KILLS });
      report('failover_ms_p99', percentile(sorted, 99), 'ms', { kills: KILLS });
      report('failover_ms_max', sorted.at(-1)!, 'ms', { kills: KILLS });
      const taken = [...takeovers].sort((x, y) => x - y);
      report('lease_taken_ms_p50', percentile(taken, 50), 'ms', { kills: KILLS });
      report('lease_taken_ms_p99', percentile(taken, 99), 'ms', { kills: KILLS });
    }
    await lease$.stop();
  } finally {
    if (paying) clearInterval(paying);
    stopBurning?.();
    for (const proc of procs) await proc.dispose().catch(() => undefined);
    await watcher.end().catch(() => undefined);
    await dbA.dispose();
    await dbB.dispose();
  }
}

await main();
