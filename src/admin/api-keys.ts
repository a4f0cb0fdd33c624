/**
 * API keys for the admin API (`parley apikey create|list|revoke`): a key is `pk_<id>_<secret>`;
 * the store keeps the id, the scopes and the SHA-256 of the secret (the secret itself is shown
 * once, in the answer that creates it). A request with a valid key is answered from any client
 * address, for the routes its scopes cover (`read`: the GET routes; `pay`: `POST /admin/pay`).
 * Keys are managed with the node's admin token only, from this machine.
 *
 * - `GET /admin/api-keys` → `200 ApiKeyList`
 * - `POST /admin/api-keys` (JSON `{ name, scopes }`) → `201 ApiKeyCreated` once it is stored
 * - `POST /admin/api-keys/<id>/revoke` → `200 ApiKey` once the revocation is stored (at once
 *   refused from then on); `404 API_KEY_UNKNOWN`
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendJson } from '../http/router.js';
import { jsonBody, sendError } from './http-body.js';
import { requestIssues } from './pay-request.js';
import type { ApiKeyRecord, ApiKeyScope, ApiKeyStore } from './ports.js';
import { sendRefusal } from './refusal.js';
import { ApiKeyCreateRequest } from './schemas.js';

const KEY_RE = /^pk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

/** Whether a bearer credential has the form of an API key (rather than the run's admin token). */
export function isApiKeyCredential(credential: string): boolean {
  return credential.startsWith('pk_');
}

function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** A new key: its public id, the full credential (shown once) and the hash to store. */
export function newApiKey(): { id: string; credential: string; secretHash: string } {
  const id = randomBytes(6).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { id, credential: `pk_${id}_${secret}`, secretHash: hashSecret(secret) };
}

/** The key `credential` names, if it exists, is not revoked and its secret matches. */
export async function verifyApiKey(keys: ApiKeyStore, credential: string): Promise<ApiKeyRecord | undefined> {
  const match = KEY_RE.exec(credential);
  if (!match) return undefined;
  const key = await keys.find(match[1]!);
  if (key === undefined || key.revokedAtMs !== null) return undefined;
  const given = Buffer.from(hashSecret(match[2]!), 'hex');
  const stored = Buffer.from(key.secretHash, 'hex');
  if (given.length !== stored.length || !timingSafeEqual(given, stored)) return undefined;
  const { secretHash: _, ...record } = key;
  return record;
}

/** An API key as the API shows it. */
export function apiKeyView(key: ApiKeyRecord): {
  id: string;
  name: string;
  scopes: ApiKeyScope[];
  createdAt: string;
  revokedAt: string | null;
} {
  return {
    id: key.id,
    name: key.name,
    scopes: key.scopes,
    createdAt: new Date(key.createdAtMs).toISOString(),
    revokedAt: key.revokedAtMs === null ? null : new Date(key.revokedAtMs).toISOString(),
  };
}

export type ApiKeyEvent =
  | { event: 'api_key_created'; id: string; name: string; scopes: ApiKeyScope[] }
  | { event: 'api_key_revoked'; id: string };

/** `GET /admin/api-keys`. */
export async function listApiKeys(keys: ApiKeyStore, res: ServerResponse): Promise<true> {
  try {
    return sendJson(res, 200, { keys: (await keys.list()).map(apiKeyView) });
  } catch (err) {
    return sendRefusal(res, err);
  }
}

/** `POST /admin/api-keys`. */
export async function createApiKey(
  keys: ApiKeyStore,
  log: (entry: ApiKeyEvent) => void,
  maxBodyBytes: number,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<true> {
  const body = await jsonBody(req, res, maxBodyBytes);
  if (body === true) return true;
  const parsed = ApiKeyCreateRequest.safeParse(body.value);
  if (!parsed.success) {
    const issues = requestIssues(parsed.error);
    return sendError(
      res,
      400,
      'BUSINESS_INVALID_INPUT',
      issues.map((i) => `${i.path}: ${i.message}`).join('; '),
      issues,
    );
  }
  const scopes = [...new Set(parsed.data.scopes)];
  const made = newApiKey();
  try {
    const key = await keys.create({
      id: made.id,
      name: parsed.data.name,
      scopes,
      secretHash: made.secretHash,
    });
    log({ event: 'api_key_created', id: key.id, name: key.name, scopes: key.scopes });
    return sendJson(res, 201, { key: apiKeyView(key), secret: made.credential });
  } catch (err) {
    return sendRefusal(res, err);
  }
}

/** `POST /admin/api-keys/<id>/revoke`. */
export async function revokeApiKey(
  keys: ApiKeyStore,
  log: (entry: ApiKeyEvent) => void,
  id: string,
  res: ServerResponse,
): Promise<true> {
  try {
    const key = /^[0-9a-f]{12}$/.test(id) ? await keys.revoke(id) : undefined;
    if (key === undefined) return sendError(res, 404, 'API_KEY_UNKNOWN', `no API key ${id}`);
    log({ event: 'api_key_revoked', id });
    return sendJson(res, 200, apiKeyView(key));
  } catch (err) {
    return sendRefusal(res, err);
  }
}
