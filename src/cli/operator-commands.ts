/**
 * The operator's commands over the admin API: `payment list|show`, `apikey create|list|revoke`,
 * `peer list|remove`, `resync --all` (their specs; the work is in `commands/`).
 */
import { CONFIG_OPTION, type CommandSpec, optional, required, str, type Values } from './args.js';
import { runApiKeyCreate, runApiKeyList, runApiKeyRevoke } from './commands/apikey.js';
import { runPaymentList, runPaymentShow } from './commands/payment.js';
import { runPeerList, runPeerRemove } from './commands/peer.js';
import { runResyncAll } from './commands/resync.js';
import { UsageError } from './io.js';

const EXIT =
  'Exit codes: 0 done · 1 the node is not running (NODE_NOT_RUNNING) or failed · 2 bad option or input.';
const REMOTE = { json: { type: 'boolean' }, url: { type: 'string' } } as const;

export const PAYMENT_HELP = `Usage: parley payment list --config <file> [filters] [--json]
       parley payment show <reference id> --config <file> [--peer <bech32>] [--json]

The running node's payments (GET /admin/payments, docs/api.md). \`list\` shows the newest
changed first; \`show\` shows one with its object and its whole signed history: every request and
response JWS as they crossed the wire (decode one with \`parley frame\`).

Filters of list:
  --peer <bech32>            one counterparty
  --state open|closed        open (not final) or closed (final)
  --status <s>               either side has this status (none, needs_kyc_data, soft_match,
                             pending_review, needs_recipient_signature, ready_for_settlement, abort)
  --my-status <s>, --their-status <s>   my side's, the peer's side's status
  --since <time>, --until <time>        last change, ISO 8601 or ms since the epoch
  --limit <n>                payments per page (default 50, at most 500)
  --cursor <c>               the next page (printed after a full page)

Options: --config <file>, --json (the API's answer), --url <admin url>, -h/--help

${EXIT}
`;

export const RESYNC_HELP = `Usage: parley resync --all <peer bech32> --config <file> [--json]

Reconciles the closed objects with a peer (POST /admin/restore, PROTOCOL.md §7.6): the running
node leads a restore that compares both sides' closed objects page by page and pushes or fetches
every signed history one side lacks, each verified before it is stored. For a node restored from
an old backup (its epoch is the same, so the peer sees no state loss). Open objects are compared
on every connection anyway. Exits 0 once the restore is durably started; it runs in the
background at \`sync.restoreObjectsPerS\`, resumes after a restart, and \`parley status\` shows it.

${EXIT}
`;

export const APIKEY_HELP = `Usage: parley apikey create --config <file> --name <label> --scopes read[,pay] [--json]
       parley apikey list --config <file> [--json]
       parley apikey revoke <id> --config <file>

Keys for the admin API from other machines (a back office): \`Authorization: Bearer <key>\`.
Scope read: the GET routes (status, payments, the OpenAPI document); pay: POST /admin/pay. The
secret is printed once, at create; the node keeps only its hash. A revoked key is refused from
the moment revoke answers. Managing keys takes the node's admin token (this machine only).

${EXIT}
`;

export const PEER_LIST_HELP = `Usage: parley peer list --config <file> [--json]
       parley peer remove --config <file> --address <bech32>

list: the config's peers, with each channel's state when the config's node runs.
remove: takes a peer out of the config (validated, replaced atomically). Its payments and
signed history stay in the database; a running node drops the channel when restarted.

Exit codes: 0 done · 2 bad option, not a peer, or invalid config (nothing written).
`;

const FILTERS: Record<string, string> = {
  peer: 'peer',
  state: 'state',
  status: 'status',
  'my-status': 'myStatus',
  'their-status': 'theirStatus',
  since: 'since',
  until: 'until',
  limit: 'limit',
  cursor: 'cursor',
};

function filters(values: Values): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [option, param] of Object.entries(FILTERS)) {
    const value = str(values, option);
    if (value !== undefined) out[param] = value;
  }
  return out;
}

