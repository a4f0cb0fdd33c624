/**
 * The node's configuration: one strict schema (every section refuses unknown keys, with a "did
 * you mean" hint), checked in one pass that lists every problem (docs/configuration.md).
 *
 * To add a setting: add its key to its section's `section({ … })` shape below, with its type,
 * default and `.describe()` text, then run `npm run docs` (docs/configuration.md is generated
 * from this schema). Its `PARLEY_*` environment variable comes from its path
 * (`src/config/settings.ts`). A new section is a new `section({ … })` under `NodeConfig`.
 */
import { isIP } from 'node:net';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { readSeedFile, setPath } from './config/env.js';
import { readJsonObject } from './config/json-file.js';
import { Address, Hex32, isObjectPayload, PeerConfig } from './config/peer.js';
import { envName, envValue, type Setting, settingsOf } from './config/settings.js';
import { section } from './config/strict.js';
import { ParleyError } from './errors.js';
import { DEFAULT_HEALTH_OPTIONS, resolveHealthOptions } from './health/options.js';
import { MAX_CHANNEL_MAX_FRAME_BYTES } from './transport/defaults.js';
import { ListenLimits } from './transport/listen-limits.js';
import { isLoopbackUrl } from './transport/loopback.js';

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
const health = <T extends z.ZodType>(key: keyof typeof DEFAULT_HEALTH_OPTIONS, schema: T, text: string) =>
  schema.meta({ description: text, default: DEFAULT_HEALTH_OPTIONS[key] });
