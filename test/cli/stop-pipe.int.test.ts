/**
 * `parley start … | tee log` and Ctrl-C: the shell sends SIGINT to the whole pipeline, the reader
 * dies first, and the node's log lines then meet a closed pipe (EPIPE). The node must still stop
 * cleanly: its peer sees close 1001, the database is closed (no `-wal`/`-shm` left), exit 0.
 * Real processes: two `parley start` nodes and a reader process on the node's stdout.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { InitResult } from '../../src/cli/commands/init.js';
import { runtimeFilePath } from '../../src/cli/runtime-file.js';
import {
  cli,
  type Exit,
  type LogLine,
  type ParleyProcess,
  type PipedParley,
  repoRoot,
  spawnParley,
  spawnParleyPiped,
  tempDir,
  withoutParleyOverrides,
} from './helpers.js';

const MAIN = join(repoRoot, 'src/cli/main.ts');
const TEE = 'process.stdin.pipe(process.stdout)';

describe('parley start with its stdout on a pipe whose reader exits first', () => {
  const root = tempDir();
  let a: InitResult;
  let b: InitResult;
  let nodeB: ParleyProcess;

  beforeAll(async () => {
    const init = async (name: string): Promise<InitResult> => {
      const { code, out } = await cli(['init', '--random-address', '--dir', name, '--port', '0', '--json'], {
        cwd: root.path,
      });
      expect(code).toBe(0);
      return JSON.parse(out) as InitResult;
    };
    a = await init('a');
    b = await init('b');
    const add = (config: string, peer: InitResult, url?: string) =>
      cli([
        'peer',
        'add',
        '--config',
        config,
        '--address',
        peer.address,
        '--public-key',
        peer.publicKey,
        ...(url ? ['--url', url] : []),
      ]);
    expect((await add(b.config, a)).code).toBe(0);
    nodeB = spawnParley(['start', '--config', b.config]);
    const started = await nodeB.waitFor((line) => line.event === 'started');
    expect((await add(a.config, b, String(started['url']))).code).toBe(0);
  });

  afterAll(async () => {
    if (nodeB.child.exitCode === null && nodeB.child.signalCode === null) {
      nodeB.child.kill('SIGTERM');
      await nodeB.exited;
    }
    root.dispose();
  });

  /** Processes of a test, killed after it if a failed test left them running. */
  const running: ChildProcess[] = [];
  afterEach(() => {
    for (const child of running.splice(0)) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
  const piped = (...args: Parameters<typeof spawnParleyPiped>): PipedParley => {
    const run = spawnParleyPiped(...args);
    running.push(run.node, run.reader);
    return run;
  };

  /** B's next line about A with this event, logged after B's line number `mark`. */
  const nextFromB = (event: string, mark: number): Promise<LogLine> =>
    nodeB.waitFor((l) => l.event === event && l['peer'] === a.address && nodeB.lines.indexOf(l) >= mark);

  async function expectCleanStop(
    run: Pick<PipedParley, 'nodeExited' | 'stderr'>,
    mark: number,
  ): Promise<void> {
    expect(await run.nodeExited, run.stderr()).toEqual({ code: 0, signal: null });
    // The peer was told the node is going away (1001), not dropped (1006).
    expect((await nextFromB('disconnected', mark))['closeCode']).toBe(1001);
    // The database was closed: SQLite removes its -wal and -shm files on the last close.
    const db = join(root.path, 'a', 'parley.db');
    expect(existsSync(db)).toBe(true);
    expect(existsSync(`${db}-wal`)).toBe(false);
    expect(existsSync(`${db}-shm`)).toBe(false);
    expect(existsSync(runtimeFilePath(a.config))).toBe(false);
  }

  it('Ctrl-C on `parley start | tee`: the reader dies of SIGINT first, the node stops cleanly (1001, exit 0)', async () => {
    const mark = nodeB.lines.length;
    const run = piped(['start', '--config', a.config], 'tee', false);
    expect(await run.firstLine).toContain('"event":"started"');
    await nextFromB('connected', mark);
    // The terminal sends SIGINT to every process of the pipeline; the reader dies at once.
    run.reader.kill('SIGINT');
    expect(await run.readerExited).toEqual({ code: null, signal: 'SIGINT' });
    run.node.kill('SIGINT');
    await expectCleanStop(run, mark);
    expect(run.stderr()).toBe('');
  });

  it('SIGTERM after `parley start 2>&1 | head -n 1` has exited: stdout and stderr closed, the node stops cleanly', async () => {
    const mark = nodeB.lines.length;
    const run = piped(['start', '--config', a.config], { headUntil: '' }, true);
    expect(await run.firstLine).toContain('"event":"started"');
    expect(await run.readerExited).toEqual({ code: 0, signal: null });
    await nextFromB('connected', mark);
    run.node.kill('SIGTERM');
    await expectCleanStop(run, mark);
  });

  it('Ctrl-C as the terminal sends it: one SIGINT to the process group of `parley start | tee`, the node stops cleanly', async () => {
    const mark = nodeB.lines.length;
    // bash runs the reader on the node's stdout, then becomes the node (exec): the node is our
    // child, and the node and its reader are the only members of a new process group.
    const pipeline = spawn(
      'bash',
      [
        '-c',
        'exec "$0" --import tsx "$1" start --config "$2" > >(exec "$0" -e "$3")',
        process.execPath,
        MAIN,
        a.config,
        TEE,
      ],
      {
        cwd: repoRoot,
        env: withoutParleyOverrides(process.env),
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    running.push(pipeline); // the reader ends with the node's stdout
    let stderr = '';
    pipeline.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const nodeExited = new Promise<Exit>((resolve) =>
      pipeline.on('exit', (code, signal) => resolve({ code, signal })),
    );
    const started = new Promise<void>((resolve) => {
      let text = '';
      pipeline.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        text += chunk;
        if (text.includes('"event":"started"')) resolve();
      });
    });
    await started;
    await nextFromB('connected', mark);
    process.kill(-pipeline.pid!, 'SIGINT');
    await expectCleanStop({ nodeExited, stderr: () => stderr }, mark);
  });
});
