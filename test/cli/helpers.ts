import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli } from '../../src/cli/cli.js';
import type { CliIo } from '../../src/cli/io.js';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Runs `parley <argv>` in-process with captured output. */
export async function cli(
  argv: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIo = {
    out: (text) => {
      out += text;
    },
    err: (text) => {
      err += text;
    },
    env: options.env ?? {},
    cwd: options.cwd ?? process.cwd(),
  };
  const code = await runCli(argv, io);
  return { code, out, err };
}

/** A temp directory, removed by `dispose`. */
export function tempDir(): { path: string; dispose(): void } {
  const path = mkdtempSync(join(tmpdir(), 'parley-cli-'));
  return { path, dispose: () => rmSync(path, { recursive: true, force: true }) };
}

export type LogLine = Record<string, unknown> & { event?: string; level?: string };

/** `parley <args>` as a child process (`node --import tsx src/cli/main.ts`), stdout read as JSON lines. */
export interface ParleyProcess {
  readonly child: ChildProcess;
  /** Every stdout line so far, parsed when it is JSON. */
  readonly lines: LogLine[];
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Resolves with the first line (past or future) that matches; rejects if the process exits first. */
  waitFor(match: (line: LogLine) => boolean): Promise<LogLine>;
  /** Resolves once more than `count` lines have been read (at once if already so). */
  waitForLineCount(count: number): Promise<void>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function spawnParley(args: string[], env: NodeJS.ProcessEnv = {}): ParleyProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/cli/main.ts'), ...args], {
    cwd: repoRoot,
    env: { ...withoutParleyOverrides(process.env), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: LogLine[] = [];
  let out = '';
  let err = '';
  let pending = '';
  const listeners = new Set<() => void>();
  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const notify = (): void => {
    for (const listener of [...listeners]) listener();
  };
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    pending += chunk;
    let newline = pending.indexOf('\n');
    while (newline >= 0) {
      const text = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      try {
        lines.push(JSON.parse(text) as LogLine);
      } catch {
        lines.push({ text });
      }
      newline = pending.indexOf('\n');
    }
    notify();
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => {
      exitInfo = { code, signal };
      notify();
      resolve(exitInfo);
    });
  });

  function until<T>(probe: () => T | undefined, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const check = (): void => {
        const found = probe();
        if (found !== undefined) {
          listeners.delete(check);
          resolve(found);
        } else if (exitInfo) {
          listeners.delete(check);
          reject(
            new Error(
              `parley ${args[0]} exited (${JSON.stringify(exitInfo)}) before ${what}\n${out}\n${err}`,
            ),
          );
        }
      };
      listeners.add(check);
      check();
    });
  }

  return {
    child,
    lines,
    stdout: () => out,
    stderr: () => err,
    waitFor: (match) => until(() => lines.find(match), 'the expected log line'),
    waitForLineCount: (count) =>
      until(() => (lines.length > count ? true : undefined), `line ${count + 1}`).then(() => undefined),
    exited,
  };
}

/** The environment minus `PARLEY_*` overrides, so a developer's shell cannot change a test's config. */
export function withoutParleyOverrides(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([key]) => !key.startsWith('PARLEY_')));
}