const HealthSection = section({
  heartbeatIntervalMs: health(
    'heartbeatIntervalMs',
    z.number().int().positive(),
    'heartbeat period on every channel, both ways, ms',
  ),
  suspectPhi: health(
    'suspectPhi',
    z.number().positive(),
    'phi from which the peer is `suspect` (≈ 2.3 s after its last heartbeat with the defaults)',
  ),
  downPhi: health(
    'downPhi',
    z.number().positive(),
    'phi from which the peer is `down`, at least `suspectPhi` (≈ 3.1 s with the defaults)',
  ),
  minStdDevMs: health(
    'minStdDevMs',
    z.number().positive(),
    'failure detector: floor of the heartbeat inter-arrival standard deviation, ms',
  ),
  acceptablePauseMs: health(
    'acceptablePauseMs',
    z.number().min(0),
    'failure detector: a pause this long is expected (added to the mean interval), ms',
  ),
  maxSampleSize: health(
    'maxSampleSize',
    z.number().int().min(2),
    'failure detector: inter-arrival samples kept per channel',
  ),
  divergeAfterHeartbeats: health(
    'divergeAfterHeartbeats',
    z.number().int().positive(),
    'quiet heartbeats with different open-object digests before `diverged` (and a resync); while they still differ, raised again after 10 times as many each time, at most every 3,600',
  ),
  closeOnDown: health(
    'closeOnDown',
    z.boolean(),
    'drop the connection of a `down` peer (1001), so that a half-open one is replaced',
  ),
  startupGraceMs: health(
    'startupGraceMs',
    z.number().int().positive(),
    'a peer never heard from since start is `down` after this long, ms',
  ),
  historyRetentionMs: health(
    'historyRetentionMs',
    z.number().int().min(0),
    "delete health history older than this (ms), at start and hourly; 0 keeps it all. The peers' epoch records (`epoch_seen`, `peer_state_lost`) and the `command_abandoned` records are always kept",
  ),
  peerBehindAfterWaits: health(
    'peerBehindAfterWaits',
    z.number().int().min(1),
    '`wait` answers to one command of mine from a `lip1-http` peer after which the peer is `peer_behind` (docs/operations.md)',
  ),
  peerBehindAfterRuns: health(
    'peerBehindAfterRuns',
    z.number().int().min(1),
    'over ws: resync runs that ended while a command of mine was still answered `wait`, after which the peer is `peer_behind`',
  ),
  eventsUndeliverableAfterFailures: health(
    'eventsUndeliverableAfterFailures',
    z.number().int().min(1),
    'failed deliveries of back-office events in a row after which the node is `events_undeliverable` (cleared by the next delivered event; docs/operations.md)',
  ),
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

/** An HTTP(S) URL of the VASP's own systems: plain http on loopback only (KYC travels there). */
const BackofficeUrl = z
  .string()
  .refine((url) => /^https?:\/\/[^/]/.test(url), 'expected an http:// or https:// URL')
  .refine(
    (url) => !url.startsWith('http://') || isLoopbackUrl(url),
    'plain http:// only on loopback (use https://)',
  );

/** Where a payment's decisions come from (docs/backoffice.md). */
const BusinessSection = section({
  kind: z
    .enum(['auto', 'webhook'])
    .default('auto')
    .describe('`auto`: the automatic demo business; `webhook`: the back office at `url` decides'),
  url: BackofficeUrl.optional().describe(
    "the back office's URL (every request is a signed POST to it). Required for `webhook`.",
  ),
  secretFile: z
    .string()
    .min(1)
    .optional()
    .describe('a file holding the shared HMAC secret (at least 32 characters). Required for `webhook`.'),
  keyId: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/)
    .default('k1')
    .describe("the secret's id, sent as `kid` in every signature."),
  timeoutMs: z.number().int().positive().default(5000).describe('longest wait for one answer; ms.'),
  retryBaseMs: z
    .number()
    .int()
    .positive()
    .default(500)
    .describe('first wait before a question is asked again (doubled each time, up to `retryMaxMs`); ms.'),
  retryMaxMs: z
    .number()
    .int()
    .positive()
    .default(30_000)
    .describe('the longest wait between two askings of a question; ms'),
  replayWindowMs: z
    .number()
    .int()
    .positive()
    .default(300_000)
    .describe("how far a signature's timestamp may be from now; ms."),
}).superRefine(
  (b, ctx) => {
    if (b.kind !== 'webhook') return;
    for (const key of ['url', 'secretFile'] as const)
      if (b[key] === undefined)
        ctx.addIssue({ code: 'custom', path: [key], message: 'required for kind webhook' });
  },
  { when: isObjectPayload },
);

/** Events for the back office (docs/backoffice.md, "Events"). */
const EventsSection = section({
  enabled: z
    .boolean()
    .default(false)
    .describe(
      'record events (durable, in the transaction of their change): `GET /admin/events` streams them.',
    ),
  url: BackofficeUrl.optional().describe('deliver them, signed, to this receiver (turns recording on).'),
  secretFile: z
    .string()
    .min(1)
    .optional()
    .describe('the HMAC secret of the webhook (as `business.secretFile`). Required with `url`.'),
  keyId: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/)
    .default('k1')
    .describe("the secret's id, sent as `kid` in every event's signature"),
  timeoutMs: z
    .number()
    .int()
    .positive()
    .default(5000)
    .describe('longest wait for the receiver to answer one event; ms'),
  retryBaseMs: z
    .number()
    .int()
    .positive()
    .default(500)
    .describe('first wait before an event is sent again (doubled, up to `retryMaxMs`); ms.'),
  retryMaxMs: z
    .number()
    .int()
    .positive()
    .default(60_000)
    .describe('the longest wait between two attempts to send an event; ms'),
  retentionMs: z
    .number()
    .int()
    .positive()
    .default(7 * 24 * 3600_000)
    .describe('delivered events are kept this long (a pull consumer resumes within it); ms.'),
}).superRefine(
  (e, ctx) => {
    if (e.url !== undefined && e.secretFile === undefined)
      ctx.addIssue({ code: 'custom', path: ['secretFile'], message: 'required with url' });
  },
  { when: isObjectPayload },
);

