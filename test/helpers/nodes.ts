import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { merge, type Observable } from 'rxjs';
import type { NodeConfigInput } from '../../src/config.js';
import { createVaspNode, type VaspNode } from '../../src/node.js';
import { encodeAddress, generatePrivateKey } from '../../src/protocol/index.js';

export interface TestIdentity {
  address: string;
  seedHex: string;
  publicKeyHex: string;
}

/** A fresh VASP identity: on-chain address filled with `byte`, a new Ed25519 key. */
export function testIdentity(byte: number): TestIdentity {
  const key = generatePrivateKey();
  return {
    address: encodeAddress({ hrp: 'lbr', onchain: new Uint8Array(16).fill(byte) }),
    seedHex: key.seedHex,
    publicKeyHex: key.publicKey.hex,
  };
}

/** A temp directory removed by `dispose`. */
export function tempDir(): { path: string; dispose(): void } {
  const path = mkdtempSync(join(tmpdir(), 'parley-node-'));
  return { path, dispose: () => rmSync(path, { recursive: true, force: true }) };
}

/** Config of `self` on loopback, with `peers` (their URLs known once they listen). */
export function nodeConfig(
  self: TestIdentity,
  database: string,
  peers: Array<{ identity: TestIdentity; url?: string }>,
  port = 0,
): NodeConfigInput {
  return {
    address: self.address,
    privateKeySeed: self.seedHex,
    database,
    listen: { host: '127.0.0.1', port },
    peers: peers.map((p) => ({
      address: p.identity.address,
      publicKey: p.identity.publicKeyHex,
      ...(p.url ? { url: p.url } : {}),
    })),
    retransmitMs: 500,
  };
}

export async function startNode(config: NodeConfigInput): Promise<VaspNode> {
  return createVaspNode(config);
}

/**
 * Resolves when `check` returns true; re-checked after every event of the nodes (no fixed
 * sleeps). Rejects after `timeoutMs` with the last state described by `describe`.
 */
export function until(
  nodes: VaspNode[],
  check: () => Promise<boolean>,
  options: { timeoutMs?: number; describe?: () => Promise<string> } = {},
): Promise<void> {
  const events$: Observable<unknown> = merge(...nodes.map((n) => n.events$));
  return new Promise<void>((resolve, reject) => {
    let busy = false;
    let again = false;
    let done = false;
    const finish = (err?: Error): void => {
      if (done) return;
      done = true;
      sub.unsubscribe();
      clearTimeout(timer);
      if (err) reject(err);
      else resolve();
    };
    const probe = async (): Promise<void> => {
      if (busy) {
        again = true;
        return;
      }
      busy = true;
      try {
        do {
          again = false;
          if (await check()) return finish();
        } while (again);
      } catch (err) {
        finish(err as Error);
      } finally {
        busy = false;
      }
    };
    const sub = events$.subscribe({ next: () => void probe() });
    const timer = setTimeout(async () => {
      const state = options.describe ? await options.describe().catch(() => '') : '';
      finish(new Error(`condition not reached in ${options.timeoutMs ?? 60_000} ms ${state}`));
    }, options.timeoutMs ?? 60_000);
    void probe();
  });
}
