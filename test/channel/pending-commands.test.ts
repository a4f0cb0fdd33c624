import { describe, expect, it } from 'vitest';
import { createPendingCommands, type Pending } from '../../src/channel/pending-commands.js';
import type { CommandRequestObject } from '../../src/protocol/index.js';

function pending(referenceId: string, readVersion: string | null, writeVersion: string): Pending {
  return { request: {} as CommandRequestObject, requestJws: '', referenceId, readVersion, writeVersion };
}

describe('pending commands', () => {
  it('lock the version they read (or the object they create) until released', () => {
    const mine = createPendingCommands();
    mine.add('c1', pending('ref-1', null, 'v1'));
    mine.add('c2', pending('ref-2', 'v0', 'v2'));
    expect(mine.isCreating('ref-1')).toBe(true);
    expect(mine.isLocked('v0')).toBe(true);
    expect(mine.writes('v1')).toBe(true);
    expect([...mine.entries()].map(([cid]) => cid)).toEqual(['c1', 'c2']);

    expect(mine.release('c2')?.writeVersion).toBe('v2');
    expect(mine.isLocked('v0')).toBe(false);
    expect(mine.writes('v2')).toBe(false);
    expect(mine.has('c2')).toBe(false);
    expect(mine.release('c2')).toBeUndefined();

    mine.clear();
    expect(mine.isCreating('ref-1')).toBe(false);
    expect(mine.has('c1')).toBe(false);
  });

  it('releasing a command leaves a lock another command took alone', () => {
    const mine = createPendingCommands();
    mine.add('c1', pending('ref', 'v0', 'v1'));
    mine.add('c2', pending('ref', 'v0', 'v2'));
    mine.release('c1');
    expect(mine.isLocked('v0')).toBe(true);
    expect(mine.writes('v2')).toBe(true);
  });
});
