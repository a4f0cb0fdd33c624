/**
 * The VASP nodes of a chaos run: each a separate `parley start` process on 127.0.0.1 with its
 * own config and SQLite file in the run's folder. Every pair has one channel; the lower node
 * dials the higher one through a {@link FaultProxy}. Nodes listen on a port the system picks;
 * after a restart the proxies are pointed at the new port.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, rmSync, type WriteStream, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { readLiveRuntimeFile } from '../../src/cli/runtime-file.js';
import type { NodeConfigInput } from '../../src/config.js';
import { encodeAddress, generatePrivateKey } from '../../src/protocol/index.js';
import type { Wipe } from './check.js';
import { createFaultProxy, type FaultProxy } from './proxy.js';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const cliMain = join(repoRoot, 'src/cli/main.ts');

/** How long a node may take from spawn to its `started` line. */
const START_TIMEOUT_MS = 90_000;

const NAMES = ['alice', 'bob', 'carol', 'dave', 'erin'] as const;

export interface ChaosNode {
  readonly name: string;
  readonly address: string;
  readonly dir: string;
  readonly configFile: string;
  /** The SQLite file (only the chaos run creates and deletes it). */
  readonly dbPath: string;
  /** Admin URL and token of the running process; undefined while down. */
  admin: { url: string; token: string } | undefined;
  /** How many times it was started. */
  runs: number;
  /** Its database deletions, and when it was started again after each. */
  readonly wipes: Wipe[];
}

/** One channel: `from` dials `to` through `proxy`. */
export interface ChaosLink {
  readonly from: ChaosNode;
  readonly to: ChaosNode;
  readonly proxy: FaultProxy;
}

export interface Cluster {
  readonly nodes: readonly ChaosNode[];
  readonly links: readonly ChaosLink[];
  running(node: ChaosNode): boolean;
  start(node: ChaosNode): Promise<void>;
  /** SIGKILL; resolves once the process is gone. */
  kill(node: ChaosNode): Promise<void>;
  /** SIGTERM (a clean stop), SIGKILL after `graceMs`; resolves with the exit code. */
  stop(node: ChaosNode, graceMs?: number): Promise<number | null>;
  /** Deletes the node's database files; the node must be down. */
  wipe(node: ChaosNode): void;
  /** Kills every process and closes the proxies. */
  close(): Promise<void>;
}

interface Proc {
  child: ChildProcess;
  exited: Promise<number | null>;
  log: WriteStream;
}

/** Creates the configs (new keys) of `count` nodes under `dir`, and their proxies. Starts nothing. */
export async function createCluster(dir: string, count: number): Promise<Cluster> {
  const nodes: ChaosNode[] = [];
  const keys: Array<{ seedHex: string; publicKeyHex: string }> = [];
  for (let i = 0; i < count; i++) {
    const name = NAMES[i] ?? `node${i}`;
    const nodeDir = join(dir, name);
    mkdirSync(nodeDir, { recursive: true });
    const key = generatePrivateKey();
    keys.push({ seedHex: key.seedHex, publicKeyHex: key.publicKey.hex });
    nodes.push({
      name,
      address: encodeAddress({ hrp: 'lbr', onchain: new Uint8Array(16).fill(0xa0 + i) }),
      dir: nodeDir,
      configFile: join(nodeDir, 'parley.config.json'),
      dbPath: join(nodeDir, 'parley.db'),
      admin: undefined,
      runs: 0,
      wipes: [],
    });
  }
  const links: ChaosLink[] = [];
  for (const [i, from] of nodes.entries()) {
    for (const to of nodes.slice(i + 1)) links.push({ from, to, proxy: await createFaultProxy() });
  }
  for (const [i, node] of nodes.entries()) {
    const config: NodeConfigInput = {
      address: node.address,
      privateKeySeed: keys[i]!.seedHex,
      database: 'file:parley.db',
      listen: { host: '127.0.0.1', port: 0 },
      peers: nodes
        .filter((peer) => peer !== node)
        .map((peer) => {
          const link = links.find((l) => l.from === node && l.to === peer);
          return {
            address: peer.address,
            publicKey: keys[nodes.indexOf(peer)]!.publicKeyHex,
            ...(link ? { url: `ws://127.0.0.1:${link.proxy.port}/parley/v1` } : {}),
          };
        }),
    };
    writeFileSync(node.configFile, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  }

  const procs = new Map<ChaosNode, Proc>();

  async function start(node: ChaosNode): Promise<void> {
    if (procs.has(node)) throw new Error(`${node.name} is already running`);
    node.runs += 1;
    const wipe = node.wipes.at(-1);
    if (wipe && wipe.back === undefined) wipe.back = Date.now();
    const log = createWriteStream(join(node.dir, `run-${node.runs}.log`));
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', cliMain, 'start', '--config', node.configFile],
      {
        cwd: repoRoot,
        env: withoutParleyOverrides(process.env),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const exited = new Promise<number | null>((resolve) => {
      child.once('exit', (code) => {
        if (procs.get(node)?.child === child) {
          procs.delete(node);
          node.admin = undefined;
          for (const link of links) if (link.to === node) link.proxy.target(0);
        }
        resolve(code);
      });
    });
    child.once('close', () => log.end());
    procs.set(node, { child, exited, log });
    child.stderr!.pipe(log, { end: false });
    const started = new Promise<number>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (text) => {
        log.write(`${text}\n`);
        if (!text.includes('"started"')) return;
        try {
          const line = JSON.parse(text) as { event?: string; url?: string };
          if (line.event === 'started' && line.url) resolve(Number(new URL(line.url).port));
        } catch {
          // not a log line
        }
      });
      void exited.then((code) => reject(new Error(`${node.name} exited (${code}) before it started`)));
    });
    // A node that neither starts nor fails is killed (its start then fails, and is retried).
    const slow = setTimeout(() => child.kill('SIGKILL'), START_TIMEOUT_MS);
    void started.finally(() => clearTimeout(slow)).catch(() => undefined);
    const port = await started;
    const runtime = readLiveRuntimeFile(node.configFile);
    if (!runtime?.adminToken) throw new Error(`${node.name} started without a runtime file`);
    node.admin = { url: runtime.adminUrl, token: runtime.adminToken };
    for (const link of links) if (link.to === node) link.proxy.target(port);
  }

  async function kill(node: ChaosNode): Promise<void> {
    const proc = procs.get(node);
    if (!proc) return;
    proc.child.kill('SIGKILL');
    await proc.exited;
  }

  async function stop(node: ChaosNode, graceMs = 20_000): Promise<number | null> {
    const proc = procs.get(node);
    if (!proc) return null;
    proc.child.kill('SIGTERM');
    const timer = setTimeout(() => proc.child.kill('SIGKILL'), graceMs);
    const code = await proc.exited;
    clearTimeout(timer);
    return code;
  }

  return {
    nodes,
    links,
    running: (node) => procs.has(node) && node.admin !== undefined,
    start,
    kill,
    stop,
    wipe(node) {
      if (procs.has(node)) throw new Error(`${node.name} is running`);
      // Only the files of the database this run created in its own folder.
      for (const suffix of ['', '-wal', '-shm', '-journal'])
        rmSync(`${node.dbPath}${suffix}`, { force: true });
      node.wipes.push({ at: Date.now() });
    },
    async close() {
      await Promise.all(nodes.map((node) => kill(node)));
      await Promise.all(links.map((link) => link.proxy.close()));
    },
  };
}

/** The environment minus `PARLEY_*` overrides: the run's configs say everything. */
function withoutParleyOverrides(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([key]) => !key.startsWith('PARLEY_')));
}
