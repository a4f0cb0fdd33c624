import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { isParleyError } from '../errors.js';
import {
  decodeJwsPayloadUnverified,
  decodeRequest,
  decodeResponse,
  publicKeyFromHex,
  verifyJws,
} from '../protocol/index.js';

const HELP = `parley — VASP-to-VASP off-chain channels (LIP-1 v1)

Usage:
  parley frame <file|->  [--public-key HEX]   decode a LIP-1 frame (compact JWS); verify it when a key is given
  parley --help

Exit codes: 0 ok, 1 the frame was refused (the error code is printed), 2 usage error.
`;

const FRAME_HELP = `parley frame <file|-> [--public-key HEX]

Reads one compact JWS (a LIP-1 CommandRequestObject or CommandResponseObject), checks its
signature with the sender's raw Ed25519 public key (64 hex characters) when --public-key is
given, validates it against the LIP-1 v1 schemas and prints the decoded object as JSON.
`;

function main(argv: string[]): number {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  if (command === 'frame') return frame(rest);
  process.stderr.write(`unknown command: ${command}\n\n${HELP}`);
  return 2;
}

function frame(args: string[]): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { 'public-key': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write(FRAME_HELP);
    return 0;
  }
  const source = positionals[0];
  if (source === undefined) {
    process.stderr.write(FRAME_HELP);
    return 2;
  }
  const jws = readFileSync(source === '-' ? 0 : source, 'utf8').trim();
  try {
    const keyHex = values['public-key'];
    const payload = keyHex ? verifyJws(jws, publicKeyFromHex(keyHex)) : decodeJwsPayloadUnverified(jws);
    const kind = (JSON.parse(payload) as { _ObjectType?: unknown })._ObjectType;
    const decoded = kind === 'CommandResponseObject' ? decodeResponse(payload) : decodeRequest(payload);
    process.stdout.write(`${JSON.stringify({ verified: keyHex !== undefined, frame: decoded }, null, 2)}\n`);
    return 0;
  } catch (err) {
    if (isParleyError(err)) {
      process.stdout.write(`${JSON.stringify({ error: err.code, message: err.message })}\n`);
      return 1;
    }
    if (err instanceof SyntaxError) {
      process.stdout.write(
        `${JSON.stringify({ error: 'PROTOCOL_MALFORMED_FRAME', message: err.message })}\n`,
      );
      return 1;
    }
    throw err;
  }
}

process.exitCode = main(process.argv.slice(2));
