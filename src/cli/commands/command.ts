/**
 * `parley command abandon <cid>`: ends a command of mine that a peer keeps answering `wait`
 * (`peer_behind`), on the running node (`POST /admin/commands/<cid>/abandon`). Exits 0 only once
 * the node answered that the abandonment is durable.
 */
import { resolve } from 'node:path';
import { type ErrorCode, ParleyError } from '../../errors.js';
import { adminRequest, resolveAdmin } from '../admin-client.js';
import { type CliIo, ExitCode } from '../io.js';

export interface CommandAbandonOptions {
  config: string;
  cid: string;
  json?: boolean;
  /** The node's admin URL. @default from the runtime file or the config */
  url?: string;
}

/**
 * @returns 0 once abandoned (durably); 1 with the node's code otherwise (COMMAND_UNKNOWN,
 *   COMMAND_ALREADY_FINAL, the node not running, …)
 */
export async function runCommandAbandon(options: CommandAbandonOptions, io: CliIo): Promise<number> {
  const target = resolveAdmin(resolve(io.cwd, options.config), io.env, options.url);
  const { status, body } = await adminRequest(
    target,
    'POST',
    `/admin/commands/${encodeURIComponent(options.cid)}/abandon`,
  );
  const answer = (body ?? {}) as { error?: string; message?: string; peer?: string; referenceId?: string };
  if (status !== 200) {
    const code = (answer.error ?? 'TRANSPORT_INTERNAL_ERROR') as ErrorCode;
    throw new ParleyError(code, answer.message ?? `the node answered ${status}`);
  }
  io.out(
    options.json
      ? `${JSON.stringify(body)}\n`
      : `abandoned ${options.cid} (${answer.referenceId}) to ${answer.peer}: COMMAND_ABANDONED, never resent\n`,
  );
  return ExitCode.OK;
}
