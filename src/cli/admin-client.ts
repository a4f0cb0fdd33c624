/**
 * The CLI side of the admin routes (`src/admin/routes.ts`): finds the running node from its
 * config and talks to it over loopback HTTP(S).
 */
import { existsSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AdminStatus } from '../admin/routes.js';
import { loadNodeConfig, type NodeConfig } from '../config.js';
import { ParleyError } from '../errors.js';
import { isLoopbackUrl } from '../transport/loopback.js';
import { readLiveRuntimeFile } from './runtime-file.js';

/** The loopback host to reach a node that listens on `host`. */
export function loopbackHostFor(host: string): string {
  if (host === '::1' || host === '[::1]') return '[::1]';
  if (/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)) return host;
  // localhost, a wildcard (0.0.0.0, ::) or a specific interface: 127.0.0.1 is the admin client's
  // address (only a node listening on loopback or a wildcard can be reached this way).
  return '127.0.0.1';
}

/** The admin URL of a node as its config describes it (`http[s]://<loopback>:<port>`). */
export function adminUrlOf(config: Pick<NodeConfig, 'listen'>, port = config.listen.port): string {
  const scheme = config.listen.tls ? 'https' : 'http';
  return `${scheme}://${loopbackHostFor(config.listen.host)}:${port}`;
}

/** Where a node's admin routes answer, and the token they require (if known). */
export interface AdminTarget {
  url: string;
  token?: string;
}

/**
 * Where the node of `configFile` answers: `explicitUrl` if given, else the runtime file of a
 * running node, else the config's listen port. The token is `PARLEY_ADMIN_TOKEN` when set, else
 * the running node's (from its runtime file), which goes to a loopback URL only.
 * @throws CONFIG_INVALID (bad config); TRANSPORT_CONNECT_FAILED (port 0 and no running node)
 */
export function resolveAdmin(configFile: string, env: NodeJS.ProcessEnv, explicitUrl?: string): AdminTarget {
  const envToken = env['PARLEY_ADMIN_TOKEN'] || undefined;
  const withToken = (url: string, token: string | undefined): AdminTarget =>
    token === undefined ? { url } : { url, token };
  if (explicitUrl !== undefined) {
    const url = explicitUrl.replace(/\/+$/, '');
    const local = isLoopbackUrl(url) ? readLiveRuntimeFile(configFile)?.adminToken : undefined;
    return withToken(url, envToken ?? local);
  }
  const config = loadNodeConfig(configFile, env);
  const running = readLiveRuntimeFile(configFile);
  if (running) return withToken(running.adminUrl, envToken ?? running.adminToken);
  if (config.listen.port === 0) {
    throw new ParleyError(
      'NODE_NOT_RUNNING',
      `that node is not running: ${configFile} has no runtime file (listen.port is 0, start it with \`parley start --config ${configFile}\`)`,
    );
  }
  return withToken(adminUrlOf(config), envToken);
}

export interface AdminResponse {
  status: number;
  body: unknown;
}

/**
 * One request to the admin routes.
 * @throws TRANSPORT_CONNECT_FAILED when no node answers at `baseUrl`
 */
export function adminRequest(
  target: string | AdminTarget,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
): Promise<AdminResponse> {
  const { url: baseUrl, token } = typeof target === 'string' ? { url: target, token: undefined } : target;
  const url = new URL(path, `${baseUrl}/`);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(
      url,
      {
        method,
        headers: {
          ...(payload
            ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
            : {}),
          ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
        },
        // On loopback the node's own certificate names its public host, not 127.0.0.1, and
        // anyone able to intercept loopback can read the config's key anyway; elsewhere (an
        // explicit --url) the certificate is checked.
        rejectUnauthorized: !isLoopbackUrl(baseUrl),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = text === '' ? null : JSON.parse(text);
          } catch {
            // Not JSON: keep the text for the error message.
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      },
    );
    req.on('error', (cause) =>
      reject(
        new ParleyError(
          'TRANSPORT_CONNECT_FAILED',
          `no node answers at ${baseUrl} (is it running? start it with \`parley start --config …\`)`,
          { cause },
        ),
      ),
    );
    req.end(payload);
  });
}

/** An admin answer that is a refusal: its code and message (the raw body only when it has none). */
export function refusalOf(status: number, body: unknown): ParleyError {
  const b = (body ?? {}) as { error?: unknown; message?: unknown };
  const code = typeof b.error === 'string' ? b.error : 'TRANSPORT_INTERNAL_ERROR';
  const message =
    typeof b.message === 'string' ? b.message : `HTTP ${status}: ${JSON.stringify(body).slice(0, 200)}`;
  return new ParleyError(code as ParleyError['code'], `the node answered ${status}: ${message}`);
}

/**
 * The admin target of the config's node, checked to be that node: it answers `GET
 * /admin/status` with the config's address. Whatever else answers (nothing, a node that refuses
 * this config's token, a node with another address) is `NODE_NOT_RUNNING`, said plainly: the CLI
 * never acts on another node than the config's. With an explicit `--url` and no config file, the
 * URL names the node (there is no address to compare).
 * @throws NODE_NOT_RUNNING; CONFIG_INVALID (bad config)
 */
export async function connectToConfigNode(
  configFile: string,
  env: NodeJS.ProcessEnv,
  explicitUrl?: string,
): Promise<{ target: AdminTarget; status: AdminStatus }> {
  // An explicit --url names the node itself; without its config there is no address to check.
  const config =
    explicitUrl !== undefined && !existsSync(configFile) ? undefined : loadNodeConfig(configFile, env);
  const target = resolveAdmin(configFile, env, explicitUrl);
  const notRunning = (why: string): ParleyError =>
    new ParleyError(
      'NODE_NOT_RUNNING',
      `that node is not running (${config ? `${config.address}, ` : ''}${configFile}): ${why}`,
    );
  let answer: AdminResponse;
  try {
    answer = await adminRequest(target, 'GET', '/admin/status');
  } catch (err) {
    if (err instanceof ParleyError && err.code === 'TRANSPORT_CONNECT_FAILED') {
      throw notRunning(
        `nothing answers at ${target.url} (start it with \`parley start --config ${configFile}\`)`,
      );
    }
    throw err;
  }
  if (answer.status === 401 || answer.status === 403) {
    throw notRunning(`another node answers at ${target.url} (it refused this config's admin token)`);
  }
  if (answer.status !== 200) throw refusalOf(answer.status, answer.body);
  const status = answer.body as AdminStatus;
  if (config !== undefined && status?.address !== config.address) {
    throw notRunning(`another node (${String(status?.address)}) answers at ${target.url}`);
  }
  return { target, status };
}
