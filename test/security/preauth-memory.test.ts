/**
 * Memory before authentication does not scale with `maxFrameBytes` (issue: defect 3). Before a
 * hello verifies, only handshake-sized frames are accepted: a frame whose header declares more
 * is closed with 1009 from its header, before any of its payload is sent. Once the hello
 * verifies, the channel's limit applies (a large frame right after the confirm is delivered).
 * This also guards the `ws` internals the limit relies on (`ws-payload-limit.ts`).
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { parseNodeConfig } from '../../src/config.js';
import { isParleyError } from '../../src/errors.js';
import { isHeartbeatFrame } from '../../src/protocol/heartbeat-frames.js';
import {
  CloseCode,
  MAX_HANDSHAKE_FRAME_BYTES,
  privateKeyFromSeedHex,
  publicKeyFromHex,
  verifyJws,
} from '../../src/protocol/index.js';
import { MAX_CHANNEL_MAX_FRAME_BYTES } from '../../src/transport/defaults.js';
import { nodeConfig, testIdentity } from '../helpers/nodes.js';
import { openRawPeer, rawDial, signed } from '../helpers/raw-peer.js';
import { rowCounts, startSecuredNode } from './harness.js';

/** A raw TCP socket upgraded to WebSocket on `port`; resolves once the 101 head is read. */
function rawUpgrade(port: number, path: string): Promise<{ socket: Socket; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      const status = head.subarray(0, end).toString('latin1').split(' ')[1];
      if (status !== '101') reject(new Error(`upgrade answered ${status}`));
      else resolve({ socket, rest: head.subarray(end + 4) });
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}

/** The close code of the first close frame the server sends (unmasked, server to client). */
function serverCloseCode(socket: Socket, already: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    let buffered = already;
    const check = (): boolean => {
      // Frames from the server: [0x8X, len (< 126 for a close), payload].
      while (buffered.length >= 2) {
        const opcode = buffered[0]! & 0x0f;
        const len = buffered[1]! & 0x7f;
        const headLen = len === 126 ? 4 : len === 127 ? 10 : 2;
        const size =
          len === 126 ? buffered.readUInt16BE(2) : len === 127 ? Number(buffered.readBigUInt64BE(2)) : len;
        if (buffered.length < headLen + size) return false;
        if (opcode === 0x8) {
          resolve(buffered.readUInt16BE(headLen));
          return true;
        }
        buffered = buffered.subarray(headLen + size);
      }
      return false;
    };
    if (check()) return;
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      check();
    });
    socket.once('close', () => reject(new Error('closed without a close frame')));
  });
}

/** The header of a masked client text frame declaring `length` payload bytes (none sent). */
function frameHeader(length: number): Buffer {
  const head = Buffer.alloc(14);
  head[0] = 0x81;
  head[1] = 0x80 | 127;
  head.writeBigUInt64BE(BigInt(length), 2);
  randomBytes(4).copy(head, 10);
  return head;
}

describe('pre-authentication memory', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('closes with 1009 a pre-auth frame declaring more than the handshake limit, from its header alone', async () => {
    const a = testIdentity(0xe1);
    const b = testIdentity(0xe2);
    const secured = await startSecuredNode((url) => ({
      ...nodeConfig(a, url, [{ identity: b }]),
      maxFrameBytes: MAX_CHANNEL_MAX_FRAME_BYTES,
    }));
    cleanups.push(() => secured.dispose());
    const { node, db } = secured;
    const before = await rowCounts(db);
    for (const declared of [MAX_HANDSHAKE_FRAME_BYTES + 1, 1024 * 1024, MAX_CHANNEL_MAX_FRAME_BYTES]) {
      const { socket, rest } = await rawUpgrade(node.port, '/parley/v1');
      cleanups.push(() => void socket.destroy());
      socket.write(frameHeader(declared));
      expect(await serverCloseCode(socket, rest)).toBe(CloseCode.FRAME_TOO_LARGE);
    }
    expect(await rowCounts(db)).toEqual(before);
  });

  it('after the hello verifies, a frame up to maxFrameBytes is read, even one sent right after the confirm', async () => {
    const a = testIdentity(0xe3);
    const b = testIdentity(0xe4);
    const aKey = publicKeyFromHex(a.publicKeyHex);
    const secured = await startSecuredNode((url) => nodeConfig(a, url, [{ identity: b }]), {
      sync: { onConnect: false },
    });
    cleanups.push(() => secured.dispose());
    const { node, db } = secured;
    const peer = await openRawPeer(node.url);
    cleanups.push(() => peer.terminate());
    const me = { address: b.address, key: privateKeyFromSeedHex(b.seedHex) };
    const before = await rowCounts(db);
    await rawDial(peer, me, { address: a.address, publicKey: aKey });
    // 100 KB, far above the handshake limit: not a valid request, so its answer is a parsing_error.
    peer.send(signed({ _ObjectType: 'CommandRequestObject', pad: 'x'.repeat(100_000) }, me.key));
    for (;;) {
      const frame = await peer.next();
      if (isHeartbeatFrame(frame)) continue;
      expect(JSON.parse(verifyJws(frame, aKey))).toMatchObject({
        _ObjectType: 'CommandResponseObject',
        cid: null,
        error: { code: 'parsing_error' },
      });
      break;
    }
    expect(await rowCounts(db)).toEqual(before);
  });

  it('refuses a maxFrameBytes above its maximum (16 MiB)', () => {
    const a = testIdentity(0xe5);
    const base = nodeConfig(a, 'file:/tmp/unused.db', []);
    expect(parseNodeConfig({ ...base, maxFrameBytes: MAX_CHANNEL_MAX_FRAME_BYTES }).maxFrameBytes).toBe(
      MAX_CHANNEL_MAX_FRAME_BYTES,
    );
    for (const bad of [MAX_CHANNEL_MAX_FRAME_BYTES + 1, 1e12]) {
      let error: unknown;
      try {
        parseNodeConfig({ ...base, maxFrameBytes: bad });
      } catch (err) {
        error = err;
      }
      expect(isParleyError(error, 'CONFIG_INVALID')).toBe(true);
      expect((error as Error).message).toContain('maxFrameBytes');
    }
  });
});