/** A node's configuration (file + environment), validated before anything starts. */
const NodeConfigShape = section({
  address: Address.describe(
    "this VASP's on-chain account, bech32; its zero-subaddress form names the channels",
  ),
  privateKeySeed: Hex32.optional().describe(
    'the Ed25519 compliance key seed, hex. Give it here, in `PARLEY_PRIVATE_KEY_SEED`, or in a file (`privateKeySeedFile`) so that the configuration file holds no secret: exactly one of the two settings',
  ),
  privateKeySeedFile: z
    .string()
    .min(1)
    .optional()
    .describe(
      "a file holding the compliance key seed (64 hex characters; surrounding whitespace ignored), relative to the configuration file. Keep it readable by the node's user only",
    ),
  retiredPublicKeys: z
    .array(Hex32)
    .default([])
    .describe(
      "this node's earlier public keys (hex, newest first), after a key rotation: its old signatures in the histories its counterparties push back still verify",
    ),
  database: z
    .string()
    .min(1)
    .default('file:parley.db')
    .describe(
      '`file:<path>` (SQLite, WAL, `synchronous=FULL`; a relative path is beside the configuration file) or `postgresql://…` (docs/storage.md)',
    ),
  storage: section({
    walCheckpointPages: z
      .number()
      .int()
      .min(100)
      .max(1_000_000)
      .default(1000)
      .describe(
        'SQLite: WAL pages (4 KiB) between checkpoints. Larger writes faster, and needs that much room on the volume (twice, at most, for the WAL file; docs/storage.md)',
      ),
  }).prefault({}),
  listen: section({
    host: z
      .string()
      .default('127.0.0.1')
      .describe('address the channel endpoint (`/parley/v1`) and the HTTP routes listen on'),
    port: z.number().int().min(0).max(65535).default(7100).describe('their port (0: any free port)'),
    tls: section({
      certFile: z.string().describe('wss: the certificate chain, PEM file'),
      keyFile: z.string().describe('wss: its private key, PEM file'),
    })
      .optional()
      .describe('serve `wss://`; without it the channel is plain `ws://`, allowed on loopback only'),
    allowInsecure: z
      .boolean()
      .default(false)
      .describe('plain `ws://` on a non-loopback address (behind a TLS-terminating proxy, say)'),
    limits: ListenLimits.prefault({}),
  }).prefault({}),
  peers: z
    .array(PeerConfig)
    .default([])
    .describe('the counterparties (`peers[].…` below); from the environment, the whole list as JSON'),
  maxFrameBytes: z
    .number()
    .int()
    .min(1024)
    .max(MAX_CHANNEL_MAX_FRAME_BYTES)
    .default(1024 * 1024)
    .describe(
      'largest accepted channel frame, bytes, at most 16 MiB (before authentication 4096 whatever this is); larger ones get `parsing_error` / close 1009',
    ),
  retransmitMs: z
    .number()
    .int()
    .positive()
    .default(2000)
    .describe('first resend delay of a command without a final response, ms'),
  health: HealthSection.default({}),
  sync: section({
    runHistoryRetentionMs: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe(
        'delete resync runs that finished longer ago than this (ms), at start and hourly; 0 keeps them all. A run still going is never deleted',
      ),
    restoreObjectsPerS: z
      .number()
      .int()
      .min(1)
      .default(600)
      .describe(
        'most objects per second a closed-object restore this node leads moves to or from a peer (after the peer lost its state, or `parley resync --all`); its batches are paced to it so live commands are not held up',
      ),
  }).prefault({}),
  /**
   * Several replicas of this VASP on one database (PostgreSQL): each channel is served by the
   * replica that holds its lease, and the others stand by (docs/replicas.md).
   * Absent: this node serves every channel (one node per VASP and database).
   */
  replica: section({
    id: z
      .string()
      .min(1)
      .max(128)
      .optional()
      .describe(
        'run as one of several replicas of this VASP on one database (docs/replicas.md), with this id, unique among them. Setting any `replica` key turns replica mode on; without an id, `<hostname>-<pid>-<random>`',
      ),
    leaseTtlMs: z
      .number()
      .int()
      .min(100)
      .default(3_000)
      .describe(
        "a channel's lease lapses this long after its owner's last renewal, ms, by PostgreSQL's clock. With the default renewal a dead owner's channels are served again within about 5 s, and an owner stalled for 1 s keeps them (docs/replicas.md, `npm run bench -- failover`)",
      ),
    renewMs: z
      .number()
      .int()
      .positive()
      .default(500)
      .describe(
        'how often an owner renews its leases and a standby tries to take lapsed ones, ms; at most a third of `leaseTtlMs`',
      ),
    rebalanceIntervalMs: z
      .number()
      .int()
      .min(0)
      .default(30_000)
      .describe(
        'channels are spread over the live replicas (each takes at most its share, `ceil(channels / live replicas)`); a replica holding at least 2 more than the least-loaded one hands one channel over (its peer is closed with 4421 and redials) at most once per this long, ms (docs/replicas.md)',
      ),
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
    allowRemote: z
      .boolean()
      .default(false)
      .describe(
        'serve the read-only dashboard to clients off this machine (put it behind your own authentication); a request relayed by a proxy (`Forwarded`, `X-Forwarded-For`, `X-Real-IP`) counts as off this machine',
      ),
  }).prefault({}),
  allowedHosts: z
    .array(HostName)
    .default([])
    .describe(
      'host names (or IP addresses) a browser may reach this node by, besides loopback names and IP literals: the dashboard, socket.io, status and admin routes refuse a request whose Host or Origin names another site (403, DNS rebinding)',
    ),
  business: BusinessSection.prefault({}).describe(
    'the decisions of payments: the automatic business, or the back office over HTTP (docs/backoffice.md)',
  ),
  events: EventsSection.prefault({}).describe('events for the back office (docs/backoffice.md, "Events")'),
  status: section({
    allowRemote: z
      .boolean()
      .default(false)
      .describe(
        'serve `/healthz`, `/healthz/history` and `/metrics` to every client (behind your own authentication)',
      ),
    token: z
      .string()
      .min(16, 'at least 16 characters')
      .optional()
      .describe(
        'serve those routes to a client off this machine (a Prometheus scraper, a readiness probe) sending `Authorization: Bearer <token>`, 16 characters or more; others get 401 `STATUS_UNAUTHORIZED` (docs/security.md)',
      ),
  }).prefault({}),
});

