// The tailorbot dashboard: polls /v1/dashboard/data and redraws the charts (charts.js).
"use strict";

const POLL_MS = 2000;  // until an answer says the server's snapshot step (poll_s)
const MIN_POLL_MS = 200;  // whatever it says: a tiny step must not flood the server
let pollMs = POLL_MS;
const byId = (id) => document.getElementById(id);

function seriesOf(points, name, pick) {
  return { name, points: points.map((p) => [p.t, pick(p)]) };
}

function estimate(label, est) {
  // An arm's mean is `mean`; a lift (personalized - control) is `estimate`.
  const mean = est ? (est.mean !== undefined ? est.mean : est.estimate) : null;
  if (mean === null || mean === undefined) return { label, mean: null };
  const ci = est.ci95 || [null, null];
  return { label, mean, lo: ci[0], hi: ci[1], n: est.n };
}

function drawTimeSeries(series) {
  Charts.lines(byId("rate"), [seriesOf(series, "decisions/s", (p) => p.decisions_per_s)]);
  Charts.lines(byId("latency"), ["p50", "p95", "p99"].map(
    (q) => seriesOf(series, q, (p) => p.latency_ms[q])));
  Charts.lines(byId("rates"), [
    seriesOf(series, "fallback", (p) => p.fallback_rate),
    seriesOf(series, "hand-off", (p) => p.handoff_rate),
    seriesOf(series, "exploration", (p) => p.exploration_rate),
  ], { unit: "%" });
  const variants = [...new Set(series.flatMap((p) => Object.keys(p.variant_shares)))].sort();
  Charts.stacked(byId("shares"), variants.map(
    (v) => seriesOf(series, v, (p) => p.variant_shares[v] ?? null)));
}

function drawExperiment(report) {
  const arms = report ? report.arms : {};
  const names = Object.keys(arms);
  Charts.intervals(byId("csat"), names.map((a) => estimate(a, arms[a].csat)), { min: 1, max: 5 });
  Charts.intervals(byId("resolution"),
    names.map((a) => estimate(a, arms[a].resolution_rate)), { unit: "%", min: 0, max: 1 });
  const lift = report ? [estimate("CSAT (points)", report.csat_lift),
                         estimate("resolution (share)", report.resolution_lift)] : [];
  Charts.intervals(byId("lift"), lift, { zero: true });
}

function drawGauges(data) {
  Charts.bars(byId("intents"), data.intents.map((i) => ({ label: i.name, value: i.count })));
  const drift = Object.entries(data.drift).map(([k, v]) => ({ label: k, value: v }));
  const why = data.drift_reference ? `fewer than 50 decisions in the window (${data.drift_window})`
                                   : "the loaded model has no training reference";
  Charts.bars(byId("drift"), drift, { color: 3, emptyText: why,
    thresholds: [{ value: 0.1, label: "0.1" }, { value: 0.25, label: "0.25" }] });
  const lag = Object.entries(data.lag.stream).sort((a, b) => a[0] - b[0])
    .map(([p, v]) => ({ label: `partition ${p}`, value: v }));
  Object.entries(data.lag.archive).forEach(([p, v]) =>
    lag.push({ label: `archive ${p}`, value: v }));
  Charts.bars(byId("lag"), lag, { color: 2, emptyText: "no worker in this process" });
}

function drawModels(models) {
  const box = byId("models");
  box.replaceChildren();
  if (!models) { box.textContent = "no intent model loaded (train one: tailorbot train)"; return; }
  const table = document.createElement("table");
  const row = (k, v) => {
    const tr = table.insertRow();
    const th = document.createElement("th");
    th.textContent = k;
    tr.appendChild(th);
    tr.insertCell().textContent = v;
  };
  for (const [k, v] of Object.entries(models.versions)) row(`${k} version`, v);
  const t = models.intent_training;
  row("last training", `${t.source ?? "?"}: ${t.rows ?? "?"} rows in ${t.seconds ?? "?"} s`);
  for (const [k, v] of Object.entries(t.figures)) row(`${t.split} ${k}`, Charts.fmt(v, "%"));
  box.appendChild(table);
}

function draw(data) {
  drawTimeSeries(data.series);
  drawExperiment(data.experiment);
  drawGauges(data);
  drawModels(data.models);
  const tot = data.totals;
  byId("totals").textContent = `${tot.decisions} decisions · ${tot.fallbacks} fallbacks · ` +
    `${tot.handoffs} hand-offs · ${tot.feedback} ratings`;
}

// an answer other than the data: its status and what it says (the server's
// {"error", "message"} body; a 503 names a server process that did not answer)
async function refusal(response) {
  let said = "";
  try {
    const body = await response.json();
    if (body && typeof body.message === "string") said = `: ${body.message}`;
  } catch (_) { /* not JSON: a proxy's page */ }
  const err = new Error(`the server answered HTTP ${response.status}${said}`);
  err.answered = true;
  return err;
}

async function poll() {
  const status = byId("status");
  try {
    const response = await fetch("/v1/dashboard/data", { credentials: "same-origin" });
    if (response.status === 401) { window.location.assign("/dashboard/login"); return; }
    if (!response.ok) throw await refusal(response);
    const data = await response.json();
    // at the server's step: a faster poll would only get its last snapshot again
    if (Number.isFinite(data.poll_s)) pollMs = Math.max(data.poll_s * 1000, MIN_POLL_MS);
    draw(data);
    status.textContent = `live · updated ${new Date().toLocaleTimeString()}`;
    status.className = "status";
  } catch (err) {
    status.textContent = err.answered ? err.message : `cannot reach the server: ${err.message}`;
    status.className = "status error";
  } finally {
    setTimeout(poll, pollMs);
  }
}

poll();
