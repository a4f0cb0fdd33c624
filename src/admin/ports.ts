/**
 * What the admin routes need from durable storage: the payments view and the API keys. The
 * store implements these (`src/store/payments-query.ts`, `src/store/api-key-repository.ts`).
 */

/** Where a page of payments ends: the last payment's last change, peer and reference id. */
export interface PaymentCursor {
  updatedAtMs: number;
  peer: string;
  referenceId: string;
}

/** The filters the store applies to a page of payments (the status filters are applied above). */
export interface PaymentHeadQuery {
  peer?: string;
  /** Open (not final) or closed (final) payments only. */
  open?: boolean;
  /** Last changed at or after, milliseconds since the epoch. */
  sinceMs?: number;
  /** Last changed before, milliseconds since the epoch. */
  untilMs?: number;
  /** Strictly after this position in the order (last changed first, then peer, reference id). */
  after?: PaymentCursor;
  limit: number;
}

/** One payment's head: its current version and object. */
export interface PaymentHeadRow {
  peer: string;
  referenceId: string;
  version: string;
  open: boolean;
  versionCount: number;
  updatedAtMs: number;
  /** The payment object at the head version, as JSON text. */
  payment: string;
}

/** One signed-log entry: a request JWS and its signed response JWS, as they crossed the wire. */
export interface SignedCommandRow {
  cid: string;
  direction: 'outbound' | 'inbound';
  readVersion: string | null;
  writeVersion: string;
  status: 'success' | 'failure';
  errorCode: string | null;
  requestJws: string;
  responseJws: string;
  createdAtMs: number;
}

/** A command of mine that has no final response yet (signed request only). */
export interface PendingCommandRow {
  cid: string;
  readVersion: string | null;
  writeVersion: string;
  requestJws: string;
  createdAtMs: number;
  attempts: number;
}

/** The payments view of a store (reads only). All methods may throw `STORE_UNAVAILABLE`. */
export interface PaymentsReader {
  /** Heads in order: last changed first, then by peer and reference id (bytewise). */
  heads(query: PaymentHeadQuery): Promise<PaymentHeadRow[]>;
  /** The heads with this reference id (one per channel that has it). */
  find(referenceId: string, peer?: string): Promise<PaymentHeadRow[]>;
  /** Every signed-log entry of the payment, in commit order. */
  history(peer: string, referenceId: string): Promise<SignedCommandRow[]>;
  /** Commands of mine on the payment that wait for their final response, oldest first. */
  pending(peer: string, referenceId: string): Promise<PendingCommandRow[]>;
}

/** What an API key may do: `read` the admin API's GET routes, `pay` start payments. */
export type ApiKeyScope = 'read' | 'pay';
export const API_KEY_SCOPES: readonly ApiKeyScope[] = ['read', 'pay'];

/** An API key as listed (never its secret). */
export interface ApiKeyRecord {
  id: string;
  name: string;
  scopes: ApiKeyScope[];
  createdAtMs: number;
  revokedAtMs: number | null;
}

/** The API keys of a store. All methods may throw `STORE_UNAVAILABLE`. */
export interface ApiKeyStore {
  create(key: {
    id: string;
    name: string;
    scopes: readonly ApiKeyScope[];
    secretHash: string;
  }): Promise<ApiKeyRecord>;
  /** Every key, revoked ones included, oldest first. */
  list(): Promise<ApiKeyRecord[]>;
  /** Revokes the key (idempotent: a revoked key keeps its first revocation time); undefined when unknown. */
  revoke(id: string): Promise<ApiKeyRecord | undefined>;
  /** The key with its secret's hash, for checking a request. */
  find(id: string): Promise<(ApiKeyRecord & { secretHash: string }) | undefined>;
}
