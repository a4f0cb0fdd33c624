/** `parley apikey create|list|revoke`: the admin API's keys, on the running node. */
import { resolve } from 'node:path';
import { ParleyError } from '../../errors.js';
import { adminRequest, connectToConfigNode, refusalOf } from '../admin-client.js';
import { type CliIo, ExitCode } from '../io.js';

export interface ApiKeyOptions {
  config: string;
  json?: boolean;
  url?: string;
}

interface KeyView {
  id: string;
  name: string;
  scopes: string[];
  createdAt: string;
  revokedAt: string | null;
}

async function call(
  options: ApiKeyOptions,
  io: CliIo,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
): Promise<unknown> {
  const { target } = await connectToConfigNode(resolve(io.cwd, options.config), io.env, options.url);
  const answer = await adminRequest(target, method, path, body);
  if (answer.status < 200 || answer.status > 299) throw refusalOf(answer.status, answer.body);
  return answer.body;
}

/** `parley apikey create --name <label> --scopes read,pay`: prints the secret, once. */
export async function runApiKeyCreate(
  options: ApiKeyOptions & { name: string; scopes: string[] },
  io: CliIo,
): Promise<number> {
  const made = (await call(options, io, 'POST', '/admin/api-keys', {
    name: options.name,
    scopes: options.scopes,
  })) as {
    key: KeyView;
    secret: string;
  };
  if (options.json) {
    io.out(`${JSON.stringify(made)}\n`);
    return ExitCode.OK;
  }
  io.out(
    [
      `API key ${made.key.id} (${made.key.name}), scopes ${made.key.scopes.join(', ')}:`,
      '',
      `  ${made.secret}`,
      '',
      'This is the only time the secret is shown (the node keeps its hash). Send it as',
      '`Authorization: Bearer <secret>`; revoke it with `parley apikey revoke ' + made.key.id + '`.',
      '',
    ].join('\n'),
  );
  return ExitCode.OK;
}

/** `parley apikey list`. */
export async function runApiKeyList(options: ApiKeyOptions, io: CliIo): Promise<number> {
  const { keys } = (await call(options, io, 'GET', '/admin/api-keys')) as { keys: KeyView[] };
  if (options.json) {
    io.out(`${JSON.stringify(keys)}\n`);
    return ExitCode.OK;
  }
  if (keys.length === 0) {
    io.out('no API keys (make one with `parley apikey create`)\n');
    return ExitCode.OK;
  }
  const rows = keys.map((k) => [
    k.id,
    k.name,
    k.scopes.join(','),
    k.createdAt,
    k.revokedAt ? `revoked ${k.revokedAt}` : 'active',
  ]);
  io.out(table(['ID', 'NAME', 'SCOPES', 'CREATED', 'STATE'], rows));
  return ExitCode.OK;
}

/** `parley apikey revoke <id>`. */
export async function runApiKeyRevoke(options: ApiKeyOptions & { id: string }, io: CliIo): Promise<number> {
  if (!/^[0-9a-f]{12}$/.test(options.id)) {
    throw new ParleyError(
      'BUSINESS_INVALID_INPUT',
      `${JSON.stringify(options.id)} is not an API key id (12 hex digits, from \`parley apikey list\`)`,
    );
  }
  const key = (await call(options, io, 'POST', `/admin/api-keys/${options.id}/revoke`)) as KeyView;
  io.out(
    options.json
      ? `${JSON.stringify(key)}\n`
      : `API key ${key.id} (${key.name}) is revoked: refused from now on.\n`,
  );
  return ExitCode.OK;
}

/** A plain text table. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}
