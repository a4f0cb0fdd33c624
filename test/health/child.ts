/**
 * Starts `health-child.ts` in its own process and reads its JSON lines.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { filter, firstValueFrom, map, type Observable, ReplaySubject, take, timeout } from 'rxjs';
import type { NodeConfigInput } from '../../src/config.js';
import type { HealthOptions } from '../../src/health/options.js';
import type { HealthEvent } from '../../src/health/status.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const script = fileURLToPath(new URL('./health-child.ts', import.meta.url));

export type ChildLine =
  | { t: 'ready'; url: string; port: number; epoch: string; pid: number }
  | { t: 'health'; event: HealthEvent }
  | {
      t: 'load';
      settled: number;
      failed: number;
      inflight: number;
      maxLoopDelayMs: number;
      p99LoopDelayMs: number;
      cpuPercent: number;
    }
  | { t: 'closed' };

export interface HealthChild {
  readonly pid: number;
  readonly url: string;
  readonly port: number;
  readonly epoch: string;
  /** Every line the child printed (replayed to late subscribers). */
  readonly lines$: Observable<ChildLine>;
  /** Its health events. */
  readonly health$: Observable<HealthEvent>;
  send(request: Record<string, unknown>): void;
  /** The first line matching `match`, within `timeoutMs`. */
  line<T extends ChildLine>(
    match: (line: ChildLine) => line is T,
    timeoutMs: number,
    what: string,
  ): Promise<T>;
  signal(signal: NodeJS.Signals): void;
  /** SIGTERM (after SIGCONT, in case it is stopped); resolves once the process is gone. */
  stop(): Promise<void>;
  readonly stderr: string;
}

export async function startHealthChild(
  dir: string,
  name: string,
  config: NodeConfigInput,
  health?: HealthOptions,
): Promise<HealthChild> {
  const specFile = join(dir, `${name}.json`);
  writeFileSync(specFile, JSON.stringify({ config, ...(health ? { health } : {}) }));
  const child = spawn(process.execPath, ['--import', 'tsx', script, specFile], {
    cwd: repoRoot,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lines = new ReplaySubject<ChildLine>();
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  child.stdin.on('error', () => undefined);
  createInterface({ input: child.stdout }).on('line', (text) => {
    try {
      lines.next(JSON.parse(text) as ChildLine);
    } catch {
      stderr += `${text}\n`;
    }
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => lines.complete());

  const line = <T extends ChildLine>(match: (l: ChildLine) => l is T, timeoutMs: number, what: string) =>
    firstValueFrom(
      lines.pipe(
        filter(match),
        take(1),
        timeout({
          first: timeoutMs,
          with: () => Promise.reject(new Error(`${name}: timed out waiting for ${what}\n${stderr}`)),
        }),
      ),
    );
  const ready = await line(
    (l): l is Extract<ChildLine, { t: 'ready' }> => l.t === 'ready',
    60_000,
    'ready',
  ).catch((err: unknown) => {
    child.kill('SIGKILL');
    throw err;
  });

  return {
    pid: ready.pid,
    url: ready.url,
    port: ready.port,
    epoch: ready.epoch,
    lines$: lines.asObservable(),
    health$: lines.pipe(
      filter((l): l is Extract<ChildLine, { t: 'health' }> => l.t === 'health'),
      map((l) => l.event),
    ),
    send(request) {
      child.stdin.write(`${JSON.stringify(request)}\n`);
    },
    line,
    signal(signal) {
      child.kill(signal);
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGCONT');
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(killer);
    },
    get stderr() {
      return stderr;
    },
  };
}
