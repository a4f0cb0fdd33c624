/**
 * `npm run demo` / `parley demo` — the whole story in one command: three VASP nodes (alice, bob, carol) on
 * 127.0.0.1, each with its own SQLite file and live dashboard, stream payments to each other.
 * At a scripted moment carol is killed and her database wiped; her peers see her go `suspect`
 * then `down`; she comes back with a new store epoch, they see `peer_state_lost`, and resync
 * rebuilds her open objects. Open a dashboard URL to watch it; Ctrl-C stops everything.
 *
 *   npm run demo                          runs until Ctrl-C (the scenario plays once)
 *   npm run demo -- --once                plays the scenario, waits for the recovery, exits (0 = recovered)
 *   npm run demo -- --duration 60         stops after 60 s
 *   npm run demo -- --port-base 0         free ports instead of 7101-7103
 *
 * Nodes run in this process; "kill" closes the node, deletes its database files and, after
 * `--down-for` seconds, starts it again with the same identity and port.
 */
import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { filter, firstValueFrom, merge, type Observable, type Subscription, take, timeout } from 'rxjs';
import { exitCodeFor, keepRunningOnClosedStdio } from './cli/io.js';
import type { NodeConfigInput } from './config.js';
import { prepareDemoDir } from './demo-dir.js';
import { createVaspNode, type VaspNode } from './node.js';
import { encodeAddress, generatePrivateKey } from './protocol/index.js';
import { observed } from './util/background.js';

export interface DemoIdentity {
  name: string;
  address: string;
  seedHex: string;
  publicKeyHex: string;
}

/** One VASP of the demo; `node` is undefined while it is down. */
export interface DemoNode {
  readonly identity: DemoIdentity;
  /** With `portBase: 0`, 0 until the node first listens on a port the system picked. */
  port: number;
  readonly dbPath: string;
  readonly dashboardUrl: string;
  node: VaspNode | undefined;
}

export interface DemoOptions {
  /**
   * Directory of the SQLite files: a new or empty folder, or one the demo made before (marked;
   * only its own database files are removed). Any other folder is refused (`DEMO_DIR_REFUSED`).
   * @default .tmp/demo
   */
  dir?: string;
  /** alice listens on portBase, bob on +1, carol on +2; 0 picks free ports. @default 7101 */
  portBase?: number;
  /** Told each notable event, one line each. @default no output */
  narrate?: (line: string) => void;
}

export interface Demo {
  readonly nodes: readonly DemoNode[];
  byName(name: string): DemoNode;
  /** Closes the node (its peers see the channel drop and the heartbeats stop). */
  stop(name: string): Promise<void>;
  /** Deletes the node's database files (it must be stopped). */
  wipe(name: string): void;
  /** Starts the node again with the same identity, port and database path. */
  start(name: string): Promise<void>;
  /** Every live node's events, health and resync streams, tagged with the node's name. */
  readonly payments: { started: number; final: number; failed: number };
  /** Starts one payment, from and to random nodes unless named (the sender must be up). */
  pay(from?: string, to?: string): void;
  close(): Promise<void>;
}

const NAMES = ['alice', 'bob', 'carol'] as const;
const ADDRESS_BYTES = [0xa1, 0xb2, 0xc3] as const;

export const short = (address: string): string => `${address.slice(0, 8)}…${address.slice(-4)}`;

/** The configuration of demo node `self`: every other node is its peer. */
function demoConfig(nodes: readonly DemoNode[], self: DemoNode): NodeConfigInput {
  const index = nodes.indexOf(self);
  return {
    address: self.identity.address,
    privateKeySeed: self.identity.seedHex,
    database: `file:${self.dbPath}`,
    listen: { host: '127.0.0.1', port: self.port },
    peers: nodes
      .filter((peer) => peer !== self)
      .map((peer) => ({
        address: peer.identity.address,
        name: peer.identity.name,
        publicKey: peer.identity.publicKeyHex,
        // The lower one dials: one connection per pair, and a restarted node is redialled.
        ...(nodes.indexOf(peer) > index ? { url: `ws://127.0.0.1:${peer.port}/parley/v1` } : {}),
      })),
  };
}

