/**
 * Prisma's WebAssembly schema engine (`@prisma/schema-engine-wasm`), loaded without the CLI.
 *
 * The native schema engine cannot be downloaded where Parley runs, so migrations go through the
 * wasm build of the same engine, driven by a Prisma driver adapter (better-sqlite3 or pg). It
 * records `_prisma_migrations` exactly as `prisma migrate deploy` does.
 *
 * The package's entry point imports the `.wasm` file as an ES module, which Node 20 only allows
 * behind `--experimental-wasm-modules`; so we instantiate the module by hand with the package's
 * own JS glue, once per process. A node applies its migrations on a thread of its own
 * (`schema-engine-thread.ts`), so that the engine's memory goes with the thread; the engine in
 * process serves the scripts (`scripts/prisma/migration-diff.ts`).
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import {
  bindMigrationAwareSqlAdapterFactory,
  type ErrorCapturingSqlMigrationAwareDriverAdapterFactory,
  type ErrorRegistry,
  type SqlDriverAdapter,
  type SqlMigrationAwareDriverAdapterFactory,
  type SqlQuery,
} from '@prisma/driver-adapter-utils';
import type { SchemaEngine, SchemaFilter } from '@prisma/schema-engine-wasm';
import { splitSqlScript } from './sql-script.js';

/** The glue module's internals that the generated entry point would call. */
interface WasmGlue {
  __wbg_set_wasm(exports: WasmExports): void;
  SchemaEngine: typeof SchemaEngine;
}

type WasmExports = Record<string, unknown> & { __wbindgen_start(): void };

/** The part of the WebAssembly JS API used here (tsconfig's ES2023 lib does not declare it). */
interface WasmApi {
  compile(bytes: Uint8Array): Promise<object>;
  instantiate(module: object, imports: Record<string, object>): Promise<{ exports: WasmExports }>;
}

const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/**
 * Where the wasm glue reports a Rust panic (the Prisma CLI installs the same object). A panic
 * surfaces as a `RuntimeError: unreachable`; the message recorded here says why.
 */
class WasmPanicRegistry {
  message = '';
  get(): string {
    return this.message;
  }
  set_message(message: string): void {
    this.message = `RuntimeError: ${message}`;
  }
}

const panicHolder = globalThis as { PRISMA_WASM_PANIC_REGISTRY?: WasmPanicRegistry };

let engineClass: Promise<typeof SchemaEngine> | undefined;

/** Instantiates the wasm module once per process and returns the `SchemaEngine` class. */
function loadSchemaEngineClass(): Promise<typeof SchemaEngine> {
  engineClass ??= (async () => {
    panicHolder.PRISMA_WASM_PANIC_REGISTRY ??= new WasmPanicRegistry();
    const require = createRequire(import.meta.url);
    const wasmPath = join(dirname(require.resolve('@prisma/schema-engine-wasm')), 'schema_engine_bg.wasm');
    const glue = await import('@prisma/schema-engine-wasm/schema_engine_bg');
    const module = await wasmApi.compile(await readFile(wasmPath));
    const instance = await wasmApi.instantiate(module, { './schema_engine_bg.js': glue });
    const g = glue as unknown as WasmGlue;
    g.__wbg_set_wasm(instance.exports);
    instance.exports.__wbindgen_start();
    return g.SchemaEngine;
  })();
  return engineClass;
}

/** A Prisma schema file as the engine takes it. */
export interface SchemaFile {
  path: string;
  content: string;
}

/**
 * Runs `fn` with a fresh schema engine bound to `adapterFactory`, and frees the engine after.
 * The engine's log lines are collected and passed to `onLog` (debugging only).
 */
export async function withSchemaEngine<T>(
  adapterFactory: SqlMigrationAwareDriverAdapterFactory,
  schemaFiles: readonly SchemaFile[],
  fn: (engine: SchemaEngine) => Promise<T>,
  onLog: (line: string) => void = () => {},
): Promise<T> {
  const Engine = await loadSchemaEngineClass();
  return withSchemaEngineAdapters(adapterFactory, async (bound) => {
    const engine = await Engine.new(
      { datamodels: schemaFiles.map((f): [string, string] => [f.path, f.content]) },
      onLog,
      bound,
    );
    try {
      return await fn(engine);
    } finally {
      engine.free();
    }
  });
}