/**
 * A node's configuration (file + environment), validated before anything starts. The key seed
 * comes from `privateKeySeed` or from the file `privateKeySeedFile` names (read here, relative
 * to the working directory; `loadNodeConfig` makes it relative to the configuration file).
 */
export const NodeConfig = NodeConfigShape.superRefine(
  (config, ctx) => {
    const inline = config.privateKeySeed !== undefined;
    const file = config.privateKeySeedFile !== undefined;
    if (inline === file) {
      ctx.addIssue({
        code: 'custom',
        path: ['privateKeySeed'],
        message: inline
          ? 'give privateKeySeed or privateKeySeedFile, not both'
          : 'missing: give privateKeySeed (or PARLEY_PRIVATE_KEY_SEED) or privateKeySeedFile (or PARLEY_PRIVATE_KEY_SEED_FILE)',
      });
    }
  },
  { when: isObjectPayload },
).transform(({ privateKeySeedFile, ...config }, ctx) => {
  if (privateKeySeedFile === undefined) return { ...config, privateKeySeed: config.privateKeySeed! };
  const seed = readSeedFile(privateKeySeedFile);
  if (seed.ok) return { ...config, privateKeySeed: seed.seed };
  ctx.addIssue({
    code: 'custom',
    path: ['privateKeySeedFile'],
    message: seed.problem,
    input: privateKeySeedFile,
  });
  return z.NEVER;
});
export type NodeConfig = z.infer<typeof NodeConfig>;
export type NodeConfigInput = z.input<typeof NodeConfig>;

/**
 * Every setting of the configuration, with its `PARLEY_*` variable (its path in SCREAMING_SNAKE:
 * `listen.port` → `PARLEY_LISTEN_PORT`), from the schema (docs/configuration.md).
 */
export const SETTINGS: readonly Setting[] = settingsOf(NodeConfigShape);

/** Shorter names kept from earlier versions, for the settings they name. */
export const ENV_ALIASES: Readonly<Record<string, readonly string[]>> = {
  PARLEY_HOST: ['listen', 'host'],
  PARLEY_PORT: ['listen', 'port'],
};

/** Settings given in two ways: the environment giving one drops the file's other. */
const EITHER_OR: ReadonlyArray<readonly [string, string]> = [['privateKeySeed', 'privateKeySeedFile']];

