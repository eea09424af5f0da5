// daneel's console: reads /console/api/* every few seconds and draws what it reads. No build step, no framework.
"use strict";

const API = "/console/api";
const POLL_MS = 2000;
const MODELS_MS = 5000;
const HISTORY_S = 300;     // the charts' span: the last five minutes
const RATE_WINDOW_S = 10;  // the figures in tables: requests per second over the last ten seconds
const LATENCY_WINDOW_S = 30;
const COLOURS = ["#2f6fde", "#d1242f", "#1a7f37", "#bf8700", "#8250df", "#0a7ea4", "#57606a", "#e16f24"];
const TOKEN_KEY = "daneel-console-token";
const RECENT_SHOWN = 20;

const state = { models: [], history: [], metrics: true, tokenAsked: false, trySelected: "" };

// Fetching, with the management token when the server asks for one

class Unauthorized extends Error {}

function authHeaders(headers) {
  const all = new Headers(headers || {});
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) all.set("Authorization", "Bearer " + token);
  return all;
}

async function call(path, options) {
  const response = await fetch(path, { ...(options || {}), headers: authHeaders(options && options.headers) });
  if (response.status === 401) {
    askToken();
    throw new Unauthorized("401");
  }
  return response;
}

async function getJSON(path) {
  const response = await call(path);
  if (!response.ok) throw new Error(path + " answered " + response.status);
  return response.json();
}

function askToken() {
  state.tokenAsked = true;
  document.getElementById("token-bar").hidden = false;
  setServerState("token needed", "bad");
}

function useToken(event) {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value.trim());
  document.getElementById("token-bar").hidden = true;
  state.tokenAsked = false;
  refreshModels();
  refreshFigures();
}

// Small helpers

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function svgEl(tag, attrs) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  return node;
}

function setServerState(text, kind) {
  const badge = document.getElementById("server-state");
  badge.textContent = text;
  badge.className = "badge " + (kind || "");
}

function placeKey(item) {
  return item.deployment + "|" + item.predictor + "|" + item.node;
}

function fmtRate(value) {
  if (value === null || value === undefined) return "–";
  return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
}

function fmtSeconds(value) {
  if (value === null || value === undefined) return "–";
  if (value < 0.001) return (value * 1e6).toFixed(0) + " µs";
  if (value < 1) return (value * 1000).toFixed(value < 0.01 ? 2 : 1) + " ms";
  return value.toFixed(2) + " s";
}

function fmtShare(value) {
  return value === null || value === undefined ? "–" : (100 * value).toFixed(1) + "%";
}

function tensors(list) {
  if (!list || !list.length) return el("span", { class: "muted" }, "–");
  return el("span", {}, list.map((t) => el("div", { class: "tensor" },
    t.name + " " + t.datatype + " [" + (t.shape || []).join(", ") + "]")));
}

// Figures: each reading holds running totals; rates and percentiles are differences between two readings

function readingAgo(seconds) {
  const history = state.history;
  if (history.length < 2) return null;
  const now = history[history.length - 1];
  for (let i = history.length - 2; i >= 0; i--) {
    if (now.time - history[i].time >= seconds) return history[i];
  }
  return history[0];
}

function indexed(reading, list) {
  if (!reading.index) reading.index = {};
  if (!reading.index[list]) {
    const index = new Map();
    for (const item of reading[list] || []) index.set(placeKey(item), item);
    reading.index[list] = index;
  }
  return reading.index[list];
}

function sumWhere(reading, list, match) {
  const total = { count: 0, errors: 0, sum: 0, buckets: null };
  for (const item of reading[list] || []) {
    if (!match(item)) continue;
    total.count += item.count;
    total.errors += item.errors;
    total.sum += item.sum;
    total.buckets = total.buckets ? total.buckets.map((b, i) => b + item.buckets[i]) : item.buckets.slice();
  }
  return total;
}

function quantile(bounds, buckets, q) {
  const total = buckets.reduce((a, b) => a + b, 0);
  if (total <= 0) return null;
  const target = q * total;
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    if (seen + buckets[i] >= target && buckets[i] > 0) {
      if (i >= bounds.length) return bounds[bounds.length - 1];
      const lower = i === 0 ? 0 : bounds[i - 1];
      return lower + (bounds[i] - lower) * ((target - seen) / buckets[i]);
    }
    seen += buckets[i];
  }
  return bounds[bounds.length - 1];
}

