/**
 * The OpenAPI 3.1 document of the admin API (`GET /admin/openapi.json`), made from the route
 * table (`operations.ts`) and the zod schemas of the bodies (`schemas.ts`).
 */
import { z } from 'zod';
import { ADMIN_OPERATIONS, type AdminOperation } from './operations.js';
import { adminSchemas, ErrorBody } from './schemas.js';

type Json = Record<string, unknown>;

const ref = (id: string): Json => ({ $ref: `#/components/schemas/${id}` });

function idOf(schema: z.ZodType): string | undefined {
  return adminSchemas.get(schema)?.id;
}

function schemaRef(schema: z.ZodType): Json {
  const id = idOf(schema);
  if (id === undefined) throw new Error('an admin body schema must be registered in adminSchemas');
  return ref(id);
}

function operation(op: AdminOperation): Json {
  const pathParams = [...op.path.matchAll(/\{(\w+)\}/g)].map((m) => ({
    name: m[1],
    in: 'path',
    required: true,
    schema: { type: 'string' },
  }));
  const query = Object.entries(op.query).map(([name, doc]) => ({
    name,
    in: 'query',
    required: false,
    description: doc.description,
    schema: {
      type: doc.type,
      ...(doc.enum ? { enum: doc.enum } : {}),
      ...(doc.minimum !== undefined ? { minimum: doc.minimum } : {}),
      ...(doc.maximum !== undefined ? { maximum: doc.maximum } : {}),
    },
  }));
  const responses: Json = {};
  const all = {
    // Every route checks its query and its caller first.
    400: {
      description: 'an unknown, repeated or malformed query parameter (`HTTP_INVALID_QUERY`)',
      schema: ErrorBody,
    },
    401: { description: 'no valid admin token or API key (`ADMIN_UNAUTHORIZED`)', schema: ErrorBody },
    403: {
      description: 'not from this machine and no API key, or the key lacks the scope (`ADMIN_FORBIDDEN`)',
      schema: ErrorBody,
    },
    ...op.responses,
  };
  for (const [status, answer] of Object.entries(all)) {
    const { description, schema } = answer;
    const mediaType: string =
      'mediaType' in answer && typeof answer.mediaType === 'string' ? answer.mediaType : 'application/json';
    const fallback = mediaType === 'application/json' ? { type: 'object' } : { type: 'string' };
    responses[status] = {
      description,
      content: { [mediaType]: { schema: schema === null ? fallback : schemaRef(schema) } },
    };
  }
  return {
    operationId: op.id,
    summary: op.summary,
    'x-parley-scope': op.scope,
    security: op.scope === 'admin' ? [{ adminToken: [] }] : [{ adminToken: [] }, { apiKey: [op.scope] }],
    parameters: [...pathParams, ...query],
    ...(op.body
      ? { requestBody: { required: true, content: { 'application/json': { schema: schemaRef(op.body) } } } }
      : {}),
    responses,
  };
}

/** The document (a fresh object each call). */
export function adminOpenApi(version: string): Json {
  const { schemas } = z.toJSONSchema(adminSchemas, {
    uri: (id) => `#/components/schemas/${id}`,
    io: 'output',
    target: 'draft-2020-12',
  }) as { schemas: Record<string, Json> };
  for (const schema of Object.values(schemas)) {
    delete schema['$schema'];
    delete schema['$id'];
  }
  const paths: Record<string, Json> = {};
  for (const op of ADMIN_OPERATIONS) {
    paths[op.path] = { ...paths[op.path], [op.method.toLowerCase()]: operation(op) };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Parley admin API',
      version,
      description:
        "The operator API of a Parley node, on its channel port (docs/api.md). Clients on the node's machine use the run's admin token; other clients use an API key (`parley apikey create`).",
    },
    servers: [{ url: '/' }],
    paths,
    components: {
      schemas,
      securitySchemes: {
        adminToken: {
          type: 'http',
          scheme: 'bearer',
          description: "the node's admin token (in its runtime file; clients on this machine only)",
        },
        apiKey: {
          type: 'http',
          scheme: 'bearer',
          description: 'an API key `pk_<id>_<secret>` (scopes `read`, `pay`)',
        },
      },
    },
  };
}
