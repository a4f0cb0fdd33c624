import { describe, expect, it } from 'vitest';
import { createResponseOrder } from '../../src/channel/response-order.js';

describe('response order', () => {
  it('wakes a waiter once every response received before it is applied, not those after', async () => {
    const order = createResponseOrder();
    const first = order.arrive();
    const second = order.arrive();
    expect(order.unapplied).toBe(true);
    let woke = false;
    const waiting = order.receivedSoFar().then(() => {
      woke = true;
    });
    const later = order.arrive(); // after the waiter: not waited for
    expect(order.waiting).toBe(1);
    second();
    await Promise.resolve();
    expect(woke).toBe(false);
    first();
    await waiting;
    expect(woke).toBe(true);
    expect(order.waiting).toBe(0);
    expect(order.unapplied).toBe(true);
    later();
    later(); // idempotent
    expect(order.unapplied).toBe(false);
  });
});
