/**
 * Query-string validation for the node's HTTP routes: every route declares the parameters it
 * takes, and a request with an unknown, repeated or malformed one is answered
 * 400 `HTTP_INVALID_QUERY` naming each problem, before the route does anything.
 */
import type { ServerResponse } from 'node:http';
import { sendJson } from './router.js';

/** How one parameter is read: its parsed value, or a {@link QueryProblem}. */
export interface QueryParam<T> {
  /** May the parameter appear more than once (the route then gets every value). */
  repeat: boolean;
  parse(value: string): T | QueryProblem;
}

/** A parameter that may appear more than once. */
export interface RepeatedQueryParam<T> extends QueryParam<T> {
  repeat: true;
}

/** A parameter's problem (what the 400 says about it). */
export class QueryProblem {
  constructor(readonly message: string) {}
}

type Spec = Record<string, QueryParam<unknown>>;
type Parsed<S extends Spec> = {
  [K in keyof S]?: S[K] extends RepeatedQueryParam<infer T>
    ? T[]
    : S[K] extends QueryParam<infer T>
      ? T
      : never;
};

/** An integer in `[min, max]` (decimal digits only, no sign, no exponent). */
export function intParam(min: number, max: number): QueryParam<number> {
  return {
    repeat: false,
    parse(value) {
      if (!/^\d{1,16}$/.test(value)) return new QueryProblem(`expected an integer from ${min} to ${max}`);
      const n = Number(value);
      if (!Number.isSafeInteger(n) || n < min || n > max) {
        return new QueryProblem(`expected an integer from ${min} to ${max}`);
      }
      return n;
    },
  };
}

/** One of `values`. */
export function enumParam<T extends string>(values: readonly T[]): QueryParam<T> {
  return {
    repeat: false,
    parse(value) {
      return (values as readonly string[]).includes(value)
        ? (value as T)
        : new QueryProblem(`expected one of ${values.join(', ')}`);
    },
  };
}

/** A string that `check` accepts (returns its problem otherwise). */
export function stringParam(check: (value: string) => string | undefined): QueryParam<string> {
  return {
    repeat: false,
    parse(value) {
      const problem = check(value);
      return problem === undefined ? value : new QueryProblem(problem);
    },
  };
}

/** `param`, allowed several times (the route gets every value). */
export function repeated<T>(param: QueryParam<T>): RepeatedQueryParam<T> {
  return { ...param, repeat: true };
}

/** The query of `url` read with `spec`, or every problem found. */
export function readQuery<S extends Spec>(
  url: URL,
  spec: S,
): { ok: true; values: Parsed<S> } | { ok: false; problems: string[] } {
  const problems: string[] = [];
  const values: Record<string, unknown> = {};
  const known = Object.keys(spec);
  for (const name of new Set(url.searchParams.keys())) {
    const param = spec[name];
    if (param === undefined) {
      problems.push(
        `${name}: unknown query parameter${known.length > 0 ? ` (known: ${known.join(', ')})` : ''}`,
      );
      continue;
    }
    const all = url.searchParams.getAll(name);
    if (all.length > 1 && !param.repeat) {
      problems.push(`${name}: given ${all.length} times, expected once`);
      continue;
    }
    const parsed: unknown[] = [];
    for (const value of all) {
      const result = param.parse(value);
      if (result instanceof QueryProblem) {
        problems.push(`${name}=${JSON.stringify(value.slice(0, 64))}: ${result.message}`);
      } else parsed.push(result);
    }
    values[name] = param.repeat ? parsed : parsed[0];
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, values: values as Parsed<S> };
}

/** Answers 400 `HTTP_INVALID_QUERY` with the problems. */
export function sendQueryProblems(res: ServerResponse, problems: readonly string[]): true {
  return sendJson(res, 400, { error: 'HTTP_INVALID_QUERY', message: problems.join('; '), problems });
}
