/**
 * `parley check`: the integrity check of a node's database (`ParleyStore.checkIntegrity`):
 * objects, versions, heads and outbox against the signed log. The checks only read, and are safe
 * while the node runs (each is one statement, one consistent snapshot); opening the database
 * applies pending migrations first, as the node does.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadNodeConfig } from '../../config.js';
import { ParleyError } from '../../errors.js';
import { openStore } from '../../store/index.js';
import { parseStoreUrl } from '../../store/store-url.js';
import { type CliIo, ExitCode } from '../io.js';

export interface CheckOptions {
  config: string;
  json?: boolean;
}

/** @returns 0 when the database is consistent; 1 when a check found violations */
export async function runCheck(options: CheckOptions, io: CliIo): Promise<number> {
  const config = loadNodeConfig(resolve(io.cwd, options.config), io.env);
  const target = parseStoreUrl(config.database);
  // Opening a missing SQLite file would create an empty database, and find it consistent.
  if (target.engine === 'sqlite' && !existsSync(target.path)) {
    throw new ParleyError('CONFIG_INVALID', `no database at ${target.path}`);
  }
  const store = await openStore({
    url: config.database,
    walCheckpointPages: config.storage.walCheckpointPages,
  });
  let problems: string[];
  try {
    problems = await store.checkIntegrity();
  } finally {
    await store.close();
  }
  if (options.json) io.out(`${JSON.stringify({ ok: problems.length === 0, problems })}\n`);
  else if (problems.length === 0) io.out('ok: the derived state matches the signed log\n');
  else io.out(`${problems.length} problem(s):\n${problems.map((p) => `  ${p}\n`).join('')}`);
  return problems.length === 0 ? ExitCode.OK : ExitCode.FAILED;
}