// The figures of the requests matching `match` (in list "requests" or "nodes") over the last seconds.
function figuresOf(list, match) {
  const history = state.history;
  if (!history.length) return {};
  const now = history[history.length - 1];
  const current = sumWhere(now, list, match);
  const result = { total: current.count };
  const before = readingAgo(RATE_WINDOW_S);
  if (before) {
    const then = sumWhere(before, list, match);
    const count = current.count - then.count;
    result.rate = count / Math.max(now.time - before.time, 0.001);
    result.errorRate = count > 0 ? (current.errors - then.errors) / count : null;
  }
  const older = readingAgo(LATENCY_WINDOW_S);
  if (older && current.buckets) {
    const then = sumWhere(older, list, match);
    const delta = current.buckets.map((b, i) => b - (then.buckets ? then.buckets[i] : 0));
    result.p50 = quantile(now.bounds, delta, 0.5);
    result.p99 = quantile(now.bounds, delta, 0.99);
  }
  return result;
}

// One point per reading: the rate, or a percentile, between it and the reading before.
function seriesOf(list, match, measure) {
  const points = [];
  const history = state.history;
  for (let i = 1; i < history.length; i++) {
    const a = sumWhere(history[i - 1], list, match);
    const b = sumWhere(history[i], list, match);
    const dt = Math.max(history[i].time - history[i - 1].time, 0.001);
    let value = null;
    if (measure === "rate") value = (b.count - a.count) / dt;
    else if (measure === "errors") value = b.count > a.count ? (b.errors - a.errors) / (b.count - a.count) : 0;
    else if (b.buckets) {
      const delta = b.buckets.map((x, j) => x - (a.buckets ? a.buckets[j] : 0));
      value = quantile(history[i].bounds, delta, measure === "p50" ? 0.5 : 0.99);
    }
    points.push([history[i].time, value]);
  }
  return points;
}

// Charts, drawn by hand in SVG

// The charts' span: the history kept, from one minute (while the page is young) to HISTORY_S.
function span() {
  const history = state.history;
  if (history.length < 2) return 60;
  return Math.min(HISTORY_S, Math.max(60, history[history.length - 1].time - history[0].time));
}

function spanLabel(seconds) {
  return seconds >= 90 ? "−" + Math.round(seconds / 60) + " min" : "−" + Math.round(seconds) + " s";
}

function sparkline(points) {
  const svg = svgEl("svg", { class: "spark", viewBox: "0 0 120 24", preserveAspectRatio: "none" });
  const values = points.map((p) => p[1]).filter((v) => v !== null);
  if (values.length < 2) return svg;
  const top = Math.max(...values, 1e-9);
  const seconds = span();
  const start = state.history[state.history.length - 1].time - seconds;
  const path = points.filter((p) => p[1] !== null)
    .map((p) => ((p[0] - start) / seconds * 120).toFixed(1) + "," + (22 - p[1] / top * 20).toFixed(1)).join(" ");
  svg.append(svgEl("polyline", { points: path, fill: "none", stroke: COLOURS[0], "stroke-width": "1.5" }));
  return svg;
}

function lineChart(title, lines, format) {
  const width = 480, height = 150, left = 48, bottom = 18;
  const svg = svgEl("svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none" });
  const values = lines.flatMap((line) => line.points.map((p) => p[1]).filter((v) => v !== null));
  const top = values.length ? Math.max(...values) * 1.1 || 1 : 1;
  const end = state.history.length ? state.history[state.history.length - 1].time : 0;
  const seconds = span();
  const x = (t) => left + (t - (end - seconds)) / seconds * (width - left - 4);
  const y = (v) => height - bottom - v / top * (height - bottom - 8);
  svg.append(svgEl("line", { x1: left, y1: height - bottom, x2: width, y2: height - bottom, stroke: "#d8dde5" }));
  for (const [value, label] of [[top, format(top)], [top / 2, format(top / 2)], [0, format(0)]]) {
    const text = svgEl("text", { x: left - 4, y: y(value) + 3, "text-anchor": "end" });
    text.textContent = label;
    svg.append(text);
  }
  for (const [offset, label] of [[seconds, spanLabel(seconds)], [0, "now"]]) {
    const text = svgEl("text", { x: x(end - offset), y: height - 4, "text-anchor": offset ? "start" : "end" });
    text.textContent = label;
    svg.append(text);
  }
  lines.forEach((line, i) => {
    const drawn = line.points.filter((p) => p[1] !== null && p[0] >= end - seconds);
    if (!drawn.length) return;
    const points = drawn.map((p) => x(p[0]).toFixed(1) + "," + y(p[1]).toFixed(1)).join(" ");
    svg.append(svgEl("polyline", {
      points, fill: "none", stroke: COLOURS[i % COLOURS.length], "stroke-width": "1.6",
      "stroke-dasharray": line.dashed ? "4 3" : "",
    }));
  });
  const legend = el("div", { class: "legend" },
    lines.map((line, i) => el("span", {}, el("i", { style: `background:${COLOURS[i % COLOURS.length]}` }), line.name)));
  return el("div", { class: "chart", "data-chart": title }, el("h4", {}, title), svg, legend);
}

