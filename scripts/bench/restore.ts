import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createVerifyPool } from '../../src/protocol/verify-pool.js';
import { openStore } from '../../src/store/open-store.js';
import { chainTemplate, party, signChain, wireSyncPair } from './_signed-chains.js';

const N = Number(process.env['PARLEY_BENCH_RESTORE_N'] ?? 100_000);
const machine = { node: process.version, cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length };
const progress = (text: string): void => void process.stderr.write(`${text}\n`);

const dir = mkdtempSync(join(tmpdir(), 'parley-bench-restore-'));
const a = party(0x41);
const b = party(0x42);
const pool = createVerifyPool({ signers: [b.key] });
try {
  const t = await chainTemplate(a, b, { steps: 12, close: true });
  const storeA = await openStore({ url: `file:${join(dir, 'a.db')}` });
  const storeB = await openStore({ url: `file:${join(dir, 'b.db')}` });
  await storeA.upsertPeer({ address: b.address, publicKeyHex: b.key.publicKey.hex });
  await storeB.upsertPeer({ address: a.address, publicKeyHex: a.key.publicKey.hex });
  for (let i = 0; i < N; i += 500) {
    const objects = await Promise.all(Array.from({ length: Math.min(500, N - i) }, () => signChain(t, a, b)));
    await storeA.commit(objects.flat());
    if ((i / 500) % 20 === 0) progress(`  built ${i + objects.length}/${N} closed objects`);
  }
  const { sa, sb } = wireSyncPair(
    { me: a, peer: b, store: storeA },
    { me: b, peer: a, store: storeB },
    pool,
    ['list', 'riblt', 'restore'],
  );
  let last = 0;
  sa.restore$.subscribe((e) => {
    if (e.moved - last >= 5000) {
      last = e.moved;
      progress(`  restored ${e.moved}/${N}`);
    }
  });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const end = await sa.restore('peer_state_lost');
  const s = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  if (end.moved !== N) throw new Error(`restored ${end.moved} of ${N}`);
  const load1 = Math.round((loadavg()[0] ?? 0) * 100) / 100;
  process.stdout.write(
    `${JSON.stringify({
      bench: 'restore',
      metric: 'restore_objects_per_s',
      value: Math.round((N / s) * 10) / 10,
      unit: '1/s',
      params: {
        n: N,
        commands_per_object: t.steps.length,
        seconds: Math.round(s * 10) / 10,
        cpu_ms_per_object: Math.round(((cpu.user + cpu.system) / 1000 / N) * 1000) / 1000,
        pace_objects_per_s: 1000,
        engine: 'sqlite',
        ...machine,
        load1,
      },
    })}\n`,
  );
  await sa.close();
  await sb.close();
  await storeA.close();
  await storeB.close();
} finally {
  await pool.close();
  rmSync(dir, { recursive: true, force: true });
}
