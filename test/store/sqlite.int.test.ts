import { createStoreFixture } from '../helpers/store.js';
import { describeStoreContract } from './store.contract.js';

describeStoreContract('sqlite', () => createStoreFixture('sqlite'));
