/**
 * A child process for store tests that need a real second process.
 *
 *   node --import tsx test/helpers/store-child.ts open <db-file>
 *     opens the store, prints `epoch <hex>`, closes.
 *   node --import tsx test/helpers/store-child.ts commit <db-file> <prefix> [workers]
 *     commits forever from `workers` concurrent loops (each chaining versions of its own
 *     object; every third command goes through the outbox first) and prints `ack <cid>` once a
 *     commit is durable. Meant to be SIGKILLed.
 *
 * stdout writes to a pipe are synchronous on Linux: an `ack` line the parent reads was written
 * after the commit resolved.
 */
import { openStore } from '../../src/store/index.js';
import { commandItem, PEER } from './store.js';

const [mode, file, prefix = 'run', workersArg = '8'] = process.argv.slice(2);
if (!file || (mode !== 'open' && mode !== 'commit')) {
  console.error('usage: store-child.ts open|commit <db-file> [prefix] [workers]');
  process.exit(2);
}

const store = await openStore({ url: `file:${file}` });
if (mode === 'open') {
  process.stdout.write(`epoch ${(await store.identity()).epoch}\n`);
  await store.close();
} else {
  process.stdout.write('ready\n');
  let next = 0;
  const worker = async (w: number): Promise<void> => {
    const referenceId = `${prefix}-obj${w}`;
    let previous: string | null = null;
    for (let v = 0; ; v++) {
      const n = next++;
      const cid = `${prefix}-c${n}`;
      const write = `v${v}`;
      const viaOutbox = n % 3 === 0;
      if (viaOutbox) {
        await store.enqueue({
          peer: PEER,
          cid,
          referenceId,
          readVersion: previous,
          writeVersion: write,
          requestJws: `req.${cid}.sig`,
          createdAtMs: Date.now(),
          attempts: 0,
        });
      }
      await store.commit([
        commandItem({
          cid,
          referenceId,
          read: previous,
          write,
          direction: 'outbound',
          settlesOutbox: viaOutbox,
        }),
      ]);
      process.stdout.write(`ack ${cid}\n`);
      previous = write;
    }
  };
  await Promise.all(Array.from({ length: Number(workersArg) }, (_, w) => worker(w)));
}
