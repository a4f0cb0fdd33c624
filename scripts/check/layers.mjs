#!/usr/bin/env node
// The dependency rule of src/ (docs/architecture.md, "Layers"): which part may import which, and
// which packages only one part may use. `node scripts/check/layers.mjs [root]` prints every import
// that breaks it and exits 1 if there is one. The parts are the folders of src/ and its top files.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

/**
 * What each part may import of the others (besides itself). The composition roots (node.ts,
 * index.ts, demo.ts, cli/) see everything; a part may always import another part's `ports.ts`
 * (its contract: interfaces and the constants they name).
 */
export const MAY_IMPORT = {
  errors: [],
  'event-loop': [],
  'keyed-throttle': [],
  'report-throttle': [],
  util: [],
  'refusal-reports': ['channel', 'transport', 'report-throttle'],
  http: [],
  protocol: ['errors'],
  objects: ['errors', 'protocol'],
  transport: ['errors', 'protocol', 'keyed-throttle'],
  store: ['errors', 'protocol', 'objects'],
  channel: ['errors', 'protocol', 'objects', 'store', 'transport', 'event-loop'],
  sync: ['errors', 'protocol', 'objects', 'store', 'channel', 'transport', 'event-loop', 'keyed-throttle'],
  health: ['errors', 'protocol', 'store', 'channel', 'transport', 'http', 'event-loop', 'keyed-throttle'],
  business: ['errors', 'protocol', 'objects', 'store', 'channel', 'event-loop'],
  replica: ['errors', 'store'],
  events: ['errors', 'protocol', 'objects', 'store', 'business'],
  peer: [
    'errors',
    'protocol',
    'store',
    'transport',
    'channel',
    'sync',
    'health',
    'business',
    'refusal-reports',
  ],
  // Types only from channel, health, sync, business and replica: the events it shows.
  dashboard: ['http', 'errors', 'channel', 'health', 'sync', 'business', 'replica'],
  admin: ['errors', 'http', 'protocol', 'node', 'channel', 'health', 'store', 'events'],
  config: ['errors', 'protocol', 'transport', 'health'],
  node: '*',
  index: '*',
  demo: '*',
  'demo-dir': ['errors'],
  cli: '*',
};

/**
 * Leaf files (they import nothing) that any part may import: `errors.ts` names its close codes
 * through `CloseCode`, which lives with the protocol (PROTOCOL.md §6); every part hands the
 * promises nobody awaits to `util/background.ts`.
 */
export const LEAVES = ['protocol/close-codes', 'util/background'];

/** Packages with I/O that only the named parts may import (a pure part imports none of them). */
export const ONLY_IN = {
  ws: ['transport'],
  pg: ['store'],
  'better-sqlite3': ['store'],
  '@prisma': ['store'],
  'socket.io': ['dashboard'],
  'prom-client': ['health'],
  'node:net': ['transport', 'config', 'http'],
  'node:tls': ['transport'],
  'node:child_process': ['cli', 'demo'],
};

/** Parts that must stay free of I/O: no node: module besides these. */
export const PURE = { protocol: ['node:crypto', 'node:os', 'node:worker_threads'], objects: ['node:crypto'] };

function* sourceFiles(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'generated' && entry.name !== 'node_modules') yield* sourceFiles(path);
    } else if (/\.(ts|mts|js|mjs)$/.test(entry.name) && !entry.name.endsWith('.d.ts')) yield path;
  }
}

/** The part a file of src/ belongs to: its top folder, or its own name for a top file. */
function partOf(srcDir, file) {
  const rel = relative(srcDir, file);
  if (rel.startsWith('..')) return undefined;
  const [first, ...rest] = rel.split(sep);
  return rest.length > 0 ? first : first.replace(/\.(ts|mts|js|mjs)$/, '');
}

function isLeaf(srcDir, path) {
  const rel = relative(srcDir, path).replace(/\.(ts|mts|js|mjs)$/, '');
  return LEAVES.some((leaf) => rel === leaf.split('/').join(sep));
}

const IMPORT =
  /^\s*(import|export)\s+(type\s+)?[^'"]*?\bfrom\s+['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/gm;

/** Every import of the files under `root`/src that breaks the rule. */
export function check(root) {
  const srcDir = resolve(root, 'src');
  const problems = [];
  for (const file of sourceFiles(srcDir)) {
    const from = partOf(srcDir, file);
    const text = readFileSync(file, 'utf8');
    const where = relative(root, file);
    for (const m of text.matchAll(IMPORT)) {
      const spec = m[3] ?? m[4] ?? m[5];
      if (isLeaf(srcDir, file)) {
        problems.push(`${where}: a leaf file imports nothing (${spec})`);
        continue;
      }
      if (spec.startsWith('.')) {
        const target = resolve(dirname(file), spec);
        const to = partOf(srcDir, target);
        if (to === undefined || to === from) continue;
        const allowed = MAY_IMPORT[from];
        if (allowed === undefined) {
          problems.push(`${where}: the part "${from}" has no rule in MAY_IMPORT`);
          continue;
        }
        if (allowed === '*' || allowed.includes(to)) continue;
        if (/[\\/]ports(\.js|\.ts)?$/.test(target)) continue;
        if (isLeaf(srcDir, target)) continue;
        problems.push(`${where}: "${from}" may not import "${to}" (${spec})`);
        continue;
      }
      const pkg = spec.split('/')[0];
      const owners = ONLY_IN[pkg] ?? ONLY_IN[spec];
      if (owners && !owners.includes(from)) {
        problems.push(`${where}: only ${owners.join(', ')} may import ${spec}`);
        continue;
      }
      if (from in PURE && spec.startsWith('node:') && !PURE[from].includes(spec)) {
        problems.push(`${where}: "${from}" is pure and may not import ${spec}`);
      }
      if (from in PURE && !spec.startsWith('node:') && !['zod'].includes(pkg)) {
        problems.push(`${where}: "${from}" is pure and may not import the package ${spec}`);
      }
    }
  }
  return problems;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const problems = check(process.argv[2] ?? process.cwd());
  for (const p of problems) console.error(`layers: ${p}`);
  process.exitCode = problems.length > 0 ? 1 : 0;
}
