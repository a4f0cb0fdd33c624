/**
 * The fault schedule of a chaos run: one fault at a time, drawn from the seed, until the run's
 * duration is over. The first four faults are one of each kind (a kill, a cut, a stall, a
 * delay) in a seeded order; the wipes fall after 40 % of the duration, spread over the rest of
 * it. A run shorter than that goes on until it has had each kind and every wipe.
 */
import type { ChaosLink, ChaosNode, Cluster } from './cluster.js';
import { between, pick, type Rng } from './rng.js';

export type FaultKind = 'kill' | 'wipe' | 'cut' | 'stall' | 'delay';

export interface FaultCounts {
  kills: number;
  /** Of the kills, those right after a burst of payments was acknowledged. */
  burstKills: number;
  wipes: number;
  cuts: number;
  stalls: number;
  delays: number;
  /** A node that could not be started again (each is also a violation). */
  restartFailures: number;
}

/** One line per fault, for the narration and the summary. */
export type Narrate = (line: string) => void;

export interface FaultRunOptions {
  durationMs: number;
  /** Told of every SIGKILL once the process is gone, before a wipe or a restart. */
  killed: (node: ChaosNode, at: number) => void;
  /** Sends a burst of payments from a node and resolves when all are answered (load.ts). */
  burst: (from: ChaosNode, count: number) => Promise<void>;
  wipes: number;
  narrate: Narrate;
  /** Called with a message when something that must not fail did (a node that does not restart). */
  violation: (message: string) => void;
}

export interface FaultRun {
  readonly counts: FaultCounts;
  /** Resolves when the schedule is over (the fault under way is finished first). */
  readonly done: Promise<void>;
  /** Ends the schedule early: heals the network at once, restarts nodes that are down. */
  abort(): void;
}

const sleep = (ms: number, signal: { aborted: boolean; wake?: () => void }): Promise<void> =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(resolve, ms);
    signal.wake = () => {
      clearTimeout(timer);
      resolve();
    };
  });

/** The kind of the `index`-th fault (pure: the seed alone decides). */
export function chooseKind(rng: Rng, index: number, firstFour: readonly FaultKind[]): FaultKind {
  if (index < firstFour.length) return firstFour[index]!;
  return pick(rng, ['kill', 'kill', 'cut', 'stall', 'delay'] as const);
}

export function runFaults(cluster: Cluster, rng: Rng, options: FaultRunOptions): FaultRun {
  const counts: FaultCounts = {
    kills: 0,
    burstKills: 0,
    wipes: 0,
    cuts: 0,
    stalls: 0,
    delays: 0,
    restartFailures: 0,
  };
  const signal: { aborted: boolean; wake?: () => void } = { aborted: false };
  const t0 = Date.now();
  const elapsed = (): number => Date.now() - t0;
  const firstFour = shuffle(rng, ['kill', 'cut', 'stall', 'delay'] as const);
  // When each wipe becomes due: spread over 40 %..85 % of the duration.
  const wipeAt = Array.from(
    { length: options.wipes },
    (_, i) => options.durationMs * (0.4 + (0.45 * i) / Math.max(1, options.wipes)),
  );

  async function restart(node: ChaosNode): Promise<void> {
    for (let attempt = 1; attempt <= 3; attempt++) {
      try {
        await cluster.start(node);
        return;
      } catch (err) {
        counts.restartFailures += 1;
        options.violation(`${node.name} did not start again (attempt ${attempt}): ${(err as Error).message}`);
      }
    }
  }

  async function downAndUp(kind: 'kill' | 'wipe'): Promise<void> {
    const up = cluster.nodes.filter((n) => cluster.running(n));
    if (up.length === 0) return;
    const node = pick(rng, up);
    // A wiped node stays down at least 2 s: its peers may commit what they exchanged with it
    // just before the kill a little later, and the checker dates the wipe by the restart.
    const downMs = kind === 'wipe' ? between(rng, 2000, 4000) : between(rng, 300, 3000);
    // Every other kill (the first one always) strikes as soon as a burst of payments was
    // acknowledged: what was acknowledged must be on disk already.
    const burst = kind === 'kill' && (counts.kills === 0 || rng() < 0.5) ? between(rng, 20, 60) : 0;
    if (burst > 0) await options.burst(node, burst);
    const at = Date.now();
    await cluster.kill(node);
    const what =
      kind === 'wipe' ? 'SIGKILL + wipe' : burst > 0 ? `${burst} payments, then SIGKILL` : 'SIGKILL';
    options.narrate(`${what} ${node.name}, down ${downMs} ms`);
    // Before the wipe: what it acknowledged must have been on its disk when it was killed.
    options.killed(node, at);
    if (kind === 'wipe') {
      cluster.wipe(node);
      counts.wipes += 1;
    } else counts.kills += 1;
    if (burst > 0) counts.burstKills += 1;
    await sleep(downMs, signal);
    await restart(node);
  }

  async function linkFault(kind: 'cut' | 'stall' | 'delay'): Promise<void> {
    const link: ChaosLink = pick(rng, cluster.links);
    const what = `${link.from.name}→${link.to.name}`;
    if (kind === 'cut') {
      const ms = between(rng, 1000, 5000);
      options.narrate(`cut ${what} for ${ms} ms`);
      counts.cuts += 1;
      await link.proxy.cut(ms);
    } else if (kind === 'stall') {
      const ms = between(rng, 2000, 8000);
      const thenCut = rng() < 0.5;
      options.narrate(`stall ${what} for ${ms} ms, then ${thenCut ? 'reset' : 'deliver'}`);
      counts.stalls += 1;
      await link.proxy.stall(ms, thenCut);
    } else {
      const latency = between(rng, 20, 400);
      const ms = between(rng, 3000, 10_000);
      options.narrate(`delay ${what} by ${latency} ms for ${ms} ms`);
      counts.delays += 1;
      await link.proxy.delay(latency, ms);
    }
  }

  /** Whether one fault of each kind, and every wipe, has happened: a short run goes on until so. */
  const covered = (): boolean =>
    counts.kills > 0 &&
    counts.cuts > 0 &&
    counts.stalls > 0 &&
    counts.delays > 0 &&
    counts.wipes >= wipeAt.length;

  const done = (async () => {
    let drawn = 0;
    while (!signal.aborted && (elapsed() < options.durationMs || !covered())) {
      const wipeDue = counts.wipes < wipeAt.length && elapsed() >= wipeAt[counts.wipes]!;
      const kind: FaultKind = wipeDue ? 'wipe' : chooseKind(rng, drawn++, firstFour);
      if (kind === 'kill' || kind === 'wipe') await downAndUp(kind);
      else await linkFault(kind);
      await sleep(between(rng, 500, 3000), signal);
    }
    for (const node of cluster.nodes) if (!cluster.running(node)) await restart(node);
  })();

  return {
    counts,
    done,
    abort() {
      signal.aborted = true;
      signal.wake?.();
      for (const link of cluster.links) link.proxy.heal();
    },
  };
}

function shuffle<T>(rng: Rng, items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
