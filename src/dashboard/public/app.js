// The dashboard page: a snapshot on connect, then deltas (contract: src/dashboard/events.ts).
'use strict';

(() => {
  const CHART_WINDOW_MS = 120_000;
  const MAX_LOG_ITEMS = 300;
  const PALETTE = ['#58a6ff', '#f0883e', '#a371f7', '#3fb950', '#ff7b72', '#d2a8ff', '#79c0ff', '#ffa657'];

  const $ = (id) => document.getElementById(id);
  const state = {
    seq: -1,
    offsetMs: 0,
    node: null,
    features: { health: false, resync: false },
    thresholds: { suspectPhi: null, downPhi: null },
    sampleWindowMs: 300_000,
    channels: new Map(),
    samples: new Map(),
    log: [],
    runs: new Map(),
    stateLosses: [],
    conditions: [],
  };
  const DAY_MS = 24 * 3600_000;

  const short = (a) => (a && a.length > 16 ? `${a.slice(0, 8)}…${a.slice(-6)}` : a || '');
  const pad = (n) => String(n).padStart(2, '0');
  const clock = (ms) => {
    const d = new Date(ms);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  };
  const duration = (ms) => (ms < 1000 ? `${Math.round(ms)} ms` : ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 60_000)} min`);
  const now = () => Date.now() + state.offsetMs;
  const colorOf = (peer) => {
    const peers = [...state.channels.keys()].sort();
    const i = peers.indexOf(peer);
    return PALETTE[(i < 0 ? peers.length : i) % PALETTE.length];
  };
  const healthOf = (row) => (row.health ? row.health.state : row.connection);
  /** The peer's configured name, or a short form of its address. */
  const nameOf = (peer) => {
    const row = state.channels.get(peer);
    return row && row.name && row.name !== peer ? row.name : short(peer);
  };
  /** φ as a person reads it: capped at the down threshold, none for a down channel. */
  const phiText = (c) => {
    const phi = c.health ? c.health.phi : null;
    if (c.health && c.health.state === 'down') return 'down';
    if (phi === null || phi === undefined) return '—';
    const down = state.thresholds.downPhi;
    if (down && phi > down) return `> ${down}`;
    return phi.toFixed(2);
  };

  function td(text, className) {
    const cell = document.createElement('td');
    if (className) cell.className = className;
    if (text !== undefined) cell.textContent = text;
    return cell;
  }
  function badge(value) {
    const b = document.createElement('span');
    b.className = 'badge';
    b.dataset.value = value;
    b.textContent = value;
    return b;
  }
  function flag(text, kind, warn) {
    const f = document.createElement('span');
    f.className = warn ? 'flag warn' : 'flag';
    f.dataset.flag = kind;
    f.textContent = text;
    return f;
  }
  function progress(run) {
    const wrap = document.createElement('span');
    const bar = document.createElement('span');
    bar.className = 'progress';
    bar.dataset.status = run.status;
    const fill = document.createElement('i');
    const pct = run.status === 'completed' ? 100 : run.total ? Math.min(100, (100 * run.done) / run.total) : 0;
    fill.style.width = `${pct}%`;
    bar.append(fill);
    wrap.append(bar, ` ${run.done}${run.total !== null ? `/${run.total}` : ''}`);
    return wrap;
  }

  /** The channel's closed-object restore (PROTOCOL.md §7.6) in words, under its resync run. */
  function restoreLine(c) {
    const r = c.restore;
    const n = (x) => x.toLocaleString('en-US');
    const who = r.role === 'leader' ? 'led by this node' : `led by ${nameOf(c.peer)}`;
    // The leader's compared count moves with its cursor, after the objects of a run settle.
    const compared = r.role === 'leader' && r.compared > 0 ? `, ${n(r.compared)} compared` : '';
    const line = document.createElement('div');
    line.className = 'restore';
    line.dataset.restore = r.state;
    line.dataset.role = r.role;
    if (r.state === 'running') line.textContent = `restoring closed objects: ${n(r.moved)} restored${compared} (${who})`;
    else if (r.state === 'waiting') line.textContent = `restore waiting: ${r.error || 'its run stopped'} (${n(r.moved)} restored so far; it goes on at the next connection)`;
    else line.textContent = `restore finished ${clock(r.finishedAtMs ?? r.atMs)}, ${n(r.moved)} objects restored${compared} (${who})`;
    line.title = `closed-object restore (${r.reason}), started ${clock(r.startedAtMs)}, last report ${clock(r.atMs)}`;
    return line;
  }

  // ---- state updates ---------------------------------------------------------------------

  function addSamples(samples) {
    const cutoff = now() - state.sampleWindowMs;
    for (const s of samples) {
      let list = state.samples.get(s.peer);
      if (!list) state.samples.set(s.peer, (list = []));
      list.push(s);
    }
    for (const list of state.samples.values()) {
      let drop = 0;
      while (drop < list.length && list[drop].atMs < cutoff) drop++;
      if (drop) list.splice(0, drop);
    }
  }
  function addLog(entries) {
    const seen = state.log.length ? state.log[state.log.length - 1].id : 0;
    for (const e of entries) if (e.id > seen) state.log.push(e);
    if (state.log.length > MAX_LOG_ITEMS) state.log.splice(0, state.log.length - MAX_LOG_ITEMS);
  }

  function onSnapshot(s) {
    state.seq = s.seq;
    state.offsetMs = s.atMs - Date.now();
    state.node = s.node;
    state.features = s.features;
    state.thresholds = s.thresholds;
    state.sampleWindowMs = s.limits.sampleWindowMs;
    state.channels = new Map(s.channels.map((c) => [c.peer, c]));
    state.samples = new Map();
    addSamples(s.samples);
    state.log = [];
    addLog(s.log);
    state.runs = new Map(s.resyncRuns.map((r) => [r.id, r]));
    state.stateLosses = s.stateLosses.slice();
    state.conditions = s.conditions.slice();
    document.body.dataset.snapshot = String(s.seq);
    schedule();
    window.ParleyPayments.started(s.features);
  }

  function onDelta(d) {
    if (d.seq <= state.seq) return; // already in the snapshot
    state.seq = d.seq;
    state.offsetMs = d.atMs - Date.now();
    // Payments moved when a channel's command counts or open objects did.
    const moved = (c) => `${c.commandsSent}|${c.commandsReceived}|${c.openObjects}|${c.name}`;
    let paymentsMoved = false;
    for (const c of d.channels) {
      const before = state.channels.get(c.peer);
      if (!before || moved(before) !== moved(c)) paymentsMoved = true;
      state.channels.set(c.peer, c);
    }
    if (paymentsMoved) window.ParleyPayments.changed();
    addSamples(d.samples);
    addLog(d.log);
    for (const r of d.resyncRuns) state.runs.set(r.id, r);
    state.stateLosses.push(...d.stateLosses);
    if (d.conditions) state.conditions = d.conditions.slice();
    document.body.dataset.seq = String(d.seq);
    schedule();
  }

  // ---- rendering ---------------------------------------------------------------------------

  function renderHeader() {
    if (!state.node) return;
    $('node-address').textContent = short(state.node.address);
    $('node-address').title = state.node.address;
    $('node-epoch').textContent = state.node.epoch.slice(0, 12);
    document.title = `Parley · ${short(state.node.address)}`;
  }

  function renderSummary() {
    const rows = [...state.channels.values()];
    const count = (pred) => rows.filter(pred).length;
    const h = (row) => healthOf(row);
    const values = {
      channels: rows.length,
      healthy: count((r) => h(r) === 'healthy' || h(r) === 'connected'),
      suspect: count((r) => h(r) === 'suspect'),
      down: count((r) => h(r) === 'down' || h(r) === 'disconnected' || h(r) === 'closed'),
      lost: state.stateLosses.filter((l) => l.atMs >= now() - DAY_MS).length,
      resync: [...state.runs.values()].filter((r) => r.status === 'running').length,
      backoffice: count((r) => Boolean(r.backoffice)),
    };
    for (const [key, value] of Object.entries(values)) {
      $(`sum-${key}`).textContent = String(value);
      document.querySelector(`[data-tile="${key}"]`).dataset.zero = String(value === 0);
    }
    $('no-health').hidden = state.features.health;
    const recent = state.stateLosses.filter((l) => l.atMs >= now() - DAY_MS);
    const last = recent[recent.length - 1];
    $('sum-lost-last').textContent = last ? `last ${clock(last.atMs)} · ${nameOf(last.peer)}` : 'none';
    $('sum-lost-last').dataset.peer = last ? last.peer : '';
    if (state.thresholds.downPhi) $('phi-caption').textContent = `Suspicion φ (down above ${state.thresholds.downPhi}; drawn up to ${state.thresholds.downPhi * 1.25})`;
    if (state.thresholds.downPhi) $('phi-head').title = `Suspicion φ of the failure detector: suspect above ${state.thresholds.suspectPhi}, down above ${state.thresholds.downPhi}`;
  }

  function renderChannels() {
    const body = $('channels').tBodies[0];
    const rows = [...state.channels.values()].sort((a, b) => a.peer.localeCompare(b.peer));
    body.replaceChildren(
      ...rows.map((c) => {
        const tr = document.createElement('tr');
        const health = healthOf(c);
        tr.dataset.peer = c.peer;
        tr.dataset.health = health;
        tr.dataset.connection = c.connection;
        tr.dataset.stateLost = String(Boolean(c.health?.peerStateLost));
        const peer = td();
        const sw = document.createElement('span');
        sw.className = 'swatch';
        sw.style.background = colorOf(c.peer);
        peer.append(sw, nameOf(c.peer));
        peer.title = c.peer;
        tr.dataset.name = c.name || c.peer;
        const healthCell = td(undefined, 'health');
        healthCell.append(badge(health));
        if (c.health?.peerStateLost) healthCell.append(flag('peer_state_lost', 'peer_state_lost'));
        if (c.health?.diverged) healthCell.append(flag('diverged', 'diverged', true));
        // Commands of mine stuck at that peer (LIP-1 HTTP channels too, which have no health).
        if (c.peerBehind) {
          const f = flag(`peer_behind ${c.peerBehind.commands}`, 'peer_behind', true);
          f.title = `since ${clock(c.peerBehind.sinceMs)}: parley command abandon <cid>`;
          healthCell.append(f);
        }
        // Payments on the channel wait for a back office that does not answer.
        if (c.backoffice) {
          const f = flag('backoffice_unreachable', 'backoffice_unreachable');
          f.title = `since ${clock(c.backoffice.sinceMs)}: ${c.backoffice.requests} question(s) unanswered; ${c.backoffice.error}`;
          healthCell.append(f);
        }
        if (c.health) healthCell.title = `since ${clock(c.health.sinceMs)}`;
        const link = td();
        link.append(badge(c.connection));
        // Several replicas: another replica serves this channel; this one stands by.
        if (c.lease === 'standby') link.append(' ', flag('standby', 'standby'));
        if (c.connection !== 'connected' && c.lastDisconnect) link.title = `${c.lastDisconnect.code} ${c.lastDisconnect.reason} at ${clock(c.lastDisconnect.atMs)}`;
        else if (c.connectedSinceMs) link.title = `since ${clock(c.connectedSinceMs)}`;
        const live = c.health ? c.health.state === 'healthy' || c.health.state === 'suspect' : false;
        const rtt = live ? c.health.rttMs : null;
        const resync = td(undefined, 'resync');
        if (c.resync) {
          resync.append(badge(c.resync.status), ' ', progress(c.resync));
          resync.dataset.status = c.resync.status;
        } else if (!c.restore) resync.textContent = '—';
        if (c.restore) resync.append(restoreLine(c));
        tr.append(
          peer,
          healthCell,
          link,
          td(rtt === null || rtt === undefined ? '—' : rtt.toFixed(1), 'num'),
          Object.assign(td(phiText(c), 'num'), { title: c.health && c.health.phi !== null ? `φ ${c.health.phi.toFixed(2)}` : '' }),
          td(c.peerEpoch ? c.peerEpoch.slice(0, 12) : '—'),
          td(String(c.openObjects), 'num'),
          td(String(c.inflight), 'num'),
          td(String(c.retransmits), 'num'),
          Object.assign(td(`${c.commandsSent} / ${c.commandsReceived}`, 'num'), {
            title: `${c.commandsSent} of my commands got their final outcome; ${c.commandsReceived} of the peer's were committed here`,
          }),
          resync,
        );
        return tr;
      }),
    );
  }

  /**
   * The conditions that need a person, in words, under the names of the Prometheus alerts
   * (ops/parley-alerts.yml): from the channel rows and the node's own conditions.
   */
  function currentAlerts() {
    const out = [];
    const add = (name, severity, peer, since, text) => out.push({ name, severity, peer, since, text });
    const lastRun = new Map();
    for (const r of state.runs.values()) {
      const prev = lastRun.get(r.peer);
      if (!prev || prev.startedAtMs < r.startedAtMs) lastRun.set(r.peer, r);
    }
    for (const c of [...state.channels.values()].sort((a, b) => a.peer.localeCompare(b.peer))) {
      const who = nameOf(c.peer);
      if (c.health && c.health.state === 'down')
        add('ParleyPeerDown', 'critical', c.peer, c.health.sinceMs, `${who} is down: no heartbeat; payments with it wait in the outbox.`);
      if (c.backoffice)
        add('ParleyBackofficeUnreachable', 'critical', c.peer, c.backoffice.sinceMs, `The back office does not answer for payments with ${who} (${c.backoffice.requests} question(s), last: ${c.backoffice.error}); they wait for its decisions.`);
      if (c.health && c.health.peerStateLost)
        add('ParleyPeerStateLost', 'warning', c.peer, null, `${who} lost its state (a new store epoch); a resync repairs the channel.`);
      if (c.peerBehind)
        add('ParleyPeerBehind', 'warning', c.peer, c.peerBehind.sinceMs, `${who} is behind: ${c.peerBehind.commands} command(s) stuck there; ask them, or parley command abandon <cid>.`);
      if (c.health && c.health.diverged)
        add('diverged', 'warning', c.peer, null, `The open objects with ${who} differ; a resync compares them.`);
      const run = lastRun.get(c.peer);
      if (run && run.status === 'failed')
        add('ParleyResyncFailed', 'warning', c.peer, run.finishedAtMs, `The last resync with ${who} failed: ${run.error || 'unknown'}.`);
    }
    for (const n of state.conditions) add(n.alert, n.severity, null, n.sinceMs, n.message);
    return out;
  }

  function renderAlerts() {
    const alerts = currentAlerts();
    $('alerts').dataset.state = alerts.length ? (alerts.some((a) => a.severity === 'critical') ? 'critical' : 'warning') : 'ok';
    $('no-alerts').hidden = alerts.length > 0;
    $('alert-list').replaceChildren(
      ...alerts.map((a) => {
        const li = document.createElement('li');
        li.dataset.alert = a.name;
        li.dataset.severity = a.severity;
        if (a.peer) li.dataset.peer = a.peer;
        const name = document.createElement('b');
        name.textContent = a.name;
        li.append(badge(a.severity), ' ', name, ` ${a.text}`);
        if (a.since) li.append(Object.assign(document.createElement('small'), { textContent: ` since ${clock(a.since)}` }));
        return li;
      }),
    );
  }

  function renderCharts() {
    const t = now();
    const series = (pick) =>
      [...state.channels.keys()].sort().map((peer) => ({
        key: peer,
        color: colorOf(peer),
        points: (state.samples.get(peer) || []).map((s) => [s.atMs, pick(s)]),
      }));
    const empty = state.features.health ? 'waiting for heartbeats' : 'no health monitor on this node';
    window.ParleyChart.draw($('chart-rtt'), {
      series: series((s) => s.rttMs),
      nowMs: t,
      windowMs: CHART_WINDOW_MS,
      minMax: 2,
      emptyText: empty,
    });
    const thresholds = [];
    if (state.thresholds.suspectPhi) thresholds.push({ value: state.thresholds.suspectPhi, color: '#d29922', label: 'suspect' });
    if (state.thresholds.downPhi) thresholds.push({ value: state.thresholds.downPhi, color: '#f85149', label: 'down' });
    window.ParleyChart.draw($('chart-phi'), {
      series: series((s) => s.phi),
      nowMs: t,
      windowMs: CHART_WINDOW_MS,
      thresholds,
      minMax: 1,
      // Capped just above the down threshold: a dead peer's φ grows without bound.
      cap: state.thresholds.downPhi ? state.thresholds.downPhi * 1.25 : 10,
      emptyText: empty,
    });
    $('legend').replaceChildren(
      ...[...state.channels.keys()].sort().map((peer) => {
        const item = document.createElement('span');
        const sw = document.createElement('span');
        sw.className = 'swatch';
        sw.style.background = colorOf(peer);
        item.append(sw, nameOf(peer));
        return item;
      }),
    );
  }

  function renderRuns() {
    const runs = [...state.runs.values()].sort((a, b) => b.startedAtMs - a.startedAtMs);
    $('no-resync').hidden = runs.length > 0;
    $('resync-runs').tBodies[0].replaceChildren(
      ...runs.map((r) => {
        const tr = document.createElement('tr');
        tr.dataset.run = r.id;
        tr.dataset.peer = r.peer;
        tr.dataset.status = r.status;
        tr.dataset.startedAt = String(r.startedAtMs);
        const status = td();
        status.append(badge(r.status));
        if (r.error) status.title = r.error;
        const prog = td();
        prog.append(progress(r));
        if (r.phase && r.status === 'running') prog.append(` ${r.phase}`);
        const took = (r.finishedAtMs ?? now()) - r.startedAtMs;
        tr.append(
          Object.assign(td(`#${r.id.slice(0, 8)}`), { title: r.id }),
          td(nameOf(r.peer)),
          td(r.reason),
          status,
          prog,
          td(String(r.objectsSent), 'num'),
          td(String(r.objectsReceived), 'num'),
          td(String(r.rounds), 'num'),
          td(clock(r.startedAtMs)),
          td(duration(took), 'num'),
        );
        return tr;
      }),
    );
  }

  function renderLog() {
    const list = $('log');
    const items = state.log.slice().reverse();
    list.replaceChildren(
      ...items.map((e) => {
        const li = document.createElement('li');
        li.dataset.kind = e.kind;
        li.dataset.level = e.level;
        if (e.peer) li.dataset.peer = e.peer;
        const time = document.createElement('time');
        time.textContent = clock(e.atMs);
        li.append(time, e.message);
        return li;
      }),
    );
  }

  let pending = false;
  function schedule() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      renderHeader();
      renderSummary();
      renderAlerts();
      renderChannels();
      renderCharts();
      renderRuns();
      renderLog();
    });
  }
  // The charts' time axis moves even when nothing else changes.
  setInterval(() => {
    if (state.node) renderCharts();
  }, 1000);

  // ---- socket ------------------------------------------------------------------------------

  const link = $('link');
  const setLink = (value, text) => {
    link.dataset.state = value;
    link.textContent = text;
    document.body.dataset.link = value;
  };
  const socket = window.io({ path: '/socket.io' });
  socket.on('connect', () => setLink('live', 'live'));
  socket.on('disconnect', () => setLink('reconnecting', 'node unreachable — reconnecting…'));
  socket.on('connect_error', () => setLink('reconnecting', 'node unreachable — reconnecting…'));
  window.ParleyPayments.attach({
    socket,
    nameOf,
    clock,
    peers: () => [...state.channels.keys()].sort(),
  });
  socket.on('snapshot', onSnapshot);
  socket.on('delta', onDelta);
})();
