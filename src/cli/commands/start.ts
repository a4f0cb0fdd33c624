/** `parley start`: run a node until SIGINT/SIGTERM, logging JSON lines on stdout. */
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import type { Observable } from 'rxjs';
import { ackFailpoint, KILL_AFTER_ACKS_ENV } from '../../admin/ack-failpoint.js';
import { registerAdminRoutes } from '../../admin/routes.js';
import { loadNodeConfig, type NodeConfig, unknownParleyEnv } from '../../config.js';
import { isParleyError, ParleyError } from '../../errors.js';
import { createVaspNode, type VaspNode } from '../../node.js';
import { adminUrlOf } from '../admin-client.js';
import { type CliIo, ExitCode, exitCodeFor } from '../io.js';
import {
  createJsonLogger,
  createNodeEventLog,
  type HealthEventLike,
  type JsonLogger,
  type LogLevel,
  logHealthEvent,
  withPeerNames,
} from '../log.js';
import { readLiveRuntimeFile, removeRuntimeFile, writeRuntimeFile } from '../runtime-file.js';
import { packageVersion } from '../version.js';

export interface StartOptions {
  config: string;
  /** @default 'info' */
  logLevel?: LogLevel;
}

export interface StartDeps {
  /** Resolves (with its name) when the node should stop. @default the first SIGINT or SIGTERM */
  stopSignal?: Promise<string>;
}

/** Resolves on the first SIGINT or SIGTERM; a second one gets Node's default (immediate exit). */
function processStopSignal(): { promise: Promise<string>; dispose(): void } {
  const signals = ['SIGINT', 'SIGTERM'] as const;
  let dispose = (): void => undefined;
  const promise = new Promise<string>((resolveStop) => {
    const onSignal = (signal: string): void => {
      dispose();
      resolveStop(signal);
    };
    for (const signal of signals) process.on(signal, onSignal);
    dispose = () => {
      for (const signal of signals) process.off(signal, onSignal);
    };
  });
  return { promise, dispose: () => dispose() };
}

/**
 * The node's health events, if it has a health monitor. Read by shape so that the CLI builds
 * with or without the health module (`src/health`), which is wired into the node separately.
 */
function healthEventsOf(node: VaspNode): Observable<HealthEventLike> | undefined {
  return (node as VaspNode & { health$?: Observable<HealthEventLike> }).health$;
}

/**
 * A listen that failed because the address is taken, said plainly (`LISTEN_ADDRESS_IN_USE`),
 * naming this config's own running node when it is the one listening there.
 */
function plainListenError(err: unknown, file: string, config: NodeConfig | undefined): unknown {
  if (!isParleyError(err, 'TRANSPORT_LISTEN_FAILED')) return err;
  const cause = err.cause as NodeJS.ErrnoException | undefined;
  if (cause?.code !== 'EADDRINUSE' || config === undefined) return err;
  const where = `${config.listen.host}:${config.listen.port}`;
  const running = readLiveRuntimeFile(file);
  return new ParleyError(
    'LISTEN_ADDRESS_IN_USE',
    running !== undefined
      ? `${where} is in use: the node of this config already runs (pid ${running.pid}; \`parley status --config ${file}\`)`
      : `${where} is in use by another process (another node? give this one another listen.port in ${file}, or PARLEY_PORT)`,
    { cause: err },
  );
}

function failed(logger: JsonLogger, io: CliIo, err: unknown): number {
  if (!isParleyError(err)) throw err;
  logger.log('fatal', 'start_failed', { code: err.code, message: err.message });
  io.err(`parley start: ${err.code}: ${err.message}\n`);
  return exitCodeFor(err.code);
}

/**
 * Loads and validates the config, starts the node, registers the admin routes, logs its events
 * and waits for the stop signal; then closes the node cleanly.
 * @returns 0 after a clean stop; 2 on an invalid config; 1 when the node cannot start or stop
 */
export async function runStart(options: StartOptions, io: CliIo, deps: StartDeps = {}): Promise<number> {
  const file = resolve(io.cwd, options.config);
  const logger = createJsonLogger(io.out, options.logLevel ?? 'info');
  // Listen for signals from the first moment: a SIGTERM during startup stops the node once up.
  const processSignal = deps.stopSignal === undefined ? processStopSignal() : undefined;
  const stop = deps.stopSignal ?? processSignal!.promise;
  try {
    let config: NodeConfig | undefined;
    let node: VaspNode;
    try {
      config = loadNodeConfig(file, io.env);
      node = await createVaspNode(config);
    } catch (err) {
      return failed(logger, io, plainListenError(err, file, config));
    }

    const unknownEnv = unknownParleyEnv(io.env);
    if (unknownEnv.length > 0) logger.log('warn', 'unknown_env', { names: unknownEnv });
    if (ackFailpoint(io.env) !== undefined) {
      // Never in production: the node SIGKILLs itself after that many acknowledgements.
      logger.log('error', 'test_failpoint_armed', {
        name: KILL_AFTER_ACKS_ENV,
        value: io.env[KILL_AFTER_ACKS_ENV],
      });
    }
    const named = withPeerNames(
      logger,
      new Map(config.peers.flatMap((p) => (p.name ? [[p.address, p.name]] : []))),
    );
    const events = node.events$.subscribe(createNodeEventLog(named));
    const health$ = healthEventsOf(node);
    if (health$) events.add(health$.subscribe((event) => logHealthEvent(named, event)));
    // A new admin token per run, readable only through the 0600 runtime file.
    const adminToken = randomBytes(32).toString('hex');
    registerAdminRoutes(node, {
      token: adminToken,
      allowedHosts: config.allowedHosts,
      version: packageVersion(),
      log: ({ event, ...fields }) => logger.log(event === 'pay_failed' ? 'warn' : 'info', event, fields),
    });
    const adminUrl = adminUrlOf(config, node.port);
    writeRuntimeFile(file, {
      pid: process.pid,
      address: node.address,
      url: node.url,
      adminUrl,
      adminToken,
      startedAt: new Date().toISOString(),
    });
    logger.log('info', 'started', {
      address: node.address,
      epoch: node.epoch,
      url: node.url,
      admin: adminUrl,
      pid: process.pid,
      peers: config.peers.map((peer) => ({ address: peer.address, url: peer.url ?? null })),
    });

    const signal = await stop;
    logger.log('info', 'stopping', { signal });
    removeRuntimeFile(file);
    try {
      await node.close();
    } catch (err) {
      return failed(logger, io, err);
    } finally {
      events.unsubscribe();
    }
    logger.log('info', 'stopped', {});
    return ExitCode.OK;
  } finally {
    processSignal?.dispose();
  }
}
