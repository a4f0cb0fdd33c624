import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { ParleyError } from './errors.js';
import { channelAddress } from './protocol/index.js';
import { MAX_CHANNEL_MAX_FRAME_BYTES } from './transport/defaults.js';
import { ListenLimits } from './transport/listen-limits.js';
import { isLoopbackUrl } from './transport/loopback.js';

const Hex32 = z.string().regex(/^[0-9a-f]{64}$/, 'expected 32 bytes as 64 lowercase hex characters');

const Address = z.string().transform((text, ctx) => {
  try {
    return channelAddress(text);
  } catch {
    ctx.addIssue({ code: 'custom', message: `not a bech32 account address: ${text}` });
    return z.NEVER;
  }
});

/** A configured counterparty. */
export const PeerConfig = z
  .object({
    address: Address,
    /** Its compliance key: raw Ed25519 public key, hex. */
    publicKey: Hex32,
    /**
     * The keys it used before `publicKey` (a key rotation), newest first: what it signed with
     * them stays verifiable (signed histories in a resync, commands signed before the rotation).
     * Its hello must be signed with `publicKey`. Leave out a key that leaked. @default []
     */
    retiredPublicKeys: z.array(Hex32).default([]),
    /**
     * `ws`: Parley's WebSocket channel. `lip1-http`: LIP-1 v1 over HTTP, for a counterparty
     * that runs the LIP-1 reference or its kin (no heartbeats, no resync). @default 'ws'
     */
    transport: z.enum(['ws', 'lip1-http']).default('ws'),
    /**
     * `ws`: its channel endpoint (`ws://` / `wss://`); omit for a peer that only dials us.
     * `lip1-http`: its base URL (`http://` / `https://`), required: commands go to
     * `<url>/v1/<me>/<peer>/command`.
     */
    url: z.string().optional(),
  })
  .superRefine((peer, ctx) => {
    if (peer.transport === 'ws' && peer.url !== undefined && !/^wss?:\/\//.test(peer.url)) {
      ctx.addIssue({ code: 'custom', path: ['url'], message: 'expected a ws:// or wss:// URL' });
    }
    if (peer.transport === 'lip1-http') {
      if (!/^https?:\/\//.test(peer.url ?? '')) {
        ctx.addIssue({
          code: 'custom',
          path: ['url'],
          message: 'a lip1-http peer needs an http:// or https:// URL',
        });
      } else if (peer.url?.startsWith('http://') && !isLoopbackUrl(peer.url)) {
        // Commands and their answers travel in the clear, and an answer pairs with its request
        // by an unsigned header only: plain HTTP on loopback only (a TLS proxy in front of a
        // plain reference, say).
        ctx.addIssue({
          code: 'custom',
          path: ['url'],
          message: 'plain http:// only on loopback; use https://',
        });
      }
    }
  });
export type PeerConfig = z.infer<typeof PeerConfig>;