/** Narrates what a node sees: health transitions, lost state, resync runs. */
function narrateEvents(
  me: string,
  node: VaspNode,
  label: (address: string) => string,
  narrate: (line: string) => void,
): Subscription {
  const streams: Array<Observable<unknown>> = [node.health$, node.resync$];
  return merge(...streams).subscribe((raw) => {
    const e = raw as Record<string, unknown> & { peer: string };
    const peer = label(e.peer);
    switch (e['kind'] ?? e['type']) {
      case 'transition':
        if (e['to'] === 'suspect' || e['to'] === 'down' || e['from'] === 'down') {
          narrate(`${me}: ${peer} is ${String(e['to'])} (phi ${Number(e['phi']).toFixed(1)})`);
        }
        break;
      case 'peer_state_lost':
        narrate(`${me}: ${peer} lost its state (new store epoch ${String(e['epoch']).slice(0, 8)})`);
        break;
      case 'diverged':
        narrate(`${me}: open objects with ${peer} diverged`);
        break;
      case 'resync_finished':
        if (e['outcome'] !== 'in_sync' || e['reason'] !== 'connect') {
          narrate(
            `${me}: resync with ${peer} ${String(e['outcome'])}: sent ${String(e['objectsSent'])}, ` +
              `received ${String(e['objectsReceived'])} objects in ${String(e['rounds'])} rounds`,
          );
        }
        break;
    }
  });
}

/** Starts alice, bob and carol on loopback; each lower one dials the higher ones. */
export async function startDemo(options: DemoOptions = {}): Promise<Demo> {
  const dir = resolve(options.dir ?? '.tmp/demo');
  const narrate = options.narrate ?? (() => undefined);
  prepareDemoDir(
    dir,
    NAMES.map((name) => `${name}.db`),
  );
  const portBase = options.portBase ?? 7101;

  const nodes: DemoNode[] = [];
  for (const [i, name] of NAMES.entries()) {
    const key = generatePrivateKey();
    // Port 0: each node listens on a port the system picks when it starts. Probing for free
    // ports first raced with other processes (and with the nodes' own outgoing sockets).
    const port = portBase === 0 ? 0 : portBase + i;
    nodes.push({
      identity: {
        name,
        address: encodeAddress({ hrp: 'lbr', onchain: new Uint8Array(16).fill(ADDRESS_BYTES[i]!) }),
        seedHex: key.seedHex,
        publicKeyHex: key.publicKey.hex,
      },
      port,
      dbPath: resolve(dir, `${name}.db`),
      get dashboardUrl() {
        return `http://127.0.0.1:${this.port}/dashboard/`;
      },
      node: undefined,
    });
  }
  const nameOf = new Map(nodes.map((n) => [n.identity.address, n.identity.name]));
  const label = (address: string): string => nameOf.get(address) ?? short(address);
  const watches = new Map<string, Subscription>();
  const payments = { started: 0, final: 0, failed: 0 };

  async function start(name: string): Promise<void> {
    const self = demo.byName(name);
    if (self.node) return;
    const node = await createVaspNode(demoConfig(nodes, self));
    // Started highest first, so the nodes that dial this one are configured after this.
    if (self.port === 0) self.port = node.port;
    self.node = node;
    watches.set(name, narrateEvents(self.identity.name, node, label, narrate));
  }

  async function stop(name: string): Promise<void> {
    const self = demo.byName(name);
    const node = self.node;
    if (!node) return;
    self.node = undefined;
    watches.get(name)?.unsubscribe();
    watches.delete(name);
    await node.close();
  }

  const demo: Demo = {
    nodes,
    byName(name) {
      const found = nodes.find((n) => n.identity.name === name);
      if (!found) throw new Error(`no demo node ${name}`);
      return found;
    },
    stop,
    start,
    wipe(name) {
      const self = demo.byName(name);
      if (self.node) throw new Error(`${name} is running`);
      for (const suffix of ['', '-wal', '-shm', '-journal'])
        rmSync(`${self.dbPath}${suffix}`, { force: true });
    },
    payments,
    pay(fromName, toName) {
      const live = nodes.filter((n) => n.node !== undefined);
      const from = fromName ? demo.byName(fromName) : live[Math.floor(Math.random() * live.length)];
      if (!from?.node) return;
      const others = nodes.filter((n) => n !== from);
      const to = toName ? demo.byName(toName) : others[Math.floor(Math.random() * others.length)]!;
      try {
        const { outcome$ } = from.node.pay({
          to: to.identity.address,
          amount: 1 + Math.floor(Math.random() * 99_900),
          currency: 'XUS',
          description: `demo ${from.identity.name} → ${to.identity.name}`,
        });
        payments.started++;
        outcome$.subscribe({
          next: (o) => {
            payments.final++;
            if (o.status !== 'success') payments.failed++;
          },
          error: () => {
            payments.failed++;
          },
        });
      } catch {
        payments.failed++; // the node is closing
      }
    },
    async close() {
      await Promise.all(nodes.map((n) => stop(n.identity.name)));
    },
  };

  // Highest first: every node is listening before a lower one dials it.
  for (const name of [...NAMES].reverse()) await start(name);
  return demo;
}

