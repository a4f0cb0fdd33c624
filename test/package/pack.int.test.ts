/**
 * The package as a user gets it: `npm pack`, then the tarball installed into an empty project
 * with `npm ci --offline --omit=dev` (every dependency from npm's cache, as this checkout's own
 * `npm ci` left it), then `parley --version`, `parley init` and a script that imports
 * `createVaspNode` from 'parley' and starts a node on an ephemeral port.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../cli/helpers.js';

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

interface LockEntry {
  dev?: boolean;
  devOptional?: boolean;
  [key: string]: unknown;
}

/** A lockfile for a project that depends on the tarball only, from this checkout's own lockfile. */
function lockfileFor(tarball: string): object {
  const lock = JSON.parse(readFileSync(join(repoRoot, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, LockEntry & { version?: string; dependencies?: object; bin?: object }>;
  };
  const root = lock.packages['']!;
  const integrity = `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`;
  const packages: Record<string, unknown> = {
    '': { name: 'app', dependencies: { parley: `file:${tarball}` } },
    'node_modules/parley': {
      version: root.version,
      resolved: `file:${tarball}`,
      integrity,
      dependencies: root.dependencies,
      bin: root.bin,
    },
  };
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path !== '' && entry.dev !== true && entry.devOptional !== true) packages[path] = entry;
  }
  return { name: 'app', lockfileVersion: 3, requires: true, packages };
}

describe('the packed package', () => {
  const dir = mkdtempSync(join(tmpdir(), 'parley-pack-'));
  const app = join(dir, 'app');
  let files: string[] = [];

  beforeAll(() => {
    // The build writes dist/ only; packing with --ignore-scripts leaves src/store/generated alone
    // (other test files read it meanwhile).
    execFileSync(process.execPath, [join(repoRoot, 'scripts/build/build.mjs')], {
      cwd: repoRoot,
      stdio: 'pipe',
    });
    const packed = JSON.parse(
      execFileSync(npm, ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], {
        cwd: repoRoot,
        encoding: 'utf8',
      }),
    ) as Array<{ filename: string; files: Array<{ path: string }> }>;
    const tarball = join(dir, packed[0]!.filename);
    files = packed[0]!.files.map((f) => f.path);
    mkdirSync(app);
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({
        name: 'app',
        private: true,
        type: 'module',
        dependencies: { parley: `file:${tarball}` },
        allowScripts: { 'better-sqlite3': true, bufferutil: true },
      }),
    );
    writeFileSync(join(app, 'package-lock.json'), JSON.stringify(lockfileFor(tarball)));
    const install = spawnSync(npm, ['ci', '--offline', '--omit=dev', '--no-audit', '--no-fund'], {
      cwd: app,
      encoding: 'utf8',
    });
    if (install.status !== 0) throw new Error(`npm ci failed:\n${install.stdout}\n${install.stderr}`);
  }, 600_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('ships compiled JavaScript with declarations, migrations, and no TypeScript sources', () => {
    expect(files).toContain('dist/index.js');
    expect(files).toContain('dist/index.d.ts');
    expect(files).toContain('dist/cli/main.js');
    expect(files).toContain('dist/protocol/verify-worker.mjs');
    expect(files.some((f) => f.startsWith('prisma/sqlite/migrations/'))).toBe(true);
    expect(files.some((f) => f.startsWith('prisma/postgresql/migrations/'))).toBe(true);
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
    const manifest = JSON.parse(readFileSync(join(app, 'node_modules/parley/package.json'), 'utf8'));
    expect(manifest.scripts?.postinstall).toBeUndefined();
  });

  it('installs without development dependencies', () => {
    for (const dev of ['tsx', 'typescript', 'vitest', 'prisma', '@prisma/engines']) {
      expect(existsSync(join(app, 'node_modules', dev)), `${dev} is installed`).toBe(false);
    }
  });

  it('runs `parley --version` and `parley init` from the compiled CLI', () => {
    const bin = join(app, 'node_modules/.bin/parley');
    const version = spawnSync(bin, ['--version'], { cwd: app, encoding: 'utf8' });
    expect(version.status).toBe(0);
    expect(version.stdout.trim()).toMatch(/^parley \d+\.\d+\.\d+/);
    const init = spawnSync(bin, ['init', '--random-address', '--dir', 'vasp', '--port', '0'], {
      cwd: app,
      encoding: 'utf8',
    });
    expect(init.stderr).toBe('');
    expect(init.status).toBe(0);
    const config = JSON.parse(readFileSync(join(app, 'vasp/parley.config.json'), 'utf8'));
    expect(config.address).toMatch(/^[a-z]+1/);
  });

  it("starts a node with `import { createVaspNode } from 'parley'`", () => {
    writeFileSync(
      join(app, 'start.mjs'),
      `import { createVaspNode } from 'parley';
const config = JSON.parse((await import('node:fs')).readFileSync('vasp/parley.config.json', 'utf8'));
const node = await createVaspNode({ ...config, database: 'file:' + process.cwd() + '/start.db', listen: { host: '127.0.0.1', port: 0 } });
const res = await fetch('http://127.0.0.1:' + new URL(node.url).port + '/livez');
console.log(JSON.stringify({ url: node.url, livez: res.status }));
await node.close();
`,
    );
    const run = spawnSync(process.execPath, ['start.mjs'], { cwd: app, encoding: 'utf8', timeout: 120_000 });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const out = JSON.parse(run.stdout.trim().split('\n').at(-1)!);
    expect(out.livez).toBe(200);
    expect(out.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/parley\/v1$/);
  });
});
