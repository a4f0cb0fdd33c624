/**
 * `parley resync --all <peer>`: reconciles the closed objects with a peer on the running node
 * (`POST /admin/restore`, PROTOCOL.md §7.6): the node leads a restore that pushes or fetches every
 * closed object one side lacks (a node restored from an old backup gets its missing ones). Exits
 * 0 once the restore's cursor is durable; it runs in the background (`parley status` shows it).
 */
import { resolve } from 'node:path';
import { type ErrorCode, ParleyError } from '../../errors.js';
import { adminRequest, resolveAdmin } from '../admin-client.js';
import { type CliIo, ExitCode } from '../io.js';

export interface ResyncAllOptions {
  config: string;
  peer: string;
  json?: boolean;
  /** The node's admin URL. @default from the runtime file or the config */
  url?: string;
}

/** @returns 0 once started; 1 with the node's code otherwise (CONFIG_INVALID, SYNC_RESTORE_UNSUPPORTED, …) */
export async function runResyncAll(options: ResyncAllOptions, io: CliIo): Promise<number> {
  const target = resolveAdmin(resolve(io.cwd, options.config), io.env, options.url);
  const { status, body } = await adminRequest(target, 'POST', '/admin/restore', { peer: options.peer });
  const answer = (body ?? {}) as { error?: string; message?: string };
  if (status !== 202) {
    const code = (answer.error ?? 'TRANSPORT_INTERNAL_ERROR') as ErrorCode;
    throw new ParleyError(code, answer.message ?? `the node answered ${status}`);
  }
  io.out(
    options.json
      ? `${JSON.stringify(body)}\n`
      : `restore of the closed objects with ${options.peer} started: progress in \`parley status\`\n`,
  );
  return ExitCode.OK;
}
