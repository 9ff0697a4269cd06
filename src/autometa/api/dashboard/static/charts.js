// Small hand-drawn SVG charts (no library): buckets of executions over time, drawn as a line
// (success rate, latency) or bars (fees).

const NS = 'http://www.w3.org/2000/svg';
const W = 300, H = 140, PAD = { l: 34, r: 8, t: 10, b: 20 };

function el(name, attrs, text) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

// Split executions (with occurred_at) into up to `n` equal time buckets.
export function bucketize(executions, n = 12) {
  const rows = executions.filter((e) => e.occurred_at).map((e) => ({ ...e, t: Date.parse(e.occurred_at) }));
  if (!rows.length) return [];
  const lo = Math.min(...rows.map((r) => r.t)), hi = Math.max(...rows.map((r) => r.t));
  const span = Math.max(hi - lo, 1000), size = span / n;
  const buckets = Array.from({ length: n }, (_, i) => ({ t: lo + (i + 0.5) * size, rows: [] }));
  for (const r of rows) buckets[Math.min(n - 1, Math.floor((r.t - lo) / size))].rows.push(r);
  return buckets.map((b) => {
    const decided = b.rows.filter((r) => r.status === 'success' || r.status === 'failed');
    const lat = b.rows.filter((r) => typeof r.latency_s === 'number');
    const fees = b.rows.reduce((sum, r) => sum + (r.fee_wei ? Number(BigInt(r.fee_wei)) / 1e18 : 0), 0);
    return {
      t: b.t, n: b.rows.length,
      success: decided.length ? decided.filter((r) => r.status === 'success').length / decided.length : null,
      latency: lat.length ? lat.reduce((s, r) => s + r.latency_s, 0) / lat.length : null,
      fees,
    };
  });
}

function frame(svg, yMax, fmt, t0, t1) {
  svg.replaceChildren();
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  const x0 = PAD.l, x1 = W - PAD.r, y0 = H - PAD.b, y1 = PAD.t;
  svg.append(el('line', { class: 'axis', x1: x0, y1: y0, x2: x1, y2: y0 }), el('line', { class: 'axis', x1: x0, y1: y1, x2: x0, y2: y0 }));
  svg.append(el('text', { x: 2, y: y1 + 8 }, fmt(yMax)), el('text', { x: 2, y: y0 }, fmt(0)));
  const clock = (t) => new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  svg.append(el('text', { x: x0, y: H - 4 }, clock(t0)), el('text', { x: x1, y: H - 4, 'text-anchor': 'end' }, clock(t1)));
  return {
    x: (t) => (t1 === t0 ? (x0 + x1) / 2 : x0 + ((t - t0) / (t1 - t0)) * (x1 - x0)),
    y: (v) => y0 - (yMax ? v / yMax : 0) * (y0 - y1),
    y0,
  };
}

function empty(svg) {
  svg.replaceChildren(el('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'no data yet'));
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
}

export function lineChart(svg, buckets, key, { max = null, fmt = (v) => v.toFixed(1) } = {}) {
  const pts = buckets.filter((b) => b[key] !== null && b.n > 0);
  if (!pts.length) return empty(svg);
  const yMax = max ?? (Math.max(...pts.map((p) => p[key])) * 1.15 || 1);
  const f = frame(svg, yMax, fmt, buckets[0].t, buckets[buckets.length - 1].t);
  const d = pts.map((p, i) => `${i ? 'L' : 'M'}${f.x(p.t).toFixed(1)},${f.y(p[key]).toFixed(1)}`).join(' ');
  svg.append(el('path', { class: 'line', d }));
  for (const p of pts) {
    const dot = el('circle', { class: 'dot', cx: f.x(p.t).toFixed(1), cy: f.y(p[key]).toFixed(1), r: 3 });
    dot.append(el('title', {}, `${fmt(p[key])} (${p.n} runs)`));
    svg.append(dot);
  }
  svg.dataset.points = String(pts.length);
}

export function barChart(svg, buckets, key, { fmt = (v) => v.toPrecision(2) } = {}) {
  const pts = buckets.filter((b) => b.n > 0);
  if (!pts.length) return empty(svg);
  const yMax = Math.max(...pts.map((p) => p[key])) * 1.15 || 1;
  const f = frame(svg, yMax, fmt, buckets[0].t, buckets[buckets.length - 1].t);
  const width = Math.max(4, (W - PAD.l - PAD.r) / (buckets.length * 1.5));
  for (const p of pts) {
    const y = f.y(p[key]);
    const bar = el('rect', { class: 'bar', x: (f.x(p.t) - width / 2).toFixed(1), y: y.toFixed(1), width: width.toFixed(1),
      height: Math.max(0, f.y0 - y).toFixed(1) });
    bar.append(el('title', {}, `${fmt(p[key])} (${p.n} runs)`));
    svg.append(bar);
  }
  svg.dataset.points = String(pts.length);
}
