/**
 * `createSlicer` (`src/event-loop.ts`): a long loop's `pause()` lets timers and sockets run once
 * its budget is spent, and costs only a microtask before that. Injected clock; the macrotask is
 * observed by a `setImmediate` queued before the pause.
 */
import { describe, expect, it } from 'vitest';
import { createSlicer } from '../src/event-loop.js';

describe('createSlicer', () => {
  it('waits for the next macrotask once the budget is spent, and not before', async () => {
    let now = 0;
    const pause = createSlicer(10, () => now);
    const order: string[] = [];

    setImmediate(() => order.push('macrotask'));
    now = 9;
    await pause();
    order.push('within budget');

    now = 10;
    await pause();
    order.push('budget spent');
    expect(order).toEqual(['within budget', 'macrotask', 'budget spent']);

    // A new slice starts after the wait.
    setImmediate(() => order.push('second macrotask'));
    now = 19;
    await pause();
    order.push('new slice');
    expect(order.at(-1)).toBe('new slice');
    expect(order).not.toContain('second macrotask');
  });
});
