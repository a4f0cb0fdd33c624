#!/usr/bin/env node
// No promise in src/ is silenced on the spot: `.catch(() => undefined)` (or `=> {}`) hides a
// failure from everyone. Work nobody awaits goes to `background()` of src/util/background.ts,
// which reports its failure; a promise handled elsewhere is marked with `observed()` or waited
// on with `settled()`. `node scripts/check/swallowed.mjs [root]` prints every such call and
// exits 1 if there is one.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const SWALLOW = /\.catch\(\s*(?:async\s*)?\(\s*\)\s*=>\s*(?:undefined|void 0|null|\{\s*\})\s*\)/g;

function* sourceFiles(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'generated' && entry.name !== 'node_modules') yield* sourceFiles(path);
    } else if (/\.(ts|mts|js|mjs)$/.test(entry.name) && !entry.name.endsWith('.d.ts')) yield path;
  }
}

/** Every silenced promise in the files under `root`/src, as `path:line: text`. */
export function check(root) {
  const problems = [];
  for (const file of sourceFiles(resolve(root, 'src'))) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(SWALLOW)) {
      const line = text.slice(0, m.index).split('\n').length;
      problems.push(
        `${relative(root, file)}:${line}: ${m[0]} silences a failure; use background(), observed() or settled() of src/util/background.ts`,
      );
    }
  }
  return problems;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const problems = check(process.argv[2] ?? process.cwd());
  for (const p of problems) console.error(`swallowed: ${p}`);
  process.exitCode = problems.length > 0 ? 1 : 0;
}
