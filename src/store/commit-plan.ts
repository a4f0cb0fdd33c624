/**
 * Pure part of a commit: validates `commit()` calls and folds a group of them into the rows one
 * transaction must write. No I/O here; `commit-sql.ts` turns a plan into SQL.
 */
import { ParleyError } from '../errors.js';
import type { CommandRecord, CommitItem, OutboxRecord, VersionRecord } from './types.js';

/** The head change one batch makes to one object (all its new versions folded together). */
export interface HeadChange {
  peer: string;
  referenceId: string;
  /** The head the object must have before the batch; null when the batch creates the object. */
  fromVersion: string | null;
  toVersion: string;
  open: boolean;
  /** How many versions the batch adds to the object. */
  added: number;
}

/** A back-office event a commit writes (`webhook_event`), one per command. */
export interface PlannedEvent {
  peer: string;
  referenceId: string;
  cid: string;
  kind: 'payment_created' | 'payment_updated' | 'payment_final' | 'command_failed';
}

/** Everything one transaction writes for a group of `commit()` calls, in commit order. */
export interface CommitPlan {
  commands: CommandRecord[];
  /** New versions with the cid of the command that created each. */
  versions: Array<{ version: VersionRecord; cid: string }>;
  heads: HeadChange[];
  /** `(peer, cid)` of outbox rows to delete. */
  settled: Array<{ peer: string; cid: string }>;
  /** Back-office events, when the store records them (`GroupCommitOptions.events`). */
  events: PlannedEvent[];
}

const DIRECTIONS: ReadonlySet<string> = new Set(['outbound', 'inbound']);
const STATUSES: ReadonlySet<string> = new Set(['success', 'failure']);

function isText(v: unknown): v is string {
  return typeof v === 'string' && v.length > 0;
}

function isOptionalText(v: unknown): v is string | null {
  return v === null || isText(v);
}

function invalid(message: string): ParleyError {
  return new ParleyError('STORE_INVALID_INPUT', message);
}

function checkItem(item: CommitItem, index: number): ParleyError | undefined {
  const c = item.command;
  const at = `item ${index}`;
  if (!c || !isText(c.peer) || !isText(c.cid) || !isText(c.referenceId) || !isText(c.writeVersion)) {
    return invalid(`${at}: command needs non-empty peer, cid, referenceId and writeVersion`);
  }
  if (!isOptionalText(c.readVersion) || !isOptionalText(c.errorCode)) {
    return invalid(`${at}: readVersion and errorCode must be null or non-empty strings`);
  }
  if (!isText(c.requestJws) || !isText(c.responseJws)) return invalid(`${at}: both JWS are required`);
  if (!DIRECTIONS.has(c.direction)) return invalid(`${at}: bad direction ${String(c.direction)}`);
  if (!STATUSES.has(c.status)) return invalid(`${at}: bad status ${String(c.status)}`);
  const v = item.version;
  if (c.status === 'failure') {
    if (v !== undefined) return invalid(`${at}: a failed command creates no version`);
    if (c.errorCode === null) return invalid(`${at}: a failed command needs its errorCode`);
    return undefined;
  }
  if (c.errorCode !== null) return invalid(`${at}: a successful command has no errorCode`);
  if (v === undefined) return invalid(`${at}: a successful command must create its version`);
  if (
    v.peer !== c.peer ||
    v.referenceId !== c.referenceId ||
    v.version !== c.writeVersion ||
    v.previousVersion !== c.readVersion
  ) {
    return invalid(
      `${at}: the version must be the command's write (peer, referenceId, version, previousVersion)`,
    );
  }
  if (typeof v.payment !== 'string' || typeof v.open !== 'boolean') {
    return invalid(`${at}: version needs payment (JSON text) and open (boolean)`);
  }
  return undefined;
}

const objectKey = (peer: string, referenceId: string): string => `${peer}\u0000${referenceId}`;
const commandKey = (peer: string, cid: string): string => `${peer}\u0000${cid}`;

