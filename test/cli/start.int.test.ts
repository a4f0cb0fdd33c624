import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AdminStatus } from '../../src/admin/routes.js';
import { adminRequest } from '../../src/cli/admin-client.js';
import type { InitResult } from '../../src/cli/commands/init.js';
import { type RuntimeInfo, runtimeFilePath } from '../../src/cli/runtime-file.js';
import { encodeAddress } from '../../src/protocol/index.js';
import { cli, type LogLine, type ParleyProcess, repoRoot, spawnParley, tempDir } from './helpers.js';

/** `parley start` and friends as real child processes (tsx), on ephemeral loopback ports. */
describe('parley start, pay and status across processes', () => {
  const children: ParleyProcess[] = [];
  const dirs: Array<{ dispose(): void }> = [];
  afterEach(async () => {
    for (const child of children.splice(0)) {
      if (child.child.exitCode === null && child.child.signalCode === null) {
        child.child.kill('SIGKILL');
        await child.exited;
      }
    }
    for (const dir of dirs.splice(0)) dir.dispose();
  });
  const spawn = (args: string[]): ParleyProcess => {
    const child = spawnParley(args);
    children.push(child);
    return child;
  };
  const dir = (): string => {
    const d = tempDir();
    dirs.push(d);
    return d.path;
  };

  it('exits 2 and logs CONFIG_INVALID for a config that does not validate; starts nothing', async () => {
    const root = dir();
    const good = JSON.parse(
      (await cli(['init', '--random-address', '--port', '0', '--json'], { cwd: root })).out,
    ) as InitResult;
    const base = { address: good.address, privateKeySeed: 'ab'.repeat(32), listen: { port: 0 } };
    const configs: Record<string, string> = {
      'not-json.json': '{ "address": ',
      'bad-address.json': JSON.stringify({ ...base, address: 'lbr1nope' }),
      'short-seed.json': JSON.stringify({ ...base, privateKeySeed: 'abcd' }),
      'bad-port.json': JSON.stringify({ ...base, listen: { port: 70_000 } }),
      'bad-peer.json': JSON.stringify({ ...base, peers: [{ address: good.address, publicKey: 'xyz' }] }),
    };
    const files = [join(root, 'missing.json')];
    for (const [name, text] of Object.entries(configs)) {
      writeFileSync(join(root, name), text);
      files.push(join(root, name));
    }
    const runs = files.map((file) => ({ file, child: spawn(['start', '--config', file]) }));
    for (const { file, child } of runs) {
      const { code } = await child.exited;
      expect(code, file).toBe(2);
      const fatal = child.lines.find((line) => line.level === 'fatal');
      expect(fatal, file).toMatchObject({ event: 'start_failed', code: 'CONFIG_INVALID' });
      expect(
        child.lines.some((line) => line.event === 'started'),
        file,
      ).toBe(false);
      expect(child.stderr()).toContain('CONFIG_INVALID');
      expect(existsSync(runtimeFilePath(file))).toBe(false);
    }
  });

  it('runs two nodes: payments both ways settle, status shows the channel, bad input changes nothing, SIGTERM stops cleanly', async () => {
    const root = dir();
    const init = async (name: string): Promise<InitResult> => {
      const { code, out } = await cli(['init', '--random-address', '--dir', name, '--port', '0', '--json'], {
        cwd: root,
      });
      expect(code).toBe(0);
      return JSON.parse(out) as InitResult;
    };
    const a = await init('a');
    const b = await init('b');

    // B only accepts A; A dials B once B's ephemeral URL is known from its `started` line.
    expect(
      (await cli(['peer', 'add', '--config', b.config, '--address', a.address, '--public-key', a.publicKey]))
        .code,
    ).toBe(0);
    const nodeB = spawn(['start', '--config', b.config, '--log-level', 'debug']);
    const startedB = await nodeB.waitFor((line) => line.event === 'started');
    expect(startedB).toMatchObject({
      level: 'info',
      address: b.address,
      url: expect.stringMatching(/^ws:\/\/127\.0\.0\.1:\d+/),
    });
    const addA = await cli([
      'peer',
      'add',
      '--config',
      a.config,
      '--address',
      b.address,
      '--public-key',
      b.publicKey,
      '--url',
      String(startedB['url']),
    ]);
    expect(addA.code).toBe(0);
    const nodeA = spawn(['start', '--config', a.config, '--log-level', 'debug']);
    await nodeA.waitFor((line) => line.event === 'connected' && line['peer'] === b.address);
    await nodeB.waitFor((line) => line.event === 'connected' && line['peer'] === a.address);

    // The admin routes want this run's token, which only the 0600 runtime file holds.
    const runtime = JSON.parse(readFileSync(runtimeFilePath(a.config), 'utf8')) as RuntimeInfo;
    expect(runtime.adminToken).toMatch(/^[0-9a-f]{64}$/);
    expect(statSync(runtimeFilePath(a.config)).mode & 0o777).toBe(0o600);
    expect((await adminRequest(runtime.adminUrl, 'GET', '/admin/status')).status).toBe(401);

    // `parley status`, the real executable: a human table with the connected channel.
    const shown = spawn(['status', '--config', a.config]);
    expect((await shown.exited).code).toBe(0);
    expect(shown.stdout()).toMatch(new RegExp(`${b.address}\\s+connected`));

    // `parley pay --wait`, the real executable: the create command succeeds.
    const paid = spawn([
      'pay',
      '--config',
      a.config,
      '--to',
      b.address,
      '--amount',
      '100',
      '--currency',
      'XUS',
      '--wait',
      '--json',
    ]);
    expect((await paid.exited).code).toBe(0);
    const answer = paid.lines[0] as { referenceId: string; outcome: { status: string } };
    expect(answer.outcome.status).toBe('success');
    expect(answer.referenceId.startsWith(`${a.address}_`)).toBe(true);
    // And the other way round, without waiting (202 with the reference id).
    const back = await cli([
      'pay',
      '--config',
      b.config,
      '--to',
      a.address,
      '--amount',
      '7',
      '--currency',
      'XUS',
      '--json',
    ]);
    expect(back.code).toBe(0);
    const backRef = (JSON.parse(back.out) as { referenceId: string }).referenceId;

    const status = async (config: string): Promise<AdminStatus> => {
      const { code, out, err } = await cli(['status', '--config', config, '--json']);
      expect(code, err).toBe(0);
      return JSON.parse(out) as AdminStatus;
    };
    const settled = async (): Promise<boolean> => {
      for (const config of [a.config, b.config]) {
        const [channel] = (await status(config)).channels;
        if (channel?.state !== 'connected' || channel.openObjects !== 0 || channel.inflight !== 0)
          return false;
      }
      return true;
    };
    // Re-checked after every log line of either node (each commit logs one), a bounded number of times.
    await untilLogged([nodeA, nodeB], settled, 200);

    const [channelA] = (await status(a.config)).channels;
    expect(channelA).toMatchObject({ peer: b.address, state: 'connected', inflight: 0, openObjects: 0 });
    expect(channelA!.peerEpoch).toMatch(/^[0-9a-f]+$/);
    const requested = (p: ParleyProcess): LogLine[] =>
      p.lines.filter((line) => line.event === 'pay_requested');
    expect(requested(nodeA).map((line) => line['referenceId'])).toEqual([answer.referenceId]);
    expect(requested(nodeB).map((line) => line['referenceId'])).toEqual([backRef]);
    // And logged as durable (with the create's cid) before it was acknowledged.
    const queued = nodeB.lines.filter((line) => line.event === 'pay_queued');
    expect(queued.map((line) => [line['referenceId'], line['cid']])).toEqual([
      [backRef, (JSON.parse(back.out) as { cid: string }).cid],
    ]);
    expect(nodeA.lines.some((line) => line.event === 'command_final' && line['status'] === 'success')).toBe(
      true,
    );

    // Bad input: refused with a code (exit 2), nothing stored, nothing logged as requested.
    const unknownPeer = encodeAddress({ hrp: 'tlb', onchain: new Uint8Array(16).fill(9) });
    for (const args of [
      ['--to', unknownPeer, '--amount', '5', '--currency', 'XUS'],
      ['--to', b.address, '--amount', '5', '--currency', 'X Y'],
      ['--to', b.address, '--amount', '5', '--currency', 'XUS', '--to-subaddress', '0000000000000000'],
    ]) {
      const refused = await cli(['pay', '--config', a.config, ...args]);
      expect(refused.code, args.join(' ')).toBe(2);
      expect(refused.err).toContain('BUSINESS_INVALID_INPUT');
    }
    expect(await settled()).toBe(true);
    expect(requested(nodeA)).toHaveLength(1);

    // SIGTERM: both stop cleanly (exit 0), log it, and remove their runtime files.
    const adminA = String(nodeA.lines.find((line) => line.event === 'started')!['admin']);
    nodeA.child.kill('SIGTERM');
    nodeB.child.kill('SIGTERM');
    for (const [node, config] of [
      [nodeA, a.config],
      [nodeB, b.config],
    ] as const) {
      expect(await node.exited).toEqual({ code: 0, signal: null });
      expect(node.lines.map((line) => line.event).slice(-2)).toContain('stopped');
      expect(node.lines.some((line) => line.event === 'stopping' && line['signal'] === 'SIGTERM')).toBe(true);
      expect(existsSync(runtimeFilePath(config))).toBe(false);
    }

    // The node is gone: status says so (exit 1), from the config and from its old admin URL.
    for (const args of [
      ['--config', a.config],
      ['--config', a.config, '--url', adminA],
    ]) {
      const gone = await cli(['status', ...args]);
      expect(gone.code).toBe(1);
      expect(gone.err).toContain('NODE_NOT_RUNNING');
    }
  });
});

/** Runs `check` now and again after each new log line of any of `nodes`, at most `maxChecks` times. */
async function untilLogged(
  nodes: ParleyProcess[],
  check: () => Promise<boolean>,
  maxChecks: number,
): Promise<void> {
  for (let i = 0; i < maxChecks; i++) {
    const seen = nodes.map((node) => node.lines.length);
    if (await check()) return;
    // A node that exits ends the wait too; the next check then fails or the bound is reached.
    await Promise.race(nodes.map((node, k) => node.waitForLineCount(seen[k]!).catch(() => undefined)));
  }
  throw new Error(`condition not reached after ${maxChecks} checks`);
}

describe('bin/parley.js', () => {
  it('runs the TypeScript CLI (help, exit 0; unknown command, exit 2)', async () => {
    const { spawnSync } = await import('node:child_process');
    const help = spawnSync(process.execPath, [join(repoRoot, 'bin/parley.js'), '--help'], {
      encoding: 'utf8',
    });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('Usage: parley <command>');
    const unknown = spawnSync(process.execPath, [join(repoRoot, 'bin/parley.js'), 'nope'], {
      encoding: 'utf8',
    });
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain('unknown command');
  });
});
