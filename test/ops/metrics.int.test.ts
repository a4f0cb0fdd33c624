/**
 * What the alert rules read, from a real node: every counter series exists at 0 from the start
 * (so `increase()` fires on the first event), every per-peer series carries the peer's name,
 * every metric the rules and the Grafana dashboard name is exported, and the exposition passes
 * `promtool check metrics` when promtool is installed.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createVaspNode, type VaspNode } from '../../src/node.js';
import { repoRoot } from '../cli/helpers.js';
import { nodeConfig, tempDir, testIdentity } from '../helpers/nodes.js';

/** Metrics a node does not export itself. */
const EXPORTED_ELSEWHERE = new Set<string>([]);

describe('/metrics for the alerting kit', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function scrape(): Promise<{ node: VaspNode; text: string; peer: string }> {
    const dir = tempDir();
    cleanups.push(dir.dispose);
    const a = testIdentity(0x61);
    const b = testIdentity(0x62);
    // B never runs: A's channel to it exists, and nothing has happened on it yet.
    const config = nodeConfig(a, `file:${join(dir.path, 'a.db')}`, [
      { identity: b, url: 'ws://127.0.0.1:9' },
    ]);
    config.peers![0]!.name = 'VASP B';
    const node = await createVaspNode(config);
    cleanups.push(() => node.close());
    const res = await fetch(`http://127.0.0.1:${node.port}/metrics`);
    expect(res.status).toBe(200);
    return { node, text: await res.text(), peer: b.address };
  }

  it('exports every counter from 0, with the peer name as a label', async () => {
    const { node, text, peer } = await scrape();
    const series = (name: string, labels: string) =>
      new RegExp(
        `^${name}\\{(?=[^}]*peer="${peer}")(?=[^}]*peer_name="VASP B")${labels}[^}]*\\} (\\S+)$`,
        'm',
      );
    for (const [name, labels] of [
      ['parley_health_events_total', '(?=[^}]*kind="peer_state_lost")'],
      ['parley_health_events_total', '(?=[^}]*kind="diverged")'],
      ['parley_health_events_total', '(?=[^}]*kind="peer_behind")'],
      ['parley_health_transitions_total', '(?=[^}]*to="down")'],
      ['parley_resync_runs_total', '(?=[^}]*outcome="failed")'],
      ['parley_channel_retransmits_total', ''],
    ] as const) {
      expect(text, `${name} ${labels}`).toMatch(series(name, labels));
      expect(series(name, labels).exec(text)![1], `${name} ${labels}`).toBe('0');
    }
    // Every per-peer series names the peer.
    for (const line of text.split('\n').filter((l) => l.includes(`peer="${peer}"`))) {
      expect(line).toContain('peer_name="VASP B"');
    }
    // And so does the status data `parley status` prints.
    expect((await node.status()).map((row) => row.name)).toEqual(['VASP B']);
  });

  it('exports every metric the alert rules and the Grafana dashboard read', async () => {
    const { text } = await scrape();
    const exported = new Set([...text.matchAll(/^# TYPE (\w+) /gm)].map((m) => m[1]!));
    const named = (file: string) =>
      new Set(
        [...readFileSync(join(repoRoot, 'ops', file), 'utf8').matchAll(/\b(parley_[a-z_]+)/g)].map(
          (m) => m[1]!,
        ),
      );
    for (const file of ['parley-alerts.yml', 'parley-grafana.json']) {
      const missing = [...named(file)].filter((name) => !exported.has(name) && !EXPORTED_ELSEWHERE.has(name));
      expect(missing, file).toEqual([]);
    }
  });

  it('passes promtool check metrics', async (ctx) => {
    if (spawnSync('promtool', ['--version']).status !== 0) {
      return ctx.skip('promtool not found: install the Debian package `prometheus`');
    }
    const { text } = await scrape();
    const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(`${r.stdout}${r.stderr}`).toBe('');
    expect(r.status).toBe(0);
  });
});