/**
 * Runs `fn` with the factory a schema engine takes (`adapterFactory` bound, its errors in a
 * registry), then disposes every connection the engine opened through it. An error of `fn`
 * gets the driver's error as its cause when it names one.
 */
export async function withSchemaEngineAdapters<T>(
  adapterFactory: SqlMigrationAwareDriverAdapterFactory,
  fn: (bound: ErrorCapturingSqlMigrationAwareDriverAdapterFactory) => Promise<T>,
): Promise<T> {
  // The engine does not dispose the connections it opens when freed (a pg pool would keep the
  // process alive), so track them and dispose them here.
  const opened: SqlDriverAdapter[] = [];
  const tracked: SqlMigrationAwareDriverAdapterFactory = {
    provider: adapterFactory.provider,
    adapterName: adapterFactory.adapterName,
    connect: async () => track(opened, await adapterFactory.connect()),
    connectToShadowDb: async () => track(opened, await adapterFactory.connectToShadowDb()),
  };
  const bound = bindMigrationAwareSqlAdapterFactory(tracked);
  try {
    return await fn(bound);
  } catch (err) {
    throw withAdapterCause(err, bound.errorRegistry);
  } finally {
    // Already-disposed adapters may throw on a second dispose: nothing to do about it.
    await Promise.allSettled(opened.map((a) => a.dispose()));
  }
}

/**
 * The engine reports a driver error as "External error id#N"; the JS error itself waits in the
 * bound factory's registry. Attach it as `cause` so the real reason is not lost.
 */
export function withAdapterCause(err: unknown, registry: ErrorRegistry): unknown {
  if (!(err instanceof Error)) return err;
  const id = /External error id#(\d+)/.exec(err.message)?.[1];
  const record = id === undefined ? undefined : registry.consumeError(Number(id));
  if (record !== undefined && err.cause === undefined) {
    Object.defineProperty(err, 'cause', { value: record.error, configurable: true, writable: true });
  }
  return err;
}

function track(opened: SqlDriverAdapter[], adapter: SqlDriverAdapter): SqlDriverAdapter {
  opened.push(adapter);
  return adapter.provider === 'sqlite' ? withScriptFallback(adapter) : withStatementSplitting(adapter);
}

/**
 * The pg adapter's `executeScript` splits a migration at every `;`, even one in a comment or a
 * string, and sends the pieces as statements. Split at the semicolons that end statements
 * instead (`sql-script.ts`) and send each one whole.
 */
function withStatementSplitting(adapter: SqlDriverAdapter): SqlDriverAdapter {
  return Object.assign(Object.create(adapter) as SqlDriverAdapter, {
    async executeScript(script: string): Promise<void> {
      for (const sql of splitSqlScript(script)) await adapter.executeRaw({ sql, args: [], argTypes: [] });
    },
  });
}

/**
 * When it replays migrations into a SQLite shadow database (`diff` from a migrations folder), the
 * engine sends each whole `migration.sql` through `executeRaw`, which better-sqlite3 refuses
 * ("contains more than one statement"). Run such a parameterless script with `executeScript`.
 */
function withScriptFallback(adapter: SqlDriverAdapter): SqlDriverAdapter {
  const executeRaw = adapter.executeRaw.bind(adapter);
  return Object.assign(Object.create(adapter) as SqlDriverAdapter, {
    async executeRaw(query: SqlQuery): Promise<number> {
      try {
        return await executeRaw(query);
      } catch (err) {
        if (
          query.args.length > 0 ||
          !(err instanceof RangeError) ||
          !/more than one statement/.test(err.message)
        ) {
          throw err;
        }
        await adapter.executeScript(query.sql);
        return 0;
      }
    },
  });
}

/** The schema filter Parley uses: no external tables or enums, its schema owns the whole database. */
export function noSchemaFilter(): SchemaFilter {
  return { externalTables: [], externalEnums: [] };
}
