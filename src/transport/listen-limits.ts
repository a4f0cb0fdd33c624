/**
 * `listen.limits` of a node's configuration: what one listening port lets anyone hold before
 * authentication, and the HTTP server's timeouts (docs/security.md has the reasoning and the
 * memory they bound).
 */
import { z } from 'zod';
import {
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_HEADERS_TIMEOUT_MS,
  DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_PENDING_HANDSHAKES,
  DEFAULT_MAX_PENDING_HANDSHAKES_PER_ADDRESS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_RESERVED_HANDSHAKES,
  MAX_HANDSHAKE_TIMEOUT_MS,
} from './defaults.js';

const ms = () => z.number().int().positive();

export const ListenLimits = z
  .object({
    handshakeTimeoutMs: ms()
      .max(MAX_HANDSHAKE_TIMEOUT_MS)
      .default(DEFAULT_HANDSHAKE_TIMEOUT_MS)
      .describe('the whole handshake (upgrade to confirm), so the hello too, within this, ms (at most 5000)'),
    maxPendingHandshakes: z
      .number()
      .int()
      .positive()
      .default(DEFAULT_MAX_PENDING_HANDSHAKES)
      .describe('handshakes in progress at once; more upgrades get 503'),
    maxPendingHandshakesPerAddress: z
      .number()
      .int()
      .positive()
      .default(DEFAULT_MAX_PENDING_HANDSHAKES_PER_ADDRESS)
      .describe('of those, from one remote address (an IPv6 /64)'),
    reservedHandshakes: z
      .number()
      .int()
      .min(0)
      .default(DEFAULT_RESERVED_HANDSHAKES)
      .describe("of those, kept for the hosts of configured peers (their URLs' addresses)"),
    headersTimeoutMs: ms()
      .default(DEFAULT_HEADERS_TIMEOUT_MS)
      .describe('HTTP: the request head within this (ms), or 408'),
    requestTimeoutMs: ms()
      .default(DEFAULT_REQUEST_TIMEOUT_MS)
      .describe('HTTP: the whole request within this (ms), or 408 (answers that wait are not counted)'),
    keepAliveTimeoutMs: ms()
      .default(DEFAULT_KEEP_ALIVE_TIMEOUT_MS)
      .describe('HTTP: idle keep-alive connections close after this, ms'),
    maxConnections: z
      .number()
      .int()
      .positive()
      .default(DEFAULT_MAX_CONNECTIONS)
      .describe('TCP connections at once (channels included); more are dropped at accept'),
  })
  .strict()
  .superRefine((limits, ctx) => {
    if (limits.reservedHandshakes >= limits.maxPendingHandshakes) {
      ctx.addIssue({
        code: 'custom',
        path: ['reservedHandshakes'],
        message: 'must be less than maxPendingHandshakes (others need a slot too)',
      });
    }
    if (limits.requestTimeoutMs < limits.headersTimeoutMs) {
      ctx.addIssue({
        code: 'custom',
        path: ['requestTimeoutMs'],
        message: 'must be at least headersTimeoutMs',
      });
    }
  });
export type ListenLimits = z.infer<typeof ListenLimits>;
