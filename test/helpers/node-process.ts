/**
 * VASP nodes in child processes (`node-child.ts`): start, SIGKILL, restart on the same database
 * and port, talk to them over stdin/stdout JSON lines. Also the one place that decides which
 * database engine node tests use (`createNodeDatabase`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { merge, type Observable, Subject } from 'rxjs';
import type { InflightStates } from '../../src/channel/channel.js';
import type { StoreEngine } from '../../src/store/types.js';
import { nodeConfig, type TestIdentity } from './nodes.js';
import { createStoreFixture, HAVE_PG } from './store.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const childScript = fileURLToPath(new URL('./node-child.ts', import.meta.url));

/**
 * The engine of node databases in tests: PostgreSQL when `PARLEY_TEST_DB=postgresql` and
 * `TEST_PG_URL` is set, SQLite files otherwise.
 */
export function nodeTestEngine(): StoreEngine {
  return process.env['PARLEY_TEST_DB'] === 'postgresql' && HAVE_PG ? 'postgresql' : 'sqlite';
}

/** A fresh, empty database for one node: a SQLite file in a temp dir, or a new PostgreSQL database. */
export interface NodeDatabase {
  readonly engine: StoreEngine;
  readonly url: string;
  /** Runs a query behind the store's back (use only while no node has it open for writing). */
  query<T = Record<string, unknown>>(sql: string): Promise<T[]>;
  /** Deletes the database. Idempotent. */
  dispose(): Promise<void>;
}

/** Every node test gets its database URLs here, so switching engines is one place. */
export async function createNodeDatabase(): Promise<NodeDatabase> {
  const fixture = await createStoreFixture(nodeTestEngine());
  return {
    engine: fixture.engine,
    url: fixture.url,
    query: (sql) => fixture.query(sql),
    dispose: () => fixture.dispose(),
  };
}

/** Below Linux's default ephemeral range (32768–60999), above well-known services. */
const PORT_RANGE = { low: 20_000, high: 32_000 } as const;
/** Each vitest worker draws from its own slice of the range, so parallel files never collide. */
const SLICES = 16;
const handedOut = new Set<number>();

/**
 * A TCP port on 127.0.0.1 that was free when asked, for a process that must know it before it
 * starts (two nodes that dial each other; a node restarted on its port). It is chosen outside
 * the ephemeral range: the system never hands such a port to another `listen(0)` or outgoing
 * connection between this probe and the real listen, which a port from `listen(0)` does not
 * guarantee. This process never hands out the same port twice.
 */
