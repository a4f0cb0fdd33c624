/**
 * Admin requests over real HTTP whose every answer is checked against the OpenAPI document the
 * node serves (`GET /admin/openapi.json`): the status must be documented for the operation, and
 * the body must validate against its schema.
 */
import { type IncomingHttpHeaders, request } from 'node:http';
import { schemaProblems } from './json-schema.js';

export interface Answer {
  status: number;
  body: unknown;
  headers: IncomingHttpHeaders;
}

export interface RequestSpec {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: unknown;
}

/** One HTTP request to 127.0.0.1:`port`; a JSON body is sent as application/json. */
export function rawRequest(port: number, spec: RequestSpec): Promise<Answer> {
  const payload =
    spec.body === undefined
      ? undefined
      : typeof spec.body === 'string'
        ? spec.body
        : JSON.stringify(spec.body);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: spec.method ?? 'GET',
        path: spec.path,
        headers: {
          ...(payload !== undefined && typeof spec.body !== 'string'
            ? { 'content-type': 'application/json' }
            : {}),
          ...spec.headers,
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => {
          text += c;
        });
        res.on('end', () => {
          let body: unknown = text;
          try {
            body = text === '' ? null : JSON.parse(text);
          } catch {
            // Not JSON: kept as text (and reported by the check).
          }
          resolve({ status: res.statusCode ?? 0, body, headers: res.headers });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

type Doc = {
  paths: Record<
    string,
    Record<string, { responses: Record<string, { content: Record<string, { schema: unknown }> }> }>
  >;
};

/** The documented operation for a request path, or undefined. */
export function documentedOperation(doc: Doc, method: string, pathname: string) {
  for (const [template, ops] of Object.entries(doc.paths)) {
    const re = new RegExp(`^${template.replace(/[.]/g, '\\.').replace(/\{\w+\}/g, '[^/]+')}$`);
    if (!re.test(pathname)) continue;
    return ops[method.toLowerCase()];
  }
  return undefined;
}

/** The problems of an answer against the document (none for a path the document does not have). */
export function answerProblems(doc: Doc, method: string, path: string, answer: Answer): string[] {
  const pathname = new URL(path, 'http://x').pathname;
  const op = documentedOperation(doc, method === 'HEAD' ? 'GET' : method, pathname);
  if (op === undefined) return [];
  const documented = op.responses[String(answer.status)];
  if (documented === undefined) return [`${method} ${pathname}: status ${answer.status} is not documented`];
  const schema = documented.content['application/json']?.schema;
  if (schema === undefined) return [`${method} ${pathname} ${answer.status}: no JSON schema`];
  return schemaProblems(
    doc as unknown as Record<string, unknown>,
    schema as Record<string, unknown>,
    answer.body,
  ).map((p) => `${method} ${pathname} ${answer.status}: ${p}`);
}

/** A client that checks every answer; `seen` counts the checked answers per status class. */
export function checkedClient(port: number, doc: Doc, defaults: Record<string, string> = {}) {
  const seen = new Map<string, number>();
  return {
    seen,
    async call(spec: RequestSpec): Promise<Answer> {
      const answer = await rawRequest(port, { ...spec, headers: { ...defaults, ...spec.headers } });
      const problems = answerProblems(doc, spec.method ?? 'GET', spec.path, answer);
      if (problems.length > 0)
        throw new Error(
          `answer does not match the OpenAPI document:\n${problems.join('\n')}\n${JSON.stringify(answer.body)}`,
        );
      const key = `${String(answer.status)[0]}xx`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
      return answer;
    },
  };
}
