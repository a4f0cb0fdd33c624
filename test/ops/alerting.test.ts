/**
 * The alerting kit in ops/: the Prometheus rules pass the real `promtool` (`check rules`, and
 * `test rules` with a case per alert, counters going from 0 to 1), every alert has a case, and
 * the Grafana dashboard is JSON whose queries name metrics of the rules' kind. Without
 * `promtool` (Debian package `prometheus`) the promtool cases are skipped with a message.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../cli/helpers.js';

const OPS = join(repoRoot, 'ops');
const RULES = join(OPS, 'parley-alerts.yml');
const RULE_TESTS = join(OPS, 'parley-alerts.test.yml');

/** The promtool on the PATH, or undefined. */
function findPromtool(): string | undefined {
  const found = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
  return found.status === 0 ? 'promtool' : undefined;
}
const promtool = findPromtool();
const NO_PROMTOOL =
  'promtool not found: install the Debian package `prometheus` (apt-get install -y prometheus)';

function run(args: string[]): { status: number | null; out: string } {
  const r = spawnSync(promtool!, args, { encoding: 'utf8', cwd: OPS });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** The alert names of the rules file. */
function alertNames(): string[] {
  return [...readFileSync(RULES, 'utf8').matchAll(/^\s*- alert: (\w+)\s*$/gm)].map((m) => m[1]!);
}

describe('ops/ alerting kit', () => {
  it('has the alerts an operator needs', () => {
    expect(alertNames().sort()).toEqual(
      [
        'ParleyBackofficeUnreachable',
        'ParleyCommandsUnapplied',
        'ParleyEventsUndeliverable',
        'ParleyOutboxGrowing',
        'ParleyPeerBehind',
        'ParleyPeerDown',
        'ParleyPeerStateLost',
        'ParleyResyncFailed',
        'ParleyStoreUnavailable',
      ].sort(),
    );
  });

  it('tests every alert firing, and a counter going from 0 to 1', () => {
    const text = readFileSync(RULE_TESTS, 'utf8');
    // Each alert has a case where it fires (exp_alerts with labels).
    const firing = new Set(
      [...text.matchAll(/alertname: (\w+)\n\s*exp_alerts:\n\s*- exp_labels/g)].map((m) => m[1]!),
    );
    expect(alertNames().filter((name) => !firing.has(name))).toEqual([]);
    // A counter series that starts at 0 and steps to 1.
    expect(text).toMatch(
      /parley_health_events_total\{[^}]*kind="peer_state_lost"[^}]*\}'\n\s*values: '0 0 0 1/,
    );
    expect(text).toMatch(/parley_resync_runs_total\{[^}]*outcome="failed"[^}]*\}'\n\s*values: '0 0 1/);
  });

  it('passes promtool check rules', (ctx) => {
    if (!promtool) return ctx.skip(NO_PROMTOOL);
    const r = run(['check', 'rules', RULES]);
    expect(r.out).toContain(`SUCCESS: ${alertNames().length} rules found`);
    expect(r.status).toBe(0);
  });

  it('passes promtool test rules', (ctx) => {
    if (!promtool) return ctx.skip(NO_PROMTOOL);
    const r = run(['test', 'rules', RULE_TESTS]);
    expect(r.out).toContain('SUCCESS');
    expect(r.status).toBe(0);
  });

  it('fails promtool test rules when a rule is broken (the check can fail)', async (ctx) => {
    if (!promtool) return ctx.skip(NO_PROMTOOL);
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'parley-alerts-'));
    try {
      // The state-lost alert as it would be if the counter were read without increase().
      const broken = readFileSync(RULES, 'utf8').replace(
        'increase(parley_health_events_total{kind="peer_state_lost"}[1h]) > 0',
        'parley_health_events_total{kind="peer_state_lost"} > 1',
      );
      writeFileSync(join(dir, 'parley-alerts.yml'), broken);
      writeFileSync(join(dir, 'parley-alerts.test.yml'), readFileSync(RULE_TESTS));
      const r = spawnSync(promtool!, ['test', 'rules', 'parley-alerts.test.yml'], {
        encoding: 'utf8',
        cwd: dir,
      });
      expect(`${r.stdout}${r.stderr}`).toContain('ParleyPeerStateLost');
      expect(r.status).not.toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('ships a Grafana dashboard whose queries name Parley metrics', () => {
    const dashboard = JSON.parse(readFileSync(join(OPS, 'parley-grafana.json'), 'utf8')) as {
      title: string;
      panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
    };
    expect(dashboard.title).toBe('Parley');
    const exprs = dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr));
    expect(exprs.length).toBeGreaterThan(0);
    for (const expr of exprs) expect(expr).toMatch(/parley_[a-z_]+/);
  });
});
