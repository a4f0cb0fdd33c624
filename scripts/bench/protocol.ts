/**
 * Protocol core benchmark: JWS sign/verify (sync and WebCrypto), and decode + validate of a
 * LIP-1 request payload. Run: `npx tsx scripts/bench/protocol.ts`.
 *
 * Prints one JSON line per result on stdout
 * (`{"bench":"protocol","metric":…,"value":…,"unit":"1/s","params":{…}}`); progress on stderr.
 * Each metric runs for `PARLEY_BENCH_MS` (default 1800 ms) after a short warm-up, ~10 s total.
 */
import { existsSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  decodeJwsPayloadUnverified,
  decodeRequest,
  encodeRequest,
  privateKeyFromSeedHex,
  signJws,
  verifyJws,
  verifyJwsAsync,
} from '../../src/protocol/index.js';

const RUN_MS = Number(process.env['PARLEY_BENCH_MS'] ?? 1800);
const WARMUP_MS = Math.min(300, RUN_MS / 4);
const IN_FLIGHT = 64;

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const fixturesDir = resolve(
  process.env['PARLEY_FIXTURES_DIR'] ?? join(repoRoot, '..', 'shared', 'fixtures', 'lip1-v1'),
);

const machine = { node: process.version, cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length };

function report(metric: string, value: number, params: Record<string, unknown>): void {
  const line = {
    bench: 'protocol',
    metric,
    value: Math.round(value),
    unit: '1/s',
    params: { ...params, ...machine },
  };
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

function progress(message: string): void {
  process.stderr.write(`[bench protocol] ${message}\n`);
}

/** Runs `fn` repeatedly for `ms` and returns operations per second. */
function rate(fn: () => void, ms: number): number {
  let count = 0;
  const start = performance.now();
  const end = start + ms;
  let now = start;
  while (now < end) {
    // Batches keep the clock reads out of the measurement.
    for (let i = 0; i < 64; i++) fn();
    count += 64;
    now = performance.now();
  }
  return (count * 1000) / (now - start);
}

async function asyncRate(fn: () => Promise<unknown>, ms: number, inFlight: number): Promise<number> {
  let count = 0;
  const start = performance.now();
  const end = start + ms;
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      await fn();
      count++;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return (count * 1000) / (performance.now() - start);
}

/** A request payload as the reference writes it: the first request of flow (a) when available. */
function samplePayload(): { text: string; source: string } {
  const flows = join(fixturesDir, 'flows.jsonl');
  if (existsSync(flows)) {
    const first = JSON.parse(readFileSync(flows, 'utf8').split('\n')[0] ?? '{}') as { request_jws?: string };
    if (typeof first.request_jws === 'string') {
      return { text: decodeJwsPayloadUnverified(first.request_jws), source: 'flows.jsonl a/1' };
    }
  }
  const ref = 'lbr1pg9q5zs2pg9q5zs2pg9q5zs2pgyqqqqqqqqqqqqqqspa3m_689465ca9fb477874898b7f7cbd62f6b';
  const cid = 'a5506f201e6589f91b34d41e6996041f';
  const text = encodeRequest({
    _ObjectType: 'CommandRequestObject',
    cid,
    command_type: 'PaymentCommand',
    command: {
      _ObjectType: 'PaymentCommand',
      _reads: {},
      _writes: { [ref]: cid },
      payment: {
        sender: {
          address: 'lbr1pg9q5zs2pg9q5zs2pg9q5zs2pg9skzctpv9skzcg9kmwta',
          status: { status: 'needs_kyc_data' },
          metadata: [],
          kyc_data: { payload_type: 'KYC_DATA', payload_version: 1, type: 'individual' },
        },
        receiver: {
          address: 'lbr1pgfpyysjzgfpyysjzgfpyysjzgf3xycnzvf3xycsm957ne',
          status: { status: 'none' },
          metadata: [],
        },
        reference_id: ref,
        action: { amount: 1000, currency: 'TIK', action: 'charge', timestamp: 1795691995 },
        description: 'fixture flow a: A pays B',
      },
    },
  });
  return { text, source: 'built-in' };
}

async function main(): Promise<void> {
  const key = privateKeyFromSeedHex('00'.repeat(31) + '01');
  const { text, source } = samplePayload();
  const payloadBytes = Buffer.byteLength(text, 'utf8');
  const jws = signJws(text, key);
  const params = { payload_bytes: payloadBytes, payload: source, run_ms: RUN_MS };

  progress(`payload ${payloadBytes} B from ${source}; ${RUN_MS} ms per metric`);

  progress('sync sign');
  rate(() => signJws(text, key), WARMUP_MS);
  report(
    'jws_sign_per_s',
    rate(() => signJws(text, key), RUN_MS),
    { ...params, mode: 'sync' },
  );

  progress('sync verify');
  rate(() => verifyJws(jws, key.publicKey), WARMUP_MS);
  report(
    'jws_verify_per_s',
    rate(() => verifyJws(jws, key.publicKey), RUN_MS),
    { ...params, mode: 'sync' },
  );

  progress(`async verify, ${IN_FLIGHT} in flight`);
  await asyncRate(() => verifyJwsAsync(jws, key.publicKey), WARMUP_MS, IN_FLIGHT);
  const asyncValue = await asyncRate(() => verifyJwsAsync(jws, key.publicKey), RUN_MS, IN_FLIGHT);
  report('jws_verify_async_per_s', asyncValue, {
    ...params,
    mode: 'webcrypto',
    in_flight: IN_FLIGHT,
    uv_threadpool_size: Number(process.env['UV_THREADPOOL_SIZE'] ?? 4),
  });

  progress('decode + validate');
  rate(() => decodeRequest(text), WARMUP_MS);
  report(
    'decode_request_per_s',
    rate(() => decodeRequest(text), RUN_MS),
    params,
  );

  progress('done');
}

main().catch((err: unknown) => {
  process.stderr.write(`[bench protocol] failed: ${String(err)}\n`);
  process.exitCode = 1;
});