// The models table

function owners() {
  return state.models.filter((m) => !m.part_of);
}

function requestsTo(name) {
  return (item) => item.deployment === name && item.node === "";
}

function renderModels() {
  const body = document.querySelector("#models tbody");
  body.replaceChildren(...owners().map((model) => {
    const figures = figuresOf("requests", requestsTo(model.name));
    const runtime = [...new Set([model.implementation, model.platform].filter(Boolean))].join(" · ");
    return el("tr", { "data-model": model.name },
      el("td", {}, el("b", {}, model.name), model.kind === "deployment" ? el("div", { class: "muted" }, "deployment") : null),
      el("td", {}, el("span", { class: "badge " + model.state }, model.state),
        model.reason && model.state !== "READY" ? el("div", { class: "reason" }, model.reason) : null),
      el("td", {}, runtime || "–"),
      el("td", {}, (model.versions || []).join(", ") || "–"),
      el("td", {}, tensors(model.inputs)),
      el("td", {}, tensors(model.outputs)),
      el("td", { class: "num", "data-figure": "rate" }, fmtRate(figures.rate)),
      el("td", { class: "num" }, fmtSeconds(figures.p50)),
      el("td", { class: "num" }, fmtSeconds(figures.p99)),
      el("td", { class: "num" }, fmtShare(figures.errorRate)),
      el("td", {}, sparkline(seriesOf("requests", requestsTo(model.name), "rate"))),
      el("td", {}, model.state === "READY" ? el("button", { class: "link", type: "button", onclick: () => pickTry(model.name) }, "try it") : null));
  }));
}

// Deployments: predictors side by side, each with its graph

function renderDeployments() {
  const deployments = owners().filter((m) => m.deployment);
  document.getElementById("deployments-section").hidden = !deployments.length;
  document.getElementById("deployments").replaceChildren(...deployments.map(renderDeployment));
}

function renderDeployment(model) {
  const spec = model.deployment;
  if (spec.error) return el("div", { class: "deployment" }, el("h3", {}, model.name), el("p", { class: "reason" }, spec.error));
  const served = figuresOf("requests", requestsTo(model.name));
  const sticky = spec.sticky ? "sticky on " + (spec.sticky.header ? "header " + spec.sticky.header : "") +
    (spec.sticky.header && spec.sticky.field ? ", then " : "") + (spec.sticky.field ? "field " + spec.sticky.field : "")
    : spec.predictors.filter((p) => !p.shadow).length > 1 ? "random split" : "";
  return el("div", { class: "deployment", "data-deployment": model.name },
    el("h3", {}, model.name, " ", el("span", { class: "muted" }, sticky)),
    el("div", { class: "predictors" }, spec.predictors.map((p) => renderPredictor(model.name, p, served))));
}

