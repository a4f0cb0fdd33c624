/**
 * Part of the `restore` benchmark: a closed-object restore between two node processes (ws on
 * 127.0.0.1, SQLite files with full durability, the product's default pace), and the channel's
 * round trips while it runs. A holds n closed payments with B, written straight into its store;
 * both start and meet once (B's epoch is recorded), then one-at-a-time creates measure the idle
 * round trip; B then loses its database and comes back, A sees `peer_state_lost` and leads the
 * restore (PROTOCOL.md §7.6), and the creates go on until the restore finished; the idle round
 * trip is measured once more after it.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { privateKeyFromSeedHex } from '../../src/protocol/index.js';
import { openStore } from '../../src/store/open-store.js';
import {
  type ChildLine,
  createNodeProcess,
  type NodeProcess,
  waitForLine,
} from '../../test/helpers/node-process.js';
import { type TestIdentity, testIdentity } from '../../test/helpers/nodes.js';
import { chainTemplate, type Party, signChain } from './_signed-chains.js';

export interface RestoreRttResult {
  n: number;
  commandsPerObject: number;
  restoreSeconds: number;
  /** CPU of both node processes from the restore's start to its end, per object. */
  cpuMsPerObject: number;
  idle: number[];
  during: number[];
  idleAfter: number[];
}

type RestoreLine = Extract<ChildLine, { t: 'restore' }>;
type RttLine = Extract<ChildLine, { t: 'rtt' }>;
type CpuLine = Extract<ChildLine, { t: 'cpu' }>;

const partyOf = (id: TestIdentity): Party => ({
  address: id.address,
  key: privateKeyFromSeedHex(id.seedHex),
});

let seq = 0;
async function ask<T extends ChildLine>(
  proc: NodeProcess,
  req: Record<string, unknown>,
  t: T['t'],
  ms: number,
): Promise<T> {
  const id = `q${++seq}`;
  const answer = waitForLine(
    proc.lines$,
    (line): line is T => line.t === t && 'id' in line && line.id === id,
    ms,
    `${t} from ${proc.name}`,
  );
  proc.request({ ...req, id });
  return answer;
}

const rtt = async (a: NodeProcess, to: string, count: number): Promise<number[]> =>
  (await ask<RttLine>(a, { op: 'rtt', to, count }, 'rtt', 120_000)).samples;

const cpuMs = async (procs: NodeProcess[]): Promise<number> =>
  (await Promise.all(procs.map((p) => ask<CpuLine>(p, { op: 'cpu' }, 'cpu', 60_000)))).reduce(
    (sum, l) => sum + l.ms,
    0,
  );

/** Writes `n` closed 13-command payments of A with B into A's store at `url`. */
async function buildClosed(url: string, a: Party, b: Party, n: number, progress: (s: string) => void) {
  const t = await chainTemplate(a, b, { steps: 12, close: true });
  const store = await openStore({ url });
  try {
    await store.upsertPeer({ address: b.address, publicKeyHex: b.key.publicKey.hex });
    for (let i = 0; i < n; i += 500) {
      const objects = await Promise.all(
        Array.from({ length: Math.min(500, n - i) }, () => signChain(t, a, b)),
      );
      await store.commit(objects.flat());
      if ((i / 500) % 20 === 0) progress(`  built ${i + objects.length}/${n} closed objects (two processes)`);
    }
  } finally {
    await store.close();
  }
  return t.steps.length;
}

export async function measureRestoreRtt(
  dir: string,
  n: number,
  idleSamples: number,
  progress: (s: string) => void,
): Promise<RestoreRttResult> {
  const idA = testIdentity(0x61);
  const idB = testIdentity(0x62);
  const dbA = join(dir, 'rtt-a.db');
  const dbB = join(dir, 'rtt-b.db');
  const commandsPerObject = await buildClosed(`file:${dbA}`, partyOf(idA), partyOf(idB), n, progress);
  const common = { business: 'inert', quiet: true, retransmitMs: 5000 } as const;
  const b = createNodeProcess({
    name: 'restore-B',
    identity: idB,
    peers: [{ identity: idA }],
    database: `file:${dbB}`,
    ...common,
  });
  const procs: NodeProcess[] = [b];
  try {
    await b.start();
    const a = createNodeProcess({
      name: 'restore-A',
      identity: idA,
      peers: [{ identity: idB, url: b.url }],
      database: `file:${dbA}`,
      ...common,
    });
    procs.push(a);
    const connected = waitForLine(a.lines$, (l): l is ChildLine => l.t === 'conn', 60_000, 'A connected');
    await a.start();
    await connected;
    progress('  idle round trips');
    await rtt(a, b.address, 50);
    const idle = await rtt(a, b.address, idleSamples);

    // B loses its state: A sees a new epoch and leads the restore.
    await b.stop();
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${dbB}${suffix}`, { force: true });
    const isLeader = (l: ChildLine): l is RestoreLine => l.t === 'restore' && l.role === 'leader';
    const limitMs = Math.max(300_000, n * 20);
    const started = waitForLine(a.lines$, isLeader, 120_000, 'the restore to start');
    const finished = waitForLine(
      a.lines$,
      (l): l is RestoreLine => isLeader(l) && l.state === 'finished',
      limitMs,
      'the end of the restore',
    );
    let done = false;
    void finished.then(
      () => {
        done = true;
      },
      () => {
        done = true;
      },
    );
    await b.start();
    await started;
    const cpu0 = await cpuMs([a, b]);
    const t0 = performance.now();
    progress(`  restoring ${n} objects between two processes, round trips meanwhile`);
    const during: number[] = [];
    while (!done) during.push(...(await rtt(a, b.address, 10)));
    const end = await finished;
    const restoreSeconds = (performance.now() - t0) / 1000;
    const cpuMsPerObject = ((await cpuMs([a, b])) - cpu0) / n;
    if (end.moved !== n) throw new Error(`restored ${end.moved} of ${n}`);
    progress('  idle round trips after the restore');
    const idleAfter = await rtt(a, b.address, idleSamples);
    return { n, commandsPerObject, restoreSeconds, cpuMsPerObject, idle, during, idleAfter };
  } finally {
    for (const p of procs) {
      await p.stop().catch(() => undefined);
      await p.dispose();
    }
  }
}

/** The `p`th percentile of `samples` (nearest rank). */
export function percentile(samples: readonly number[], p: number): number {
  const sorted = [...samples].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}
