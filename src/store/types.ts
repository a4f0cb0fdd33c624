/**
 * What the rest of Parley needs from durable storage. Implemented once over Prisma for both
 * SQLite (embedded default) and PostgreSQL; every test of the contract runs on both engines.
 *
 * Channel key: every record belongs to one channel, named by the peer's on-chain address in
 * bech32 with the zero subaddress (`peer`). This node's own identity is per database.
 */

/** Who proposed a command on a channel: `outbound` = this node, `inbound` = the peer. */
export type Direction = 'outbound' | 'inbound';

/** Final outcome of a command, as in the signed response. */
export type CommandStatus = 'success' | 'failure';

/**
 * One entry of the signed log: a request JWS and its final signed response JWS, exactly as
 * they crossed the wire (never re-serialised). Only final outcomes are logged: successes and
 * command errors. Protocol errors are never stored.
 */
export interface CommandRecord {
  peer: string;
  cid: string;
  direction: Direction;
  referenceId: string;
  /** The version the command read (`_reads`), null for a create. */
  readVersion: string | null;
  /** The version the command writes (`_writes`). */
  writeVersion: string;
  requestJws: string;
  responseJws: string;
  status: CommandStatus;
  /** LIP-1 error code of a command error, null on success. */
  errorCode: string | null;
}

/** A committed object version (only successful commands create one). */
export interface VersionRecord {
  peer: string;
  referenceId: string;
  version: string;
  previousVersion: string | null;
  /** The full object at this version, as JSON text. */
  payment: string;
  /** Whether the object is still open after this version (not final). */
  open: boolean;
}

/**
 * One unit of a commit: the signed-log entry, the object version it creates (success only),
 * and whether it settles an outbox entry of the same `(peer, cid)`. The whole item, and the
 * whole batch it is part of, commits atomically: the dedup record (the log row) and the
 * state change are in the same transaction.
 */
export interface CommitItem {
  command: CommandRecord;
  version?: VersionRecord;
  /** Delete the outbox row `(peer, command.cid)` in the same transaction. */
  settlesOutbox?: boolean;
  /**
   * Restored from the peer's signed record (a closed object, PROTOCOL.md §7.6): stored like any
   * other, but no back-office payment event is written for it (it is restore progress, not a
   * new payment).
   */
  restored?: boolean;
}

/** A command this node proposed that has no final response yet. */
export interface OutboxRecord {
  peer: string;
  cid: string;
  referenceId: string;
  readVersion: string | null;
  writeVersion: string;
  requestJws: string;
  /** Milliseconds since the epoch when it was queued. */
  createdAtMs: number;
  attempts: number;
}

/** Head of one object in the open-object index. */
export interface ObjectHead {
  peer: string;
  referenceId: string;
  headVersion: string;
  open: boolean;
  versionCount: number;
}

/** One stored version of an object, in chain order. */
export interface StoredVersion {
  version: string;
  previousVersion: string | null;
  payment: string;
  open: boolean;
}

/** A peer this node has (or had) a channel with. */
export interface PeerRecord {
  address: string;
  /** The peer's Ed25519 public key, raw 32 bytes as hex. */
  publicKeyHex: string;
  /** The store epoch last seen from this peer, null before the first hello. */
  epoch: string | null;
  updatedAtMs: number;
}

/** This database's identity: its store epoch is made once, when the database is created. */
export interface StoreIdentity {
  epoch: string;
  createdAtMs: number;
}

export type StoreEngine = 'sqlite' | 'postgresql';

/**
 * Durable storage of one node. All methods may throw `ParleyError('STORE_UNAVAILABLE')`.
 */
export interface ParleyStore {
  readonly engine: StoreEngine;

  /** The store epoch, created with the database (a wiped database gets a new one). */
  identity(): Promise<StoreIdentity>;

  upsertPeer(peer: { address: string; publicKeyHex: string }): Promise<void>;
  getPeer(address: string): Promise<PeerRecord | undefined>;
  setPeerEpoch(address: string, epoch: string): Promise<void>;

  /**
   * Commit items atomically, in order. Concurrent calls are grouped into one transaction
   * (group commit); each call resolves only when its items are durable, and rejects if its
   * batch failed (then nothing of that batch is stored).
   */
  commit(items: readonly CommitItem[]): Promise<void>;

  /** The signed-log entry of `(peer, cid)`, if any. */
  findCommand(peer: string, cid: string): Promise<CommandRecord | undefined>;
  /** Every signed-log entry of an object, in commit order. */
  history(peer: string, referenceId: string): Promise<CommandRecord[]>;

  /** Every version of an object, in chain order (oldest first). */
  versions(peer: string, referenceId: string): Promise<StoredVersion[]>;
  head(peer: string, referenceId: string): Promise<ObjectHead | undefined>;
  /** Open objects of a channel ordered by referenceId, strictly after `after`, at most `limit`. */
  openObjects(peer: string, after: string | null, limit: number): Promise<ObjectHead[]>;
  countOpenObjects(peer: string): Promise<number>;

  /** Durably queue an outgoing command before it is sent. */
  enqueue(record: OutboxRecord): Promise<void>;
  /** Outgoing commands of a channel without a final response, oldest first. */
  outbox(peer: string): Promise<OutboxRecord[]>;
  /** Count one more send attempt of an outbox entry. */
  markAttempt(peer: string, cid: string): Promise<void>;

  /**
   * Check the derived state against the signed log: every successful log entry has its
   * version, every version has its log entry, each head is the end of its chain, no version
   * is read by two successful commands, and no outbox entry is also final in the log.
   * Returns a human-readable list of violations (empty when consistent).
   */
  checkIntegrity(): Promise<string[]>;

  /**
   * Whether the store can write now, by a probe that allocates no page (docs/storage.md).
   * Never rejects.
   */
  probeWritable?(): Promise<WriteProbe>;

  /** Idempotent. */
  close(): Promise<void>;
}

/** What {@link ParleyStore.probeWritable} found. */
export interface WriteProbe {
  writable: boolean;
  /**
   * The database's volume has room for writes again (SQLite: at least one WAL checkpoint
   * interval free); absent where the store cannot tell (PostgreSQL).
   */
  spaceFree?: boolean;
  /** Why not writable: the driver's or Parley's code, and its message. */
  code?: string;
  message?: string;
}