export async function freePort(): Promise<number> {
  const size = Math.floor((PORT_RANGE.high - PORT_RANGE.low) / SLICES);
  const slice = Number(process.env['VITEST_POOL_ID'] ?? 0) % SLICES;
  const low = PORT_RANGE.low + slice * size;
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = low + Math.floor(Math.random() * size);
    if (handedOut.has(port) || !(await canListen(port))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free port in ${low}–${low + size - 1} after 50 tries`);
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Lines a node child prints (see `node-child.ts`). */
export type ChildLine =
  | { t: 'ready'; url: string; port: number; address: string; epoch: string; pid: number }
  | {
      t: 'cmd';
      dir: 'out' | 'in';
      cid: string;
      ref: string;
      /** Whether the command creates its object. */
      create: boolean;
      status: 'success' | 'failure';
      code: string | null;
      final: boolean;
    }
  | { t: 'queued'; cid: string; ref: string }
  | { t: 'failed'; ref: string; cid: string; code: string | null }
  | { t: 'conn'; peer: string; id: string | null; dialed: boolean }
  | { t: 'disc'; peer: string; code: number; reason: string }
  | { t: 'lease'; type: 'lease_acquired' | 'lease_lost'; peer: string; reason: string | null }
  | { t: 'health'; peer: string; from: string; to: string; cause: string }
  | {
      t: 'restore';
      peer: string;
      role: 'leader' | 'follower';
      state: 'running' | 'waiting' | 'finished';
      moved: number;
      after: string | null;
    }
  | {
      t: 'status';
      id: string | null;
      inflight: number;
      open: number;
      pendingPays: number;
      connections: Record<string, string | null>;
      /** What the commands in flight wait on, per channel with any (`Channel.inflightStates`). */
      waitingOn?: Record<string, InflightStates>;
    }
  | { t: 'batch'; id: string | null; count: number; failures: number; ms: number }
  | { t: 'rtt'; id: string | null; samples: number[] }
  | { t: 'cpu'; id: string | null; ms: number }
  | { t: 'refused'; peer: string; code: string }
  | { t: 'error'; where: string; message: string; ref?: string }
  | { t: 'closed' };

export type StatusLine = Extract<ChildLine, { t: 'status' }>;
export type ReadyLine = Extract<ChildLine, { t: 'ready' }>;

/** A line, tagged with the process it came from and which run of it. */
export interface TaggedLine {
  node: string;
  run: number;
  line: ChildLine;
}

export interface NodeProcessOptions {
  /** For diagnostics and `TaggedLine.node`. */
  name: string;
  identity: TestIdentity;
  peers: Array<{ identity: TestIdentity; url?: string }>;
  /** Store URL (from {@link createNodeDatabase}). */
  database: string;
  /** @default a free port from {@link freePort}, kept for restarts */
  port?: number;
  /** @default 'auto' */
  business?: 'auto' | 'inert';
  /** No per-command lines. @default false */
  quiet?: boolean;
  /** @default 500 */
  retransmitMs?: number;
  /** Run as a replica of its VASP (`config.replica`). */
  replica?: { id: string; leaseTtlMs: number; renewMs: number };
  /** Serve the admin routes (`/admin/pay`, `/admin/status`; loopback, no token). @default false */
  admin?: boolean;
  /** Extra environment of every run (e.g. a test-only failpoint). @default none */
  env?: Record<string, string>;
}

export interface NodeProcess {
  readonly name: string;
  readonly address: string;
  /** ws URL (known after the first start, stable across restarts). */
  readonly url: string;
  readonly port: number;
  /** Whether a run is alive (started, not yet exited). */
  readonly running: boolean;
  /** How many runs were started. */
  readonly runs: number;
  /** Every line of every run (hot). */
  readonly lines$: Observable<TaggedLine>;
  /** Starts a run (the first, or again after `kill`/`stop`) on the same database and port. */
  start(): Promise<ReadyLine>;
  /** Sends a request line; ignored when no run is alive. */
  request(req: Record<string, unknown>): void;
  /** Asks the run for its status. */
  status(timeoutMs?: number): Promise<StatusLine>;
  /** SIGKILL, resolves once the process is gone. */
  kill(): Promise<void>;
  /** SIGTERM, resolves with the exit code once the process is gone. */
  stop(): Promise<number | null>;
  /** Stderr of the current (or last) run, for failure messages. */
  readonly stderr: string;
  /** Kills a live run and removes the config dir. */
  dispose(): Promise<void>;
}

/**
 * Resolves with the first line of `node` (of any run) that matches; rejects after `timeoutMs`, or
 * when the process is disposed first.
 */
export function waitForLine<T extends ChildLine>(
  lines$: Observable<TaggedLine>,
  match: (line: ChildLine, tagged: TaggedLine) => line is T,
  timeoutMs: number,
  what: string,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      sub.unsubscribe();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    const sub = lines$.subscribe({
      next(tagged) {
        if (match(tagged.line, tagged)) {
          clearTimeout(timer);
          sub.unsubscribe();
          resolve(tagged.line as T);
        }
      },
      // Disposed: the line can no longer come (and a pending timer would hold the process).
      complete() {
        clearTimeout(timer);
        reject(new Error(`the process was disposed while waiting for ${what}`));
      },
    });
  });
}

export function createNodeProcess(options: NodeProcessOptions): NodeProcess {
  const dir = mkdtempSync(join(tmpdir(), `parley-proc-${options.name}-`));
  const configFile = join(dir, 'config.json');
  const lines = new Subject<TaggedLine>();
  let port = options.port ?? 0;
  let url = '';
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let runs = 0;
  let stderr = '';
  let statusSeq = 0;

  function writeConfig(): void {
    const config = nodeConfig(options.identity, options.database, options.peers, port);
    config.retransmitMs = options.retransmitMs ?? 500;
    if (options.replica) config.replica = options.replica;
    writeFileSync(configFile, JSON.stringify(config, null, 2));
  }

  const proc: NodeProcess = {
    name: options.name,
    address: options.identity.address,
    get url() {
      return url;
    },
    get port() {
      return port;
    },
    get running() {
      return child !== undefined;
    },
    get runs() {
      return runs;
    },
    lines$: lines.asObservable(),
    get stderr() {
      return stderr;
    },
    async start() {
      if (child) throw new Error(`${options.name} is already running`);
      // Restarts reuse the port: it is taken outside the ephemeral range, so no outgoing
      // connection (the peer redialing, say) can hold it while this node is down.
      if (port === 0) port = await freePort();
      writeConfig();
      const run = ++runs;
      stderr = '';
      // PARLEY_CHILD_NODE_ARGS: extra node flags for the children, e.g. `--cpu-prof` to profile.
      const extra = (process.env['PARLEY_CHILD_NODE_ARGS'] ?? '').split(' ').filter(Boolean);
      const args = [
        ...extra,
        '--import',
        'tsx',
        childScript,
        configFile,
        `--business=${options.business ?? 'auto'}`,
      ];
      if (options.quiet) args.push('--quiet');
      if (options.admin) args.push('--admin');
      const spawned = spawn(process.execPath, args, {
        cwd: repoRoot,
        env: { ...process.env, ...options.env },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      child = spawned;
      // Writing to a killed child must not crash the test run.
      spawned.stdin!.on('error', () => undefined);
      spawned.stderr!.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      exited = new Promise<void>((resolve) => {
        spawned.once('exit', () => {
          if (child === spawned) child = undefined;
          resolve();
        });
      });
      createInterface({ input: spawned.stdout! }).on('line', (text) => {
        let line: ChildLine;
        try {
          line = JSON.parse(text) as ChildLine;
        } catch {
          line = { t: 'error', where: 'stdout', message: text };
        }
        lines.next({ node: options.name, run, line });
      });
      const ready = new Promise<ReadyLine>((resolve, reject) => {
        const sub = lines.subscribe(({ run: r, line }) => {
          if (r === run && line.t === 'ready') {
            sub.unsubscribe();
            resolve(line);
          }
        });
        void exited.then(() => {
          sub.unsubscribe();
          reject(new Error(`${options.name} exited before it was ready:\n${stderr}`));
        });
      });
      const line = await ready;
      port = line.port;
      url = line.url;
      return line;
    },
    request(req) {
      child?.stdin?.write(`${JSON.stringify(req)}\n`);
    },
    status(timeoutMs = 30_000) {
      const id = `s${++statusSeq}`;
      const answer = waitForLine(
        lines.asObservable(),
        (line): line is StatusLine => line.t === 'status' && line.id === id,
        timeoutMs,
        `status of ${options.name}`,
      );
      proc.request({ op: 'status', id });
      return answer;
    },
    async kill() {
      child?.kill('SIGKILL');
      await exited;
    },
    async stop() {
      const running = child;
      if (!running) return null;
      running.kill('SIGTERM');
      await exited;
      return running.exitCode;
    },
    async dispose() {
      await proc.kill();
      lines.complete();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return proc;
}

/**
 * Resolves when every process is alive and idle: no command in flight, no pending payment, no
 * open object. Checked again after every line the processes print (no fixed sleeps), so the
 * idle state seen is the one after the last thing that happened.
 */
export function untilQuiet(
  procs: readonly NodeProcess[],
  timeoutMs: number,
  extra: () => boolean = () => true,
): Promise<StatusLine[]> {
  return new Promise<StatusLine[]>((resolve, reject) => {
    let busy = false;
    let dirty = true;
    let done = false;
    let last: StatusLine[] = [];
    const finish = (err?: Error): void => {
      if (done) return;
      done = true;
      sub.unsubscribe();
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(last);
    };
    const probe = async (): Promise<void> => {
      if (busy || done) return;
      busy = true;
      try {
        while (dirty && !done) {
          dirty = false;
          if (!procs.every((p) => p.running)) break;
          last = await Promise.all(procs.map((p) => p.status()));
          const quiet = last.every((s) => s.inflight === 0 && s.pendingPays === 0 && s.open === 0);
          if (quiet && extra() && !dirty) finish();
        }
      } catch (err) {
        finish(err as Error);
      } finally {
        busy = false;
      }
    };
    const sub = merge(...procs.map((p) => p.lines$)).subscribe(({ line }) => {
      if (line.t === 'status') return;
      dirty = true;
      void probe();
    });
    const timer = setTimeout(() => {
      finish(
        new Error(
          `nodes not idle after ${timeoutMs} ms; last status: ${JSON.stringify(last)}\n${procs
            .map((p) => `${p.name} stderr: ${p.stderr.slice(-2000)}`)
            .join('\n')}`,
        ),
      );
    }, timeoutMs);
    void probe();
  });
}
