import { describe, expect, it } from 'vitest';
import { planCommits, validateCommit, validateOutboxRecord } from '../../src/store/commit-plan.js';
import { commandItem } from '../helpers/store.js';

describe('validateCommit', () => {
  it('accepts chained items and failed commands', () => {
    expect(
      validateCommit([
        commandItem({ cid: 'a', referenceId: 'r', write: 'v1' }),
        commandItem({ cid: 'b', referenceId: 'r', read: 'v1', write: 'v2' }),
        commandItem({ cid: 'c', referenceId: 'r', read: 'v1', write: 'x', status: 'failure' }),
      ]),
    ).toBeUndefined();
  });

  it('names the problem with a code', () => {
    const a = commandItem({ cid: 'a', referenceId: 'r', write: 'v1' });
    expect(validateCommit([a, a])?.code).toBe('STORE_DUPLICATE_COMMAND');
    expect(
      validateCommit([a, commandItem({ cid: 'b', referenceId: 'r', read: 'v9', write: 'v2' })])?.code,
    ).toBe('STORE_VERSION_CONFLICT');
    expect(validateCommit([{ ...a, command: { ...a.command, direction: 'sideways' as never } }])?.code).toBe(
      'STORE_INVALID_INPUT',
    );
    expect(validateCommit([{ ...a, command: { ...a.command, errorCode: 'x' } }])?.code).toBe(
      'STORE_INVALID_INPUT',
    );
    expect(validateCommit('nope' as never)?.code).toBe('STORE_INVALID_INPUT');
  });
});

describe('planCommits', () => {
  it('folds the versions of one object across calls into one head move', () => {
    const plan = planCommits([
      [commandItem({ cid: 'a', referenceId: 'r', read: 'v1', write: 'v2' })],
      [commandItem({ cid: 'x', referenceId: 'q', write: 'w1' })],
      [
        commandItem({
          cid: 'b',
          referenceId: 'r',
          read: 'v2',
          write: 'v3',
          open: false,
          settlesOutbox: true,
        }),
      ],
    ]);
    expect(plan?.commands.map((c) => c.cid)).toEqual(['a', 'x', 'b']);
    expect(plan?.versions.map((v) => v.cid)).toEqual(['a', 'x', 'b']);
    expect(plan?.heads).toEqual([
      {
        peer: expect.any(String),
        referenceId: 'r',
        fromVersion: 'v1',
        toVersion: 'v3',
        open: false,
        added: 2,
      },
      {
        peer: expect.any(String),
        referenceId: 'q',
        fromVersion: null,
        toVersion: 'w1',
        open: true,
        added: 1,
      },
    ]);
    expect(plan?.settled.map((s) => s.cid)).toEqual(['b']);
  });

  it('gives up when calls race for the same version', () => {
    expect(
      planCommits([
        [commandItem({ cid: 'a', referenceId: 'r', read: 'v1', write: 'v2' })],
        [commandItem({ cid: 'b', referenceId: 'r', read: 'v1', write: 'v2b' })],
      ]),
    ).toBeUndefined();
  });
});

describe('validateOutboxRecord', () => {
  const ok = {
    peer: 'p',
    cid: 'c',
    referenceId: 'r',
    readVersion: null,
    writeVersion: 'v1',
    requestJws: 'j',
    createdAtMs: 1,
    attempts: 0,
  };
  it('accepts a record and refuses broken ones', () => {
    expect(validateOutboxRecord(ok)).toBeUndefined();
    expect(validateOutboxRecord({ ...ok, createdAtMs: Number.NaN })?.code).toBe('STORE_INVALID_INPUT');
    expect(validateOutboxRecord({ ...ok, readVersion: '' })?.code).toBe('STORE_INVALID_INPUT');
  });
});
