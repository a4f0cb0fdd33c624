/** The `parley` executable: `bin/parley.js` and `npm start --` land here. */
import { runCli } from './cli.js';
import { processIo } from './io.js';

process.exitCode = await runCli(process.argv.slice(2), processIo());