/** A node's configuration (file + environment), validated before anything starts. */
export const NodeConfig = z.object({
  /** This VASP's on-chain account (bech32; the zero-subaddress form names the channels). */
  address: Address,
  /** The compliance key's Ed25519 seed, hex. Keep the file private. */
  privateKeySeed: Hex32,
  /**
   * The public keys this node signed with before (a key rotation), newest first: its own old
   * signatures in the histories its counterparties push back stay verifiable. @default []
   */
  retiredPublicKeys: z.array(Hex32).default([]),
  /** `file:<path>` (SQLite, the default) or `postgresql://…`. */
  database: z.string().min(1).default('file:parley.db'),
  listen: z
    .object({
      host: z.string().default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(7100),
      /** wss: PEM files. Without them the channel is plain ws, allowed on loopback only. */
      tls: z.object({ certFile: z.string(), keyFile: z.string() }).optional(),
      /** Plain ws on a non-loopback address (behind a TLS-terminating proxy, say). */
      allowInsecure: z.boolean().default(false),
      /** Handshake slots and deadline, HTTP timeouts, connection cap (docs/security.md). */
      limits: ListenLimits.prefault({}),
    })
    .prefault({}),
  peers: z.array(PeerConfig).default([]),
  /** Largest channel frame, bytes (before authentication: 4096 whatever this is). @default 1048576, at most 16 MiB */
  maxFrameBytes: z
    .number()
    .int()
    .min(1024)
    .max(MAX_CHANNEL_MAX_FRAME_BYTES)
    .default(1024 * 1024),
  /** First retransmission delay of a command without a final response. */
  retransmitMs: z.number().int().positive().default(2000),
  /**
   * Heartbeat and failure-detector knobs (`src/health/options.ts` has the defaults and what
   * they give). Ranges between the fields are checked when the node starts.
   */
  health: z
    .object({
      heartbeatIntervalMs: z.number().int().positive(),
      suspectPhi: z.number().positive(),
      downPhi: z.number().positive(),
      minStdDevMs: z.number().positive(),
      acceptablePauseMs: z.number().min(0),
      maxSampleSize: z.number().int().min(2),
      divergeAfterHeartbeats: z.number().int().positive(),
      closeOnDown: z.boolean(),
      startupGraceMs: z.number().int().positive(),
      historyRetentionMs: z.number().int().min(0),
    })
    .partial()
    .strict()
    .default({}),
  /** Resync knobs. */
  sync: z
    .object({
      /**
       * Keep finished resync runs this long (ms); older ones are deleted at start and every
       * hour. 0 keeps them all. @default 0
       */
      runHistoryRetentionMs: z.number().int().min(0).default(0),
    })
    .strict()
    .prefault({}),
  /**
   * Several replicas of this VASP on one database (PostgreSQL): each channel is served by the
   * replica that holds its lease, and the others stand by (README, "Several replicas").
   * Absent: this node serves every channel (one node per VASP and database).
   */
  replica: z
    .object({
      /**
       * This replica's id, unique among the VASP's replicas (env `PARLEY_REPLICA_ID`).
       * @default `<hostname>-<pid>-<random>`
       */
      id: z.string().min(1).max(128).optional(),
      /** A channel's lease lapses this long after its owner's last renewal. @default 15000 */
      leaseTtlMs: z.number().int().min(100).default(15_000),
      /** How often an owner renews its leases and a standby tries to take lapsed ones. @default 5000 */
      renewMs: z.number().int().positive().default(5_000),
    })
    .strict()
    .refine((r) => r.renewMs * 3 <= r.leaseTtlMs, {
      message:
        'renewMs must be at most a third of leaseTtlMs (a late renewal round must not let the lease lapse)',
    })
    .optional(),
  dashboard: z
    .object({
      /** Serve the (read-only) dashboard to clients that are not on this machine. */
      allowRemote: z.boolean().default(false),
    })
    .strict()
    .prefault({}),
  /** `/healthz`, `/healthz/history`, `/metrics`: clients on this machine, and these. */
  status: z
    .object({
      /** Serve them to every client (behind your own authentication). */
      allowRemote: z.boolean().default(false),
      /** Serve them to a client sending `Authorization: Bearer <token>`. */
      token: z.string().min(16, 'at least 16 characters').optional(),
    })
    .strict()
    .prefault({}),
});
export type NodeConfig = z.infer<typeof NodeConfig>;
export type NodeConfigInput = z.input<typeof NodeConfig>;

/** Validates a configuration object. @throws CONFIG_INVALID with every problem listed */
export function parseNodeConfig(input: unknown): NodeConfig {
  const parsed = NodeConfig.safeParse(input);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ParleyError('CONFIG_INVALID', problems.join('; '), { cause: parsed.error });
  }
  return parsed.data;
}

/**
 * Reads a JSON configuration file and applies environment overrides:
 * `PARLEY_DATABASE` (store URL), `PARLEY_HOST`, `PARLEY_PORT`, `PARLEY_REPLICA_ID` (turns
 * replica mode on with that id), `PARLEY_STATUS_TOKEN` (`status.token`). A relative SQLite path is
 * resolved against the file's directory.
 * @throws CONFIG_INVALID
 */
export function loadNodeConfig(file: string, env: NodeJS.ProcessEnv = process.env): NodeConfig {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (cause) {
    throw new ParleyError('CONFIG_INVALID', `cannot read ${file}`, { cause });
  }
  const listen = { ...((raw['listen'] as Record<string, unknown> | undefined) ?? {}) };
  if (env['PARLEY_HOST']) listen['host'] = env['PARLEY_HOST'];
  if (env['PARLEY_PORT']) listen['port'] = Number(env['PARLEY_PORT']);
  const replica = raw['replica'] as Record<string, unknown> | undefined;
  const config = parseNodeConfig({
    ...raw,
    listen,
    database: env['PARLEY_DATABASE'] ?? raw['database'],
    ...(env['PARLEY_REPLICA_ID'] ? { replica: { ...replica, id: env['PARLEY_REPLICA_ID'] } } : {}),
    ...(env['PARLEY_STATUS_TOKEN']
      ? { status: { ...(raw['status'] as object | undefined), token: env['PARLEY_STATUS_TOKEN'] } }
      : {}),
  });
  if (config.database.startsWith('file:')) {
    const path = config.database.slice('file:'.length);
    if (!isAbsolute(path)) config.database = `file:${resolve(dirname(file), path)}`;
  }
  return config;
}
