/**
 * The settings of a configuration schema, read from the zod schema itself: each leaf's path,
 * its `PARLEY_*` environment variable, its type, description and default. The environment
 * overrides (`src/config.ts`) and docs/configuration.md (`npm run docs`) are made from this
 * list, so a key added to a `section({ … })` has its variable and its row without more code.
 */
import { z } from 'zod';

/** How a setting's environment text becomes its value. */
export type SettingKind = 'string' | 'number' | 'boolean' | 'enum' | 'list' | 'json';

/** One setting of the schema. */
export interface Setting {
  /** Its path in the configuration (`['listen', 'port']`). */
  path: readonly string[];
  /**
   * Its environment variable (`PARLEY_LISTEN_PORT`); null for a field of a list's items
   * (`peers[].url`), given with its list (`PARLEY_PEERS`, JSON).
   */
  env: string | null;
  kind: SettingKind;
  /** The words an `enum` setting takes. */
  values?: readonly string[];
  /** Its `.describe()` text, if any. */
  description?: string;
  /** Its default: the schema's `.default()`, or a `.meta({ default })` the code applies. */
  default?: unknown;
  /** Whether it may be left out (it has a default or is optional). */
  optional: boolean;
}

/** `retransmitMs` → `RETRANSMIT_MS`. */
function snake(key: string): string {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z])([A-Z][a-z])/g, '$1_$2')
    .toUpperCase();
}

/** The environment variable of the setting at `path`. */
export function envName(path: readonly string[]): string {
  return ['PARLEY', ...path.map(snake)].join('_');
}

interface Found {
  description?: string;
  default?: unknown;
  hasDefault: boolean;
  optional: boolean;
}

type AnySchema = z.core.$ZodType;

function metaOf(schema: AnySchema): { description?: string; default?: unknown } | undefined {
  return z.globalRegistry.get(schema) as { description?: string; default?: unknown } | undefined;
}

/**
 * Every leaf setting of `schema` (an object schema), in declaration order. An array (or a
 * record, or a union) is one setting whose environment value is JSON; a string array also takes
 * a comma-separated list.
 */
export function settingsOf(schema: AnySchema): Setting[] {
  const out: Setting[] = [];
  const visit = (node: AnySchema, path: string[], found: Found): void => {
    const meta = metaOf(node);
    const here: Found = {
      ...found,
      ...(found.description === undefined && meta?.description !== undefined
        ? { description: meta.description }
        : {}),
      ...(!found.hasDefault && meta && 'default' in meta ? { default: meta.default, hasDefault: true } : {}),
    };
    const def = node._zod.def as unknown as Record<string, unknown> & { type: string };
    switch (def.type) {
      case 'optional':
      case 'nullable':
        visit(def['innerType'] as AnySchema, path, { ...here, optional: true });
        return;
      case 'default':
      case 'prefault': {
        const value = def['defaultValue'];
        const withDefault =
          here.hasDefault || def.type === 'prefault'
            ? here
            : { ...here, default: typeof value === 'function' ? value() : value, hasDefault: true };
        visit(def['innerType'] as AnySchema, path, { ...withDefault, optional: true });
        return;
      }
      case 'pipe':
        visit(def['in'] as AnySchema, path, here);
        return;
      case 'object': {
        const shape = def['shape'] as Record<string, AnySchema>;
        for (const [key, child] of Object.entries(shape)) {
          visit(child, [...path, key], { hasDefault: false, optional: false });
        }
        return;
      }
      default: {
        const inList = path.includes('[]');
        const setting: Setting = {
          path,
          env: inList ? null : envName(path),
          kind: kindOf(def),
          optional: here.optional || here.hasDefault,
        };
        if (def.type === 'enum') setting.values = Object.values(def['entries'] as Record<string, string>);
        if (here.description !== undefined) setting.description = here.description;
        if (here.hasDefault) setting.default = here.default;
        out.push(setting);
        // The fields of a list's items are documented under it (`peers[].url`).
        const element = def.type === 'array' ? (def['element'] as AnySchema) : undefined;
        if (element && unwrap(element)._zod.def.type === 'object') {
          visit(element, [...path, '[]'], { hasDefault: false, optional: false });
        }
      }
    }
  };
  visit(schema, [], { hasDefault: false, optional: false });
  return out;
}

/** The schema under its optional, default and pipe wrappers. */
function unwrap(schema: AnySchema): AnySchema {
  const def = schema._zod.def as unknown as Record<string, unknown> & { type: string };
  if (['optional', 'nullable', 'default', 'prefault'].includes(def.type))
    return unwrap(def['innerType'] as AnySchema);
  if (def.type === 'pipe') return unwrap(def['in'] as AnySchema);
  return schema;
}

function kindOf(def: Record<string, unknown> & { type: string }): SettingKind {
  switch (def.type) {
    case 'string':
    case 'number':
    case 'boolean':
    case 'enum':
      return def.type;
    case 'array': {
      const element = unwrap(def['element'] as AnySchema)._zod.def.type;
      return element === 'string' ? 'list' : 'json';
    }
    default:
      return 'json';
  }
}

/**
 * The value of a setting from its environment text. Text that does not fit the kind is kept as
 * text, so the schema reports the problem (naming the variable).
 */
export function envValue(setting: Setting, text: string): unknown {
  switch (setting.kind) {
    case 'number':
      return /^-?\d+(\.\d+)?$/.test(text.trim()) ? Number(text) : text;
    case 'boolean':
      return text === 'true' ? true : text === 'false' ? false : text;
    case 'list':
      if (text.trim().startsWith('[')) return parseJson(text);
      return text
        .split(',')
        .map((item) => item.trim())
        .filter((item) => item.length > 0);
    case 'json':
      return parseJson(text);
    default:
      return text;
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text; // reported by the schema as the wrong type, from that variable
  }
}
