/**
 * A small JSON Schema (2020-12) checker for the subset the admin API's OpenAPI document uses
 * (what `z.toJSONSchema` emits for its schemas). A keyword it does not know is an error, so a
 * schema it cannot check never passes silently.
 */
type Schema = Record<string, unknown> | boolean;

const KNOWN = new Set([
  'type',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'enum',
  'const',
  '$ref',
  'anyOf',
  'oneOf',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'minItems',
  'maxItems',
  'minLength',
  'maxLength',
  'pattern',
  'propertyNames',
  'description',
  'format',
]);

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function hasType(value: unknown, type: string): boolean {
  const actual = typeOf(value);
  return actual === type || (type === 'number' && actual === 'integer');
}

/** Every problem of `value` against `schema` (empty when it is valid); `$ref`s resolve in `root`. */
export function schemaProblems(
  root: Record<string, unknown>,
  schema: Schema,
  value: unknown,
  path = '$',
): string[] {
  if (schema === true) return [];
  if (schema === false) return [`${path}: no value is allowed here`];
  const problems: string[] = [];
  for (const key of Object.keys(schema))
    if (!KNOWN.has(key)) problems.push(`${path}: schema keyword ${key} is not checked`);
  const s = schema as Record<string, unknown>;
  if (typeof s['$ref'] === 'string') {
    const target = (s['$ref'] as string)
      .replace(/^#\//, '')
      .split('/')
      .reduce<unknown>((node, part) => (node as Record<string, unknown> | undefined)?.[part], root);
    if (target === undefined) return [...problems, `${path}: unresolved ${s['$ref']}`];
    problems.push(...schemaProblems(root, target as Schema, value, path));
  }
  if (s['type'] !== undefined) {
    const types = Array.isArray(s['type']) ? (s['type'] as string[]) : [s['type'] as string];
    if (!types.some((t) => hasType(value, t)))
      return [...problems, `${path}: expected ${types.join('|')}, got ${typeOf(value)}`];
  }
  if (s['const'] !== undefined && JSON.stringify(s['const']) !== JSON.stringify(value)) {
    problems.push(`${path}: expected ${JSON.stringify(s['const'])}`);
  }
  if (
    Array.isArray(s['enum']) &&
    !(s['enum'] as unknown[]).some((e) => JSON.stringify(e) === JSON.stringify(value))
  ) {
    problems.push(`${path}: ${JSON.stringify(value)} is not one of ${JSON.stringify(s['enum'])}`);
  }
  for (const key of ['anyOf', 'oneOf'] as const) {
    const options = s[key] as Schema[] | undefined;
    if (!options) continue;
    const passing = options.filter((o) => schemaProblems(root, o, value, path).length === 0).length;
    if (key === 'anyOf' ? passing === 0 : passing !== 1)
      problems.push(`${path}: ${key} matched ${passing} options`);
  }
  if (typeof value === 'number') {
    if (typeof s['minimum'] === 'number' && value < s['minimum'])
      problems.push(`${path}: below ${s['minimum']}`);
    if (typeof s['maximum'] === 'number' && value > s['maximum'])
      problems.push(`${path}: above ${s['maximum']}`);
    if (typeof s['exclusiveMinimum'] === 'number' && value <= s['exclusiveMinimum'])
      problems.push(`${path}: not above ${s['exclusiveMinimum']}`);
    if (typeof s['exclusiveMaximum'] === 'number' && value >= s['exclusiveMaximum'])
      problems.push(`${path}: not below ${s['exclusiveMaximum']}`);
  }
  if (typeof value === 'string') {
    if (typeof s['minLength'] === 'number' && value.length < s['minLength'])
      problems.push(`${path}: shorter than ${s['minLength']}`);
    if (typeof s['maxLength'] === 'number' && value.length > s['maxLength'])
      problems.push(`${path}: longer than ${s['maxLength']}`);
    if (typeof s['pattern'] === 'string' && !new RegExp(s['pattern'], 'u').test(value))
      problems.push(`${path}: does not match ${s['pattern']}`);
  }
  if (Array.isArray(value)) {
    if (typeof s['minItems'] === 'number' && value.length < s['minItems'])
      problems.push(`${path}: fewer than ${s['minItems']} items`);
    if (typeof s['maxItems'] === 'number' && value.length > s['maxItems'])
      problems.push(`${path}: more than ${s['maxItems']} items`);
    if (s['items'] !== undefined)
      for (const [i, item] of value.entries()) {
        problems.push(...schemaProblems(root, s['items'] as Schema, item, `${path}[${i}]`));
      }
  }
  if (typeOf(value) === 'object') {
    const object = value as Record<string, unknown>;
    const properties = (s['properties'] ?? {}) as Record<string, Schema>;
    for (const name of (s['required'] ?? []) as string[])
      if (!(name in object)) problems.push(`${path}.${name}: required`);
    for (const [name, member] of Object.entries(object)) {
      if (s['propertyNames'] !== undefined)
        problems.push(...schemaProblems(root, s['propertyNames'] as Schema, name, `${path}.${name} (name)`));
      const own = properties[name];
      if (own !== undefined) problems.push(...schemaProblems(root, own, member, `${path}.${name}`));
      else if (s['additionalProperties'] !== undefined) {
        problems.push(
          ...schemaProblems(root, s['additionalProperties'] as Schema, member, `${path}.${name}`),
        );
      }
    }
  }
  return problems;
}
