// The payments view: a filtered list and one payment's object, sides and signed history, read
// over the page's socket with the admin API's own answers (contract: src/dashboard/events.ts).
'use strict';

window.ParleyPayments = (() => {
  const $ = (id) => document.getElementById(id);
  let page = null; // { socket, nameOf, peers(), clock }
  let filters = {};
  let cursor = null;
  let selected = null; // { referenceId, peer }
  let rows = [];
  let refreshTimer = null;

  /** A long reference id by its ends (its tail tells payments of one sender apart). */
  const shortRef = (ref) => (ref.length > 30 ? `${ref.slice(0, 8)}…${ref.slice(-18)}` : ref);
  function cell(text, className) {
    const td = document.createElement('td');
    if (className) td.className = className;
    td.textContent = text;
    return td;
  }
  function badge(value) {
    const b = document.createElement('span');
    b.className = 'badge';
    b.dataset.value = value;
    b.textContent = value;
    return b;
  }
  function withBadge(value) {
    const td = document.createElement('td');
    if (value === null || value === undefined) td.textContent = '—';
    else td.append(badge(value));
    return td;
  }
  const when = (iso) => {
    const d = new Date(iso);
    return `${d.toLocaleDateString()} ${page.clock(d.getTime())}`;
  };
  function ask(event, request) {
    return new Promise((resolve) => page.socket.timeout(30_000).emit(event, request, (err, answer) => resolve(err ? { status: 0, body: { error: 'DASHBOARD_TIMEOUT', message: 'the node did not answer' } } : answer)));
  }
  function note(text, kind) {
    $('payments-note').textContent = text;
    $('payments-note').dataset.kind = kind || '';
  }

  /** The filter form as the admin API's query (times as milliseconds since the epoch). */
  function readFilters() {
    const form = $('payment-filters');
    const out = {};
    for (const name of ['peer', 'status', 'state']) {
      const v = form.elements[name].value;
      if (v) out[name] = v;
    }
    for (const name of ['since', 'until']) {
      const v = form.elements[name].value;
      if (v) out[name] = String(new Date(v).getTime());
    }
    return out;
  }

  async function load(more) {
    const query = { ...filters };
    if (more && cursor) query.cursor = cursor;
    const answer = await ask('payments', query);
    if (answer.status !== 200) {
      note(`${answer.body.error}: ${answer.body.message}`, 'error');
      if (!more) render([]);
      return;
    }
    rows = more ? rows.concat(answer.body.payments) : answer.body.payments;
    cursor = answer.body.nextCursor || null;
    render(rows);
    note(rows.length === 0 ? 'No payment matches.' : `${rows.length} payment(s)${cursor ? ', more below' : ''}, last changed first.`);
  }

  function render(list) {
    const body = $('payments').tBodies[0];
    body.replaceChildren(
      ...list.map((p) => {
        const tr = document.createElement('tr');
        tr.dataset.ref = p.referenceId;
        tr.dataset.peer = p.peer;
        tr.dataset.open = String(p.open);
        tr.tabIndex = 0;
        if (selected && selected.referenceId === p.referenceId && selected.peer === p.peer) tr.setAttribute('aria-selected', 'true');
        const peer = cell(page.nameOf(p.peer));
        peer.title = p.peer;
        tr.append(
          Object.assign(cell(shortRef(p.referenceId)), { title: p.referenceId }),
          peer,
          cell(p.myRole || '—'),
          withBadge(p.myStatus),
          withBadge(p.theirStatus),
          cell(p.amount === null ? '—' : `${p.amount} ${p.currency || ''}`.trim(), 'num'),
          withBadge(p.open ? 'open' : 'closed'),
          cell(String(p.versionCount), 'num'),
          cell(when(p.updatedAt)),
        );
        const open = () => show({ referenceId: p.referenceId, peer: p.peer });
        tr.addEventListener('click', open);
        tr.addEventListener('keydown', (e) => {
          if (e.key === 'Enter') open();
        });
        return tr;
      }),
    );
    $('payments-more').hidden = !cursor;
  }

  function pre(text, part) {
    const el = document.createElement('pre');
    el.className = 'jws';
    el.dataset.part = part;
    el.textContent = text;
    return el;
  }

  async function show(which) {
    selected = which;
    for (const tr of $('payments').tBodies[0].rows) {
      tr.setAttribute('aria-selected', String(tr.dataset.ref === which.referenceId && tr.dataset.peer === which.peer));
    }
    const answer = await ask('payment', which);
    const detail = $('payment-detail');
    detail.hidden = false;
    if (answer.status !== 200) {
      $('payment-detail-title').textContent = `${which.referenceId}: ${answer.body.error}: ${answer.body.message}`;
      return;
    }
    const { summary, payment, history, pending } = answer.body;
    detail.dataset.ref = summary.referenceId;
    detail.dataset.peer = summary.peer;
    $('payment-detail-title').textContent = `${summary.referenceId} with ${page.nameOf(summary.peer)} · ${summary.open ? 'open' : 'closed'} · ${summary.versionCount} version(s)`;
    $('payment-version').textContent = summary.version;
    const sides = ['sender', 'receiver'].map((side) => {
      const actor = payment[side] || {};
      const st = actor.status || {};
      const tr = document.createElement('tr');
      tr.dataset.side = side;
      tr.dataset.status = st.status || 'none';
      const mine = summary.myRole === side;
      tr.append(
        cell(`${side}${mine ? ' (me)' : summary.myRole ? ' (them)' : ''}`),
        Object.assign(cell(actor.address || '—'), { title: actor.address || '' }),
        withBadge(st.status || 'none'),
        cell(st.abort_code ? `${st.abort_code}: ${st.abort_message || ''}` : '—'),
      );
      return tr;
    });
    $('payment-sides').tBodies[0].replaceChildren(...sides);
    $('payment-object').textContent = JSON.stringify(payment, null, 2);
    $('payment-history').replaceChildren(
      ...history.map((c) => {
        const li = document.createElement('li');
        li.dataset.cid = c.cid;
        li.dataset.direction = c.direction;
        li.dataset.status = c.status;
        const meta = document.createElement('div');
        meta.className = 'meta';
        const from = c.direction === 'outbound' ? 'mine' : `${page.nameOf(summary.peer)}'s`;
        meta.append(badge(c.status), ` ${from} command ${c.cid} · ${c.readVersion || 'create'} → ${c.writeVersion} · ${when(c.at)}${c.errorCode ? ` · ${c.errorCode}` : ''}`);
        li.append(meta, 'request', pre(c.requestJws, 'request'), 'response', pre(c.responseJws, 'response'));
        return li;
      }),
    );
    $('payment-pending-title').hidden = pending.length === 0;
    $('payment-pending').replaceChildren(
      ...pending.map((c) => {
        const li = document.createElement('li');
        li.dataset.cid = c.cid;
        const meta = document.createElement('div');
        meta.className = 'meta';
        meta.textContent = `my command ${c.cid} · ${c.attempts} attempt(s) since ${when(c.queuedAt)}`;
        li.append(meta, 'request', pre(c.requestJws, 'request'));
        return li;
      }),
    );
  }

  function fillPeers() {
    const select = $('payment-filters').elements.peer;
    const current = select.value;
    const peers = page.peers();
    const have = [...select.options].map((o) => o.value).join('|');
    if (have === ['', ...peers].join('|')) return;
    select.replaceChildren(
      Object.assign(document.createElement('option'), { value: '', textContent: 'any' }),
      ...peers.map((p) => Object.assign(document.createElement('option'), { value: p, textContent: page.nameOf(p) })),
    );
    select.value = current;
  }

  return {
    /** Wires the view to the page's socket and names. */
    attach(p) {
      page = p;
      $('payment-filters').addEventListener('submit', (e) => {
        e.preventDefault();
        filters = readFilters();
        cursor = null;
        void load(false);
      });
      $('payments-more').addEventListener('click', () => void load(true));
    },
    /** A snapshot arrived: the node's channels and whether it has a payments view. */
    started(features) {
      fillPeers();
      $('payments-section').dataset.available = String(Boolean(features.payments));
      if (!features.payments) {
        note('This node has no payments view (its store was not made by openStore).');
        return;
      }
      void load(false);
    },
    /** Something changed on a channel: read the list (and the open payment) again, at most once a second. */
    changed() {
      fillPeers();
      if (refreshTimer || $('payments-section').dataset.available !== 'true') return;
      refreshTimer = setTimeout(() => {
        refreshTimer = null;
        if (!cursor) void load(false);
        if (selected) void show(selected);
      }, 1000);
    },
  };
})();
