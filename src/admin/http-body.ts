/** The request bodies and error answers of the admin routes. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBody, sendJson } from '../http/router.js';
import type { RequestIssue } from './pay-request.js';

/** Answers `{ error, message, issues? }` with `status`. */
export function sendError(
  res: ServerResponse,
  status: number,
  error: string,
  message: string,
  issues?: RequestIssue[],
): true {
  return sendJson(res, status, issues ? { error, message, issues } : { error, message });
}

/** Answers 405 `HTTP_METHOD_NOT_ALLOWED` with the `Allow` header. */
export function methodNotAllowed(res: ServerResponse, allow: string): true {
  res.setHeader('allow', allow);
  return sendError(res, 405, 'HTTP_METHOD_NOT_ALLOWED', `use ${allow}`);
}

function isJsonContentType(value: string | undefined): boolean {
  return value?.split(';')[0]?.trim().toLowerCase() === 'application/json';
}

/**
 * The JSON body of an admin request, or `true` once the refusal is answered: 415 when it is not
 * `application/json` (which also makes a cross-site browser request need a CORS preflight, never
 * granted), 413 over `maxBodyBytes`, 400 when it is not JSON.
 */
export async function jsonBody(
  req: IncomingMessage,
  res: ServerResponse,
  maxBodyBytes: number,
): Promise<{ value: unknown } | true> {
  if (!isJsonContentType(req.headers['content-type'])) {
    req.resume();
    return sendError(res, 415, 'BUSINESS_INVALID_INPUT', 'the body must be application/json');
  }
  let text: string;
  try {
    text = await readBody(req, maxBodyBytes);
  } catch {
    return sendError(res, 413, 'BUSINESS_INVALID_INPUT', `the body exceeds ${maxBodyBytes} bytes`);
  }
  try {
    return { value: JSON.parse(text) as unknown };
  } catch {
    return sendError(res, 400, 'BUSINESS_INVALID_INPUT', 'the body is not JSON');
  }
}
