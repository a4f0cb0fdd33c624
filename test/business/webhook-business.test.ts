/**
 * The webhook business against a real HTTP server on 127.0.0.1: signatures both ways, the
 * idempotency key, retries with backoff until a valid answer, and what it reports.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  BACKOFFICE_CONTRACT,
  type BackofficeReport,
  BusinessForceAbort,
  BusinessValidationFailure,
  backofficeJsonSchemas,
  createPaymentObject,
  createWebhookBusiness,
  type HmacKey,
  nextPaymentVersion,
  SIGNATURE_HEADER,
  signatureProblem,
  signBody,
} from '../../src/business/index.js';
import { createBackofficeTracker } from '../../src/health/backoffice.js';
import { channelAddress, encodeAddress, type PaymentObject } from '../../src/protocol/index.js';

const KEY: HmacKey = { id: 'k1', secret: Buffer.from('s'.repeat(40)) };
const sender = encodeAddress({
  hrp: 'lbr',
  onchain: new Uint8Array(16).fill(1),
  subaddress: new Uint8Array(8).fill(9),
});
const receiver = encodeAddress({
  hrp: 'lbr',
  onchain: new Uint8Array(16).fill(2),
  subaddress: new Uint8Array(8).fill(7),
});
const me = channelAddress(receiver);

function created(): PaymentObject {
  return createPaymentObject({ me: sender, to: receiver, amount: 5, currency: 'TIK' });
}

type Answer = (req: { body: string; headers: IncomingMessage['headers'] }) => {
  status?: number;
  body?: unknown;
  signed?: boolean;
  hang?: boolean;
};

describe('webhook business', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
  });

  async function backOffice(
    answer: Answer,
  ): Promise<{ url: string; seen: Array<{ body: string; headers: IncomingMessage['headers'] }> }> {
    const seen: Array<{ body: string; headers: IncomingMessage['headers'] }> = [];
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const request = { body: Buffer.concat(chunks).toString(), headers: req.headers };
        seen.push(request);
        const a = answer(request);
        if (a.hang) return;
        const text = JSON.stringify(a.body ?? {});
        res.statusCode = a.status ?? 200;
        if (a.signed !== false) res.setHeader(SIGNATURE_HEADER, signBody(KEY, text, Date.now()));
        res.end(text);
      });
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, seen };
  }

  it('signs its requests; the answer decides my next version', async () => {
    const { url, seen } = await backOffice(() => ({
      body: {
        request: 'soft_match',
        kyc_data: { payload_type: 'KYC_DATA', payload_version: 1, type: 'entity' },
      },
    }));
    const business = createWebhookBusiness({ url, key: KEY });
    const next = await nextPaymentVersion({ payment: created(), me, business });
    expect(next?.receiver.status.status).toBe('soft_match');
    expect(next?.receiver.kyc_data?.type).toBe('entity');
    expect(seen).toHaveLength(1);
    const request = JSON.parse(seen[0]!.body);
    expect(request).toMatchObject({ contract: BACKOFFICE_CONTRACT, type: 'decide', me, role: 'receiver' });
    expect(seen[0]!.headers['idempotency-key']).toBe(request.id);
    expect(
      signatureProblem([KEY], seen[0]!.headers[SIGNATURE_HEADER] as string, seen[0]!.body, Date.now(), 1000),
    ).toBeUndefined();
    business.close();
  });

  it('asks again with the same idempotency key after errors, unsigned answers and timeouts, then reports the answer', async () => {
    let n = 0;
    const { url, seen } = await backOffice(() => {
      n++;
      if (n === 1) return { status: 503 };
      if (n === 2) return { body: { ready_for_settlement: true }, signed: false };
      if (n === 3) return { hang: true };
      if (n === 4) return { body: { request: 'not-a-level' } };
      return { body: { abort: { code: 'payment_insufficient_funds', message: 'no funds' } } };
    });
    const business = createWebhookBusiness({ url, key: KEY, retryBaseMs: 1, retryMaxMs: 4, timeoutMs: 200 });
    const reports: BackofficeReport[] = [];
    business.reports$.subscribe((r) => reports.push(r));
    const next = await nextPaymentVersion({ payment: created(), me, business });
    expect(next?.receiver.status).toEqual({
      status: 'abort',
      abort_code: 'payment_insufficient_funds',
      abort_message: 'no funds',
    });
    expect(new Set(seen.map((s) => s.headers['idempotency-key'])).size).toBe(1);
    expect(reports.map((r) => r.ok)).toEqual([false, false, false, false, true]);
    const errors = reports.flatMap((r) => (r.ok ? [] : [r.error]));
    expect(errors[0]).toContain('HTTP 503');
    expect(errors[1]).toContain('not signed');
    expect(errors[2]).toContain('no answer within 200 ms');
    expect(reports.flatMap((r) => (r.ok ? [] : [r.retryInMs]))).toEqual([1, 2, 4, 4]);
    business.close();
  });

  it('refuses an answer signed with another key, or too old', async () => {
    const other: HmacKey = { id: 'k1', secret: Buffer.from('x'.repeat(40)) };
    const body = '{"a":1}';
    expect(signatureProblem([KEY], signBody(other, body, 1000), body, 1000, 10)).toBe('bad signature');
    expect(signatureProblem([KEY], signBody(KEY, body, 1000), body, 2000, 10)).toBe(
      'timestamp outside the replay window',
    );
    expect(signatureProblem([KEY], signBody({ ...KEY, id: 'k2' }, body, 1000), body, 1000, 10)).toBe(
      'unknown key id',
    );
    expect(signatureProblem([KEY], signBody(KEY, body, 1000), body, 1005, 10)).toBeUndefined();
  });

  it('checks the recipient signature once: refused, accepted, or not answered (the command waits)', async () => {
    let valid: boolean | 'down' = false;
    const { url } = await backOffice(() => (valid === 'down' ? { status: 500 } : { body: { valid } }));
    const business = createWebhookBusiness({ url, key: KEY });
    const signed = { ...created(), recipient_signature: 'sig' };
    await expect(business.validateRecipientSignature(signed)).rejects.toBeInstanceOf(
      BusinessValidationFailure,
    );
    valid = true;
    const again = { ...signed, recipient_signature: 'sig2' };
    await expect(business.validateRecipientSignature(again)).resolves.toBeUndefined();
    valid = 'down';
    await expect(
      business.validateRecipientSignature({ ...signed, recipient_signature: 'sig3' }),
    ).rejects.toThrow(/HTTP 500/);
    business.close();
  });

  it('stops asking on close and leaves the waiting step undecided', async () => {
    const { url, seen } = await backOffice(() => ({ status: 500 }));
    const business = createWebhookBusiness({ url, key: KEY, retryBaseMs: 1, retryMaxMs: 1 });
    const reports: BackofficeReport[] = [];
    const gotThree = new Promise<void>((resolve) =>
      business.reports$.subscribe((r) => {
        reports.push(r);
        if (reports.length === 3) resolve();
      }),
    );
    let settled = false;
    void nextPaymentVersion({ payment: created(), me, business }).finally(() => {
      settled = true;
    });
    await gotThree;
    business.close();
    const asked = seen.length;
    // A few HTTP round trips later (a retry was due after 1 ms), nothing more was asked.
    const probe = await backOffice(() => ({ body: {} }));
    for (let i = 0; i < 5; i++) await (await fetch(probe.url, { method: 'POST', body: '{}' })).text();
    expect(settled).toBe(false);
    expect(seen.length).toBeLessThanOrEqual(asked + 1);
  });

  it('exports the contract as JSON Schema', () => {
    const schemas = backofficeJsonSchemas() as Record<string, { properties?: Record<string, unknown> }>;
    expect(Object.keys(schemas)).toEqual(['BackofficeRequest', 'DecideAnswer', 'SignatureAnswer']);
    expect(Object.keys(schemas['DecideAnswer']!.properties!)).toContain('ready_for_settlement');
  });

  it('BusinessForceAbort keeps its code', () => {
    expect(new BusinessForceAbort('payment_vasp_error', 'x').abortCode).toBe('payment_vasp_error');
  });
});

describe('backoffice_unreachable tracker', () => {
  it('raises after 3 failures of one question, once, and clears on the next answer', () => {
    let now = 1000;
    const tracker = createBackofficeTracker({}, { scheduler: { now: () => now } as never });
    const events: Array<{ kind: string }> = [];
    tracker.events$.subscribe((e) => events.push(e));
    const fail = (id: string) => tracker.report({ peer: 'p', ok: false, id, error: 'down' });
    fail('a');
    fail('b');
    fail('a');
    expect(events).toEqual([]);
    fail('a');
    expect(events).toMatchObject([{ kind: 'backoffice_unreachable', peer: 'p', failures: 3, atMs: 1000 }]);
    fail('a');
    expect(events).toHaveLength(1);
    expect(tracker.snapshot()).toEqual([{ peer: 'p', sinceMs: 1000, requests: 2, error: 'down' }]);
    now = 1500;
    tracker.report({ peer: 'other', ok: true, id: 'x' });
    expect(events).toHaveLength(1);
    tracker.report({ peer: 'p', ok: true, id: 'b' });
    expect(events[1]).toMatchObject({ kind: 'backoffice_reachable', peer: 'p', unreachableMs: 500 });
    expect(tracker.snapshot()).toEqual([]);
    tracker.close();
  });
});

describe('requestId', () => {
  it('is the same for the same payment whatever its key order, and differs per version and type', async () => {
    const { requestId } = await import('../../src/business/index.js');
    const p = created();
    const reverse = (v: unknown): unknown =>
      v !== null && typeof v === 'object' && !Array.isArray(v)
        ? Object.fromEntries(
            Object.entries(v)
              .reverse()
              .map(([k, x]) => [k, reverse(x)]),
          )
        : v;
    const reordered = reverse(p) as PaymentObject;
    expect(JSON.stringify(reordered)).not.toBe(JSON.stringify(p));
    expect(requestId('decide', me, reordered)).toBe(requestId('decide', me, p));
    expect(requestId('check_recipient_signature', me, p)).not.toBe(requestId('decide', me, p));
    expect(requestId('decide', me, { ...p, description: 'x' })).not.toBe(requestId('decide', me, p));
  });
});
