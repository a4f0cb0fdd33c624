import { VirtualTimeScheduler } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { createEventsDeliveryTracker } from '../../src/health/events-delivery.js';
import type { HealthEvent } from '../../src/health/status.js';

function tracker(after: number) {
  const scheduler = new VirtualTimeScheduler();
  const t = createEventsDeliveryTracker({ undeliverableAfterFailures: after }, { scheduler });
  const events: HealthEvent[] = [];
  t.events$.subscribe((e) => events.push(e));
  const fail = (id: string) =>
    t.report({ ok: false, peer: 'lbr1b', id, error: 'the receiver answered HTTP 503' });
  const ok = (id: string) => t.report({ ok: true, peer: 'lbr1b', id });
  return { t, events, fail, ok, scheduler };
}

describe('events_undeliverable', () => {
  it('is raised once after the configured failures in a row, and cleared by the next delivery', () => {
    const { t, events, fail, ok } = tracker(3);
    fail('e1');
    fail('e1');
    expect(events).toEqual([]);
    expect(t.snapshot()).toEqual([]);
    fail('e1');
    fail('e1');
    expect(events.map((e) => e.kind)).toEqual(['events_undeliverable']);
    expect(t.snapshot()).toMatchObject([{ peer: 'lbr1b', eventId: 'e1', failures: 4 }]);
    ok('e1');
    expect(events.map((e) => e.kind)).toEqual(['events_undeliverable', 'events_deliverable']);
    expect(t.snapshot()).toEqual([]);
  });

  it('counts failures in a row only: a delivery in between starts the count again', () => {
    const { events, fail, ok } = tracker(3);
    fail('e1');
    fail('e1');
    ok('e1');
    fail('e2');
    fail('e2');
    ok('e2');
    expect(events).toEqual([]);
  });

  it('says nothing after close', () => {
    const { t, events, fail } = tracker(1);
    t.close();
    fail('e1');
    expect(events).toEqual([]);
  });
});
