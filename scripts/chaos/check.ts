/**
 * The invariant checker of a chaos run, over the nodes' SQLite files once every node has
 * stopped (docs/chaos.md explains each invariant):
 *
 * - `ack_not_durable` (checked at every SIGKILL, on the killed node's files, see
 *   {@link notDurable}): a payment the node acknowledged is in neither its log nor its outbox;
 * - `ack_lost`: an acknowledged payment is on neither node (allowed only when its sender's
 *   database was wiped after the acknowledgement: a wipe loses what was not yet sent);
 * - `ack_missing`: an acknowledged payment is on one node of its pair but not the other (allowed
 *   only on a wiped node, for an object whose last command the other node logged before the
 *   wiped one came back: a wipe restores open objects, not closed ones);
 * - `not_final`: an object (acknowledged or not) still open on a node;
 * - `log_differs`: the two nodes of a pair hold different signed-log entries for an object
 *   (a cid on one side only, or the same cid with other bytes, status or versions);
 * - `object_missing`: an object in one node's log for the pair and not in the other's (same
 *   wipe allowance as `ack_missing`);
 * - `chain`: an object's versions are not one linear chain from its create (a gap or a fork),
 *   do not match the successes of its log, its head is not the chain's tip, or the two nodes'
 *   chains differ;
 * - `outbox`: a command is still queued once the run is quiet.
 *
 * The run adds its own (chaos.ts): `parley_check` (the store's integrity check failed on a
 * node), `not_quiet` (not idle within the settle time), `stop` (a node did not stop cleanly on
 * SIGTERM), `restart` (a node did not start again).
 */
import Database from 'better-sqlite3';

/** A node's database deleted while it was down. */
export interface Wipe {
  /** Wall-clock ms of the deletion (just after its SIGKILL). */
  at: number;
  /** Wall-clock ms at which it was started again on the empty database (spawned); absent if never. */
  back?: number;
}

export interface CheckedNode {
  name: string;
  address: string;
  dbPath: string;
  wipes: readonly Wipe[];
}

export interface Acknowledged {
  ref: string;
  from: string;
  to: string;
  /** Wall-clock ms of the acknowledgement. */
  at: number;
}

export type InvariantName =
  | 'ack_not_durable'
  | 'ack_lost'
  | 'ack_missing'
  | 'not_final'
  | 'log_differs'
  | 'object_missing'
  | 'chain'
  | 'outbox'
  // Found by the run itself rather than in the databases:
  | 'parley_check'
  | 'not_quiet'
  | 'stop'
  | 'restart';

export interface Violation {
  invariant: InvariantName;
  message: string;
}

export interface CheckStats {
  /** Acknowledged payments found on both nodes of their pair. */
  acknowledgedOnBoth: number;
  /** Acknowledged payments a wipe took from one side (allowed; see `ack_missing`). */
  acknowledgedOnSurvivorOnly: number;
  /** Acknowledged payments a wipe of the sender took before they left it (allowed; see `ack_lost`). */
  acknowledgedLostWithWipe: number;
  /** Objects compared, over all pairs. */
  objects: number;
  /** Signed-log entries compared, over all pairs. */
  logEntries: number;
}

export interface CheckResult {
  violations: Violation[];
  stats: CheckStats;
}

interface LogRow {
  cid: string;
  direction: string;
  ref: string;
  read: string | null;
  write: string;
  request: string;
  response: string;
  status: string;
  code: string | null;
  createdAt: number | string;
}

interface VersionRow {
  ref: string;
  version: string;
  previous: string | null;
  payment: string;
}

interface HeadRow {
  ref: string;
  head: string;
  open: number | boolean;
  count: number;
}

/** What one node holds for one peer. */
interface Side {
  node: CheckedNode;
  /** Log entries by object, in log order. */
  logs: Map<string, LogRow[]>;
  versions: Map<string, VersionRow[]>;
  heads: Map<string, HeadRow>;
  outbox: number;
}

