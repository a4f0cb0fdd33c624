/**
 * `/healthz` and the closed-object restores (PROTOCOL.md §7.6): a restore not finished is listed;
 * the node is `degraded` while it is being restored itself or while a restore waits.
 */
import { describe, expect, it } from 'vitest';
import { healthz, type RestoreSnapshot } from '../../src/health/http.js';

const node = { address: 'lbr1me', epoch: 'e' };
const restore = (over: Partial<RestoreSnapshot>): RestoreSnapshot => ({
  peer: 'lbr1peer',
  role: 'leader',
  reason: 'peer_state_lost',
  state: 'running',
  compared: 10,
  moved: 5,
  after: 'ref-5',
  startedAtMs: 1,
  atMs: 2,
  ...over,
});

describe('/healthz restores', () => {
  it('lists a restore this node leads, and stays ok', () => {
    const { httpStatus, body } = healthz(node, [], { restores: [restore({})] });
    expect(httpStatus).toBe(200);
    expect(body.status).toBe('ok');
    expect(body.restores).toEqual([restore({})]);
  });

  it('is degraded while this node is being restored', () => {
    const { body } = healthz(node, [], { restores: [restore({ role: 'follower' })] });
    expect(body.status).toBe('degraded');
    expect(body.restores).toHaveLength(1);
  });

  it('is degraded while a restore of either side waits, with its error', () => {
    const waiting = restore({ state: 'waiting', error: 'SYNC_RESTORE_STALLED' });
    const { httpStatus, body } = healthz(node, [], { restores: [waiting] });
    expect(httpStatus).toBe(200);
    expect(body.status).toBe('degraded');
    expect(body.restores).toEqual([waiting]);
  });

  it('leaves out finished restores', () => {
    const { body } = healthz(node, [], { restores: [restore({ state: 'finished', role: 'follower' })] });
    expect(body.status).toBe('ok');
    expect(body.restores).toBeUndefined();
  });

  it('lists, without degrading, a restore this node cannot lead because the peer does not speak restore', () => {
    const unsupported = restore({ state: 'waiting', error: 'SYNC_RESTORE_UNSUPPORTED' });
    const { body } = healthz(node, [], { restores: [unsupported] });
    expect(body.status).toBe('ok');
    expect(body.restores).toEqual([unsupported]);
  });
});
