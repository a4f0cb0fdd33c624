/**
 * TEST-ONLY failpoint: `PARLEY_TEST_KILL_AFTER_ACKS=N` makes the node SIGKILL itself right after
 * it has written its Nth acknowledgement of `POST /admin/pay` (a 202, or a 200 with `?wait`).
 * Crash tests use it to kill a node at the worst moment for an acknowledgement: if anything
 * acknowledged there were not durable yet, the restarted node would not have it.
 *
 * Off unless the variable is a positive integer. Never set it in production: the node dies
 * without stopping cleanly (see docs/acknowledgements.md).
 */

/** The environment variable of the failpoint. */
export const KILL_AFTER_ACKS_ENV = 'PARLEY_TEST_KILL_AFTER_ACKS';

/**
 * The failpoint as configured in `env`: a function to call right after each acknowledgement is
 * written (after `res.end`), which kills the process at the Nth call; `undefined` when off.
 */
export function ackFailpoint(
  env: NodeJS.ProcessEnv = process.env,
  kill: () => void = () => process.kill(process.pid, 'SIGKILL'),
): (() => void) | undefined {
  const text = env[KILL_AFTER_ACKS_ENV];
  if (text === undefined || !/^[1-9]\d{0,8}$/.test(text)) return undefined;
  const limit = Number(text);
  let acks = 0;
  return () => {
    acks++;
    // Synchronously, in the same turn as the write: nothing else of the node runs in between.
    if (acks === limit) kill();
  };
}
