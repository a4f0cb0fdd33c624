/**
 * Shared parts of the security suite: a real node on 127.0.0.1 with a real database, and the
 * rows an attack must never write (counted before and after).
 */
import type { NodeConfigInput } from '../../src/config.js';
import { createVaspNode, type NodeDeps, type VaspNode } from '../../src/node.js';
import { createNodeDatabase, type NodeDatabase } from '../helpers/node-process.js';

/** The tables no attack without a key (or a refused frame) may write to. */
export const GUARDED_TABLES = ['command_log', 'outbox', 'object_head', 'object_version'] as const;

export type RowCounts = Record<(typeof GUARDED_TABLES)[number], number>;

export async function rowCounts(db: NodeDatabase): Promise<RowCounts> {
  const out = {} as RowCounts;
  for (const table of GUARDED_TABLES) {
    const [row] = await db.query<{ n: number | bigint | string }>(`SELECT COUNT(*) AS n FROM ${table}`);
    out[table] = Number(row?.n ?? 0);
  }
  return out;
}

/** A started node and its database, closed and deleted by `dispose`. */
export interface SecuredNode {
  node: VaspNode;
  db: NodeDatabase;
  dispose(): Promise<void>;
}

export async function startSecuredNode(
  config: (databaseUrl: string) => NodeConfigInput,
  deps: NodeDeps = {},
): Promise<SecuredNode> {
  const db = await createNodeDatabase();
  let node: VaspNode;
  try {
    node = await createVaspNode(config(db.url), deps);
  } catch (err) {
    await db.dispose();
    throw err;
  }
  return {
    node,
    db,
    async dispose() {
      await node.close();
      await db.dispose();
    },
  };
}
