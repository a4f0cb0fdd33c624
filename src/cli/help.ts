/** The help texts of `parley` and each command. */

const EXIT_CODES =
  'Exit codes: 0 ok · 1 the operation failed · 2 usage error or invalid input (nothing changed).';

export const HELP = `parley — VASP-to-VASP off-chain channels (LIP-1 v1)

Usage: parley <command> [options]      (parley <command> --help for each; parley --version)

Commands:
  init       generate a compliance key and write parley.config.json
  peer add   add (or update) a counterparty in a config
  peer list  the config's peers (with each channel's state when the node runs)
  peer remove  take a counterparty out of a config
  peer reset-epoch  accept a peer's superseded store epoch again (after a hostile hello)
  start      run a node: channels to every peer, admin routes, JSON logs on stdout
  pay        start a payment on the running node
  status     show the running node's channels
  payment list / payment show <ref>  the running node's payments, one with its signed history
  apikey create|list|revoke  keys for the admin API from other machines (docs/api.md)
  command abandon  end a command of mine that a peer keeps answering \`wait\` (peer_behind)
  resync --all <peer>  reconcile the closed objects with a peer (after restoring an old backup)
  check      check the node's database against its signed log
  demo       three VASP nodes on loopback with live dashboards: payments, a wiped node, resync
  frame      decode a LIP-1 frame (compact JWS); verify it when a key is given

A typical setup, one config per VASP:
  parley init --address <bech32> --dir vasp-a
  parley peer add --config vasp-a/parley.config.json --address <peer> --public-key <hex> --url ws://…
  parley start --config vasp-a/parley.config.json
  parley pay --config vasp-a/parley.config.json --to <peer> --amount 100 --currency XUS --wait
  parley status --config vasp-a/parley.config.json

${EXIT_CODES}
`;

export const INIT_HELP = `Usage: parley init (--address <bech32> | --random-address [--hrp tlb]) [options]

Generates an Ed25519 compliance key and writes <dir>/parley.config.json (mode 0600: it holds
the key's seed), then prints the address, public key and URL to give to counterparties.

Options:
  --address <bech32>   this VASP's account address (the zero-subaddress form names channels)
  --random-address     make up a fresh address instead (tests, demos)
  --hrp <lbr|tlb|plb>  the network of a random address (default tlb)
  --dir <dir>          where to write the config (default: the working directory)
  --host <host>        listen address (default 127.0.0.1)
  --port <n>           listen port, 0 for an ephemeral one (default 7100)
  --database <url>     store: file:<path> (SQLite, relative to the config; default file:parley.db)
                       or postgresql://…
  --force              replace an existing config (its key is lost)
  --json               print {config, address, publicKey, url} as JSON
  -h, --help

Exit codes: 0 written · 2 bad option, bad address or the config exists (nothing written).
`;

export const PEER_HELP = `Usage: parley peer add --config <file> --address <bech32> --public-key <hex> [--url ws://…] [--transport lip1-http --url http://…]

Adds a counterparty to a node's config, or updates the entry with the same address. The
config is validated as a whole and replaced atomically (its mode is kept). A new key for a
known peer (it rotated its key) keeps the former one in retiredPublicKeys, so that what it
signed before still verifies. A running node reads its peers at start: restart it afterwards.

Options:
  --config <file>      the node's config file
  --address <bech32>   the counterparty's account address
  --public-key <hex>   its compliance key: the raw Ed25519 public key, 64 hex characters
  --url <ws://…>       its channel endpoint (ws:// on loopback, wss:// otherwise); omit when
                       only the peer dials
  --transport <name>   ws (default): Parley's channel; lip1-http: LIP-1 v1 over HTTP, for a
                       counterparty running the LIP-1 reference (--url is then its http(s)://
                       base URL, required; no heartbeats or resync with it)
  -h, --help

Exit codes: 0 written · 2 bad option, bad peer or unreadable/invalid config (nothing written).
`;

export const PEER_RESET_EPOCH_HELP = `Usage: parley peer reset-epoch --config <file> --address <bech32> --epoch <epoch> [--url <admin url>] [--json]

Accepts a peer's store epoch again after this node superseded it: someone holding the peer's
key completed a hello with a made-up epoch, and the real peer is refused with 4412 since
(docs/security.md, "Peer epoch reset"). The epoch given (the real peer's, as its own
\`parley status\` shows; refused ones are in the health history as zombie_refused) becomes the
current one again and the one it replaces is refused from then on. Recorded as epoch_reset in
the health history. With the node running this goes through its admin route; with it stopped,
straight to its database.

Options:
  --config <file>      the node's config file
  --address <bech32>   the peer's account address
  --epoch <epoch>      the epoch to accept again
  --url <admin url>    the running node's admin URL (default: from its runtime file)
  --json               print the result as JSON
  -h, --help

Exit codes: 0 the epoch is current · 1 the node or its store failed · 2 bad option, not a
peer, or an epoch this node never replaced for it (nothing written).
`;