/**
 * Checks one `commit()` call on its own: well-formed items, no `(peer, cid)` twice, and the
 * versions of each object chained in item order.
 * Returns the error to reject the call with, or undefined.
 */
export function validateCommit(items: readonly CommitItem[]): ParleyError | undefined {
  if (!Array.isArray(items)) return invalid('commit() takes an array of items');
  const cids = new Set<string>();
  for (let i = 0; i < items.length; i++) {
    const item = items[i]!;
    const bad = checkItem(item, i);
    if (bad) return bad;
    const key = commandKey(item.command.peer, item.command.cid);
    if (cids.has(key)) {
      return new ParleyError('STORE_DUPLICATE_COMMAND', `item ${i}: cid ${item.command.cid} appears twice`);
    }
    cids.add(key);
  }
  return planCommits([items]) === undefined
    ? new ParleyError(
        'STORE_VERSION_CONFLICT',
        'two items of the call do not chain (same version read twice?)',
      )
    : undefined;
}

/**
 * Folds validated calls, in order, into one plan. Returns undefined when the calls conflict with
 * each other in a way the database would not catch by itself when folded (a version read that is
 * not the version written just before it for the same object); the caller then commits the calls
 * one by one so that each gets its own verdict.
 */
export function planCommits(
  calls: ReadonlyArray<readonly CommitItem[]>,
  options: { events?: boolean } = {},
): CommitPlan | undefined {
  const plan: CommitPlan = { commands: [], versions: [], heads: [], settled: [], events: [] };
  const heads = new Map<string, HeadChange>();
  for (const items of calls) {
    for (const item of items) {
      const c = item.command;
      plan.commands.push(c);
      if (item.settlesOutbox === true) plan.settled.push({ peer: c.peer, cid: c.cid });
      if (options.events === true && item.restored !== true) plan.events.push(eventOf(item));
      const v = item.version;
      if (v === undefined) continue;
      plan.versions.push({ version: v, cid: c.cid });
      const key = objectKey(v.peer, v.referenceId);
      const head = heads.get(key);
      if (head === undefined) {
        const change: HeadChange = {
          peer: v.peer,
          referenceId: v.referenceId,
          fromVersion: v.previousVersion,
          toVersion: v.version,
          open: v.open,
          added: 1,
        };
        heads.set(key, change);
        plan.heads.push(change);
      } else {
        if (v.previousVersion !== head.toVersion) return undefined;
        head.toVersion = v.version;
        head.open = v.open;
        head.added += 1;
      }
    }
  }
  return plan;
}

/** The back-office event of one committed command. */
function eventOf(item: CommitItem): PlannedEvent {
  const c = item.command;
  const v = item.version;
  const kind =
    v === undefined
      ? 'command_failed'
      : !v.open
        ? 'payment_final'
        : c.readVersion === null
          ? 'payment_created'
          : 'payment_updated';
  return { peer: c.peer, referenceId: c.referenceId, cid: c.cid, kind };
}

/**
 * Checks an outbox record. Returns the error to reject `enqueue()` with, or undefined.
 */
export function validateOutboxRecord(r: OutboxRecord): ParleyError | undefined {
  if (!r || !isText(r.peer) || !isText(r.cid) || !isText(r.referenceId) || !isText(r.writeVersion)) {
    return invalid('outbox record needs non-empty peer, cid, referenceId and writeVersion');
  }
  if (!isOptionalText(r.readVersion)) return invalid('readVersion must be null or a non-empty string');
  if (!isText(r.requestJws)) return invalid('outbox record needs its request JWS');
  if (!Number.isFinite(r.createdAtMs)) return invalid('createdAtMs must be a finite number');
  if (!Number.isSafeInteger(r.attempts) || r.attempts < 0) return invalid('attempts must be an integer >= 0');
  return undefined;
}
