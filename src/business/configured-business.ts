/**
 * The business a node's configuration selects (`business.kind`, docs/backoffice.md): the
 * automatic demo business, or the webhook business asking the VASP's back office.
 */
import { readFileSync } from 'node:fs';
import type { Observable, SchedulerLike } from 'rxjs';
import { ParleyError } from '../errors.js';
import { createAutoBusiness } from './auto-business.js';
import type { BusinessContext } from './business-context.js';
import { type BackofficeReport, createWebhookBusiness } from './webhook-business.js';

/** The `business` section of the configuration (structurally). */
export interface BusinessConfig {
  readonly kind: 'auto' | 'webhook';
  readonly url?: string | undefined;
  readonly secretFile?: string | undefined;
  readonly keyId: string;
  readonly timeoutMs: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  readonly replayWindowMs: number;
}

/** The selected business, how reaching its back office fares (webhook only), and its stop. */
export interface ConfiguredBusiness {
  readonly business: BusinessContext;
  readonly reports$?: Observable<BackofficeReport>;
  close(): void;
}

/** Shortest shared secret accepted (characters of the file, trimmed). */
export const MIN_SECRET_CHARS = 32;

/** Reads an HMAC secret file (trimmed). @throws CONFIG_INVALID when unreadable or too short */
export function readSecretFile(path: string): Buffer {
  let text: string;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch (err) {
    throw new ParleyError('CONFIG_INVALID', `business.secretFile: cannot read ${path}`, { cause: err });
  }
  if (text.length < MIN_SECRET_CHARS) {
    throw new ParleyError('CONFIG_INVALID', `business.secretFile: at least ${MIN_SECRET_CHARS} characters`);
  }
  return Buffer.from(text, 'utf8');
}

/** @throws CONFIG_INVALID when the webhook business's secret cannot be read */
export function createConfiguredBusiness(
  config: BusinessConfig,
  deps: { scheduler?: SchedulerLike } = {},
): ConfiguredBusiness {
  if (config.kind === 'auto' || config.url === undefined || config.secretFile === undefined) {
    return { business: createAutoBusiness(), close: () => undefined };
  }
  const webhook = createWebhookBusiness({
    url: config.url,
    key: { id: config.keyId, secret: readSecretFile(config.secretFile) },
    timeoutMs: config.timeoutMs,
    retryBaseMs: config.retryBaseMs,
    retryMaxMs: config.retryMaxMs,
    replayWindowMs: config.replayWindowMs,
    ...(deps.scheduler ? { scheduler: deps.scheduler } : {}),
  });
  return { business: webhook, reports$: webhook.reports$, close: () => webhook.close() };
}
