/**
 * The node's configuration: one strict schema (every section refuses unknown keys, with a "did
 * you mean" hint), checked in one pass that lists every problem (docs/configuration.md).
 *
 * To add a setting: add its key to its section's `section({ … })` shape below (with its doc
 * comment and default), and a row to docs/configuration.md. A new section is a new
 * `section({ … })` under `NodeConfig`. An environment override goes in {@link ENV_OVERRIDES}
 * (and is then known, not warned about).
 */
import { isIP } from 'node:net';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { readJsonObject } from './config/json-file.js';
import { section } from './config/strict.js';
import { ParleyError } from './errors.js';
import { resolveHealthOptions } from './health/options.js';
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

/**
 * For a cross-field check: run it whenever the value is an object, even with problems in its
 * fields, so one pass lists every problem (the check reads its fields loosely).
 */
function isObjectPayload(payload: { value: unknown }): boolean {
  return typeof payload.value === 'object' && payload.value !== null && !Array.isArray(payload.value);
}

/** A configured counterparty. */
export const PeerConfig = section({
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
}).superRefine(
  (peer, ctx) => {
    const problem = peerUrlProblem(peer);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', path: ['url'], message: problem });
  },
  { when: isObjectPayload },
);
export type PeerConfig = z.infer<typeof PeerConfig>;

/**
 * What is wrong with a peer's URL for its transport, or undefined. Reads its input loosely (it
 * runs on input that may have other problems).
 */
function peerUrlProblem(peer: { transport?: unknown; url?: unknown }): string | undefined {
  const transport = peer.transport ?? 'ws';
  const url = typeof peer.url === 'string' ? peer.url : undefined;
  if (peer.url !== undefined && url === undefined) return undefined; // its type error is reported
  if (transport === 'ws') {
    if (url === undefined) return undefined;
    if (!/^wss?:\/\/[^/]/.test(url)) return 'expected a ws:// or wss:// URL';
    // The node never dials plain ws off this machine (TRANSPORT_INSECURE at every dial).
    if (url.startsWith('ws://') && !isLoopbackUrl(url)) return 'plain ws:// only on loopback (use wss://)';
    return undefined;
  }
  if (transport !== 'lip1-http') return undefined;
  if (!/^https?:\/\/[^/]/.test(url ?? '')) return 'a lip1-http peer needs an http:// or https:// URL';
  // Commands and their answers travel in the clear, and an answer pairs with its request by an
  // unsigned header only: plain HTTP on loopback only (a TLS proxy in front of a plain
  // reference, say).
  if (url?.startsWith('http://') && !isLoopbackUrl(url))
    return 'plain http:// only on loopback (use https://)';
  return undefined;
}

/** A host name (or IP literal) a browser may reach the node by: no scheme, no port. */
const HostName = z
  .string()
  .transform((text) => text.toLowerCase())
  .refine(
    (name) =>
      isIP(name) !== 0 ||
      /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(name),
    { message: 'expected a host name or IP address, without scheme or port (e.g. parley.example.com)' },
  );

/** The health section: the failure detector's ranges between fields are checked here too. */
const HealthSection = section({
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
  peerBehindAfterWaits: z.number().int().min(1),
  peerBehindAfterRuns: z.number().int().min(1),
})
  .partial()
  .superRefine(
    (health, ctx) => {
      // Only the fields of the right type: the others have their own problem already.
      const typed = Object.fromEntries(
        Object.entries(health).filter(([, v]) => typeof v === 'number' || typeof v === 'boolean'),
      );
      try {
        resolveHealthOptions(typed);
      } catch (err) {
        const message = err instanceof Error ? err.message.replace(/^health: /, '') : String(err);
        for (const problem of message.split('; ')) ctx.addIssue({ code: 'custom', message: problem });
      }
    },
    { when: isObjectPayload },
  );

/** A node's configuration (file + environment), validated before anything starts. */
export const NodeConfig = section({
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
  /** Store knobs (docs/storage.md). */
  storage: section({
    /**
     * SQLite: WAL pages (4 KiB) between checkpoints. Larger writes faster, and needs that much
     * room on the volume (twice, at most, for the WAL file). @default 1000
     */
    walCheckpointPages: z.number().int().min(100).max(1_000_000).default(1000),
  }).prefault({}),
  listen: section({
    host: z.string().default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(7100),
    /** wss: PEM files. Without them the channel is plain ws, allowed on loopback only. */
    tls: section({ certFile: z.string(), keyFile: z.string() }).optional(),
    /** Plain ws on a non-loopback address (behind a TLS-terminating proxy, say). */
    allowInsecure: z.boolean().default(false),
    /** Handshake slots and deadline, HTTP timeouts, connection cap (docs/security.md). */
    limits: ListenLimits.prefault({}),
  }).prefault({}),
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
  health: HealthSection.default({}),
  /** Resync knobs. */
  sync: section({
    /**
     * Keep finished resync runs this long (ms); older ones are deleted at start and every
     * hour. 0 keeps them all. @default 0
     */
    runHistoryRetentionMs: z.number().int().min(0).default(0),
  }).prefault({}),
  /**
   * Several replicas of this VASP on one database (PostgreSQL): each channel is served by the
   * replica that holds its lease, and the others stand by (docs/replicas.md).
   * Absent: this node serves every channel (one node per VASP and database).
   */
  replica: section({
    /**
     * This replica's id, unique among the VASP's replicas (env `PARLEY_REPLICA_ID`).
     * @default `<hostname>-<pid>-<random>`
     */
    id: z.string().min(1).max(128).optional(),
    /**
     * A channel's lease lapses this long after its owner's last renewal (by PostgreSQL's clock).
     * With the default renewal, a dead owner's channels are served again within about 5 s, and
     * an owner stalled for 1 s keeps them (docs/replicas.md, `npm run bench -- failover`).
     * @default 3000
     */
    leaseTtlMs: z.number().int().min(100).default(3_000),
    /** How often an owner renews its leases and a standby tries to take lapsed ones. @default 500 */
    renewMs: z.number().int().positive().default(500),
  })
    .refine(
      (r) =>
        !(typeof r.renewMs === 'number' && typeof r.leaseTtlMs === 'number') || r.renewMs * 3 <= r.leaseTtlMs,
      {
        message:
          'renewMs must be at most a third of leaseTtlMs (a late renewal round must not let the lease lapse)',
        when: isObjectPayload,
      },
    )
    .optional(),
  dashboard: section({
    /** Serve the (read-only) dashboard to clients that are not on this machine. */
    allowRemote: z.boolean().default(false),
  }).prefault({}),
  /**
   * Host names (or IP addresses) a browser may reach this node by, besides loopback names and
   * IP literals: the dashboard, socket.io, the status and admin routes refuse a request whose
   * Host or Origin names another site (DNS rebinding). @default []
   */
  allowedHosts: z.array(HostName).default([]),
  /** `/healthz`, `/healthz/history`, `/metrics`: clients on this machine, and these. */
  status: section({
    /** Serve them to every client (behind your own authentication). */
    allowRemote: z.boolean().default(false),
    /** Serve them to a client sending `Authorization: Bearer <token>`. */
    token: z.string().min(16, 'at least 16 characters').optional(),
  }).prefault({}),
});
export type NodeConfig = z.infer<typeof NodeConfig>;
export type NodeConfigInput = z.input<typeof NodeConfig>;

