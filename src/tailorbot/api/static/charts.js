// Small SVG charts for the tailorbot dashboard: lines over time, stacked shares, bars and
// intervals. Hand-written so the page needs no CDN and no build step. Each chart sets
// data-points on its container to the number of values it drew (0: "no data yet").
"use strict";

const Charts = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const W = 480, H = 190, M = { top: 10, right: 12, bottom: 22, left: 44 };
  const PALETTE = ["#3b6fd8", "#e0793a", "#2e9e6b", "#b04fbf", "#d4a72c", "#d64545",
                   "#4aa3b8", "#7d8597", "#8a6d3b", "#5a5fd1", "#9bbf3b", "#c25b8a"];

  function el(tag, attrs, parent) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  }

  function frame(container, height) {
    container.replaceChildren();
    const svg = el("svg", { viewBox: `0 0 ${W} ${height || H}`, role: "img" }, null);
    container.appendChild(svg);
    return svg;
  }

  function empty(container, text) {
    const svg = frame(container, 60);
    const t = el("text", { x: W / 2, y: 34, "text-anchor": "middle", class: "empty" }, svg);
    t.textContent = text || "no data yet";
    container.dataset.points = "0";
  }

  function fmt(v, unit) {
    if (v === null || v === undefined || Number.isNaN(v)) return "–";
    if (unit === "%") return (100 * v).toFixed(Math.abs(v) < 0.1 ? 1 : 0) + " %";
    const a = Math.abs(v);
    if (a >= 1000) return (v / 1000).toFixed(1) + "k";
    if (a >= 100) return v.toFixed(0);
    if (a >= 10) return v.toFixed(1);
    return v.toFixed(2);
  }

  function short(text) {
    return text.length > 27 ? text.slice(0, 26) + "…" : text;
  }

  function legend(container, names) {
    const div = document.createElement("div");
    div.className = "legend";
    names.forEach((name, i) => {
      const span = document.createElement("span");
      const sw = document.createElement("i");
      sw.style.background = PALETTE[i % PALETTE.length];
      span.append(sw, name);
      div.appendChild(span);
    });
    container.appendChild(div);
  }

  function yAxis(svg, lo, hi, unit, height) {
    const h = height || H;
    const y = (v) => M.top + (h - M.top - M.bottom) * (1 - (v - lo) / (hi - lo || 1));
    for (let i = 0; i <= 3; i++) {
      const v = lo + ((hi - lo) * i) / 3;
      el("line", { x1: M.left, x2: W - M.right, y1: y(v), y2: y(v), class: "grid" }, svg);
      const t = el("text", { x: M.left - 4, y: y(v) + 3, "text-anchor": "end", class: "tick" }, svg);
      t.textContent = fmt(v, unit);
    }
    return y;
  }

  function timeAxis(svg, t0, t1) {
    const x = (t) => M.left + (W - M.left - M.right) * ((t - t0) / (t1 - t0 || 1));
    el("line", { x1: M.left, x2: W - M.right, y1: H - M.bottom, y2: H - M.bottom, class: "axis" }, svg);
    (t1 > t0 ? [t0, t1] : [t1]).forEach((t, i) => {
      const label = el("text", { x: x(t), y: H - 6, "text-anchor": i ? "end" : "start",
                                 class: "tick" }, svg);
      label.textContent = new Date(t * 1000).toLocaleTimeString();
    });
    return x;
  }

  // series: [{name, points: [[t, value|null], ...]}]; opts: {unit, max}
  function lines(container, series, opts) {
    opts = opts || {};
    const all = series.flatMap((s) => s.points.filter((p) => p[1] !== null && p[1] !== undefined));
    if (!all.length) return empty(container);
    const ts = series.flatMap((s) => s.points.map((p) => p[0]));
    const t0 = Math.min(...ts), t1 = Math.max(...ts);
    const hi = opts.max !== undefined ? opts.max : Math.max(...all.map((p) => p[1])) * 1.1 || 1;
    const svg = frame(container);
    const y = yAxis(svg, 0, hi, opts.unit);
    const x = timeAxis(svg, t0, t1);
    series.forEach((s, i) => {
      let d = "", pen = "M";
      for (const [t, v] of s.points) {
        if (v === null || v === undefined) { pen = "M"; continue; }
        d += `${pen}${x(t).toFixed(1)},${y(v).toFixed(1)} `;
        pen = "L";
      }
      const color = PALETTE[i % PALETTE.length];
      if (d) el("path", { d, fill: "none", stroke: color, "stroke-width": 1.8, class: "series" }, svg);
      const drawn = s.points.filter((p) => p[1] !== null && p[1] !== undefined);
      if (drawn.length < 30) {  // few points: mark them, a lone one has no line
        for (const [t, v] of drawn) el("circle", { cx: x(t), cy: y(v), r: 2.5, fill: color }, svg);
      }
    });
    legend(container, series.map((s) => s.name));
    container.dataset.points = String(all.length);
  }

  // Stacked shares (each point's values sum to 1): series as in lines().
  function stacked(container, series) {
    const n = series.length ? series[0].points.length : 0;
    const drawn = series.flatMap((s) => s.points.filter((p) => p[1] !== null));
    if (!n || !drawn.length) return empty(container);
    const ts = series[0].points.map((p) => p[0]);
    const svg = frame(container);
    const y = yAxis(svg, 0, 1, "%");
    const x = timeAxis(svg, ts[0], ts[ts.length - 1]);
    const base = new Array(n).fill(0);
    series.forEach((s, i) => {
      const top = s.points.map((p, j) => base[j] + (p[1] || 0));
      const upper = top.map((v, j) => `${x(ts[j]).toFixed(1)},${y(v).toFixed(1)}`);
      const lower = base.map((v, j) => `${x(ts[j]).toFixed(1)},${y(v).toFixed(1)}`).reverse();
      el("polygon", { points: upper.concat(lower).join(" "), fill: PALETTE[i % PALETTE.length],
                      "fill-opacity": 0.75, class: "series" }, svg);
      top.forEach((v, j) => { base[j] = v; });
    });
    legend(container, series.map((s) => s.name));
    container.dataset.points = String(drawn.length);
  }

  // items: [{label, value}]; opts: {unit, thresholds: [{value, label}]}
  function bars(container, items, opts) {
    opts = opts || {};
    const shown = items.filter((it) => it.value !== null && it.value !== undefined);
    if (!shown.length) return empty(container, opts.emptyText);
    const row = 18, height = M.top + row * shown.length + 14;
    const svg = frame(container, height);
    const left = 190, right = W - 60;
    const limits = (opts.thresholds || []).map((t) => t.value);
    const hi = Math.max(...shown.map((it) => it.value), ...limits) || 1;
    const x = (v) => left + (right - left) * (Math.max(v, 0) / hi);
    shown.forEach((it, i) => {
      const yy = M.top + i * row;
      const label = el("text", { x: left - 6, y: yy + 12, "text-anchor": "end", class: "label" }, svg);
      label.textContent = short(it.label);
      el("rect", { x: left, y: yy + 2, width: Math.max(x(it.value) - left, 1), height: row - 5,
                   fill: PALETTE[(opts.color || 0) % PALETTE.length], class: "series" }, svg);
      const value = el("text", { x: x(it.value) + 4, y: yy + 12, class: "tick" }, svg);
      value.textContent = fmt(it.value, opts.unit);
    });
    (opts.thresholds || []).forEach((t) => {
      el("line", { x1: x(t.value), x2: x(t.value), y1: M.top - 4, y2: height - 12,
                   stroke: "#d64545", "stroke-dasharray": "3,3" }, svg);
      const label = el("text", { x: x(t.value), y: height - 2, "text-anchor": "middle",
                                 class: "tick" }, svg);
      label.textContent = t.label;
    });
    container.dataset.points = String(shown.length);
  }

  // items: [{label, mean, lo, hi, n}]; opts: {unit, min, max, zero: bool}
  function intervals(container, items, opts) {
    opts = opts || {};
    const shown = items.filter((it) => it.mean !== null && it.mean !== undefined);
    if (!shown.length) return empty(container, "no feedback yet");
    const row = 28, height = M.top + row * shown.length + 14;
    const svg = frame(container, height);
    const left = 130, right = W - 110;
    const values = shown.flatMap((it) => [it.lo ?? it.mean, it.hi ?? it.mean]);
    const lo = opts.min !== undefined ? opts.min : Math.min(0, ...values);
    const hi = opts.max !== undefined ? opts.max : Math.max(...values);
    const x = (v) => left + (right - left) * ((v - lo) / (hi - lo || 1));
    if (opts.zero) el("line", { x1: x(0), x2: x(0), y1: 2, y2: height - 12, class: "axis" }, svg);
    shown.forEach((it, i) => {
      const yy = M.top + i * row + 10;
      const color = PALETTE[i % PALETTE.length];
      const label = el("text", { x: left - 8, y: yy + 4, "text-anchor": "end", class: "label" }, svg);
      label.textContent = it.label;
      if (it.lo !== null && it.lo !== undefined) {
        el("line", { x1: x(it.lo), x2: x(it.hi), y1: yy, y2: yy, stroke: color, "stroke-width": 2 }, svg);
        for (const v of [it.lo, it.hi]) {
          el("line", { x1: x(v), x2: x(v), y1: yy - 5, y2: yy + 5, stroke: color, "stroke-width": 2 }, svg);
        }
      }
      el("circle", { cx: x(it.mean), cy: yy, r: 4, fill: color, class: "series" }, svg);
      const value = el("text", { x: right + 8, y: yy + 4, class: "tick" }, svg);
      value.textContent = `${fmt(it.mean, opts.unit)} (n=${it.n})`;
    });
    const ends = [[lo, "start"], [hi, "end"]];
    for (const [v, anchor] of ends) {
      const t = el("text", { x: x(v), y: height - 2, "text-anchor": anchor, class: "tick" }, svg);
      t.textContent = fmt(v, opts.unit);
    }
    container.dataset.points = String(shown.length);
  }

  return { lines, stacked, bars, intervals, fmt };
})();
