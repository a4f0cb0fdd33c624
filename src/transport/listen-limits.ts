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
    /** The whole handshake (upgrade to confirm), so the hello too, within this. @default 5000, at most 5000 */
    handshakeTimeoutMs: ms().max(MAX_HANDSHAKE_TIMEOUT_MS).default(DEFAULT_HANDSHAKE_TIMEOUT_MS),
    /** Handshakes in progress at once; more upgrades get 503. @default 256 */
    maxPendingHandshakes: z.number().int().positive().default(DEFAULT_MAX_PENDING_HANDSHAKES),
    /** Of those, from one remote address (an IPv6 /64). @default 8 */
    maxPendingHandshakesPerAddress: z
      .number()
      .int()
      .positive()
      .default(DEFAULT_MAX_PENDING_HANDSHAKES_PER_ADDRESS),
    /** Of those, kept for the hosts of configured peers (their URLs' addresses). @default 32 */
    reservedHandshakes: z.number().int().min(0).default(DEFAULT_RESERVED_HANDSHAKES),
    /** HTTP: the request head within this, or 408. @default 10000 */
    headersTimeoutMs: ms().default(DEFAULT_HEADERS_TIMEOUT_MS),
    /** HTTP: the whole request within this, or 408 (answers that wait are not counted). @default 30000 */
    requestTimeoutMs: ms().default(DEFAULT_REQUEST_TIMEOUT_MS),
    /** HTTP: idle keep-alive connections close after this. @default 5000 */
    keepAliveTimeoutMs: ms().default(DEFAULT_KEEP_ALIVE_TIMEOUT_MS),
    /** TCP connections at once (channels included); more are dropped at accept. @default 4096 */
    maxConnections: z.number().int().positive().default(DEFAULT_MAX_CONNECTIONS),
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
