/**
 * The protocol codec: the only place where protocol frames meet `JSON.parse` / JSON text.
 *
 * Decoding is the edge (STYLE.md §3 "decode once"): text in, a typed, schema-checked frame out,
 * or `ParleyError('PROTOCOL_MALFORMED_FRAME')` with the JSON or zod error as `cause`. Encoding
 * validates too (we never send a frame the peer would reject as malformed) and writes
 * canonical JSON: compact, object keys sorted by UTF-16 code units at every level (so
 * `_ObjectType` comes first), as in RFC 8785 for the integers and strings LIP-1 uses. Equal
 * values always encode to equal text.
 *
 * The bytes a peer signed are never re-encoded: verification uses the received JWS segments
 * (`jws.ts`), and the signed log keeps the JWS text.
 */
import type { z } from 'zod';
import { ParleyError } from '../errors.js';
import { CommandRequestObject, CommandResponseObject } from './lip1.js';

/**
 * Deepest nesting of arrays/objects accepted in a frame. LIP-1 frames nest 6 levels; the limit
 * keeps free-form KYC members from making recursive code (equality, encoding) overflow the stack.
 */
export const MAX_JSON_DEPTH = 32;

function malformed(message: string, cause?: unknown): ParleyError {
  return new ParleyError('PROTOCOL_MALFORMED_FRAME', message, cause === undefined ? undefined : { cause });
}

/** Whether `root` nests objects/arrays deeper than `max` levels (iterative: no recursion). */
function nestsDeeperThan(root: unknown, max: number): boolean {
  const values: unknown[] = [root];
  const depths: number[] = [0];
  while (values.length > 0) {
    const value = values.pop();
    const depth = depths.pop() ?? 0;
    if (value === null || typeof value !== 'object') continue;
    if (depth >= max) return true;
    for (const child of Array.isArray(value) ? value : Object.values(value)) {
      if (child !== null && typeof child === 'object') {
        values.push(child);
        depths.push(depth + 1);
      }
    }
  }
  return false;
}

/**
 * Whether `text` holds fewer than `max` opening brackets (`{`, `[`), counted anywhere, strings
 * included: JSON with fewer cannot nest `max` levels deep, so its parsed value needs no walk.
 * A frame of LIP-1 holds a dozen or two; the count is a few native scans of the text.
 */
function fewerBracketsThan(text: string, max: number): boolean {
  let n = 0;
  for (const bracket of ['{', '[']) {
    for (let at = text.indexOf(bracket); at >= 0; at = text.indexOf(bracket, at + 1)) {
      if (++n >= max) return false;
    }
  }
  return true;
}

/**
 * Parses JSON text into a plain value.
 *
 * @throws ParleyError `PROTOCOL_MALFORMED_FRAME` for non-JSON text or nesting deeper than
 *   {@link MAX_JSON_DEPTH}.
 */
export function parseJson(text: string): unknown {
  if (typeof text !== 'string') throw malformed('frame payload is not text');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw malformed('frame payload is not JSON', err);
  }
  if (!fewerBracketsThan(text, MAX_JSON_DEPTH) && nestsDeeperThan(value, MAX_JSON_DEPTH)) {
    throw malformed(`JSON nests deeper than ${MAX_JSON_DEPTH}`);
  }
  return value;
}

function writeCanonical(value: unknown, depth: number, out: string[]): void {
  if (value === null) {
    out.push('null');
    return;
  }
  switch (typeof value) {
    case 'string':
      out.push(JSON.stringify(value));
      return;
    case 'boolean':
      out.push(value ? 'true' : 'false');
      return;
    case 'number':
      if (!Number.isFinite(value)) throw malformed('JSON has no representation for a non-finite number');
      out.push(JSON.stringify(value));
      return;
    case 'object': {
      if (depth >= MAX_JSON_DEPTH) throw malformed(`JSON nests deeper than ${MAX_JSON_DEPTH}`);
      if (Array.isArray(value)) {
        out.push('[');
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out.push(',');
          writeCanonical(value[i], depth + 1, out);
        }
        out.push(']');
        return;
      }
      const record = value as Record<string, unknown>;
      out.push('{');
      let first = true;
      for (const key of Object.keys(record).sort()) {
        const member = record[key];
        if (member === undefined) continue; // as JSON.stringify: an undefined member is absent
        if (!first) out.push(',');
        first = false;
        out.push(JSON.stringify(key), ':');
        writeCanonical(member, depth + 1, out);
      }
      out.push('}');
      return;
    }
    default:
      throw malformed(`JSON has no representation for a ${typeof value}`);
  }
}

