/**
 * Every admin route, once: method, path, who may call it, its query, body and answers. The
 * routes dispatch with this table (`routes.ts`) and the OpenAPI document is made from it
 * (`openapi.ts`), so a route cannot exist undocumented.
 */
import type { z } from 'zod';
import { PaymentStatus } from '../protocol/lip1.js';
import {
  AbandonAnswer,
  ApiKey,
  ApiKeyCreated,
  ApiKeyCreateRequest,
  ApiKeyList,
  ErrorBody,
  NodeStatus,
  PayAccepted,
  PaymentDetail,
  PaymentList,
  PayOutcome,
  PayRequest,
  PeerEpochAnswer,
  PeerEpochRequest,
  RestoreAnswer,
  RestoreRequest,
} from './schemas.js';

/** Who may call a route: an API key with this scope (or the admin token); `admin`: the token only. */
export type OperationScope = 'read' | 'pay' | 'admin';

export interface QueryDoc {
  type: 'string' | 'integer';
  enum?: readonly string[];
  minimum?: number;
  maximum?: number;
  description: string;
}

export interface AdminOperation {
  /** The OpenAPI operationId; also the name the dispatcher knows the handler by. */
  id: OperationId;
  method: 'GET' | 'POST';
  /** OpenAPI path template (`{name}` for a path parameter). */
  path: string;
  scope: OperationScope;
  summary: string;
  query: Record<string, QueryDoc>;
  body?: z.ZodType;
  /** Schema per status; `null`: the answer is a JSON document described in `description`. */
  responses: Record<number, { description: string; schema: z.ZodType | null; mediaType?: string }>;
}

export type OperationId =
  | 'getStatus'
  | 'pay'
  | 'resetPeerEpoch'
  | 'abandonCommand'
  | 'restoreClosed'
  | 'listPayments'
  | 'getPayment'
  | 'listApiKeys'
  | 'createApiKey'
  | 'revokeApiKey'
  | 'getOpenApi'
  | 'streamEvents';

const error = (description: string) => ({ description, schema: ErrorBody });
const BODY_REFUSALS = {
  413: error('the body is too large'),
  415: error('the body is not application/json'),
};
const STORE_REFUSALS = {
  500: error('an unexpected failure (`INTERNAL`)'),
  503: error('the store is unavailable or closing (`Retry-After`): try again'),
};

const NO_STORE = { 501: error('this node has no store made by `openStore` (`STORE_INVALID_INPUT`)') };

const statuses = PaymentStatus.options;
const time = 'ISO 8601 (`2026-12-07T10:00:00Z`) or milliseconds since the epoch';

