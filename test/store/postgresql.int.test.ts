import { describe, it } from 'vitest';
import { createStoreFixture, HAVE_PG } from '../helpers/store.js';
import { describeStoreContract } from './store.contract.js';

if (HAVE_PG) {
  describeStoreContract('postgresql', () => createStoreFixture('postgresql'));
} else {
  console.warn('[parley tests] TEST_PG_URL is not set: PostgreSQL store tests are skipped');
  describe('ParleyStore contract (postgresql)', () => {
    it.skip('needs TEST_PG_URL, e.g. postgresql://postgres@127.0.0.1:5432/postgres', () => {});
  });
}
