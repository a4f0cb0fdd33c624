/**
 * What a tracked command waits on (`Channel.inflightStates`): unsent, written and unanswered,
 * answered `wait`, or answered without ending here (a fork, an answer to a command already
 * final). A command that stays in flight says which.
 */
import { Subject, VirtualTimeScheduler } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { OutgoingCommand } from '../../src/channel/channel-core.js';
import type { ChannelEvent, CommandOutcome } from '../../src/channel/channel-events.js';
import { createCommandTracker } from '../../src/channel/command-tracker.js';
import type { FrameWriter } from '../../src/channel/frame-writer.js';

function command(cid: string): OutgoingCommand {
  return {
    cid,
    referenceId: `ref-${cid}`,
    requestJws: `jws-${cid}`,
    request: {} as OutgoingCommand['request'],
  };
}

function setup() {
  const scheduler = new VirtualTimeScheduler();
  const written: string[] = [];
  let writer: FrameWriter | undefined;
  const tracker = createCommandTracker(
    { retransmitMs: 500, retransmitCapMs: 30_000 },
    {
      peer: 'peer',
      scheduler,
      events: new Subject<ChannelEvent>(),
      outcomes: new Subject<CommandOutcome>(),
      writer: () => writer,
    },
  );
  const connect = (): void => {
    writer = { write: (frame) => written.push(frame), backlog: 0 };
  };
  return { scheduler, tracker, written, connect };
}

describe('CommandTracker.states', () => {
  it('counts each command by what it waits on', () => {
    const { tracker, connect } = setup();
    for (const cid of ['a', 'b', 'c', 'd']) tracker.transmit(tracker.track(command(cid)));
    expect(tracker.states()).toEqual({
      unsent: 4,
      unanswered: 0,
      waiting: 0,
      unapplied: 0,
      oldestUnansweredMs: null,
    });

    connect();
    tracker.transmitAll();
    tracker.finish({ kind: 'retry', cid: 'b', code: 'wait' });
    tracker.finish({ kind: 'fork', cid: 'c' });
    tracker.finish({ kind: 'duplicate', cid: 'd' });
    expect(tracker.states()).toEqual({
      unsent: 0,
      unanswered: 1,
      waiting: 1,
      unapplied: 2,
      oldestUnansweredMs: 0,
    });
  });

  it('a command written again waits for the answer to that write', () => {
    const { tracker, connect } = setup();
    connect();
    const t = tracker.track(command('a'));
    tracker.transmit(t);
    tracker.finish({ kind: 'retry', cid: 'a', code: 'wait' });
    expect(tracker.states().waiting).toBe(1);
    tracker.transmit(t);
    expect(tracker.states()).toMatchObject({ waiting: 0, unanswered: 1 });
  });
});