/**
 * Canonical JSON text of a plain JSON value: compact, keys sorted at every level, `undefined`
 * members omitted.
 *
 * @throws ParleyError `PROTOCOL_MALFORMED_FRAME` for values JSON cannot represent (non-finite
 *   numbers, bigint, functions, …) or nesting deeper than {@link MAX_JSON_DEPTH}.
 */
export function canonicalJson(value: unknown): string {
  const out: string[] = [];
  writeCanonical(value, 0, out);
  return out.join('');
}

function describeIssues(error: z.ZodError): string {
  const issue = error.issues[0];
  if (issue === undefined) return 'invalid frame';
  const where = issue.path.length > 0 ? issue.path.map(String).join('.') : '(root)';
  return `${where}: ${issue.message}`;
}

function decodeWith<TSchema extends z.ZodType>(
  schema: TSchema,
  what: string,
  text: string,
): z.output<TSchema> {
  const parsed = schema.safeParse(parseJson(text));
  if (!parsed.success) throw malformed(`not a ${what}: ${describeIssues(parsed.error)}`, parsed.error);
  return parsed.data;
}

function encodeWith<TSchema extends z.ZodType>(schema: TSchema, what: string, value: unknown): string {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw malformed(`refusing to encode an invalid ${what}: ${describeIssues(parsed.error)}`, parsed.error);
  }
  return canonicalJson(parsed.data);
}

/**
 * Decodes the payload text of a request JWS.
 *
 * @throws ParleyError `PROTOCOL_MALFORMED_FRAME` (LIP-1 `parsing_error`) for non-JSON text,
 *   wrong types, an unknown `_ObjectType`, missing fields, or `_reads`/`_writes` of the wrong size.
 */
export function decodeRequest(payloadText: string): CommandRequestObject {
  return decodeWith(CommandRequestObject, 'CommandRequestObject', payloadText);
}

/**
 * Decodes the payload text of a response JWS.
 *
 * @throws ParleyError `PROTOCOL_MALFORMED_FRAME` for non-JSON text or anything that is not a
 *   `CommandResponseObject`.
 */
export function decodeResponse(payloadText: string): CommandResponseObject {
  return decodeWith(CommandResponseObject, 'CommandResponseObject', payloadText);
}

/**
 * Encodes a request as canonical JSON (the JWS payload). Unknown members are dropped.
 *
 * @throws ParleyError `PROTOCOL_MALFORMED_FRAME` when `request` does not satisfy the schema.
 */
export function encodeRequest(request: CommandRequestObject): string {
  return encodeWith(CommandRequestObject, 'CommandRequestObject', request);
}

/**
 * Encodes a response as canonical JSON (the JWS payload). Unknown members are dropped.
 *
 * @throws ParleyError `PROTOCOL_MALFORMED_FRAME` when `response` does not satisfy the schema.
 */
export function encodeResponse(response: CommandResponseObject): string {
  return encodeWith(CommandResponseObject, 'CommandResponseObject', response);
}

/**
 * Whether two parsed requests carry the same command: deep value equality, insensitive to key
 * order. A `cid` seen again with `sameCommand` is a replay (answer with the stored response);
 * without it, a `conflict` (lip1-v1.md §3.3 step 2).
 */
export function sameCommand(a: CommandRequestObject, b: CommandRequestObject): boolean {
  return a === b || canonicalJson(a) === canonicalJson(b);
}
