/** `parley frame`: decode a LIP-1 frame (compact JWS), verifying it when a key is given. */
import { readFileSync } from 'node:fs';
import { isParleyError } from '../../errors.js';
import {
  decodeJwsPayloadUnverified,
  decodeRequest,
  decodeResponse,
  publicKeyFromHex,
  verifyJws,
} from '../../protocol/index.js';
import { type CliIo, ExitCode, UsageError } from '../io.js';

export interface FrameOptions {
  /** A file, or `-` for stdin. */
  source: string;
  /** The sender's raw Ed25519 public key, hex. */
  publicKey?: string;
}

/** Prints `{verified, frame}`, or `{error, message}` with exit code 1 when the frame is refused. */
export function runFrame(options: FrameOptions, io: CliIo): number {
  let jws: string;
  try {
    jws = readFileSync(options.source === '-' ? 0 : options.source, 'utf8').trim();
  } catch (err) {
    throw new UsageError(`cannot read ${options.source}: ${(err as Error).message}`);
  }
  try {
    const keyHex = options.publicKey;
    const payload = keyHex ? verifyJws(jws, publicKeyFromHex(keyHex)) : decodeJwsPayloadUnverified(jws);
    const kind = (JSON.parse(payload) as { _ObjectType?: unknown })._ObjectType;
    const decoded = kind === 'CommandResponseObject' ? decodeResponse(payload) : decodeRequest(payload);
    io.out(`${JSON.stringify({ verified: keyHex !== undefined, frame: decoded }, null, 2)}\n`);
    return ExitCode.OK;
  } catch (err) {
    if (isParleyError(err)) {
      io.out(`${JSON.stringify({ error: err.code, message: err.message })}\n`);
      return ExitCode.FAILED;
    }
    if (err instanceof SyntaxError) {
      io.out(`${JSON.stringify({ error: 'PROTOCOL_MALFORMED_FRAME', message: err.message })}\n`);
      return ExitCode.FAILED;
    }
    throw err;
  }
}
