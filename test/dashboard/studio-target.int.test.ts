/**
 * `npm run studio` opens a node's existing database and never creates one
 * (`scripts/prisma/studio.ts`, `scripts/prisma/studio-target.ts`).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, watch, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveStudioTarget } from '../../scripts/prisma/studio-target.js';
import type { InitResult } from '../../src/cli/commands/init.js';
import { isParleyError } from '../../src/errors.js';
import { cli, repoRoot, tempDir } from '../cli/helpers.js';

const TSX = pathToFileURL(join(repoRoot, 'node_modules/tsx/dist/loader.mjs')).href;
const STUDIO = join(repoRoot, 'scripts/prisma/studio.ts');

interface StudioRun {
  code: number | null;
  stderr: string;
  /** Entries that appeared in the working directory while it ran. */
  created: string[];
}

/**
 * `npm run studio -- <args>` in `cwd`, as a real process. If any file appears in `cwd` (a database
 * Studio made), the run is stopped at once and reported with what appeared.
 */
function runStudio(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<StudioRun> {
  const before = new Set(readdirSync(cwd));
  const child = spawn(process.execPath, ['--import', TSX, STUDIO, ...args], {
    cwd,
    env: { PATH: process.env['PATH'], HOME: process.env['HOME'], ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const created = (): string[] => readdirSync(cwd).filter((name) => !before.has(name));
  const watcher = watch(cwd, () => {
    if (created().length > 0) child.kill('SIGTERM'); // it forwards the signal to Prisma Studio
  });
  return new Promise((resolve) => {
    child.on('exit', (code) => {
      watcher.close();
      resolve({ code, stderr, created: created() });
    });
  });
}

describe('npm run studio (real process)', () => {
  const dirs: Array<{ dispose(): void }> = [];
  const dir = (): string => {
    const d = tempDir();
    dirs.push(d);
    return d.path;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) d.dispose();
  });

  it('with no argument, no config and no PARLEY_DATABASE: asks which database (exit 2), creates nothing', async () => {
    const cwd = dir();
    const run = await runStudio([], cwd);
    expect(run.created).toEqual([]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('which database?');
    expect(run.stderr).toContain('Usage: npm run studio');
  });

  it('refuses a SQLite file that does not exist (exit 2), named or from ./parley.config.json, and creates nothing', async () => {
    const cwd = dir();
    const named = await runStudio(['file:missing.db', '--browser', 'none'], cwd);
    expect(named.created).toEqual([]);
    expect(named.code).toBe(2);
    expect(named.stderr).toContain(`CONFIG_INVALID: no database at ${join(cwd, 'missing.db')}`);

    // A node that was set up but never started: its config names ./parley.db, which is not there.
    expect((await cli(['init', '--random-address', '--port', '0'], { cwd })).code).toBe(0);
    const fromConfig = await runStudio([], cwd);
    expect(fromConfig.created).toEqual([]);
    expect(fromConfig.code).toBe(2);
    expect(fromConfig.stderr).toContain(`no database at ${join(cwd, 'parley.db')}`);
    expect(fromConfig.stderr).toContain(join(cwd, 'parley.config.json'));
  });
});

describe('resolveStudioTarget', () => {
  const dirs: Array<{ dispose(): void }> = [];
  const dir = (): string => {
    const d = tempDir();
    dirs.push(d);
    return d.path;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) d.dispose();
  });
  const init = async (cwd: string, extra: string[] = []): Promise<InitResult> => {
    const { code, out } = await cli(['init', '--random-address', '--port', '0', '--json', ...extra], { cwd });
    expect(code).toBe(0);
    return JSON.parse(out) as InitResult;
  };
  const refusal = (run: () => unknown): string => {
    try {
      run();
    } catch (err) {
      expect(isParleyError(err, 'CONFIG_INVALID'), String(err)).toBe(true);
      return (err as Error).message;
    }
    throw new Error('not refused');
  };

  it('finds the node of ./parley.config.json (its database beside it), and leaves the other options to Studio', async () => {
    const cwd = dir();
    const { config } = await init(cwd);
    writeFileSync(join(cwd, 'parley.db'), '');
    const found = resolveStudioTarget(['--port', '5555', '--browser', 'none'], {}, cwd);
    expect(found.target).toEqual({ engine: 'sqlite', path: join(cwd, 'parley.db') });
    expect(found.studioUrl).toBe(pathToFileURL(join(cwd, 'parley.db')).href);
    expect(found.from).toBe(config);
    expect(found.rest).toEqual(['--port', '5555', '--browser', 'none']);
  });

  it('takes --config <file> (the node’s PARLEY_DATABASE applies), a store URL, or PARLEY_DATABASE alone', async () => {
    const cwd = dir();
    await init(cwd, ['--dir', 'node-a', '--database', 'file:data/a.db']);
    mkdirSync(join(cwd, 'node-a', 'data'));
    writeFileSync(join(cwd, 'node-a', 'data', 'a.db'), '');
    writeFileSync(join(cwd, 'other.db'), '');
    const viaConfig = resolveStudioTarget(['-c', 'node-a/parley.config.json', '--browser', 'none'], {}, cwd);
    expect(viaConfig.target).toEqual({ engine: 'sqlite', path: join(cwd, 'node-a', 'data', 'a.db') });
    expect(viaConfig.rest).toEqual(['--browser', 'none']);
    const overridden = resolveStudioTarget(
      ['--config', 'node-a/parley.config.json'],
      { PARLEY_DATABASE: 'postgresql://u@127.0.0.1:5432/parley' },
      cwd,
    );
    expect(overridden.target).toEqual({ engine: 'postgresql', url: 'postgresql://u@127.0.0.1:5432/parley' });
    expect(resolveStudioTarget(['file:other.db'], {}, cwd).target).toMatchObject({
      path: join(cwd, 'other.db'),
    });
    expect(resolveStudioTarget([], { PARLEY_DATABASE: 'file:other.db' }, cwd)).toMatchObject({
      target: { path: join(cwd, 'other.db') },
      from: 'PARLEY_DATABASE',
    });
  });

  it('refuses a missing database, a folder, a missing config, --config without a file, and a URL with --config', async () => {
    const cwd = dir();
    mkdirSync(join(cwd, 'a-folder.db'));
    expect(refusal(() => resolveStudioTarget([], {}, cwd))).toContain('which database?');
    expect(refusal(() => resolveStudioTarget(['file:nope.db'], {}, cwd))).toContain('no database at');
    expect(refusal(() => resolveStudioTarget(['a-folder.db'], {}, cwd))).toContain('no database at');
    refusal(() => resolveStudioTarget(['--config', 'missing.json'], {}, cwd));
    expect(refusal(() => resolveStudioTarget(['--config'], {}, cwd))).toContain('--config needs a file');
    await init(cwd);
    writeFileSync(join(cwd, 'parley.db'), '');
    expect(
      refusal(() => resolveStudioTarget(['file:parley.db', '-c', 'parley.config.json'], {}, cwd)),
    ).toContain('not both');
    expect(readdirSync(cwd).sort()).toEqual(['a-folder.db', 'parley.config.json', 'parley.db']);
  });
});
