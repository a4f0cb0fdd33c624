/** `parley init`: a new compliance key and a node config file. */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { type NodeConfigInput, parseNodeConfig } from '../../config.js';
import { ParleyError } from '../../errors.js';
import {
  ADDRESS_HRPS,
  type AddressHrp,
  channelAddress,
  encodeAddress,
  generatePrivateKey,
} from '../../protocol/index.js';
import { writeFileDurably } from '../durable-file.js';
import { type CliIo, ExitCode, UsageError } from '../io.js';

/** The file `parley init` writes in its directory. */
export const CONFIG_FILE_NAME = 'parley.config.json';
/** @default 7100 */
export const DEFAULT_PORT = 7100;

export interface InitOptions {
  /** This VASP's account address (bech32). Required unless `randomAddress`. */
  address?: string;
  /** Make up a fresh on-chain address (for tests and demos). */
  randomAddress?: boolean;
  /** The hrp of a random address. @default 'tlb' */
  hrp?: string;
  /** Where the config goes. @default the working directory */
  dir?: string;
  /** @default '127.0.0.1' */
  host?: string;
  /** @default 7100 */
  port?: number;
  /** Store URL. @default 'file:parley.db' (beside the config) */
  database?: string;
  /** Replace an existing config (and its key!). */
  force?: boolean;
  /** Print the result as JSON. */
  json?: boolean;
}

/** The result of `init`, as printed with `--json`. */
export interface InitResult {
  config: string;
  address: string;
  publicKey: string;
  /** This node's channel URL; null with port 0 (the port is known once `parley start` runs). */
  url: string | null;
}

export function runInit(options: InitOptions, io: CliIo): number {
  if ((options.address === undefined) === (options.randomAddress !== true)) {
    throw new UsageError('give either --address <bech32> or --random-address');
  }
  const address = options.randomAddress
    ? randomAddress(options.hrp ?? 'tlb')
    : channelAddress(options.address!);
  const dir = resolve(io.cwd, options.dir ?? '.');
  const file = resolve(dir, CONFIG_FILE_NAME);
  if (existsSync(file) && !options.force) {
    throw new ParleyError('CONFIG_INVALID', `${file} exists (it holds a key): use --force to replace it`);
  }

  const key = generatePrivateKey();
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? DEFAULT_PORT;
  const config = {
    address,
    privateKeySeed: key.seedHex,
    // Relative: `loadNodeConfig` resolves it beside the config file.
    database: options.database ?? 'file:parley.db',
    listen: { host, port },
    peers: [],
  } satisfies NodeConfigInput;
  parseNodeConfig(config); // what we write must load

  // Owner-only: the folder holds the key and, by default, the database (docs/security.md).
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // The file holds the private key: owner-only from the first byte, and on disk (flushed, whole)
  // before the key is shown and the command exits 0.
  writeFileDurably(file, `${JSON.stringify(config, null, 2)}\n`, {
    mode: 0o600,
    replace: options.force === true,
  });

  const url = port === 0 ? null : `ws://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const shownUrl = url ?? '<the url `parley start` logs>';
  const result: InitResult = { config: file, address, publicKey: key.publicKey.hex, url };
  if (options.json) {
    io.out(`${JSON.stringify(result)}\n`);
    return ExitCode.OK;
  }
  io.out(
    [
      `Wrote ${file} (mode 0600: it holds the private key).`,
      '',
      `  address     ${address}`,
      `  public key  ${key.publicKey.hex}`,
      `  url         ${url ?? 'ephemeral port (listen.port 0): `parley start` logs the url'}`,
      '',
      'Share the address, public key and reachable URL with each counterparty; they add you with',
      `  parley peer add --config <their config> --address ${address} --public-key ${key.publicKey.hex} --url ${shownUrl}`,
      'Add a counterparty to this node with',
      `  parley peer add --config ${file} --address <bech32> --public-key <64 hex> [--url ws://…]`,
      'then start it with',
      `  parley start --config ${file}`,
      '',
    ].join('\n'),
  );
  return ExitCode.OK;
}

function randomAddress(hrp: string): string {
  if (!(ADDRESS_HRPS as readonly string[]).includes(hrp)) {
    throw new UsageError(`--hrp must be one of ${ADDRESS_HRPS.join(', ')}`);
  }
  return encodeAddress({ hrp: hrp as AddressHrp, onchain: randomBytes(16) });
}
