import { isParleyError } from '../errors.js';

/** What a CLI command may touch besides its options: output, environment, working directory. */
export interface CliIo {
  /** Writes to standard output (results, and the node's JSON log lines). */
  out(text: string): void;
  /** Writes to standard error (human-readable problems). */
  err(text: string): void;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
}

/** The process's own streams (whose write errors never end the process: {@link keepRunningOnClosedStdio}). */
export function processIo(): CliIo {
  keepRunningOnClosedStdio();
  return {
    out: (text) => writeUnlessClosed(process.stdout, text),
    err: (text) => writeUnlessClosed(process.stderr, text),
    env: process.env,
    cwd: process.cwd(),
  };
}

const guarded = new WeakSet<NodeJS.WriteStream>();

/**
 * Makes stdout and stderr safe to write after their reader is gone (`parley start | tee log`
 * and Ctrl-C: the shell's SIGINT kills `tee` first, the node's next line meets EPIPE). Without
 * an `error` listener Node throws that EPIPE as an uncaught exception, and a node would die in
 * the middle of its shutdown (peers see 1006, the database stays open). With it, the stream is
 * closed, later lines are dropped, and the node goes on (the log is a view, not the record).
 * Idempotent.
 */
export function keepRunningOnClosedStdio(): void {
  for (const stream of [process.stdout, process.stderr]) {
    if (guarded.has(stream)) continue;
    guarded.add(stream);
    // Every error of a standard stream (EPIPE, ERR_STREAM_DESTROYED, EIO on a lost terminal)
    // means lines cannot be written there any more; none of them is a reason to stop the node.
    stream.on('error', () => undefined);
  }
}

function writeUnlessClosed(stream: NodeJS.WriteStream, text: string): void {
  if (stream.destroyed || stream.writableEnded) return;
  stream.write(text);
}

/** Exit codes of every `parley` command (each command's help repeats what applies to it). */
export const ExitCode = {
  /** Done. */
  OK: 0,
  /** The operation failed: node not running, payment refused, frame refused, runtime failure. */
  FAILED: 1,
  /** Usage error or invalid input/configuration; nothing was changed. */
  USAGE: 2,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Thrown by argument checks; reported with the command's help hint, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Codes that mean "your input or configuration is wrong" (exit 2) rather than "it failed" (exit 1). */
const INPUT_CODES: ReadonlySet<string> = new Set([
  'CONFIG_INVALID',
  'ADDRESS_INVALID',
  'KEY_INVALID',
  'BUSINESS_INVALID_INPUT',
  'DEMO_DIR_REFUSED',
  'HEALTH_EPOCH_UNKNOWN',
  'HTTP_INVALID_QUERY',
  'PAYMENT_UNKNOWN',
  'API_KEY_UNKNOWN',
]);

/** The exit code for an error code. */
export function exitCodeFor(code: string): ExitCode {
  return INPUT_CODES.has(code) ? ExitCode.USAGE : ExitCode.FAILED;
}

/**
 * Reports a failed command on stderr as `parley <command>: <CODE>: <message>` (or a usage
 * hint) and returns its exit code. Unknown errors are rethrown: they are bugs.
 */
export function reportError(io: CliIo, command: string, err: unknown): ExitCode {
  if (err instanceof UsageError) {
    io.err(`parley ${command}: ${err.message}\nRun \`parley ${command} --help\` for usage.\n`);
    return ExitCode.USAGE;
  }
  if (isParleyError(err)) {
    io.err(`parley ${command}: ${err.code}: ${err.message}\n`);
    return exitCodeFor(err.code);
  }
  throw err;
}
