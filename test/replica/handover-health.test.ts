/**
 * The health of a channel whose peer hands it to another of its replicas (close 4421, PROTOCOL.md
 * §6.1), in virtual time: its silence is not judged for the startup grace, so a new connection
 * within it keeps the channel from going `down`; a channel nobody takes over goes `down` after it.
 */
import { describe, expect, it } from 'vitest';
import { type ChannelHealth, createChannelHealth } from '../../src/health/channel-health.js';
import type { HealthEvent } from '../../src/health/status.js';
import { CloseCode } from '../../src/protocol/close-codes.js';
import { EMPTY_OPEN_OBJECTS_DIGEST } from '../../src/protocol/heartbeat-frames.js';
import { type MemoryEnd, memoryPair, settle, virtualTime } from '../health/fakes.js';

const A = 'addr-a';
const B = 'addr-b';
const GRACE = 5_000;

function setup() {
  const time = virtualTime();
  const summary = () => ({ count: 0, digest: EMPTY_OPEN_OBJECTS_DIGEST });
  const monitor = (me: string, peer: string): ChannelHealth =>
    createChannelHealth(
      { startupGraceMs: GRACE },
      { me, peer, myEpoch: `epoch-${me}`, scheduler: time.scheduler, summary, inflight: () => 0 },
    );
  const a = monitor(A, B);
  const events: HealthEvent[] = [];
  a.health$.subscribe((e) => events.push(e));
  /** A new connection from B's side (another replica of B), heartbeating. */
  const connect = () => {
    const link = memoryPair(time, { addresses: [A, B] });
    const b = monitor(B, A);
    const wire = (h: ChannelHealth, end: MemoryEnd) => end.frames$.subscribe((f) => h.receive(f, end));
    wire(a, link.a);
    wire(b, link.b);
    a.attach(link.a);
    b.attach(link.b);
    return { link, b };
  };
  const downs = () => events.filter((e) => e.kind === 'transition' && e.to === 'down');
  return { time, a, connect, downs };
}

describe('health of a channel handed over between replicas of the peer', () => {
  it('does not go down while the peer’s next replica connects within the grace', async () => {
    const { time, a, connect, downs } = setup();
    const first = connect();
    time.advance(10_000);
    expect(a.state).toBe('healthy');
    first.b.close();
    first.link.b.close(CloseCode.NOT_OWNER, 'another replica owns this channel');
    time.advance(10);
    await settle();
    time.advance(GRACE - 100); // far past the silence that makes a channel down
    expect(downs()).toEqual([]);
    connect();
    expect(a.state).toBe('healthy');
    time.advance(30_000);
    expect(downs()).toEqual([]);
  });

  it('goes down after the grace when no replica of the peer takes the channel over', async () => {
    const { time, a, connect, downs } = setup();
    const first = connect();
    time.advance(10_000);
    first.b.close();
    first.link.b.close(CloseCode.NOT_OWNER, 'another replica owns this channel');
    time.advance(10);
    await settle();
    time.advance(GRACE - 100);
    expect(downs()).toEqual([]);
    time.advanceUntil(() => a.state === 'down', 10_000);
    expect(downs()).toHaveLength(1);
  });

  it('still goes down on silence without a 4421 close (a dead replica is a failure)', async () => {
    const { time, a, connect, downs } = setup();
    const first = connect();
    time.advance(10_000);
    first.link.cut();
    const at = time.advanceUntil(() => a.state === 'down', GRACE);
    expect(at).toBeGreaterThan(0);
    expect(downs()).toHaveLength(1);
  });

  it('goes down when each replica of the peer hands the channel on before its first heartbeat', async () => {
    const { time, a, connect, downs } = setup();
    const first = connect();
    time.advance(10_000);
    expect(a.state).toBe('healthy');
    // A handshake, then 4421 at once, again and again: one hold at most, then silence is judged.
    let next = first;
    for (let i = 0; i < 4; i++) {
      next.b.close();
      next.link.b.close(CloseCode.NOT_OWNER, 'another replica owns this channel');
      time.advance(10);
      await settle();
      time.advance(GRACE - 100);
      next = connect();
    }
    expect(downs().length).toBeGreaterThan(0);
  });
});