/** JSON with object keys sorted, to compare decoded objects. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0,
    );
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

const ms = (value: number | string): number => (typeof value === 'number' ? value : Date.parse(value));

function groupBy<T extends { ref: string }>(rows: T[]): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const row of rows) {
    const list = out.get(row.ref);
    if (list) list.push(row);
    else out.set(row.ref, [row]);
  }
  return out;
}

function readSide(db: Database.Database, node: CheckedNode, peer: string): Side {
  const logs = db
    .prepare(
      `SELECT cid, direction, reference_id AS ref, read_version AS read, write_version AS write,
              request_jws AS request, response_jws AS response, status, error_code AS code,
              created_at AS createdAt
         FROM command_log WHERE peer = ? ORDER BY id`,
    )
    .all(peer) as LogRow[];
  const versions = db
    .prepare(
      `SELECT reference_id AS ref, version, previous_version AS previous, payment
         FROM object_version WHERE peer = ?`,
    )
    .all(peer) as VersionRow[];
  const heads = db
    .prepare(
      `SELECT reference_id AS ref, head_version AS head, open, version_count AS count
         FROM object_head WHERE peer = ?`,
    )
    .all(peer) as HeadRow[];
  const outbox = db.prepare('SELECT COUNT(*) AS n FROM outbox WHERE peer = ?').get(peer) as { n: number };
  return {
    node,
    logs: groupBy(logs),
    versions: groupBy(versions),
    heads: new Map(heads.map((h) => [h.ref, h])),
    outbox: outbox.n,
  };
}

/**
 * Whether `side` may lack object `ref` that `other` holds: `other` logged the object's last
 * command before `side` came back from a wipe. Until then nothing can have been exchanged with
 * the new database, so that command was exchanged before the wipe (`other` may commit it a little
 * after) and the object was closed on the wiped database, which resync does not restore.
 */
function wipeExplains(side: Side, other: Side, ref: string): boolean {
  const last = other.logs.get(ref)?.at(-1);
  if (!last) return false;
  const lastAt = ms(last.createdAt);
  return side.node.wipes.some((w) => (w.back ?? Number.POSITIVE_INFINITY) > lastAt);
}

/** The versions of one object as one chain from its create, or a description of what is wrong. */
function chainOf(rows: VersionRow[]): VersionRow[] | string {
  const byPrevious = new Map<string | null, VersionRow>();
  for (const row of rows) {
    if (byPrevious.has(row.previous)) return `a fork: two versions follow ${row.previous ?? 'the create'}`;
    byPrevious.set(row.previous, row);
  }
  const out: VersionRow[] = [];
  for (let at = byPrevious.get(null); at; at = byPrevious.get(at.version)) out.push(at);
  if (out.length !== rows.length)
    return `a gap: ${rows.length - out.length} version(s) not reachable from the create`;
  return out;
}

/** Checks one object held by one side on its own: chain, head, log successes, closed. */
function checkObject(
  side: Side,
  peerName: string,
  ref: string,
  report: (v: Violation) => void,
): VersionRow[] {
  const where = `${side.node.name} (with ${peerName}) ${ref}`;
  const chain = chainOf(side.versions.get(ref) ?? []);
  if (typeof chain === 'string') {
    report({ invariant: 'chain', message: `${where}: ${chain}` });
    return [];
  }
  const successes = (side.logs.get(ref) ?? []).filter((r) => r.status === 'success').map((r) => r.write);
  const versions = chain.map((v) => v.version);
  if ([...successes].sort().join() !== [...versions].sort().join()) {
    report({ invariant: 'chain', message: `${where}: versions do not match the log's successes` });
  }
  const head = side.heads.get(ref);
  if (!head || head.head !== chain.at(-1)?.version || head.count !== chain.length) {
    report({ invariant: 'chain', message: `${where}: the head is not the tip of the chain` });
  } else if (head.open === 1 || head.open === true) {
    report({ invariant: 'not_final', message: `${where}: still open after the run went quiet` });
  }
  return chain;
}

const sameEntry = (a: LogRow, b: LogRow): boolean =>
  a.direction !== b.direction &&
  a.ref === b.ref &&
  a.read === b.read &&
  a.write === b.write &&
  a.request === b.request &&
  a.response === b.response &&
  a.status === b.status &&
  a.code === b.code;

/** Compares the two sides of one pair, object by object. */
function checkPair(a: Side, b: Side, stats: CheckStats, report: (v: Violation) => void): void {
  const pair = `${a.node.name}↔${b.node.name}`;
  const refs = new Set([...a.logs.keys(), ...b.logs.keys(), ...a.versions.keys(), ...b.versions.keys()]);
  for (const ref of refs) {
    stats.objects += 1;
    const inA = a.logs.has(ref);
    const inB = b.logs.has(ref);
    if (!inA || !inB) {
      const [holder, lacking] = inA ? [a, b] : [b, a];
      checkObject(holder, lacking.node.name, ref, report);
      if (!wipeExplains(lacking, holder, ref)) {
        report({
          invariant: 'object_missing',
          message: `${pair} ${ref}: in ${holder.node.name}'s log, not in ${lacking.node.name}'s`,
        });
      }
      continue;
    }
    const chainA = checkObject(a, b.node.name, ref, report);
    const chainB = checkObject(b, a.node.name, ref, report);
    const logA = a.logs.get(ref)!;
    const logB = new Map(b.logs.get(ref)!.map((r) => [r.cid, r]));
    stats.logEntries += logA.length;
    const differs: string[] = [];
    for (const entry of logA) {
      const other = logB.get(entry.cid);
      if (!other) differs.push(`${entry.cid} only in ${a.node.name}'s log`);
      else if (!sameEntry(entry, other)) differs.push(`${entry.cid} differs`);
      logB.delete(entry.cid);
    }
    for (const cid of logB.keys()) differs.push(`${cid} only in ${b.node.name}'s log`);
    if (differs.length > 0) {
      report({ invariant: 'log_differs', message: `${pair} ${ref}: ${differs.join('; ')}` });
    }
    // The proposer stores the object it built, the other side the one it decoded: the same
    // object, maybe with its keys in another order.
    const shape = (chain: VersionRow[]) =>
      canonical(chain.map((v) => [v.version, v.previous, JSON.parse(v.payment) as unknown]));
    if (chainA.length > 0 && chainB.length > 0 && shape(chainA) !== shape(chainB)) {
      report({ invariant: 'chain', message: `${pair} ${ref}: the two chains differ` });
    }
  }
}