/** `PARLEY_*` variables read elsewhere than the node's configuration (the CLI, the tests). */
const OTHER_PARLEY_ENV = ['PARLEY_ADMIN_TOKEN', 'PARLEY_TEST_KILL_AFTER_ACKS'];

/**
 * The `PARLEY_*` environment variables Parley does not know (a typo, or one of another version):
 * `parley start` warns about them (`unknown_env`); they are not refused.
 */
export function unknownParleyEnv(env: NodeJS.ProcessEnv): string[] {
  const known = new Set([
    ...SETTINGS.flatMap((s) => (s.env === null ? [] : [s.env])),
    ...Object.keys(ENV_ALIASES),
    ...OTHER_PARLEY_ENV,
  ]);
  return Object.keys(env)
    .filter((name) => name.startsWith('PARLEY_') && !known.has(name))
    .sort();
}

/** The problems of a failed parse, one line each: `path: message`. */
function problemsOf(error: z.ZodError, fromEnv: ReadonlyMap<string, string> = new Map()): string[] {
  return error.issues.map((issue) => {
    const path = issue.path.map(String).join('.');
    // The variable that gave this setting, or the part of the configuration it is in (`PARLEY_PEERS`).
    let env: string | undefined;
    for (const [setting, name] of fromEnv) {
      if (path === setting || path.startsWith(`${setting}.`)) env = name;
    }
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

/**
 * `raw` with the environment's settings applied (every setting has its `PARLEY_*` variable;
 * empty ones are ignored), and which setting came from which variable.
 */
export function applyEnv(
  raw: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
): { input: Record<string, unknown>; fromEnv: Map<string, string> } {
  const input: Record<string, unknown> = { ...raw };
  const fromEnv = new Map<string, string>();
  const byPath = new Map(SETTINGS.map((s) => [s.path.join('.'), s]));
  const given: Array<[string, readonly string[]]> = [
    ...Object.entries(ENV_ALIASES),
    ...SETTINGS.flatMap((s): Array<[string, readonly string[]]> => (s.env === null ? [] : [[s.env, s.path]])),
  ];
  for (const [name, path] of given) {
    const text = env[name];
    const setting = byPath.get(path.join('.'));
    if (text === undefined || text === '' || setting === undefined) continue;
    setPath(input, path, envValue(setting, text));
    fromEnv.set(path.join('.'), name);
    for (const pair of EITHER_OR) {
      const other = pair.find((key) => key !== path[0]);
      if (path.length === 1 && pair.includes(path[0]!) && other && !fromEnv.has(other)) delete input[other];
    }
  }
  return { input, fromEnv };
}

/**
 * Reads a JSON configuration file and applies the environment's settings ({@link SETTINGS}).
 * A relative SQLite path and a relative `privateKeySeedFile` are resolved against the file's
 * directory.
 * @throws CONFIG_INVALID: every problem at once; a JSON syntax error with its line and column
 */
export function loadNodeConfig(file: string, env: NodeJS.ProcessEnv = process.env): NodeConfig {
  return resolveNodeConfig(readJsonObject(file), file, env);
}

/**
 * The configuration that the file `file` holding `raw` gives with the environment `env`: what
 * {@link loadNodeConfig} returns, for a content about to be written there (`parley peer add`).
 * @throws CONFIG_INVALID with every problem listed
 */
export function resolveNodeConfig(
  raw: Record<string, unknown>,
  file: string,
  env: NodeJS.ProcessEnv = process.env,
): NodeConfig {
  const { input, fromEnv } = applyEnv(raw, env);
  const keyFile = input['privateKeySeedFile'];
  if (typeof keyFile === 'string' && keyFile !== '' && !isAbsolute(keyFile)) {
    input['privateKeySeedFile'] = resolve(dirname(file), keyFile);
  }
  const config = parseNodeConfig(input, fromEnv);
  if (config.database.startsWith('file:')) {
    const path = config.database.slice('file:'.length);
    if (!isAbsolute(path)) config.database = `file:${resolve(dirname(file), path)}`;
  }
  for (const part of [config.business, config.events])
    if (part.secretFile !== undefined) part.secretFile = resolve(dirname(file), part.secretFile);
  return config;
}

export { envName, PeerConfig };