function renderPredictor(deployment, predictor, served) {
  const mine = (item) => item.deployment === deployment && item.predictor === predictor.name && item.node === "";
  const figures = figuresOf("requests", mine);
  const share = served.rate > 0 && figures.rate !== undefined ? figures.rate / served.rate : null;
  const title = predictor.shadow ? el("span", { class: "badge" }, "shadow: a copy of every request")
    : el("span", { class: "share" }, predictor.traffic + "%");
  return el("div", { class: "predictor" + (predictor.shadow ? " shadow" : ""), "data-predictor": predictor.name },
    el("header", {}, predictor.name, title),
    el("div", { class: "figures" },
      el("span", { "data-figure": "rate" }, el("b", {}, fmtRate(figures.rate)), " req/s"),
      el("span", {}, "p50 ", el("b", {}, fmtSeconds(figures.p50))),
      el("span", {}, "p99 ", el("b", {}, fmtSeconds(figures.p99))),
      el("span", {}, "errors ", el("b", {}, fmtShare(figures.errorRate))),
      predictor.shadow || predictor.traffic === 100 ? null : el("span", {}, "observed share ", el("b", {}, fmtShare(share))),
      el("span", { class: "muted" }, (figures.total || 0) + " in all")),
    sparkline(seriesOf("requests", mine, "rate")),
    predictor.detectors.length ? el("div", {}, predictor.detectors.map((d) => detectorBadge(d))) : null,
    el("ul", { class: "tree" }, renderNode(deployment, predictor.name, predictor.graph)));
}

function detectorBadge(detector) {
  return el("span", { class: "node" }, el("span", { class: "type DETECTOR" }, detector.kind.toUpperCase()), detector.name);
}

function renderNode(deployment, predictor, node) {
  const mine = (item) => item.deployment === deployment && item.predictor === predictor && item.node === node.name;
  const figures = figuresOf("nodes", mine);
  const what = node.remote ? "remote " + node.remote : [node.implementation, node.model_uri].filter(Boolean).join(" · ");
  return el("li", {},
    el("div", { class: "node", "data-node": node.name },
      el("span", { class: "type " + node.type }, node.type.replace("_", " ")),
      node.remote ? el("span", { class: "type REMOTE" }, "REMOTE") : null,
      el("b", {}, node.name),
      what ? el("small", {}, what) : null,
      el("small", {}, fmtRate(figures.rate) + " calls/s · p50 " + fmtSeconds(figures.p50) + " · p99 " + fmtSeconds(figures.p99)),
      node.detectors.length ? el("div", {}, node.detectors.map((d) => detectorBadge(d))) : null),
    node.children.length ? el("ul", {}, node.children.map((child) => renderNode(deployment, predictor, child))) : null);
}

// Charts, routers and detectors

function renderCharts() {
  document.getElementById("metrics-off").hidden = state.metrics;
  if (!state.metrics || !state.history.length) return;
  const charts = [];
  for (const model of owners()) {
    const predictors = model.deployment && !model.deployment.error ? model.deployment.predictors.map((p) => p.name) : [""];
    const lines = (measure) => predictors.map((p) => ({
      name: p || model.name,
      points: seriesOf("requests", (item) => item.deployment === model.name && item.node === "" && item.predictor === p, measure),
    }));
    charts.push(lineChart(model.name + ": requests per second", lines("rate"), fmtRate));
    const latency = [...lines("p50").map((l) => ({ ...l, name: l.name + " p50" })),
      ...lines("p99").map((l) => ({ ...l, name: l.name + " p99", dashed: true }))];
    charts.push(lineChart(model.name + ": latency", latency, fmtSeconds));
    charts.push(lineChart(model.name + ": error rate", lines("errors"), fmtShare));
  }
  document.getElementById("charts").replaceChildren(...charts);
}

function renderRouters() {
  const now = state.history[state.history.length - 1];
  const arms = now && now.routers ? now.routers : [];
  document.getElementById("routers-block").hidden = !arms.length;
  const totals = {};
  for (const arm of arms) {
    const key = arm.deployment + "|" + arm.predictor + "|" + arm.router;
    totals[key] = (totals[key] || 0) + arm.requests;
  }
  document.querySelector("#routers tbody").replaceChildren(...arms.map((arm) => {
    const total = totals[arm.deployment + "|" + arm.predictor + "|" + arm.router];
    return el("tr", {},
      el("td", {}, arm.deployment), el("td", {}, arm.predictor), el("td", {}, arm.router), el("td", {}, arm.branch),
      el("td", { class: "num" }, arm.requests), el("td", { class: "num" }, fmtShare(total ? arm.requests / total : null)),
      el("td", { class: "num" }, arm.feedback),
      el("td", { class: "num" }, arm.feedback ? (arm.reward / arm.feedback).toFixed(3) : "–"));
  }));
}