/** Checks every acknowledged payment against the sides of its pair. */
function checkAcknowledged(
  acked: readonly Acknowledged[],
  side: (node: string, peer: string) => Side | undefined,
  stats: CheckStats,
  report: (v: Violation) => void,
): void {
  for (const p of acked) {
    const s = side(p.from, p.to);
    const r = side(p.to, p.from);
    if (!s || !r) {
      report({ invariant: 'ack_lost', message: `${p.ref} (${p.from}→${p.to}): not a pair of this run` });
      continue;
    }
    const inS = s.logs.has(p.ref);
    const inR = r.logs.has(p.ref);
    if (inS && inR) stats.acknowledgedOnBoth += 1;
    else if (!inS && !inR) {
      // Only the sender's own wipe, after it said yes, can take a payment it had not yet sent.
      if (s.node.wipes.some((w) => w.at > p.at)) stats.acknowledgedLostWithWipe += 1;
      else {
        report({
          invariant: 'ack_lost',
          message: `${p.ref} (${p.from}→${p.to}, acknowledged at ${new Date(p.at).toISOString()}): on neither node`,
        });
      }
    } else {
      const [holder, lacking] = inS ? [s, r] : [r, s];
      if (wipeExplains(lacking, holder, p.ref)) stats.acknowledgedOnSurvivorOnly += 1;
      else {
        report({
          invariant: 'ack_missing',
          message: `${p.ref} (${p.from}→${p.to}): on ${holder.node.name}, not on ${lacking.node.name}`,
        });
      }
    }
  }
}

/**
 * Checks the databases of a finished run (every node stopped) against each other and against
 * what was acknowledged. Every node is assumed to have a channel with every other.
 */
export function checkInvariants(nodes: readonly CheckedNode[], acked: readonly Acknowledged[]): CheckResult {
  const violations: Violation[] = [];
  const report = (v: Violation): void => {
    violations.push(v);
  };
  const stats: CheckStats = {
    acknowledgedOnBoth: 0,
    acknowledgedOnSurvivorOnly: 0,
    acknowledgedLostWithWipe: 0,
    objects: 0,
    logEntries: 0,
  };
  const sides = new Map<string, Side>();
  for (const node of nodes) {
    const db = new Database(node.dbPath, { readonly: true, fileMustExist: true });
    try {
      for (const peer of nodes) {
        if (peer !== node) sides.set(`${node.name}>${peer.name}`, readSide(db, node, peer.address));
      }
    } finally {
      db.close();
    }
  }
  const side = (node: string, peer: string): Side | undefined => sides.get(`${node}>${peer}`);
  for (const [i, a] of nodes.entries()) {
    for (const b of nodes.slice(i + 1))
      checkPair(side(a.name, b.name)!, side(b.name, a.name)!, stats, report);
  }
  for (const [key, s] of sides) {
    if (s.outbox > 0) {
      const peer = key.slice(key.indexOf('>') + 1);
      report({
        invariant: 'outbox',
        message: `${s.node.name} (to ${peer}): ${s.outbox} command(s) still queued`,
      });
    }
  }
  checkAcknowledged(acked, side, stats, report);
  return { violations, stats };
}

/**
 * The reference ids among `refs` that the (stopped) node's database holds in neither its signed
 * log nor its outbox: acknowledged payments a SIGKILL took. Opened read-only: the node's next
 * start replays its WAL, not this.
 */
export function notDurable(dbPath: string, refs: readonly string[]): string[] {
  if (refs.length === 0) return [];
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    const held = new Set(
      (
        db
          .prepare('SELECT reference_id AS ref FROM command_log UNION SELECT reference_id AS ref FROM outbox')
          .all() as Array<{ ref: string }>
      ).map((r) => r.ref),
    );
    return refs.filter((ref) => !held.has(ref));
  } finally {
    db.close();
  }
}
