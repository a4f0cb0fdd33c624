/**
 * Once per `vitest run`: names this run, so that every PostgreSQL database its tests create
 * (`parley_test_<run>_…`, see `helpers/store.ts`) can be dropped at the end even when a test
 * failed before its own cleanup (a child node that did not start, an assertion in a hook).
 * Only this run's databases are dropped: another run on the same server keeps its own.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const RUN_ENV = 'PARLEY_TEST_RUN';

export default function setup(): () => Promise<void> {
  const run = randomBytes(4).toString('hex');
  // Read by the test workers, which are forked after this runs.
  process.env[RUN_ENV] = run;
  return async () => {
    const url = process.env['TEST_PG_URL'];
    if (!url) return;
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      const { rows } = await client.query<{ datname: string }>(
        'SELECT datname FROM pg_database WHERE starts_with(datname, $1)',
        [`parley_test_${run}_`],
      );
      for (const { datname } of rows) {
        // Names are ours ([a-z0-9_] only), so quoting them is safe.
        await client.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
      }
      if (rows.length > 0) process.stderr.write(`dropped ${rows.length} database(s) left behind by tests\n`);
    } catch (err) {
      process.stderr.write(`could not drop this run's test databases: ${String(err)}\n`);
    } finally {
      await client.end().catch(() => undefined);
    }
  };
}
