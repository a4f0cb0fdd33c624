/**
 * `npm run bench` runs every benchmark; `npm run bench -- NAME [args…]` runs one.
 * Each benchmark is `scripts/bench/NAME.ts` and prints one JSON line per result on stdout
 * (progress on stderr), e.g.
 * {"bench":"store","metric":"commits_per_s","value":12345,"unit":"1/s","params":{...}}
 *
 * `failover` (replicas on PostgreSQL, the owner killed and paused) runs for minutes: its loaded
 * run lasts `--duration` seconds (300 by default); `npm run bench -- failover --duration 60` for
 * a shorter one.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const available = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.startsWith('_'))
  .map((f) => f.slice(0, -3))
  .sort();

const [name, ...args] = process.argv.slice(2);
if (name !== undefined && !available.includes(name)) {
  process.stderr.write(`unknown benchmark "${name}"; available: ${available.join(', ')}\n`);
  process.exit(2);
}
let failed = 0;
for (const bench of name === undefined ? available : [name]) {
  process.stderr.write(`== bench ${bench}\n`);
  const run = spawnSync(process.execPath, ['--import', 'tsx', join(here, `${bench}.ts`), ...args], {
    stdio: 'inherit',
  });
  if (run.status !== 0) failed++;
}
process.exit(failed > 0 ? 1 : 0);
