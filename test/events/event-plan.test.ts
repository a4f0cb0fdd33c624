import { describe, expect, it } from 'vitest';
import { planCommits } from '../../src/store/commit-plan.js';
import { commitStatements } from '../../src/store/commit-sql.js';
import { sqliteDialect } from '../../src/store/dialect.js';
import { commandItem } from '../helpers/store.js';

describe('the back-office events of a commit', () => {
  const calls = [
    [commandItem({ cid: 'a', referenceId: 'r', write: 'v1' })],
    [commandItem({ cid: 'b', referenceId: 'r', read: 'v1', write: 'v2' })],
    [commandItem({ cid: 'c', referenceId: 'r', read: 'v1', write: 'x', status: 'failure' })],
    [commandItem({ cid: 'd', referenceId: 'r', read: 'v2', write: 'v3', open: false })],
  ];

  it('are one per command, in commit order, when the store records them', () => {
    const plan = planCommits(calls, { events: true });
    expect(plan?.events.map((e) => [e.cid, e.kind])).toEqual([
      ['a', 'payment_created'],
      ['b', 'payment_updated'],
      ['c', 'command_failed'],
      ['d', 'payment_final'],
    ]);
    const sql = commitStatements(sqliteDialect, plan!, new Date()).map((s) => s.sql);
    expect(sql.filter((s) => s.startsWith('INSERT INTO webhook_event'))).toHaveLength(1);
  });

  it('cost nothing when it does not', () => {
    const plan = planCommits(calls);
    expect(plan?.events).toEqual([]);
    const sql = commitStatements(sqliteDialect, plan!, new Date()).map((s) => s.sql);
    expect(sql.some((s) => s.includes('webhook_event'))).toBe(false);
  });
});