/** One line of state: payments, then each node's view of its peers. */
export function progressLine(demo: Demo, elapsedMs: number): string {
  const name = new Map(demo.nodes.map((n) => [n.identity.address, n.identity.name]));
  const parts = demo.nodes.map((n) => {
    if (!n.node) return `${n.identity.name}: DOWN`;
    const peers = n.node.health
      .snapshot()
      .map((s) => `${name.get(s.peer) ?? short(s.peer)} ${s.state}`)
      .join(', ');
    return `${n.identity.name}: ${peers}`;
  });
  const s = Math.floor(elapsedMs / 1000);
  const clock = `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
  const p = demo.payments;
  return `[${clock}] payments ${p.started} started, ${p.final} final | ${parts.join(' | ')}`;
}

/** Resolves when `observer` has a finished resync with `peer` that repaired (or found in sync) its state. */
export function resyncDone(observer: VaspNode, peer: string, timeoutMs: number): Promise<unknown> {
  return firstValueFrom(
    observer.resync$.pipe(
      filter((e) => e.type === 'resync_finished' && e.peer === peer && e.outcome !== 'failed'),
      take(1),
      timeout(timeoutMs),
    ),
  );
}

interface Cli {
  once: boolean;
  durationS: number | undefined;
  portBase: number;
  dir: string;
  rate: number;
  killAtS: number;
  downForS: number;
}

export const DEMO_HELP = `Usage: parley demo [options]      (or: npm run demo -- [options])

  --once             play the scenario once, wait for the recovery, exit (0 = recovered)
  --duration S       stop after S seconds
  --port-base N      alice listens on N, bob on N+1, carol on N+2; 0 = free ports (default 7101)
  --dir PATH         where the SQLite files go: a new or empty folder, or one the demo made
                     (only its own files are removed there); default .tmp/demo
  --rate N           payments per second across the three nodes (default 2)
  --kill-at S        kill and wipe carol after S seconds (default 20)
  --down-for S       keep her down this long (default 8)
`;

function parseCli(argv: string[]): Cli | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      once: { type: 'boolean', default: false },
      duration: { type: 'string' },
      'port-base': { type: 'string', default: '7101' },
      dir: { type: 'string', default: '.tmp/demo' },
      rate: { type: 'string', default: '2' },
      'kill-at': { type: 'string', default: '20' },
      'down-for': { type: 'string', default: '8' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) return undefined;
  const number = (name: string, text: string): number => {
    const n = Number(text);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a number >= 0`);
    return n;
  };
  return {
    once: values.once,
    durationS: values.duration === undefined ? undefined : number('duration', values.duration),
    portBase: number('port-base', values['port-base']),
    dir: values.dir,
    rate: Math.max(0.1, number('rate', values.rate)),
    killAtS: number('kill-at', values['kill-at']),
    downForS: number('down-for', values['down-for']),
  };
}

/**
 * Runs the demo as a command (`parley demo`, `npm run demo`): narration on stdout, progress on
 * stderr, until Ctrl-C, `--duration` or, with `--once`, the end of the scenario.
 * @returns 0 (with `--once`: carol recovered), 1 (could not start, or did not recover), 2 (bad
 * option, or a `--dir` that is not the demo's: `DEMO_DIR_REFUSED`)
 */
