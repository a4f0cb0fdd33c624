/** The `parley` executable: `bin/parley.js` and `npm start --` land here. */
import { runCli } from './cli.js';
import { processIo } from './io.js';

process.exitCode = await runCli(process.argv.slice(2), processIo());
// Whatever is still scheduled when a command is done (a closed dialer's timer) must not hold the exit.
setTimeout(() => process.exit(), 2000).unref();