function renderDetectors() {
  const now = state.history[state.history.length - 1];
  const outliers = now && now.outliers ? now.outliers : [];
  const drift = now && now.drift ? now.drift : [];
  document.getElementById("detectors-block").hidden = !(outliers.length || drift.length);
  const place = (d) => [el("td", {}, d.deployment), el("td", {}, d.predictor), el("td", {}, d.node || "–"), el("td", {}, d.detector)];
  const rows = [
    ...outliers.map((d) => el("tr", {}, place(d), el("td", {}, "outlier"),
      el("td", {}, `${d.outliers} of ${d.rows} rows flagged (${fmtShare(d.rows ? d.outliers / d.rows : null)})`))),
    ...drift.map((d) => el("tr", {}, place(d), el("td", {}, "drift"),
      el("td", {}, el("span", { class: "badge " + (d.detected ? "bad" : "ok") }, d.detected ? "drift" : "no drift"),
        ` ${d.drift} drift events in ${d.drift + d.no_drift} windows tested; p-values: `,
        Object.entries(d.p_values).map(([feature, p]) => `${feature} ${Number(p).toPrecision(3)}`).join(", ") || "–"))),
  ];
  document.querySelector("#detectors tbody").replaceChildren(...rows);
}

// Try it: a request built from the model's metadata, sent as the page's user would send it

function pickTry(name) {
  const select = document.getElementById("try-model");
  select.value = name;
  fillTry();
  document.getElementById("try-section").scrollIntoView({ behavior: "smooth" });
}

function renderTryChoices() {
  const select = document.getElementById("try-model");
  const ready = state.models.filter((m) => m.state === "READY");
  const names = ready.map((m) => m.name);
  if (names.join("|") === Array.from(select.options).map((o) => o.value).join("|")) return;
  const chosen = select.value;
  select.replaceChildren(...ready.map((m) => el("option", { value: m.name }, m.part_of ? `${m.name} (in ${m.part_of})` : m.name)));
  if (names.includes(chosen)) select.value = chosen;
  if (select.value !== chosen) fillTry();
}

function protocol() {
  return document.querySelector("input[name=protocol]:checked").value;
}

function example(spec) {
  const shape = (spec && spec.shape && spec.shape.length ? spec.shape : [1, 4]).map((d) => (d < 0 ? 1 : d));
  const size = shape.reduce((a, b) => a * b, 1);
  const datatype = spec && spec.datatype ? spec.datatype : "FP64";
  const value = datatype === "BYTES" ? "text" : datatype === "BOOL" ? false : datatype.startsWith("FP") ? 0.5 : 1;
  return { shape, datatype, data: Array.from({ length: Math.min(size, 10000) }, () => value) };
}

function tryPath(model) {
  if (protocol() === "seldon") return "/api/v1.0/predictions";
  return "/v2/models/" + encodeURIComponent(model) + "/infer";
}

function fillTry() {
  const name = document.getElementById("try-model").value;
  const model = state.models.find((m) => m.name === name);
  const inputs = model && model.inputs && model.inputs.length ? model.inputs : [{ name: "input-0", shape: [1, 4], datatype: "FP64" }];
  let body;
  if (protocol() === "seldon") {
    const first = example(inputs[0]);
    const rows = [];
    const width = first.shape.length > 1 ? first.shape.slice(1).reduce((a, b) => a * b, 1) : first.shape[0];
    for (let i = 0; i < first.data.length; i += width) rows.push(first.data.slice(i, i + width));
    body = { data: { ndarray: rows } };
  } else {
    body = { inputs: inputs.map((spec) => ({ name: spec.name, ...example(spec) })) };
  }
  document.getElementById("try-body").value = pretty(body);
  document.getElementById("try-path").textContent = "POST " + tryPath(name);
  const seldon = document.querySelector("input[name=protocol][value=seldon]");
  seldon.disabled = owners().length !== 1 || (model && model.part_of !== null && model.part_of !== undefined);
  if (seldon.disabled && seldon.checked) {
    document.querySelector("input[name=protocol][value=v2]").checked = true;
    fillTry();
  }
}

