import { describe, expect, it } from 'vitest';
import { createKeyedThrottle } from '../src/keyed-throttle.js';

describe('createKeyedThrottle', () => {
  it('lets a key pass once per interval, with the count held back since; keys are independent', () => {
    let t = 0;
    const throttle = createKeyedThrottle({ intervalMs: 10, maxKeys: 10, now: () => t });
    expect(throttle.pass('a')).toBe(0);
    expect(throttle.pass('a')).toBeUndefined();
    expect(throttle.pass('b')).toBe(0);
    t = 9;
    expect(throttle.pass('a')).toBeUndefined();
    t = 10;
    expect(throttle.pass('a')).toBe(2);
    expect(throttle.pass('a')).toBeUndefined();
  });

  it('holds new keys back while it remembers maxKeys keys within their interval, and forgets expired ones', () => {
    let t = 0;
    const throttle = createKeyedThrottle({ intervalMs: 10, maxKeys: 2, now: () => t });
    expect(throttle.pass('a')).toBe(0);
    t = 5;
    expect(throttle.pass('b')).toBe(0);
    expect(throttle.pass('c')).toBeUndefined();
    t = 10; // a expired, b not
    expect(throttle.pass('c')).toBe(0);
    expect(throttle.pass('d')).toBeUndefined();
  });
});
