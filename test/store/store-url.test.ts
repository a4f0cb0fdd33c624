import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isParleyError } from '../../src/errors.js';
import { parseStoreUrl } from '../../src/store/store-url.js';

describe('parseStoreUrl', () => {
  it.each([
    ['file:/var/lib/parley/node.db', '/var/lib/parley/node.db'],
    ['file:///var/lib/parley/node.db', '/var/lib/parley/node.db'],
    ['file:data/node.db', resolve('/work', 'data/node.db')],
    ['file:./node.db?connection_limit=1', resolve('/work', 'node.db')],
    ['/abs/node.db', '/abs/node.db'],
    ['node.db', resolve('/work', 'node.db')],
  ])('reads %s as the SQLite file %s', (url, path) => {
    expect(parseStoreUrl(url, '/work')).toEqual({ engine: 'sqlite', path });
  });

  it.each(['postgresql://u@h:5432/db', 'postgres://u@h/db?sslmode=require'])(
    'reads %s as PostgreSQL',
    (url) => {
      expect(parseStoreUrl(url)).toEqual({ engine: 'postgresql', url });
    },
  );

  it.each(['', 'file::memory:', ':memory:', 'mysql://h/db', 'file:'])(
    'refuses %j with CONFIG_INVALID',
    (url) => {
      let err: unknown;
      try {
        parseStoreUrl(url);
      } catch (e) {
        err = e;
      }
      expect(isParleyError(err, 'CONFIG_INVALID')).toBe(true);
    },
  );
});
