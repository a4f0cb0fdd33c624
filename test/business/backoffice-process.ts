/** The example back office (examples/backoffice/backoffice.py) as a real Python process. */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { filter, firstValueFrom, ReplaySubject, take, timeout } from 'rxjs';

export const BACKOFFICE_SCRIPT = join(import.meta.dirname, '../../examples/backoffice/backoffice.py');

export interface BackofficeProcess {
  readonly port: number;
  readonly url: string;
  /** Every JSON line it printed so far and later (replayed). */
  readonly lines$: ReplaySubject<Record<string, unknown>>;
  readonly lines: Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

/** Writes a secret file into `dir` and returns its path. */
export function writeSecret(
  dir: string,
  secret = 'a'.repeat(8) + 'example-back-office-secret-0123456789',
): string {
  const path = join(dir, 'backoffice.secret');
  writeFileSync(path, `${secret}\n`, { mode: 0o600 });
  return path;
}

export async function startBackoffice(options: {
  secretFile: string;
  port?: number;
  maxAmount?: number;
}): Promise<BackofficeProcess> {
  const args = [BACKOFFICE_SCRIPT, '--secret-file', options.secretFile, '--port', String(options.port ?? 0)];
  if (options.maxAmount !== undefined) args.push('--max-amount', String(options.maxAmount));
  const child: ChildProcess = spawn('python3', args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines$ = new ReplaySubject<Record<string, unknown>>();
  const lines: Array<Record<string, unknown>> = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const record = JSON.parse(line) as Record<string, unknown>;
    lines.push(record);
    lines$.next(record);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const first = await firstValueFrom(
    lines$.pipe(
      filter((l) => 'listening' in l),
      take(1),
      timeout({ first: 30_000, with: () => Promise.reject(new Error('the back office did not start')) }),
    ),
  );
  const port = first['listening'] as number;
  return {
    port,
    url: `http://127.0.0.1:${port}/`,
    lines$,
    lines,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
