// A tiny time-series line chart in SVG (no dependency: the page must work offline).
// ParleyChart.draw(svg, { series: [{ key, color, points: [[atMs, value], ...] }], nowMs, windowMs,
//   thresholds: [{ value, color, label }], minMax, cap, emptyText })
'use strict';

(() => {
  const NS = 'http://www.w3.org/2000/svg';
  const W = 600;
  const H = 220;
  const PAD = { left: 44, right: 10, top: 10, bottom: 22 };

  function el(name, attrs, text) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // A "nice" upper bound: 1, 2 or 5 times a power of ten.
  function niceMax(value) {
    if (!(value > 0)) return 1;
    const p = 10 ** Math.floor(Math.log10(value));
    for (const m of [1, 2, 5, 10]) if (value <= m * p) return m * p;
    return 10 * p;
  }

  function draw(svg, options) {
    const { series, nowMs, windowMs, thresholds = [], minMax = 1, cap = Number.POSITIVE_INFINITY } = options;
    const start = nowMs - windowMs;
    let max = minMax;
    for (const s of series) for (const [t, v] of s.points) if (t >= start && v > max) max = v;
    for (const th of thresholds) if (th.value * 1.15 > max) max = th.value * 1.15;
    // Values past `cap` are drawn at the top edge (phi of a dead peer grows without bound).
    max = niceMax(Math.min(max, cap));
    const x = (t) => PAD.left + ((t - start) / windowMs) * (W - PAD.left - PAD.right);
    const y = (v) => H - PAD.bottom - (Math.min(v, max) / max) * (H - PAD.top - PAD.bottom);

    const nodes = [];
    for (let i = 0; i <= 4; i++) {
      const v = (max * i) / 4;
      nodes.push(el('line', { class: 'grid', x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v) }));
      const label = v >= 100 || Number.isInteger(v) ? v.toFixed(0) : v.toFixed(1);
      nodes.push(el('text', { class: 'axis', x: PAD.left - 6, y: y(v) + 4, 'text-anchor': 'end' }, label));
    }
    const stepS = windowMs >= 240_000 ? 60 : windowMs >= 60_000 ? 30 : 10;
    for (let s = 0; s * 1000 <= windowMs; s += stepS) {
      const t = nowMs - s * 1000;
      nodes.push(el('text', { class: 'axis', x: x(t), y: H - 6, 'text-anchor': 'middle' }, s === 0 ? 'now' : `-${s}s`));
    }
    for (const th of thresholds) {
      nodes.push(
        el('line', { class: 'threshold', stroke: th.color, x1: PAD.left, x2: W - PAD.right, y1: y(th.value), y2: y(th.value) }),
      );
      nodes.push(el('text', { class: 'axis', x: W - PAD.right - 4, y: y(th.value) - 4, 'text-anchor': 'end' }, th.label));
    }
    let drawn = 0;
    for (const s of series) {
      // A null value (no measurement) breaks the line instead of bridging the gap.
      const inWindow = s.points.filter(([t]) => t >= start);
      const visible = inWindow.filter(([, v]) => Number.isFinite(v));
      if (visible.length === 0) continue;
      drawn++;
      let pen = 'M';
      const parts = [];
      for (const [t, v] of inWindow) {
        if (!Number.isFinite(v)) {
          pen = 'M';
          continue;
        }
        parts.push(`${pen}${x(t).toFixed(1)},${y(v).toFixed(1)}`);
        pen = 'L';
      }
      const d = parts.join(' ');
      nodes.push(
        el('path', {
          class: 'series',
          d: visible.length === 1 ? `${d} l1,0` : d,
          stroke: s.color,
          'data-peer': s.key,
          'data-points': visible.length,
        }),
      );
    }
    if (drawn === 0) {
      nodes.push(el('text', { class: 'empty', x: W / 2, y: H / 2, 'text-anchor': 'middle' }, options.emptyText ?? 'no samples yet'));
    }
    svg.replaceChildren(...nodes);
    svg.setAttribute('data-series', String(drawn));
  }

  window.ParleyChart = { draw };
})();