export async function main(argv: string[]): Promise<number> {
  keepRunningOnClosedStdio();
  let cli: Cli | undefined;
  try {
    cli = parseCli(argv);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${DEMO_HELP}`);
    return 2;
  }
  if (!cli) {
    process.stdout.write(DEMO_HELP);
    return 0;
  }
  const tty = process.stderr.isTTY === true;
  const t0 = Date.now();
  const stamp = (): string => `${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s`;
  let lastProgress = '';
  const say = (line: string): void => {
    // Narration goes to stdout; on a terminal the progress line is redrawn below it.
    if (tty && lastProgress) process.stderr.write('\r\x1b[K');
    process.stdout.write(`${stamp()}  ${line}\n`);
    if (tty && lastProgress) process.stderr.write(lastProgress);
  };

  let demo: Demo;
  try {
    demo = await startDemo({ dir: cli.dir, portBase: cli.portBase, narrate: say });
  } catch (err) {
    const e = err as { code?: string; message: string };
    process.stderr.write(`demo: cannot start: ${e.code ? `${e.code}: ` : ''}${e.message}\n`);
    if (e.code === 'TRANSPORT_LISTEN_FAILED') process.stderr.write('A port is taken: try --port-base 0\n');
    // A refused --dir is bad input (2); anything else failed (1).
    return exitCodeFor(e.code ?? '');
  }

  process.stdout.write('\nParley demo: three VASP nodes on 127.0.0.1\n\n');
  for (const n of demo.nodes) {
    process.stdout.write(
      `  ${n.identity.name.padEnd(6)} ${n.dashboardUrl}   (${short(n.identity.address)})\n`,
    );
  }
  process.stdout.write(
    `\n  databases: ${resolve(cli.dir)}/{alice,bob,carol}.db` +
      `   inspect: npm run studio -- file:${demo.byName('alice').dbPath}\n` +
      `  script: carol is killed and wiped at ${cli.killAtS}s, back ${cli.downForS}s later. Ctrl-C stops.\n\n`,
  );

  const timers: NodeJS.Timeout[] = [];
  let stopping: Promise<number> | undefined;
  let finish: (code: number) => void = () => undefined;
  const finished = new Promise<number>((ok) => {
    finish = ok;
  });
  const shutdown = (code: number): Promise<number> => {
    stopping ??= (async () => {
      for (const t of timers) clearInterval(t);
      if (tty) process.stderr.write('\r\x1b[K');
      say('stopping…');
      await demo.close();
      const p = demo.payments;
      say(`stopped: ${p.started} payments started, ${p.final} final (${p.failed} failed)`);
      finish(code);
      return code;
    })();
    return stopping;
  };
  process.once('SIGINT', () => {
    process.once('SIGINT', () => process.exit(130)); // a second Ctrl-C does not wait
    void shutdown(0);
  });
  process.once('SIGTERM', () => void shutdown(0));

  timers.push(setInterval(() => demo.pay(), 1000 / cli.rate));
  timers.push(
    setInterval(
      () => {
        const line = progressLine(demo, Date.now() - t0);
        if (tty) {
          lastProgress = line.slice(0, (process.stderr.columns ?? 200) - 1);
          process.stderr.write(`\r\x1b[K${lastProgress}`);
        } else process.stderr.write(`${line}\n`);
      },
      tty ? 1000 : 5000,
    ),
  );
  if (cli.durationS !== undefined) {
    timers.push(setTimeout(() => void shutdown(0), cli.durationS * 1000));
  }

  const scenario = async (): Promise<boolean> => {
    await new Promise((ok) => timers.push(setTimeout(ok, Math.max(0, cli.killAtS - 1) * 1000)));
    if (stopping !== undefined) return false;
    // A burst just before the kill: payments caught half-way stay open, so resync has work.
    for (let i = 0; i < 6; i++) {
      demo.pay('alice', 'carol');
      demo.pay('bob', 'carol');
      demo.pay('carol', i % 2 === 0 ? 'alice' : 'bob');
    }
    await new Promise((ok) => timers.push(setTimeout(ok, Math.min(1, cli.killAtS) * 1000)));
    if (stopping !== undefined) return false;
    say('killing carol and wiping her database');
    await demo.stop('carol');
    demo.wipe('carol');
    await new Promise((ok) => timers.push(setTimeout(ok, cli.downForS * 1000)));
    if (stopping !== undefined) return false;
    const alice = demo.byName('alice');
    const bob = demo.byName('bob');
    const carol = demo.byName('carol').identity.address;
    // Listen before she is back: the runs start at her first hello.
    const repaired = Promise.all(
      [alice, bob].map((n) =>
        n.node ? resyncDone(n.node, carol, 120_000) : Promise.reject(new Error('down')),
      ),
    );
    observed(repaired); // awaited below, after carol restarts
    say('restarting carol with an empty database (new store epoch)');
    await demo.start('carol');
    try {
      await repaired;
      say('carol is back: alice and bob resynced her open objects');
      return true;
    } catch {
      say('carol did not recover within 120 s');
      return false;
    }
  };
  void scenario().then(
    async (ok) => {
      if (cli.once) await shutdown(ok ? 0 : 1);
    },
    async (err: unknown) => {
      say(`scenario failed: ${(err as Error).message}`);
      await shutdown(1);
    },
  );
  return finished;
}