export const START_HELP = `Usage: parley start --config <file> [--log-level info]

Loads and validates the config (environment overrides: PARLEY_DATABASE, PARLEY_HOST,
PARLEY_PORT), opens the store, listens for peers and dials those with a URL, and serves the
admin routes (GET /admin/status, POST /admin/pay; loopback clients with this run's token
only) on the same port. While it runs, <config>.runtime.json beside the config (mode 0600)
tells \`pay\` and \`status\` where it is and holds the token.

Logs are JSON lines on stdout: {"ts","level","event",...}. Events: started (url, admin URL),
connected, disconnected, command_final, pay_requested, pay_queued (the payment is durable),
pay_failed, stopping, stopped, and at debug level command_received, retransmit, reacted. SIGINT or SIGTERM stops the node cleanly (a second
signal exits at once).

Options:
  --config <file>      the node's config file
  --log-level <level>  debug | info | warn | error (default info)
  -h, --help

Exit codes: 0 stopped cleanly · 1 the node could not start or stop (store, port) · 2 bad
option or invalid config (the error code, e.g. CONFIG_INVALID, is logged and printed).
`;

export const PAY_HELP = `Usage: parley pay --config <file> --to <bech32> --amount <n> --currency <code> [options]

Asks the running node (on loopback, found through its runtime file or its config's port) to
start a payment to a configured peer. The node's business layer then drives it to
ready_for_settlement on both sides. Only the config's own node is asked: another node answering
at its address is NODE_NOT_RUNNING. When the channel to the payee is down, that is said on
stderr (the payment is durable and sent when the peer is back).

Options:
  --config <file>            the node's config file
  --to <bech32>              the counterparty VASP (a configured peer)
  --amount <n>               a positive integer, in the currency's smallest unit
  --currency <code>          e.g. XUS, TIK, Coin1
  --description <text>
  --from-subaddress <hex16>  the paying account here (default 0000000000000001)
  --to-subaddress <hex16>    the payee's account there (default 0000000000000001)
  --wait                     wait for the create command's final outcome
  --timeout <seconds>        with --wait: how long (default 30); then exit 1 saying the
                             payment is durable and its outcome not known yet (PAY_WAIT_TIMEOUT)
  --json                     print the node's answer as JSON
  --url <http://…>           the node's admin URL (default: found from the config; the token
                             comes from PARLEY_ADMIN_TOKEN, else the runtime file)
  -h, --help

Exit codes: 0 the payment is durable in the node's outbox (with --wait: the create succeeded)
· 1 the node is not running, could not store the payment (e.g. STORE_UNAVAILABLE: nothing was
stored, try again), or the create failed; with --wait also when the create is durable but its
outcome is not known yet (printed; do not pay again) · 2 bad option, or the node refused the
input (the error code is printed, e.g. BUSINESS_INVALID_INPUT); nothing was stored.
`;

export const CHECK_HELP = `Usage: parley check --config <file> [--json]

Checks the node's database: every object version, head and outbox entry against the signed
log (a success that created no version, a version no command wrote, a head that is not the last
version, an outbox entry already final, …). The checks only read, and are safe while the node
runs; opening the database applies pending migrations first, as the node does.

Options:
  --config <file>      the node's config file (its database setting)
  --json               print {"ok", "problems"} as JSON
  -h, --help

Exit codes: 0 consistent · 1 problems found (listed) · 2 bad option, bad config, or no database.
`;

export const STATUS_HELP = `Usage: parley status --config <file> [--json]

Shows the running node's channels: state (connected/disconnected), commands in flight, open
payment objects and the peer's store epoch.

Options:
  --config <file>      the node's config file
  --json               print the node's answer as JSON
  --url <http://…>     the node's admin URL (default: found from the config; the token
                       comes from PARLEY_ADMIN_TOKEN, else the runtime file)
  -h, --help

Exit codes: 0 printed · 1 the node is not running (TRANSPORT_CONNECT_FAILED) · 2 bad option
or invalid config.
`;

export const COMMAND_HELP = `Usage: parley command abandon <cid> --config <file> [--json]

Ends a command of this node that has no final outcome, locally, with COMMAND_ABANDONED: the way
out when a peer is peer_behind (it keeps answering \`wait\`; see docs/operations.md). The outbox
entry is removed and the abandonment recorded in the health history before this exits 0; the
command is never sent again, and whoever waited on it gets COMMAND_ABANDONED. The peer may hold
the command or not: settle the payment with the counterparty out of band.

Options:
  --config <file>      the node's config file
  --json               print the node's answer as JSON
  --url <http://…>     the node's admin URL (default: found from the config; the token
                       comes from PARLEY_ADMIN_TOKEN, else the runtime file)
  -h, --help

Exit codes: 0 abandoned · 1 failed: COMMAND_UNKNOWN (no such command of mine),
COMMAND_ALREADY_FINAL (final or abandoned before), the node not running · 2 bad option.
`;

export const FRAME_HELP = `Usage: parley frame <file|-> [--public-key <hex>]

Reads one compact JWS (a LIP-1 CommandRequestObject or CommandResponseObject), checks its
signature with the sender's raw Ed25519 public key (64 hex characters) when --public-key is
given, validates it against the LIP-1 v1 schemas and prints the decoded object as JSON.

Exit codes: 0 decoded · 1 the frame was refused (the error code is printed) · 2 usage error.
`;
