/**
 * `parley` argument parsing: node:util `parseArgs` per command, then the command's function in
 * `commands/`. No logic here besides turning strings into typed options.
 */
import { parseArgs } from 'node:util';
import {
  CONFIG_OPTION,
  type CommandSpec,
  HELP_OPTION,
  integer,
  optional,
  required,
  str,
  type Values,
} from './args.js';
import { runCheck } from './commands/check.js';
import { runCommandAbandon } from './commands/command.js';
import { runFrame } from './commands/frame.js';
import { runInit } from './commands/init.js';
import { runPay } from './commands/pay.js';
import { runPeerAdd } from './commands/peer.js';
import { runPeerResetEpoch } from './commands/peer-epoch.js';
import { runStart } from './commands/start.js';
import { runStatus } from './commands/status.js';
import {
  CHECK_HELP,
  COMMAND_HELP,
  FRAME_HELP,
  HELP,
  INIT_HELP,
  PAY_HELP,
  PEER_HELP,
  PEER_RESET_EPOCH_HELP,
  START_HELP,
  STATUS_HELP,
} from './help.js';
import { type CliIo, ExitCode, reportError, UsageError } from './io.js';
import { isLogLevel } from './log.js';
import { OPERATOR_COMMANDS, OPERATOR_GROUPS } from './operator-commands.js';
import { packageVersion } from './version.js';

/** `pay --timeout <seconds>` (only with --wait). */
function timeoutOption(values: Values): { timeoutSeconds?: number } {
  const text = str(values, 'timeout');
  if (text === undefined) return {};
  if (values['wait'] !== true) throw new UsageError('--timeout goes with --wait');
  return { timeoutSeconds: integer(text, 'timeout', 1, 3600) };
}

const COMMANDS: Record<string, CommandSpec> = {
  ...OPERATOR_COMMANDS,
  init: {
    help: INIT_HELP,
    options: {
      address: { type: 'string' },
      'random-address': { type: 'boolean' },
      hrp: { type: 'string' },
      dir: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      database: { type: 'string' },
      force: { type: 'boolean' },
      json: { type: 'boolean' },
    },
    run: (values, _, io) => {
      const port = str(values, 'port');
      return runInit(
        {
          ...optional(values, {
            address: 'address',
            hrp: 'hrp',
            dir: 'dir',
            host: 'host',
            database: 'database',
          }),
          ...(port !== undefined ? { port: integer(port, 'port', 0, 65535) } : {}),
          randomAddress: values['random-address'] === true,
          force: values['force'] === true,
          json: values['json'] === true,
        },
        io,
      );
    },
  },
  'peer add': {
    help: PEER_HELP,
    options: {
      ...CONFIG_OPTION,
      address: { type: 'string' },
      'public-key': { type: 'string' },
      url: { type: 'string' },
      transport: { type: 'string' },
    },
    run: (values, _, io) =>
      runPeerAdd(
        {
          config: required(values, 'config'),
          address: required(values, 'address'),
          publicKey: required(values, 'public-key'),
          ...optional(values, { url: 'url', transport: 'transport' }),
        },
        io,
      ),
  },
  'peer reset-epoch': {
    help: PEER_RESET_EPOCH_HELP,
    options: {
      ...CONFIG_OPTION,
      address: { type: 'string' },
      epoch: { type: 'string' },
      url: { type: 'string' },
      json: { type: 'boolean' },
    },
    run: (values, _, io) =>
      runPeerResetEpoch(
        {
          config: required(values, 'config'),
          address: required(values, 'address'),
          epoch: required(values, 'epoch'),
          ...optional(values, { url: 'url' }),
          json: values['json'] === true,
        },
        io,
      ),
  },
  start: {
    help: START_HELP,
    options: { ...CONFIG_OPTION, 'log-level': { type: 'string' } },
    run: (values, _, io) => {
      const logLevel = str(values, 'log-level') ?? 'info';
      if (!isLogLevel(logLevel)) throw new UsageError('--log-level must be debug, info, warn or error');
      return runStart({ config: required(values, 'config'), logLevel }, io);
    },
  },
  pay: {
    help: PAY_HELP,
    options: {
      ...CONFIG_OPTION,
      to: { type: 'string' },
      amount: { type: 'string' },
      currency: { type: 'string' },
      description: { type: 'string' },
      'from-subaddress': { type: 'string' },
      'to-subaddress': { type: 'string' },
      wait: { type: 'boolean' },
      timeout: { type: 'string' },
      json: { type: 'boolean' },
      url: { type: 'string' },
    },
    run: (values, _, io) =>
      runPay(
        {
          config: required(values, 'config'),
          to: required(values, 'to'),
          amount: integer(required(values, 'amount'), 'amount', 1, Number.MAX_SAFE_INTEGER),
          currency: required(values, 'currency'),
          ...optional(values, {
            description: 'description',
            fromSubaddressHex: 'from-subaddress',
            toSubaddressHex: 'to-subaddress',
            url: 'url',
          }),
          wait: values['wait'] === true,
          ...timeoutOption(values),
          json: values['json'] === true,
        },
        io,
      ),
  },
  check: {
    help: CHECK_HELP,
    options: { ...CONFIG_OPTION, json: { type: 'boolean' } },
    run: (values, _, io) =>
      runCheck({ config: required(values, 'config'), json: values['json'] === true }, io),
  },
  status: {
    help: STATUS_HELP,
    options: { ...CONFIG_OPTION, json: { type: 'boolean' }, url: { type: 'string' } },
    run: (values, _, io) =>
      runStatus(
        {
          config: required(values, 'config'),
          json: values['json'] === true,
          ...optional(values, { url: 'url' }),
        },
        io,
      ),
  },
  'command abandon': {
    help: COMMAND_HELP,
    options: { ...CONFIG_OPTION, json: { type: 'boolean' }, url: { type: 'string' } },
    positionals: true,
    run: (values, positionals, io) => {
      const [cid, ...extra] = positionals;
      if (cid === undefined) throw new UsageError('give the cid of the command to abandon');
      if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
      return runCommandAbandon(
        {
          config: required(values, 'config'),
          cid,
          json: values['json'] === true,
          ...optional(values, { url: 'url' }),
        },
        io,
      );
    },
  },
  frame: {
    help: FRAME_HELP,
    options: { 'public-key': { type: 'string' } },
    positionals: true,
    run: (values, positionals, io) => {
      const [source, ...extra] = positionals;
      if (source === undefined) throw new UsageError('give a file, or - for stdin');
      if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
      return runFrame({ source, ...optional(values, { publicKey: 'public-key' }) }, io);
    },
  },
};

