/** Who is calling an admin route: the admin token from this machine, or an API key anywhere. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isParleyError } from '../errors.js';
import { hasBearerToken } from '../http/router.js';
import { isApiKeyCredential, verifyApiKey } from './api-keys.js';
import { sendError } from './http-body.js';
import type { AdminOperation } from './operations.js';
import type { Dispatch } from './routes.js';

/** Who a request is from, once checked: the operator (token or this machine) or an API key. */
export type Caller = { kind: 'operator' } | { kind: 'key'; scopes: readonly string[] };

function bearerOf(req: IncomingMessage): string | undefined {
  return /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
}

/** The caller of `req` for `op`, or `true` once the refusal is answered (401 / 403). */
export async function callerOf(
  d: Dispatch,
  isTrusted: (req: IncomingMessage) => boolean,
  req: IncomingMessage,
  res: ServerResponse,
  op: AdminOperation | undefined,
): Promise<Caller | true> {
  const bearer = bearerOf(req);
  if (bearer !== undefined && isApiKeyCredential(bearer) && d.apiKeys !== undefined) {
    let key: Awaited<ReturnType<typeof verifyApiKey>>;
    try {
      key = await verifyApiKey(d.apiKeys, bearer);
    } catch (err) {
      req.resume();
      if (isParleyError(err))
        return sendError(res, 503, err.code, 'the API keys cannot be read now: try again');
      throw err;
    }
    if (key === undefined) {
      req.resume();
      return sendError(res, 401, 'ADMIN_UNAUTHORIZED', 'the API key is unknown, revoked or wrong');
    }
    if (op !== undefined && (op.scope === 'admin' || !key.scopes.includes(op.scope))) {
      req.resume();
      return sendError(
        res,
        403,
        'ADMIN_FORBIDDEN',
        op.scope === 'admin'
          ? `${op.method} ${op.path} takes the node's admin token, not an API key`
          : `the API key has no ${op.scope} scope (it has: ${key.scopes.join(', ')})`,
      );
    }
    return { kind: 'key', scopes: key.scopes };
  }
  if (!isTrusted(req)) {
    req.resume();
    return sendError(
      res,
      403,
      'ADMIN_FORBIDDEN',
      'admin routes answer clients on this machine only, or an API key',
    );
  }
  if (d.options.token !== undefined && !hasBearerToken(req, d.options.token)) {
    req.resume();
    return sendError(
      res,
      401,
      'ADMIN_UNAUTHORIZED',
      "the admin token is missing or wrong (the CLI reads it from the running node's runtime file)",
    );
  }
  return { kind: 'operator' };
}
