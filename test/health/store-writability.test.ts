/**
 * The store's writability condition on a virtual clock: `/livez` fails only when the store has
 * stayed unwritable for 60 s although its volume has had room all that time (a writer that did
 * not come back, which a restart may fix), never while the volume is full (a restart cannot make
 * room, and a liveness probe must not restart the node in a loop).
 */
import { VirtualTimeScheduler } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { healthz } from '../../src/health/http.js';
import { createStoreWritability, type StoreWritabilityEvent } from '../../src/health/store-writability.js';
import type { WriteProbe } from '../../src/store/types.js';

/** A virtual clock that runs the actions due up to `ms` from now, and no later ones. */
function clock() {
  const scheduler = new VirtualTimeScheduler();
  return {
    scheduler,
    advance(ms: number) {
      const to = scheduler.now() + ms;
      scheduler.schedule(() => undefined, ms);
      scheduler.maxFrames = to;
      scheduler.flush();
    },
  };
}

const FULL: WriteProbe = { writable: false, spaceFree: false, code: 'SQLITE_FULL', message: '0 bytes free' };
const ROOM_BUT_STUCK: WriteProbe = {
  writable: false,
  spaceFree: true,
  code: 'SQLITE_IOERR',
  message: 'stuck',
};

describe('store writability', () => {
  it('fails /livez only 60 s after space returned with the store still unwritable', async () => {
    const { scheduler, advance } = clock();
    let answer: WriteProbe = { writable: true, spaceFree: true };
    const writability = createStoreWritability(
      // Probes run when the test asks (the interval is beyond the virtual time used here).
      { scheduler, probeIntervalMs: 1e9, unwritableProbeIntervalMs: 1e9 },
      { probe: async () => answer },
    );
    const events: StoreWritabilityEvent[] = [];
    writability.events$.subscribe((e) => events.push(e));

    expect(await writability.probe()).toEqual({ store: 'ok' });
    expect(writability.livezFailing()).toBe(false);

    // The volume fills up: unwritable (for /healthz), but /livez stays up however long.
    answer = FULL;
    expect(await writability.probe()).toMatchObject({ store: 'unwritable', code: 'SQLITE_FULL', sinceMs: 0 });
    expect(healthz({ address: 'n', epoch: 'e' }, [], { store: writability.snapshot() })).toMatchObject({
      httpStatus: 503,
      body: { status: 'down', store: 'unwritable', storeCode: 'SQLITE_FULL' },
    });
    advance(10 * 60_000);
    await writability.probe();
    expect(writability.livezFailing()).toBe(false);

    // Room again, the writer still failing: 60 s of grace, then /livez fails.
    answer = ROOM_BUT_STUCK;
    await writability.probe();
    const back = scheduler.now();
    advance(59_999);
    await writability.probe();
    expect(writability.livezFailing()).toBe(false);
    advance(1);
    expect(writability.livezFailing()).toBe(true);
    expect(writability.snapshot()).toMatchObject({ store: 'unwritable', spaceFreeSinceMs: back });

    // Full again: the grace starts over when room returns.
    answer = FULL;
    await writability.probe();
    expect(writability.livezFailing()).toBe(false);
    answer = ROOM_BUT_STUCK;
    await writability.probe();
    advance(30_000);
    expect(writability.livezFailing()).toBe(false);

    // The writer recovers: healthy again, and the episode is reported once, with its length and
    // its last code.
    answer = { writable: true, spaceFree: true };
    expect(await writability.probe()).toEqual({ store: 'ok' });
    expect(writability.livezFailing()).toBe(false);
    expect(events).toEqual([
      { type: 'store_unwritable', code: 'SQLITE_FULL', message: '0 bytes free', atMs: 0 },
      { type: 'store_writable', code: 'SQLITE_IOERR', unwritableMs: scheduler.now(), atMs: scheduler.now() },
    ]);
    writability.close();
  });

  it('probes on its interval, faster while unwritable', async () => {
    const { scheduler, advance } = clock();
    let probes = 0;
    let answer: WriteProbe = { writable: true };
    const writability = createStoreWritability(
      { scheduler, probeIntervalMs: 5000, unwritableProbeIntervalMs: 1000 },
      {
        probe: async () => {
          probes++;
          return answer;
        },
      },
    );
    const settle = () => new Promise((resolve) => setImmediate(resolve));
    advance(5000);
    await settle();
    expect(probes).toBe(1);
    answer = FULL;
    advance(5000);
    await settle();
    expect(probes).toBe(2);
    expect(writability.snapshot().store).toBe('unwritable');
    advance(1000);
    await settle();
    expect(probes).toBe(3);
    writability.close();
    advance(60_000);
    await settle();
    expect(probes).toBe(3);
  });
});
