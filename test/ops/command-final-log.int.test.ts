/**
 * `command_final` log lines of a running node name the payment and where it stands: the
 * reference id and the statuses the command wrote, mine and theirs (two real nodes).
 */
import { join } from 'node:path';
import { filter, firstValueFrom } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { createJsonLogger, logNodeEvent } from '../../src/cli/log.js';
import type { NodeEvent } from '../../src/node.js';
import { PaymentStatus } from '../../src/protocol/lip1.js';
import { nodeConfig, startNode, tempDir, testIdentity, until } from '../helpers/nodes.js';

describe('command_final log lines', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('carry the reference id and the resulting statuses, mine and theirs', async () => {
    const dir = tempDir();
    cleanups.push(dir.dispose);
    const a = testIdentity(0x7a);
    const b = testIdentity(0x7b);
    const nodeB = await startNode(nodeConfig(b, `file:${join(dir.path, 'b.db')}`, [{ identity: a }]));
    cleanups.push(() => nodeB.close());
    const nodeA = await startNode(
      nodeConfig(a, `file:${join(dir.path, 'a.db')}`, [{ identity: b, url: nodeB.url }]),
    );
    cleanups.push(() => nodeA.close());
    const lines: Array<Record<string, unknown>> = [];
    const logger = createJsonLogger((line) => lines.push(JSON.parse(line) as Record<string, unknown>));
    const finals: NodeEvent[] = [];
    nodeA.events$.pipe(filter((e) => e.type === 'command_final')).subscribe((e) => {
      finals.push(e);
      logNodeEvent(logger, e);
    });
    const { referenceId, outcome$ } = nodeA.pay({ to: nodeB.address, amount: 9, currency: 'TIK' });
    expect((await firstValueFrom(outcome$)).status).toBe('success');
    // The business takes the payment to its end: the last command of mine writes mine ready.
    await until(
      [nodeA, nodeB],
      async () => (await nodeA.store.head(nodeB.address, referenceId))?.open === false,
      {
        timeoutMs: 20_000,
      },
    );
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) {
      expect(line).toMatchObject({
        event: 'command_final',
        peer: nodeB.address,
        referenceId,
        status: 'success',
      });
      expect(PaymentStatus.options).toContain(line['myStatus']);
      expect(PaymentStatus.options).toContain(line['theirStatus']);
      expect(line['code']).toBeNull();
    }
    // The create: I am the sender and start at needs_kyc_data; theirs is none.
    expect(lines[0]).toMatchObject({ myStatus: 'needs_kyc_data', theirStatus: 'none' });
    expect(finals.length).toBe(lines.length);
  });
});
