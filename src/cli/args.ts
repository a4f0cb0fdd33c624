/** The option helpers every command spec uses: strings in, typed options out. */
import type { ParseArgsConfig } from 'node:util';
import type { CliIo } from './io.js';
import { UsageError } from './io.js';

export type Options = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | undefined>;

export interface CommandSpec {
  help: string;
  options: Options;
  positionals?: boolean;
  run(values: Values, positionals: string[], io: CliIo): number | Promise<number>;
}

export const HELP_OPTION: Options = { help: { type: 'boolean', short: 'h' } };
export const CONFIG_OPTION: Options = { config: { type: 'string', short: 'c' } };

export function str(values: Values, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

export function required(values: Values, name: string): string {
  const value = str(values, name);
  if (value === undefined || value === '') throw new UsageError(`--${name} is required`);
  return value;
}

export function integer(text: string, name: string, min: number, max: number): number {
  const value = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(text)}`);
  }
  return value;
}

/** Copies the optional string options that are present (exactOptionalPropertyTypes-friendly). */
export function optional<TKey extends string>(
  values: Values,
  names: Record<TKey, string>,
): Partial<Record<TKey, string>> {
  const out: Partial<Record<TKey, string>> = {};
  for (const [key, name] of Object.entries(names) as Array<[TKey, string]>) {
    const value = str(values, name);
    if (value !== undefined) out[key] = value;
  }
  return out;
}