/** An environment variable that overrides one setting. */
interface EnvOverride {
  name: string;
  /** The setting's path in the configuration. */
  path: readonly string[];
  /** The text as the setting's value. @default the text */
  parse?: (text: string) => unknown;
}

/** The environment overrides, applied over the file's values (empty ones are ignored). */
export const ENV_OVERRIDES: readonly EnvOverride[] = [
  { name: 'PARLEY_DATABASE', path: ['database'] },
  { name: 'PARLEY_HOST', path: ['listen', 'host'] },
  {
    name: 'PARLEY_PORT',
    path: ['listen', 'port'],
    parse: (text) => (/^\d{1,5}$/.test(text) ? Number(text) : text),
  },
  // Turns replica mode on with that id.
  { name: 'PARLEY_REPLICA_ID', path: ['replica', 'id'] },
  { name: 'PARLEY_STATUS_TOKEN', path: ['status', 'token'] },
];

/** `PARLEY_*` variables read elsewhere than the node's configuration (the CLI). */
const OTHER_PARLEY_ENV = ['PARLEY_ADMIN_TOKEN', 'PARLEY_TEST_KILL_AFTER_ACKS'];

/**
 * The `PARLEY_*` environment variables Parley does not know (a typo, or one of another version):
 * `parley start` warns about them (`unknown_env`); they are not refused.
 */
export function unknownParleyEnv(env: NodeJS.ProcessEnv): string[] {
  const known = new Set([...ENV_OVERRIDES.map((o) => o.name), ...OTHER_PARLEY_ENV]);
  return Object.keys(env)
    .filter((name) => name.startsWith('PARLEY_') && !known.has(name))
    .sort();
}

/** The problems of a failed parse, one line each: `path: message`. */
function problemsOf(error: z.ZodError, fromEnv: ReadonlyMap<string, string> = new Map()): string[] {
  return error.issues.map((issue) => {
    const path = issue.path.map(String).join('.');
    const env = fromEnv.get(path);
    return `${path || '(root)'}: ${issue.message}${env !== undefined ? ` (from ${env})` : ''}`;
  });
}

/** Validates a configuration object. @throws CONFIG_INVALID with every problem listed */
export function parseNodeConfig(input: unknown, fromEnv?: ReadonlyMap<string, string>): NodeConfig {
  const parsed = NodeConfig.safeParse(input);
  if (!parsed.success) {
    throw new ParleyError('CONFIG_INVALID', problemsOf(parsed.error, fromEnv).join('; '), {
      cause: parsed.error,
    });
  }
  return parsed.data;
}

/** `raw` with the environment overrides applied, and which setting came from which variable. */
function applyEnv(
  raw: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
): { input: Record<string, unknown>; fromEnv: Map<string, string> } {
  const input: Record<string, unknown> = { ...raw };
  const fromEnv = new Map<string, string>();
  for (const { name, path, parse } of ENV_OVERRIDES) {
    const text = env[name];
    if (text === undefined || text === '') continue;
    let parent = input;
    for (const key of path.slice(0, -1)) {
      const child = parent[key] ?? {};
      if (typeof child !== 'object' || child === null || Array.isArray(child)) break;
      parent[key] = { ...(child as Record<string, unknown>) };
      parent = parent[key] as Record<string, unknown>;
    }
    parent[path.at(-1)!] = parse ? parse(text) : text;
    fromEnv.set(path.join('.'), name);
  }
  return { input, fromEnv };
}

/**
 * Reads a JSON configuration file and applies the environment overrides ({@link ENV_OVERRIDES}).
 * A relative SQLite path is resolved against the file's directory.
 * @throws CONFIG_INVALID: every problem at once; a JSON syntax error with its line and column
 */
export function loadNodeConfig(file: string, env: NodeJS.ProcessEnv = process.env): NodeConfig {
  const { input, fromEnv } = applyEnv(readJsonObject(file), env);
  const config = parseNodeConfig(input, fromEnv);
  if (config.database.startsWith('file:')) {
    const path = config.database.slice('file:'.length);
    if (!isAbsolute(path)) config.database = `file:${resolve(dirname(file), path)}`;
  }
  return config;
}
