/**
 * The schema engine on a thread of its own, for one call (`applyMigrations` on open).
 *
 * The engine's WebAssembly instance (tens of MB once it has applied the migrations) cannot be
 * given back while its module lives: the glue keeps views of its memory. A worker thread's
 * isolate, WebAssembly memory included, is freed when the thread ends, so the engine runs there
 * and the thread ends after the call. Runs that follow each other within a short time share one
 * compiled module (`compiledEngine`); a lone run compiles its own in its thread.
 *
 * Only the engine moves. Its driver adapters stay on this thread: the worker's engine gets a
 * factory whose every call (connect, query, script, transaction) is a message to this thread,
 * which runs it on the bound adapter of {@link withSchemaEngineAdapters} (the same connections,
 * statement splitting, error registry and disposal as the engine in process). The worker is
 * plain JavaScript run with `eval` (it needs no TypeScript loader whatever runs the node) and
 * loads only the engine's own package.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils';
import type { SchemaEngine } from '@prisma/schema-engine-wasm';
import { type SchemaFile, withAdapterCause, withSchemaEngineAdapters } from './schema-engine.js';

/** A call from the worker: `method` of the object registered as `target` (0: the factory). */
interface Call {
  call: number;
  target: number;
  method: string;
  args: unknown[];
}

/** What the worker sends besides calls: the engine's answer, or its failure. */
interface Outcome {
  done?: true;
  value?: unknown;
  failed?: { name: string; message: string; panic: string };
}

/** An adapter's `Result` as the bound adapters return it. */
type Result = { ok: true; value: unknown } | { ok: false; error: unknown };

