import { describe, expect, it } from 'vitest';
import { createEpochGuard } from '../../src/health/epoch-guard.js';

describe('epoch guard (PROTOCOL.md §8.4)', () => {
  it('takes the first epoch of a peer, then raises state loss on a new one and refuses the old one for ever', () => {
    const guard = createEpochGuard();
    expect(guard.admit('p', 'e1')).toEqual({ kind: 'first' });
    expect(guard.admit('p', 'e1')).toEqual({ kind: 'current' });
    expect(guard.admit('p', 'e2')).toEqual({ kind: 'new', previous: 'e1' });
    expect(guard.admit('p', 'e1')).toEqual({ kind: 'superseded', current: 'e2' });
    expect(guard.admit('p', 'e2')).toEqual({ kind: 'current' });
    expect(guard.admit('p', 'e3')).toEqual({ kind: 'new', previous: 'e2' });
    expect(guard.admit('p', 'e2')).toEqual({ kind: 'superseded', current: 'e3' });
    expect(guard.admit('p', 'e1')).toEqual({ kind: 'superseded', current: 'e3' });
    expect(guard.current('p')).toBe('e3');
  });

  it('keeps peers apart', () => {
    const guard = createEpochGuard();
    guard.admit('p', 'e1');
    guard.admit('p', 'e2');
    expect(guard.admit('q', 'e1')).toEqual({ kind: 'first' });
    expect(guard.isSuperseded('p', 'e1')).toBe(true);
    expect(guard.isSuperseded('q', 'e1')).toBe(false);
  });

  it('loads the history: the last epoch is current, the others superseded', () => {
    const guard = createEpochGuard();
    guard.load('p', ['e1', 'e2', 'e3'], 'e3');
    expect(guard.current('p')).toBe('e3');
    expect(guard.admit('p', 'e2').kind).toBe('superseded');
    expect(guard.admit('p', 'e3').kind).toBe('current');
  });

  it('trusts the history over a peer row written before it (a crash between the two writes)', () => {
    const guard = createEpochGuard();
    guard.load('p', ['e1', 'e2'], 'e1');
    expect(guard.current('p')).toBe('e2');
    expect(guard.admit('p', 'e1').kind).toBe('superseded');
  });

  it('takes the peer row as newest when the history never saw it (a database from before the history)', () => {
    const guard = createEpochGuard();
    guard.load('p', [], 'e0');
    expect(guard.admit('p', 'e0').kind).toBe('current');
    expect(guard.admit('p', 'e9')).toEqual({ kind: 'new', previous: 'e0' });
    const fresh = createEpochGuard();
    fresh.load('p', [], null);
    expect(fresh.admit('p', 'e5').kind).toBe('first');
  });
});
