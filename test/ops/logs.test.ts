/**
 * Log lines an operator filters on: a peer's configured name beside its address, and one type
 * per field (`code` is always a Parley or LIP-1 code, a string; a WebSocket close code is
 * `closeCode`, a number).
 */
import { describe, expect, it } from 'vitest';
import { createJsonLogger, createNodeEventLog, logNodeEvent, withPeerNames } from '../../src/cli/log.js';

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createJsonLogger(
    (line) => lines.push(JSON.parse(line) as Record<string, unknown>),
    'debug',
    () => new Date(0),
  );
  return { lines, logger };
}

describe('log lines', () => {
  it('carry the peer name beside the address when the peer has one', () => {
    const { lines, logger } = capture();
    const named = withPeerNames(logger, new Map([['lbr1b', 'VASP B']]));
    logNodeEvent(named, { type: 'connected', peer: 'lbr1b', dialed: true });
    logNodeEvent(named, { type: 'connected', peer: 'lbr1c', dialed: false });
    named.log('info', 'node_started', { port: 1 });
    expect(lines).toEqual([
      {
        ts: '1970-01-01T00:00:00.000Z',
        level: 'info',
        event: 'connected',
        peer: 'lbr1b',
        dialed: true,
        peerName: 'VASP B',
      },
      { ts: '1970-01-01T00:00:00.000Z', level: 'info', event: 'connected', peer: 'lbr1c', dialed: false },
      { ts: '1970-01-01T00:00:00.000Z', level: 'info', event: 'node_started', port: 1 },
    ]);
  });

  it('give a field one type: code is a string code, closeCode the WebSocket close code', () => {
    const { lines, logger } = capture();
    logNodeEvent(logger, { type: 'disconnected', peer: 'lbr1b', closeCode: 1001, reason: 'going away' });
    logNodeEvent(logger, {
      type: 'dial_failed',
      peer: 'lbr1b',
      code: 'TRANSPORT_CONNECT_FAILED',
      message: 'x',
    });
    logNodeEvent(logger, {
      type: 'command_final',
      peer: 'lbr1b',
      cid: 'c',
      status: 'failure',
      code: 'wait',
      referenceId: 'ref',
      myStatus: null,
      theirStatus: null,
    });
    expect(lines[0]).toMatchObject({ event: 'disconnected', closeCode: 1001 });
    expect(lines[0]).not.toHaveProperty('code');
    for (const line of lines.slice(1)) expect(typeof line['code']).toBe('string');
  });

  it("give a peer's dial failures in a row one warning, reminders every 50th, the rest at debug", () => {
    const { lines, logger } = capture();
    const log = createNodeEventLog(logger);
    const fail = (code: string) => log({ type: 'dial_failed', peer: 'lbr1b', code, message: 'x' });
    for (let i = 0; i < 60; i++) fail('TRANSPORT_CONNECT_FAILED');
    fail('TRANSPORT_HANDSHAKE_FAILED');
    log({ type: 'connected', peer: 'lbr1b', dialed: true });
    fail('TRANSPORT_HANDSHAKE_FAILED');
    const warns = lines.filter((l) => l['level'] === 'warn');
    expect(warns.map((l) => [l['code'], l['repeats']])).toEqual([
      ['TRANSPORT_CONNECT_FAILED', 1],
      ['TRANSPORT_CONNECT_FAILED', 50],
      ['TRANSPORT_HANDSHAKE_FAILED', 1],
      ['TRANSPORT_HANDSHAKE_FAILED', 1],
    ]);
    expect(lines.filter((l) => l['event'] === 'dial_failed' && l['level'] === 'debug')).toHaveLength(58);
  });
});