function one(positionals: string[], what: string): string {
  const [first, ...extra] = positionals;
  if (first === undefined) throw new UsageError(`give the ${what}`);
  if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
  return first;
}

export const OPERATOR_COMMANDS: Record<string, CommandSpec> = {
  'payment list': {
    help: PAYMENT_HELP,
    options: {
      ...CONFIG_OPTION,
      ...REMOTE,
      ...Object.fromEntries(Object.keys(FILTERS).map((name) => [name, { type: 'string' }])),
    },
    run: (values, _, io) =>
      runPaymentList(
        {
          config: required(values, 'config'),
          json: values['json'] === true,
          filters: filters(values),
          ...optional(values, { url: 'url' }),
        },
        io,
      ),
  },
  'payment show': {
    help: PAYMENT_HELP,
    options: { ...CONFIG_OPTION, ...REMOTE, peer: { type: 'string' } },
    positionals: true,
    run: (values, positionals, io) =>
      runPaymentShow(
        {
          config: required(values, 'config'),
          referenceId: one(positionals, 'reference id of the payment'),
          json: values['json'] === true,
          ...optional(values, { url: 'url', peer: 'peer' }),
        },
        io,
      ),
  },
  'apikey create': {
    help: APIKEY_HELP,
    options: { ...CONFIG_OPTION, ...REMOTE, name: { type: 'string' }, scopes: { type: 'string' } },
    run: (values, _, io) => {
      const scopes = required(values, 'scopes')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      for (const scope of scopes) {
        if (scope !== 'read' && scope !== 'pay')
          throw new UsageError(`--scopes: ${scope} is not a scope (read, pay)`);
      }
      return runApiKeyCreate(
        {
          config: required(values, 'config'),
          name: required(values, 'name'),
          scopes,
          json: values['json'] === true,
          ...optional(values, { url: 'url' }),
        },
        io,
      );
    },
  },
  'apikey list': {
    help: APIKEY_HELP,
    options: { ...CONFIG_OPTION, ...REMOTE },
    run: (values, _, io) =>
      runApiKeyList(
        {
          config: required(values, 'config'),
          json: values['json'] === true,
          ...optional(values, { url: 'url' }),
        },
        io,
      ),
  },
  'apikey revoke': {
    help: APIKEY_HELP,
    options: { ...CONFIG_OPTION, ...REMOTE },
    positionals: true,
    run: (values, positionals, io) =>
      runApiKeyRevoke(
        {
          config: required(values, 'config'),
          id: one(positionals, 'id of the key (`parley apikey list`)'),
          json: values['json'] === true,
          ...optional(values, { url: 'url' }),
        },
        io,
      ),
  },
  resync: {
    help: RESYNC_HELP,
    options: { ...CONFIG_OPTION, ...REMOTE, all: { type: 'boolean' } },
    positionals: true,
    run: (values, positionals, io) => {
      if (values['all'] !== true) {
        throw new UsageError('give --all: open objects are reconciled on every connection already');
      }
      return runResyncAll(
        {
          config: required(values, 'config'),
          peer: one(positionals, 'peer address (bech32)'),
          json: values['json'] === true,
          ...optional(values, { url: 'url' }),
        },
        io,
      );
    },
  },
  'peer list': {
    help: PEER_LIST_HELP,
    options: { ...CONFIG_OPTION, json: { type: 'boolean' } },
    run: (values, _, io) =>
      runPeerList({ config: required(values, 'config'), json: values['json'] === true }, io),
  },
  'peer remove': {
    help: PEER_LIST_HELP,
    options: { ...CONFIG_OPTION, address: { type: 'string' } },
    run: (values, _, io) =>
      runPeerRemove({ config: required(values, 'config'), address: required(values, 'address') }, io),
  },
};

/** The command groups these add (`parley payment …`, `parley apikey …`). */
export const OPERATOR_GROUPS: Record<string, { help: string; subs: string }> = {
  payment: { help: PAYMENT_HELP, subs: 'list, show' },
  apikey: { help: APIKEY_HELP, subs: 'create, list, revoke' },
};