async function sendTry(event) {
  event.preventDefault();
  const name = document.getElementById("try-model").value;
  const status = document.getElementById("try-status");
  const answer = document.getElementById("try-answer");
  const start = performance.now();
  let response;
  try {
    response = await call(tryPath(name), {
      method: "POST", headers: { "Content-Type": "application/json" }, body: document.getElementById("try-body").value,
    });
  } catch (error) {
    status.hidden = false;
    status.textContent = error instanceof Unauthorized ? "401: give the token above" : "failed: " + error.message;
    status.className = "badge bad";
    return;
  }
  const text = await response.text();
  const took = performance.now() - start;
  status.hidden = false;
  status.textContent = response.status + " " + (response.ok ? "OK" : "error");
  status.className = "badge " + (response.ok ? "ok" : "bad");
  document.getElementById("try-time").textContent = took.toFixed(1) + " ms";
  let parsed = null;
  try { parsed = JSON.parse(text); } catch (error) { parsed = null; }
  answer.textContent = parsed === null ? text : pretty(parsed);
  const predictor = response.headers.get("x-daneel-predictor") || predictorOf(parsed);
  document.getElementById("try-predictor").textContent = predictor ? "served by predictor " + predictor : "";
}

// JSON indented by object, with arrays of numbers or text kept on one line.
function pretty(value) {
  return JSON.stringify(value, null, 2).replace(/\[[^\[\]{}]*\]/g, (list) => list.replace(/\s*\n\s*/g, " ").replace("[ ", "[").replace(/ \]$/, "]"));
}

function predictorOf(body) {
  if (!body || typeof body !== "object") return "";
  return (body.meta && body.meta.predictor) || (body.parameters && body.parameters.predictor) || "";
}

// Recent requests

async function refreshRecent() {
  try {
    const data = await getJSON(API + "/requests");
    document.getElementById("recent-off").hidden = data.logging;
    document.getElementById("recent").hidden = !data.logging;
    document.querySelector("#recent tbody").replaceChildren(...data.records.slice(0, RECENT_SHOWN).map((r) => {
      const body = typeof r.body === "string" ? r.body : JSON.stringify(r.body);
      return el("tr", {},
        el("td", {}, new Date(r.time * 1000).toLocaleTimeString()), el("td", {}, r.kind), el("td", {}, r.model || "–"),
        el("td", {}, r.predictor || "–"), el("td", {}, el("code", {}, r.request_id)),
        el("td", { class: "body" }, el("details", {}, el("summary", {}, body),
          el("pre", {}, typeof r.body === "string" ? r.body : pretty(r.body)))));
    }));
  } catch (error) {
    if (!(error instanceof Unauthorized)) console.warn("recent requests:", error.message);
  }
}

// Polling

async function refreshModels() {
  try {
    const data = await getJSON(API + "/models");
    state.models = data.models;
    state.metrics = data.metrics;
    const ready = owners().every((m) => m.state === "READY");
    setServerState(ready ? "ready" : "not ready", ready ? "ok" : "bad");
    renderTryChoices();
    render();
  } catch (error) {
    if (!(error instanceof Unauthorized)) setServerState("unreachable", "bad");
  }
}

async function refreshFigures() {
  if (!state.metrics) return;
  try {
    const data = await getJSON(API + "/figures");
    if (!data.metrics) { state.metrics = false; render(); return; }
    state.history.push(data);
    while (state.history.length > 2 && data.time - state.history[0].time > HISTORY_S + POLL_MS / 1000) state.history.shift();
    document.getElementById("updated").textContent = "updated " + new Date(data.time * 1000).toLocaleTimeString();
    render();
  } catch (error) {
    if (!(error instanceof Unauthorized)) setServerState("unreachable", "bad");
  }
}

function render() {
  renderModels();
  renderDeployments();
  renderCharts();
  renderRouters();
  renderDetectors();
}

function every(ms, fn) {
  fn();
  setInterval(() => { if (!state.tokenAsked && !document.hidden) fn(); }, ms);
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("token-bar").addEventListener("submit", useToken);
  document.getElementById("try").addEventListener("submit", sendTry);
  document.getElementById("try-model").addEventListener("change", fillTry);
  for (const radio of document.querySelectorAll("input[name=protocol]")) radio.addEventListener("change", fillTry);
  every(MODELS_MS, refreshModels);
  every(POLL_MS, refreshFigures);
  every(POLL_MS * 2, refreshRecent);
});
