// console.js - the kcobrad console: polls the JSON endpoints
// (/console/api/broker, nodes, queue, ledger; docs/console.md) every
// POLL_MS and draws the panels. No framework: a handful of DOM helpers and
// SVG built by hand, so the whole console is compiled into kcobrad.
"use strict";

const POLL_MS = 2000;
const SVG_NS = "http://www.w3.org/2000/svg";

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, value);
  for (const child of children) node.append(child);
  return node;
}

function svg(tag, attributes) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, value);
  return node;
}

function set(id, text) {
  const node = document.getElementById(id);
  if (node) node.textContent = text;
}

// Integers as they are (the test compares them with the JSON); rates with
// one decimal.
function integer(value) {
  return value === null || value === undefined ? "–" : String(value);
}

function rate(value) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(1);
}

function fixed(value, digits) {
  return typeof value === "number" ? value.toFixed(digits) : "–";
}

async function fetchJson(name) {
  const response = await fetch("/console/api/" + name, { cache: "no-store" });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function unavailable(panel, document_) {
  const note = document.getElementById(panel + "-note");
  const missing = document_.available === false;
  if (note) note.textContent = missing ? "not available: " + (document_.error || "?") : "";
  return missing;
}

// ---- broker ---------------------------------------------------------------

function drawBroker(b) {
  set("broker-connections", integer(b.connections));
  set("broker-subscriptions", integer(b.subscriptions));
  set("broker-in-msgs-rate", rate(b.in_msgs_per_s));
  set("broker-out-msgs-rate", rate(b.out_msgs_per_s));
  set("broker-in-bytes-rate", rate(b.in_bytes_per_s));
  set("broker-out-bytes-rate", rate(b.out_bytes_per_s));
  set("broker-in-msgs", integer(b.in_msgs));
  set("broker-slow-consumers", integer(b.slow_consumers));
}

// ---- queue ----------------------------------------------------------------

function drawQueue(q) {
  if (unavailable("queue", q)) return;
  for (const key of ["submitted", "pending", "replied", "dead", "redelivered", "waiting"])
    set("queue-" + key, integer(q[key]));
  set("queue-redelivery-rate",
      rate(q.redeliveries_per_s) + "/s (" + fixed(100 * (q.redelivery_ratio || 0), 1) + " %)");
  set("queue-oldest-pending",
      q.oldest_pending_age_ms === null || q.oldest_pending_age_ms === undefined
        ? "none" : (q.oldest_pending_age_ms / 1000).toFixed(1) + " s");
}

// ---- nodes ----------------------------------------------------------------

function drawNodeRows(nodes) {
  const rows = document.getElementById("nodes-rows");
  rows.replaceChildren(...nodes.map((n) => el("tr", { "data-node": n.name },
    el("td", {}, n.name),
    el("td", { class: "state state-" + n.status }, n.status),
    el("td", { class: "qos" }, fixed(n.qos, 3)),
    el("td", { class: "merit" }, fixed(n.merit, 3)),
    el("td", { class: "credibility" }, fixed(n.credibility, 3)),
    el("td", {}, n.role || ""),
    el("td", {}, (n.reasons || []).join(", ")))));
}

// The reporting tree as nested lists: each node under its supervisor.
function drawTree(tree) {
  const children = new Map();
  for (const node of tree.nodes || []) {
    const parent = node.supervisor || "";
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(node);
  }
  const build = (parent, depth) => {
    const list = el("ul");
    for (const node of children.get(parent) || []) {
      const item = el("li", { "data-tree-node": node.name },
        node.name + " (merit " + fixed(node.merit, 3) + ", QoS " + fixed(node.qos, 3) + ")");
      if (depth < 64) item.append(build(node.name, depth + 1));
      list.append(item);
    }
    return list;
  };
  document.getElementById("nodes-tree").replaceChildren(build("", 0));
}

function drawVerdicts(verdicts) {
  const box = document.getElementById("nodes-verdicts");
  if (verdicts.length === 0) {
    box.replaceChildren(el("p", { class: "muted" }, "no verdicts"));
    return;
  }
  box.replaceChildren(...verdicts.slice().reverse().map((v) => {
    const votes = (v.votes || []).map((vote) =>
      typeof vote === "string" ? vote : (vote.arbiter || JSON.stringify(vote))).join(", ");
    return el("details", { class: "verdict", "data-verdict": v.id || "" },
      el("summary", {}, (v.action || "?") + " " + (v.node || "?") + " — " +
        (v.ts_ms ? new Date(v.ts_ms).toISOString() : "") + " — votes " +
        (v.votes || []).length + "/" + (v.needed || "?") + ": " + votes),
      el("pre", {}, JSON.stringify(v.evidence, null, 2)));
  }));
}

function drawNodes(n) {
  if (unavailable("nodes", n)) return;
  drawNodeRows(n.nodes || []);
  drawTree(n.tree || { nodes: [] });
  drawVerdicts(n.verdicts || []);
}

// ---- ledger ---------------------------------------------------------------

// Vertices on a circle, hubs in the middle ring; edges as lines whose
// width grows with the amount.
function drawGraph(graph) {
  const box = document.getElementById("ledger-graph");
  const vertices = graph.vertices || [];
  const place = new Map();
  const hubs = vertices.filter((v) => v.hub), others = vertices.filter((v) => !v.hub);
  const ring = (list, radius) => list.forEach((v, i) => {
    const angle = (2 * Math.PI * i) / Math.max(list.length, 1);
    place.set(v.id, [300 + radius * Math.cos(angle), 180 + radius * Math.sin(angle)]);
  });
  ring(hubs, hubs.length > 1 ? 60 : 0);
  ring(others, 150);
  const largest = Math.max(1, ...(graph.edges || []).map((e) => e.amount));
  const parts = [];
  for (const e of graph.edges || []) {
    const a = place.get(e.from), b = place.get(e.to);
    if (!a || !b) continue;
    parts.push(svg("line", { x1: a[0], y1: a[1], x2: b[0], y2: b[1], stroke: "#8899aa",
      "stroke-opacity": 0.6, "stroke-width": 1 + (4 * e.amount) / largest }));
  }
  for (const v of vertices) {
    const [x, y] = place.get(v.id);
    const fill = v.hub ? "#c62828" : v.stratum === "rich" ? "#d4a017"
      : v.stratum === "mint" ? "#1565c0" : "#7a8699";
    const dot = svg("circle", { cx: x, cy: y, r: v.hub ? 9 : 6, fill: fill,
      "data-vertex": v.id, "data-stratum": v.stratum, "data-hub": String(!!v.hub) });
    const title = svg("title");
    title.textContent = v.id + ": in " + v.in + ", out " + v.out;
    dot.append(title);
    const label = svg("text", { x: x + 10, y: y + 4, "font-size": 10 });
    label.textContent = v.label || v.id;
    parts.push(dot, label);
  }
  box.replaceChildren(...parts);
}

function drawLedger(l) {
  if (unavailable("ledger", l)) return;
  set("ledger-supply", integer(l.supply));
  set("ledger-transfers-rate", fixed(l.transfers_per_s, 2));
  set("ledger-window-transfers", integer(l.window_transfers));
  set("ledger-window", (l.window_ms / 1000).toFixed(0) + " s");
  document.getElementById("ledger-assets").replaceChildren(...(l.assets || []).map((a) =>
    el("tr", { "data-asset": a.asset }, el("td", {}, a.asset), el("td", {}, integer(a.supply)))));
  document.getElementById("ledger-flows").replaceChildren(...(l.largest_flows || []).map((f) =>
    el("tr", { class: "flow" }, el("td", {}, f.from_label || f.from), el("td", {}, f.to_label || f.to),
      el("td", { class: "amount" }, integer(f.amount)), el("td", {}, integer(f.count)))));
  drawGraph(l.graph || {});
}

// ---- polling --------------------------------------------------------------

const PANELS = { broker: drawBroker, queue: drawQueue, nodes: drawNodes, ledger: drawLedger };
// The documents each panel last drew, for programs driving the page (the
// browser test compares the panels with them).
window.kcConsole = { documents: {} };

async function poll() {
  const problems = [];
  await Promise.all(Object.entries(PANELS).map(async ([name, draw]) => {
    try {
      const document_ = await fetchJson(name);
      draw(document_);
      window.kcConsole.documents[name] = document_;
    } catch (error) {
      problems.push(name + ": " + error.message);
    }
  }));
  set("status", problems.length === 0
    ? "updated " + new Date().toLocaleTimeString() : problems.join("; "));
  document.body.dataset.polls = String(Number(document.body.dataset.polls || 0) + 1);
  setTimeout(poll, POLL_MS);
}

poll();
