/**
 * Databases opened one after another share one compiled schema engine
 * (`schema-engine-thread.ts`): a lone open compiles it in the engine's thread (nothing stays on
 * the opener's), the next ones compile it once on the opener's thread and hand it over; a module
 * that fails to compile there is not kept, and the thread compiles its own. Every open migrates
 * its fresh database either way. Real SQLite files, real worker threads.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { openStore } from '../../src/store/index.js';

/** The global `WebAssembly`, as the engine's opener uses it. */
const wasm = (globalThis as unknown as { WebAssembly: { compile(bytes: Uint8Array): Promise<object> } })
  .WebAssembly;

describe('the schema engine across databases opened one after another', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  /** Opens a fresh database (its migrations applied), checks it and closes it. */
  async function openFresh(): Promise<void> {
    const dir = await mkdtemp(join(tmpdir(), 'parley-engine-'));
    dirs.push(dir);
    const store = await openStore({ url: `file:${join(dir, 'node.db')}` });
    try {
      expect(await store.checkIntegrity()).toEqual([]);
    } finally {
      await store.close();
    }
  }

  it('compiles it once for the runs that follow the first, and never keeps a failed compile', async () => {
    const compile = vi.spyOn(wasm, 'compile');
    try {
      await openFresh(); // alone: compiled in its thread
      expect(compile).toHaveBeenCalledTimes(0);

      compile.mockRejectedValueOnce(new Error('cannot compile here'));
      await openFresh(); // follows: compiled here, which fails; its thread compiles its own
      expect(compile).toHaveBeenCalledTimes(1);

      await openFresh(); // the failure was not kept: compiled here again
      await openFresh(); // and shared
      await openFresh();
      expect(compile).toHaveBeenCalledTimes(2);
    } finally {
      compile.mockRestore();
    }
  });
});