/** The calls whose value is an object the worker calls again (an adapter, a transaction). */
const RETURNS_OBJECT: ReadonlySet<string> = new Set(['connect', 'connectToShadowDb', 'startTransaction']);

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { readFileSync } = require('node:fs');
const ok = (value) => ({ ok: true, value, map: (f) => ok(f(value)), flatMap: (f) => f(value) });
const err = (error) => ({ ok: false, error, map: () => err(error), flatMap: () => err(error) });
const pending = new Map();
let nextCall = 1;
parentPort.on('message', (m) => {
  const answer = pending.get(m.call);
  pending.delete(m.call);
  if (answer) answer(m);
});
function call(target, method, args) {
  return new Promise((resolve) => {
    const id = nextCall++;
    pending.set(id, resolve);
    parentPort.postMessage({ call: id, target, method, args });
  }).then((r) => (r.ok ? ok(r.ref === undefined ? r.value : remote(r.ref, r.props)) : err(r.error)));
}
function remote(ref, props) {
  const o = { adapterName: props.adapterName, provider: props.provider };
  if (props.options !== undefined) o.options = props.options;
  for (const m of props.methods) o[m] = (...args) => call(ref, m, args);
  const info = props.connectionInfo;
  if (info !== undefined) o.getConnectionInfo = () => (info.ok ? ok(info.value) : err(info.error));
  return o;
}
const panic = { message: '', get() { return this.message; }, set_message(m) { this.message = 'RuntimeError: ' + m; } };
globalThis.PRISMA_WASM_PANIC_REGISTRY = panic;
(async () => {
  const glue = await import(workerData.glueUrl);
  const imports = { './schema_engine_bg.js': glue };
  const instance = workerData.module
    ? await WebAssembly.instantiate(workerData.module, imports)
    : (await WebAssembly.instantiate(readFileSync(workerData.wasmPath), imports)).instance;
  glue.__wbg_set_wasm(instance.exports);
  instance.exports.__wbindgen_start();
  const factory = remote(0, workerData.factory);
  const engine = await glue.SchemaEngine.new({ datamodels: workerData.datamodels }, () => {}, factory);
  try {
    return await engine[workerData.method](workerData.params);
  } finally {
    engine.free();
  }
})().then(
  (value) => parentPort.postMessage({ done: true, value }),
  (e) => parentPort.postMessage({
    failed: { name: String(e && e.name), message: String(e && e.message !== undefined ? e.message : e), panic: panic.message },
  }),
);
`;

/** What the worker needs of an adapter or transaction to call it: its fields and method names. */
function describe(object: Record<string, unknown>): Record<string, unknown> {
  const methods = Object.keys(object).filter(
    (k) => typeof object[k] === 'function' && k !== 'getConnectionInfo',
  );
  const info =
    typeof object['getConnectionInfo'] === 'function' ? plain(object['getConnectionInfo']()) : undefined;
  return {
    adapterName: object['adapterName'],
    provider: object['provider'],
    options: object['options'],
    methods,
    connectionInfo: info,
  };
}

/** A `Result` without its functions (they do not cross threads). */
function plain(result: unknown): Result {
  const r = result as Result;
  return r.ok ? { ok: true, value: r.value } : { ok: false, error: r.error };
}

/** A compiled `WebAssembly.Module` (opaque here: it is only handed to the engine's thread). */
type CompiledModule = object;

/** The global `WebAssembly` (the compiler's libraries here do not declare it). */
const wasm = (
  globalThis as unknown as { WebAssembly: { compile(bytes: Uint8Array): Promise<CompiledModule> } }
).WebAssembly;

/**
 * How long the compiled engine is kept after its last use. A run within that time of another
 * (a node's store and its replicas, tools, tests opening many databases) shares one compiled
 * module; a lone run (a node's start) compiles its own in the thread, so nothing stays behind.
 */
const COMPILED_ENGINE_IDLE_MS = 30_000;

/**
 * The engine's WebAssembly module, compiled once for runs that follow each other and shared by
 * their threads (a compiled module crosses threads without a copy or a new compile).
 */
const compiledEngine = (() => {
  let module: Promise<CompiledModule> | undefined;
  let running = 0;
  let lastEnd = Number.NEGATIVE_INFINITY;
  let release: NodeJS.Timeout | undefined;
  return {
    /** The shared module, or `undefined` for a lone run (its thread compiles its own). */
    async take(wasmPath: string): Promise<CompiledModule | undefined> {
      const following = running > 0 || performance.now() - lastEnd < COMPILED_ENGINE_IDLE_MS;
      running++;
      clearTimeout(release);
      if (!following && module === undefined) return undefined;
      if (module === undefined) {
        const compiling = readFile(wasmPath).then((bytes) => wasm.compile(bytes));
        module = compiling;
        compiling.catch(() => {
          if (module === compiling) module = undefined;
        });
      }
      try {
        return await module;
      } catch {
        return undefined; // the thread compiles it again and reports the failure as the run's
      }
    },
    /** Ends a run begun by {@link take}. */
    give(): void {
      running--;
      lastEnd = performance.now();
      if (running > 0) return;
      clearTimeout(release);
      release = setTimeout(() => {
        module = undefined;
      }, COMPILED_ENGINE_IDLE_MS);
      release.unref();
    },
  };
})();

type ApplyInput = Parameters<SchemaEngine['applyMigrations']>[0];
type ApplyOutput = Awaited<ReturnType<SchemaEngine['applyMigrations']>>;

/**
 * Runs the schema engine's `applyMigrations(input)` on a worker thread that ends after it, with
 * the engine's connections opened by `adapterFactory` on this thread.
 */
export async function applyMigrationsInThread(
  adapterFactory: SqlMigrationAwareDriverAdapterFactory,
  schemaFiles: readonly SchemaFile[],
  input: ApplyInput,
): Promise<ApplyOutput> {
  const require = createRequire(import.meta.url);
  const glue = require.resolve('@prisma/schema-engine-wasm/schema_engine_bg');
  const wasmPath = join(dirname(glue), 'schema_engine_bg.wasm');
  const module = await compiledEngine.take(wasmPath);
  try {
    return await runInThread(adapterFactory, schemaFiles, input, { glue, wasmPath, module });
  } finally {
    compiledEngine.give();
  }
}

/** {@link applyMigrationsInThread} with the engine's compiled module. */
function runInThread(
  adapterFactory: SqlMigrationAwareDriverAdapterFactory,
  schemaFiles: readonly SchemaFile[],
  input: ApplyInput,
  engine: { glue: string; wasmPath: string; module: CompiledModule | undefined },
): Promise<ApplyOutput> {
  return withSchemaEngineAdapters(adapterFactory, async (bound) => {
    const objects = new Map<number, Record<string, unknown>>([
      [0, bound as unknown as Record<string, unknown>],
    ]);
    let nextRef = 1;
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      name: 'parley-schema-engine',
      workerData: {
        glueUrl: pathToFileURL(engine.glue).href,
        wasmPath: engine.wasmPath,
        module: engine.module,
        datamodels: schemaFiles.map((f) => [f.path, f.content]),
        method: 'applyMigrations',
        params: input,
        factory: {
          adapterName: bound.adapterName,
          provider: bound.provider,
          methods: ['connect', 'connectToShadowDb'],
        },
      },
    });
    const answer = async (m: Call): Promise<void> => {
      const target = objects.get(m.target);
      const fn = target?.[m.method];
      if (typeof fn !== 'function')
        throw new Error(`the schema engine called ${m.method}, which is not there`);
      const result = plain(await (fn as (...args: unknown[]) => Promise<unknown>).apply(target, m.args));
      if (!result.ok) {
        worker.postMessage({ call: m.call, ok: false, error: result.error });
      } else if (RETURNS_OBJECT.has(m.method)) {
        const ref = nextRef++;
        const object = result.value as Record<string, unknown>;
        objects.set(ref, object);
        worker.postMessage({ call: m.call, ok: true, ref, props: describe(object) });
      } else {
        worker.postMessage({ call: m.call, ok: true, value: result.value });
      }
    };
    try {
      return await new Promise<ApplyOutput>((resolve, reject) => {
        worker.on('message', (m: Call & Outcome) => {
          if (m.done) resolve(m.value as ApplyOutput);
          else if (m.failed) reject(engineError(m.failed, bound.errorRegistry));
          // The bound adapters return every failure as a Result; anything else fails the call.
          else answer(m).then(undefined, reject);
        });
        worker.once('error', reject);
        worker.once('exit', (code) => reject(new Error(`the schema engine thread exited (${code})`)));
      });
    } finally {
      await worker.terminate();
    }
  });
}

/** The engine's failure as an `Error`, with the driver's error as its cause when it has one. */
function engineError(
  failed: NonNullable<Outcome['failed']>,
  registry: Parameters<typeof withAdapterCause>[1],
): unknown {
  const err = new Error(failed.panic !== '' ? `${failed.message} (${failed.panic})` : failed.message);
  err.name = failed.name;
  return withAdapterCause(err, registry);
}
