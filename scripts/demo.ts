/** `npm run demo [-- options]`: the demo of `src/demo.ts` (also `parley demo`). */
import { existsSync } from 'node:fs';
import { main } from '../src/demo.js';

if (!existsSync('package.json')) process.stderr.write('run it from the repository root: npm run demo\n');
process.exitCode = await main(process.argv.slice(2));
// Whatever is still scheduled (reconnect timers of closed dialers) must not hold the exit.
setTimeout(() => process.exit(process.exitCode), 2000).unref();
