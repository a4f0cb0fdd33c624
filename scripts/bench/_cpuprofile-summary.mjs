// Summarises V8 CPU profiles (`--cpu-prof`, e.g. the channel bench's node processes with
// PARLEY_CHILD_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR"): self time by module, by function and
// by stage of a command, over every profile given, idle time left out.
//
//   node scripts/bench/_cpuprofile-summary.mjs FILE[:FROM_S:TO_S] ... [--top N]
//
// FROM_S:TO_S keeps the samples between those seconds of that profile (each profile starts with
// its own thread); the busy milliseconds per second printed for each file help find a window.
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const topAt = args.indexOf('--top');
const top = topAt >= 0 ? Number(args.splice(topAt, 2)[1]) : 25;

/** Stages of a command, first match wins (url is the script's URL, empty for V8 and native code). */
const STAGES = [
  ['garbage collection', (f) => f === '(garbage collector)'],
  [
    'Ed25519 verification on the verifying threads',
    (f, u) => f === 'verifyOneShot' || u.includes('verify-worker'),
  ],
  ['SQLite writer thread', (_f, u) => u.includes('[worker eval]')],
  ['WebCrypto jobs on the main thread', (f, u) => u.includes('internal/crypto') || f === 'signVerify'],
  [
    'canonical JSON and zod',
    (_f, u) => u.includes('protocol/codec') || u.includes('/zod/') || u.includes('protocol/lip1'),
  ],
  ['business and objects', (_f, u) => u.includes('src/business') || u.includes('src/objects')],
  ['channel core', (_f, u) => u.includes('src/channel')],
  ['store, main thread', (_f, u) => u.includes('src/store') || u.includes('better-sqlite3')],
  ['metrics', (_f, u) => u.includes('prom-client') || u.includes('src/health')],
  [
    'ws and sockets',
    (f, u) =>
      u.includes('/ws/') || f === 'writev' || u.includes('src/transport') || u.includes('internal/stream'),
  ],
  ['thread messages', (f, u) => f === 'postMessage' || u.includes('internal/worker')],
  ['rxjs and promise jobs', (_f, u) => u.includes('rxjs') || u.includes('task_queues')],
  ['jws, addresses, digest', (_f, u) => u.includes('src/protocol')],
  ['other', () => true],
];

function moduleOf(url) {
  if (!url) return '(V8 / native)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const parts = url.slice(nm + 13).split('/');
    return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
  }
  const src = url.indexOf('/src/');
  if (src >= 0) return url.slice(src + 1);
  return url.replace(/^file:\/\//, '');
}

const byModule = new Map();
const byFunction = new Map();
const byStage = new Map();
const add = (map, key, us) => map.set(key, (map.get(key) ?? 0) + us);

for (const arg of args) {
  const [file, fromS, toS] = arg.split(':');
  const from = fromS ? Number(fromS) * 1e6 : Number.NEGATIVE_INFINITY;
  const to = toS ? Number(toS) * 1e6 : Number.POSITIVE_INFINITY;
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const nodes = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const busyPerS = [];
  let t = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const us = profile.timeDeltas[i] ?? 0;
    t += us;
    const frame = nodes.get(profile.samples[i]);
    if (frame.functionName === '(idle)') continue;
    const s = Math.floor(t / 1e6);
    busyPerS[s] = (busyPerS[s] ?? 0) + us;
    if (t < from || t > to) continue;
    const url = frame.url ?? '';
    add(byModule, moduleOf(url), us);
    add(byFunction, `${frame.functionName || '(anonymous)'}  ${moduleOf(url)}`, us);
    add(byStage, STAGES.find(([, match]) => match(frame.functionName, url))[0], us);
  }
  console.log(
    `${file}: busy ms per second: ${Array.from(busyPerS, (v) => Math.round((v ?? 0) / 1000)).join(' ')}`,
  );
}

const total = [...byStage.values()].reduce((a, b) => a + b, 0);
for (const [title, map] of [
  ['by stage', byStage],
  ['by module', byModule],
  ['by function', byFunction],
]) {
  console.log(`\n-- busy time ${title} (${Math.round(total / 1000)} ms sampled)`);
  for (const [key, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(
      `${((100 * us) / total).toFixed(1).padStart(5)} %  ${String(Math.round(us / 1000)).padStart(6)} ms  ${key}`,
    );
  }
}
