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

/**
 * `tee`: copies stdin to stdout until killed. `head`: copies stdin to stdout up to the first line
 * that contains its argument (any line if none), then exits (like `head -n 1`).
 */
const READERS = {
  tee: 'process.stdin.pipe(process.stdout)',
  head: `const until = process.argv[1] ?? '';
let seen = '';
process.stdin.setEncoding('utf8').on('data', (chunk) => {
  seen += chunk;
  for (let end = seen.indexOf('\\n'); end >= 0; end = seen.indexOf('\\n', end + 1)) {
    const start = seen.lastIndexOf('\\n', end - 1) + 1;
    if (seen.slice(start, end).includes(until)) {
      process.stdout.write(seen.slice(0, end + 1), () => process.exit(0));
      return;
    }
  }
});`,
} as const;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const exitOf = (child: ChildProcess): Promise<Exit> =>
  new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));

/** Resolves with the reader's output once it holds a full line (rejects if the reader exits first). */
function firstLine(reader: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    reader.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      text += chunk;
      if (text.includes('\n')) resolve(text);
    });
    reader.on('exit', () => reject(new Error(`the reader exited before a line: ${JSON.stringify(text)}`)));
  });
}

/** `parley <args> | <reader>` as child processes. */
export interface PipedParley {
  readonly node: ChildProcess;
  readonly reader: ChildProcess;
  readonly nodeExited: Promise<Exit>;
  readonly readerExited: Promise<Exit>;
  /** The reader's output once it holds a full line (rejects if the reader exits first). */
  readonly firstLine: Promise<string>;
  /** The node's stderr when it is not on the pipe. */
  stderr(): string;
}

/**
 * `parley <args> | <reader>` (with `stderrToPipe`, `parley <args> 2>&1 | <reader>`): the node's
 * stdout is the write end of a pipe whose only read end the reader holds.
 */
export function spawnParleyPiped(
  args: string[],
  reader: 'tee' | { headUntil: string },
  stderrToPipe: boolean,
): PipedParley {
  const readerArgs = reader === 'tee' ? ['-e', READERS.tee] : ['-e', READERS.head, reader.headUntil];
  const readerChild = spawn(process.execPath, readerArgs, {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const pipe = readerChild.stdin!;
  const node = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, 'src/cli/main.ts'), ...args], {
    cwd: repoRoot,
    env: withoutParleyOverrides(process.env),
    stdio: ['ignore', pipe, stderrToPipe ? pipe : 'pipe'],
  });
  // Only the node writes into the pipe now: the reader's exit leaves it without a reader.
  pipe.destroy();
  let stderr = '';
  node.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const first = firstLine(readerChild);
  first.catch(() => undefined); // a test that does not wait for it
  return {
    node,
    reader: readerChild,
    nodeExited: exitOf(node),
    readerExited: exitOf(readerChild),
    firstLine: first,
    stderr: () => stderr,
  };
}