const isHelpFlag = (arg: string | undefined): boolean => arg === '--help' || arg === '-h' || arg === 'help';

/** Runs `parley <argv>` and returns its exit code. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || isHelpFlag(first)) {
    io.out(HELP);
    return ExitCode.OK;
  }
  if (first === '--version' || first === '-v') {
    io.out(`parley ${packageVersion()}\n`);
    return ExitCode.OK;
  }
  if (first === 'demo') {
    // The demo parses its own options and writes to the process's own streams.
    const demo = await import('../demo.js');
    return demo.main([...rest]);
  }
  let name = first;
  let args = rest;
  // Commands with a sub-command: `peer add`, `command abandon`.
  const groups: Record<string, { help: string; subs: string }> = {
    peer: { help: PEER_HELP, subs: 'add, list, remove, reset-epoch' },
    command: { help: COMMAND_HELP, subs: 'abandon' },
    ...OPERATOR_GROUPS,
  };
  const group = groups[first];
  if (group) {
    if (isHelpFlag(rest[0])) {
      io.out(group.help);
      return ExitCode.OK;
    }
    if (rest[0] === undefined) {
      io.err(`parley ${first}: which one? (${group.subs})\n\n${group.help}`);
      return ExitCode.USAGE;
    }
    name = `${first} ${rest[0]}`;
    args = rest.slice(1);
  }
  const spec = COMMANDS[name];
  if (!spec) {
    io.err(`parley: unknown command: ${name}\n\n${HELP}`);
    return ExitCode.USAGE;
  }
  try {
    let parsed: { values: Values; positionals: string[] };
    try {
      parsed = parseArgs({
        args: [...args],
        options: { ...spec.options, ...HELP_OPTION },
        allowPositionals: spec.positionals === true,
        strict: true,
      }) as { values: Values; positionals: string[] };
    } catch (err) {
      // node:util reports unknown options and missing values as TypeErrors with ERR_PARSE_ARGS_* codes.
      throw new UsageError((err as Error).message);
    }
    if (parsed.values['help'] === true) {
      io.out(spec.help);
      return ExitCode.OK;
    }
    return await spec.run(parsed.values, parsed.positionals, io);
  } catch (err) {
    return reportError(io, name, err);
  }
}