export const ADMIN_OPERATIONS: readonly AdminOperation[] = [
  {
    id: 'getStatus',
    method: 'GET',
    path: '/admin/status',
    scope: 'read',
    summary:
      'The node, its store and each channel: connection, heartbeat health, in-flight and open payments',
    query: {},
    responses: { 200: { description: 'the node and its channels', schema: NodeStatus } },
  },
  {
    id: 'pay',
    method: 'POST',
    path: '/admin/pay',
    scope: 'pay',
    summary: 'Start a payment (answered once its create is durable; with `wait`, once it is final)',
    query: {
      wait: {
        type: 'string',
        enum: ['', '1', 'true', '0', 'false'],
        description: 'wait for the final response of the create',
      },
      timeoutMs: {
        type: 'integer',
        minimum: 1,
        maximum: 3_600_000,
        description: 'with `wait`: how long to wait for it (default 30000); then `202 PAY_WAIT_TIMEOUT`',
      },
    },
    body: PayRequest,
    responses: {
      200: { description: 'with `wait`: the create is final', schema: PayOutcome },
      202: {
        description:
          'the create is durable in the outbox; with `wait`, its outcome is not known yet (`durable: true`)',
        schema: PayAccepted,
      },
      400: error('bad input (`BUSINESS_INVALID_INPUT`, `HTTP_INVALID_QUERY`, …): nothing was stored'),
      409: error('a conflict (`SYNC_FORK_LOST`, `COMMAND_ABANDONED`, …)'),
      ...BODY_REFUSALS,
      ...STORE_REFUSALS,
    },
  },
  {
    id: 'resetPeerEpoch',
    method: 'POST',
    path: '/admin/peer-epoch',
    scope: 'admin',
    summary: "Accept a peer's superseded store epoch again (`parley peer reset-epoch`)",
    query: {},
    body: PeerEpochRequest,
    responses: {
      200: { description: 'the epoch is the current one again', schema: PeerEpochAnswer },
      400: error('not a superseded epoch of that peer (`HEALTH_EPOCH_UNKNOWN`), or bad input'),
      501: error('this node keeps no epochs'),
      ...BODY_REFUSALS,
    },
  },
  {
    id: 'abandonCommand',
    method: 'POST',
    path: '/admin/commands/{cid}/abandon',
    scope: 'admin',
    summary: 'End a command of mine that the peer keeps answering `wait` (`parley command abandon`)',
    query: {},
    responses: {
      200: { description: 'abandoned, durably', schema: AbandonAnswer },
      400: error('not a cid'),
      404: error('no command of this node has that cid (`COMMAND_UNKNOWN`)'),
      409: error('it is final already (`COMMAND_ALREADY_FINAL`)'),
      501: error('this node keeps no commands'),
      ...STORE_REFUSALS,
    },
  },
  {
    id: 'restoreClosed',
    method: 'POST',
    path: '/admin/restore',
    scope: 'admin',
    summary:
      'Reconcile the closed objects with a peer (`parley resync --all <peer>`): this node leads a restore (PROTOCOL.md §7.6) that pushes or fetches every closed object one side lacks',
    query: {},
    body: RestoreRequest,
    responses: {
      202: {
        description: 'started: its cursor is durable; progress in the status and events',
        schema: RestoreAnswer,
      },
      400: error('not a peer address (`BUSINESS_INVALID_INPUT`)'),
      404: error('no channel to that peer (`CONFIG_INVALID`)'),
      501: error('this node cannot restore (`SYNC_RESTORE_UNSUPPORTED`)'),
      ...BODY_REFUSALS,
      ...STORE_REFUSALS,
    },
  },
  {
    id: 'listPayments',
    method: 'GET',
    path: '/admin/payments',
    scope: 'read',
    summary: 'Payments, last changed first, with filters and cursor paging',
    query: {
      peer: { type: 'string', description: 'the counterparty VASP (bech32 address)' },
      state: {
        type: 'string',
        enum: ['open', 'closed'],
        description: 'open (not final) or closed (final) payments',
      },
      status: { type: 'string', enum: statuses, description: 'either side has this status' },
      myStatus: { type: 'string', enum: statuses, description: "this VASP's side has this status" },
      theirStatus: { type: 'string', enum: statuses, description: "the peer's side has this status" },
      since: { type: 'string', description: `last changed at or after: ${time}` },
      until: { type: 'string', description: `last changed before: ${time}` },
      limit: { type: 'integer', minimum: 1, maximum: 500, description: 'payments per page (default 50)' },
      cursor: { type: 'string', description: '`nextCursor` of the previous page' },
    },
    responses: {
      200: { description: 'a page of payments', schema: PaymentList },
      ...NO_STORE,
      ...STORE_REFUSALS,
    },
  },
  {
    id: 'getPayment',
    method: 'GET',
    path: '/admin/payments/{referenceId}',
    scope: 'read',
    summary: 'One payment: its current object and its whole signed history',
    query: {
      peer: { type: 'string', description: 'the channel, when the reference id is on several' },
    },
    responses: {
      200: { description: 'the payment', schema: PaymentDetail },
      404: error('no such payment (`PAYMENT_UNKNOWN`)'),
      ...NO_STORE,
      ...STORE_REFUSALS,
    },
  },
  {
    id: 'listApiKeys',
    method: 'GET',
    path: '/admin/api-keys',
    scope: 'admin',
    summary: 'Every API key, revoked ones included (never a secret)',
    query: {},
    responses: { 200: { description: 'the keys', schema: ApiKeyList }, ...NO_STORE, ...STORE_REFUSALS },
  },
  {
    id: 'createApiKey',
    method: 'POST',
    path: '/admin/api-keys',
    scope: 'admin',
    summary: 'Make an API key; its secret is in this answer only',
    query: {},
    body: ApiKeyCreateRequest,
    responses: {
      201: { description: 'stored; the secret is shown this once', schema: ApiKeyCreated },
      400: error('bad input'),
      ...BODY_REFUSALS,
      ...NO_STORE,
      ...STORE_REFUSALS,
    },
  },
  {
    id: 'revokeApiKey',
    method: 'POST',
    path: '/admin/api-keys/{id}/revoke',
    scope: 'admin',
    summary: 'Revoke an API key (refused from the moment this answers)',
    query: {},
    responses: {
      200: { description: 'revoked (idempotent)', schema: ApiKey },
      404: error('no such key (`API_KEY_UNKNOWN`)'),
      ...NO_STORE,
      ...STORE_REFUSALS,
    },
  },
  {
    id: 'getOpenApi',
    method: 'GET',
    path: '/admin/openapi.json',
    scope: 'read',
    summary: 'This document',
    query: {},
    responses: { 200: { description: 'the OpenAPI 3.1 document of the admin API', schema: null } },
  },
  {
    id: 'streamEvents',
    method: 'GET',
    path: '/admin/events',
    scope: 'read',
    summary:
      'The back-office events as Server-Sent Events, from `after` (or `Last-Event-ID`), then live (docs/backoffice.md)',
    query: {
      after: { type: 'integer', minimum: 0, description: 'replay the kept events after this sequence first' },
    },
    responses: {
      200: {
        description: 'a stream of `id: <sequence>`, `event: <type>`, `data: <event body>` records',
        schema: null,
        mediaType: 'text/event-stream',
      },
      404: error('this node records no events (`EVENTS_DISABLED`)'),
    },
  },
];

/** The operation for a request, with its path parameters; or the methods the path allows. */
export function matchOperation(
  method: string,
  pathname: string,
):
  | { op: AdminOperation; params: Record<string, string> }
  | { allow: string; op: AdminOperation }
  | undefined {
  let allowed: AdminOperation[] = [];
  for (const op of ADMIN_OPERATIONS) {
    const params = matchPath(op.path, pathname);
    if (params === undefined) continue;
    if (op.method === method || (op.method === 'GET' && method === 'HEAD')) return { op, params };
    allowed = [...allowed, op];
  }
  return allowed.length > 0 ? { allow: allowed.map((o) => o.method).join(', '), op: allowed[0]! } : undefined;
}

/** The path parameters of `pathname` under `template`, or undefined when it does not match. */
function matchPath(template: string, pathname: string): Record<string, string> | undefined {
  const names: string[] = [];
  const source = template
    .split(/(\{\w+\})/)
    .map((part) => {
      const name = /^\{(\w+)\}$/.exec(part)?.[1];
      if (name === undefined) return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      names.push(name);
      return '([^/]+)';
    })
    .join('');
  const match = new RegExp(`^${source}$`).exec(pathname);
  if (!match) return undefined;
  const params: Record<string, string> = {};
  for (const [i, name] of names.entries()) {
    try {
      params[name] = decodeURIComponent(match[i + 1]!);
    } catch {
      params[name] = '';
    }
  }
  return params;
}
