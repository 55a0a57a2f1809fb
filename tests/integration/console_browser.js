// console_browser.js URL SHOTS - loads kcobrad's web console (URL, its
// monitoring port) in headless chromium through playwright-core (CHROMIUM
// names the browser), waits until the page has polled its JSON endpoints,
// and checks that each panel shows what the endpoints answer:
//   broker   connections, subscriptions, messages in, slow consumers
//   queue    submitted, pending, replied, dead, redelivered
//   nodes    a row per node with its state (the quarantined one marked),
//            QoS, merit, credibility; the tree's nodes; a verdict per
//            verdict, naming its node and action
//   ledger   the supply, the supply per asset, the largest flows (rows and
//            amounts), the graph's vertices with their hub and stratum marks
// (each against the very document the page drew, read with the page in
// one go; and those documents against the endpoints read by this script),
// and that the page loads nothing from elsewhere (works offline). Saves
// SHOTS/console.png (the whole page) and SHOTS/panel-<name>.png. The page
// and the endpoints are read at different moments, so a comparison that
// differs is retried after the next poll (bounded); a difference that
// stays fails, listed. Exits 0 when all hold, 1 otherwise.
"use strict";

const path = require("path");
const { chromium } = require("playwright-core");

const [url, shots] = process.argv.slice(2);
const POLL_WAIT_MS = 20000;
const ATTEMPTS = 6;

async function json(name) {
  const response = await fetch(url + "/console/api/" + name);
  if (!response.ok) throw new Error(name + ": HTTP " + response.status);
  return response.json();
}

// Resolves once the page has finished `count` more polls.
async function morePolls(page, count) {
  const start = Number(await page.evaluate(() => document.body.dataset.polls || 0));
  await page.waitForFunction((target) => Number(document.body.dataset.polls || 0) >= target,
    start + count, { timeout: POLL_WAIT_MS });
}

// What the panels show and the documents they were drawn from, read in one
// go in the page, so no poll falls between them.
function snapshot(page) {
  return page.evaluate(() => {
    const text = (selector) => {
      const node = document.querySelector(selector);
      return node ? node.textContent.trim() : null;
    };
    const all = (selector) => [...document.querySelectorAll(selector)].map((n) => n.textContent.trim());
    const rows = {};
    for (const row of document.querySelectorAll("#nodes-rows tr"))
      rows[row.dataset.node] = {
        state: row.querySelector(".state").textContent, qos: row.querySelector(".qos").textContent,
        merit: row.querySelector(".merit").textContent,
        credibility: row.querySelector(".credibility").textContent,
        quarantinedMark: row.querySelector(".state").classList.contains("state-quarantined"),
      };
    const shown = {};
    for (const id of ["broker-connections", "broker-subscriptions", "broker-slow-consumers",
      "broker-in-msgs", "queue-submitted", "queue-pending", "queue-replied", "queue-dead",
      "queue-redelivered", "ledger-supply"]) shown[id] = text("#" + id);
    return {
      documents: JSON.parse(JSON.stringify(window.kcConsole.documents)),
      shown, rows,
      treeNodes: all("[data-tree-node]").length,
      verdicts: all("#nodes-verdicts details summary"),
      assets: all("#ledger-assets tr td:nth-child(2)"),
      flowAmounts: all("#ledger-flows .amount"),
      vertices: [...document.querySelectorAll("#ledger-graph circle")].map(
        (c) => c.dataset.vertex + ":" + c.dataset.hub + ":" + c.dataset.stratum),
      edges: document.querySelectorAll("#ledger-graph line").length,
    };
  });
}

function expectEqual(problems, what, shown, expected) {
  if (String(shown) !== String(expected))
    problems.push(what + ": the page shows " + JSON.stringify(shown) + ", expected " +
      JSON.stringify(expected));
}

// The panels against the documents they drew.
function checkPanels(view, problems) {
  const { broker, queue, nodes, ledger } = view.documents;
  const shown = view.shown;
  expectEqual(problems, "broker connections", shown["broker-connections"], broker.connections);
  expectEqual(problems, "broker subscriptions", shown["broker-subscriptions"], broker.subscriptions);
  expectEqual(problems, "broker slow consumers", shown["broker-slow-consumers"],
    broker.slow_consumers);
  expectEqual(problems, "broker messages in", shown["broker-in-msgs"], broker.in_msgs);
  for (const key of ["submitted", "pending", "replied", "dead", "redelivered"])
    expectEqual(problems, "queue " + key, shown["queue-" + key], queue[key]);
  for (const node of nodes.nodes) {
    const row = view.rows[node.name];
    if (!row) {
      problems.push("nodes: no row for " + node.name);
      continue;
    }
    expectEqual(problems, node.name + " state", row.state, node.status);
    expectEqual(problems, node.name + " QoS", row.qos, node.qos.toFixed(3));
    expectEqual(problems, node.name + " merit", row.merit, node.merit.toFixed(3));
    expectEqual(problems, node.name + " credibility", row.credibility, node.credibility.toFixed(3));
    expectEqual(problems, node.name + " quarantined mark", row.quarantinedMark,
      node.status === "quarantined");
  }
  expectEqual(problems, "tree nodes", view.treeNodes, nodes.tree.nodes.length);
  expectEqual(problems, "verdicts", view.verdicts.length, nodes.verdicts.length);
  for (const verdict of nodes.verdicts)
    if (!view.verdicts.some((s) => s.startsWith(verdict.action + " " + verdict.node)))
      problems.push("no verdict shown for " + verdict.action + " " + verdict.node);
  expectEqual(problems, "ledger supply", shown["ledger-supply"], ledger.supply);
  expectEqual(problems, "supply per asset", view.assets.join(","),
    ledger.assets.map((a) => a.supply).join(","));
  expectEqual(problems, "largest flows", view.flowAmounts.join(","),
    ledger.largest_flows.map((f) => f.amount).join(","));
  expectEqual(problems, "graph vertices", view.vertices.slice().sort().join(" "),
    ledger.graph.vertices.map((v) => v.id + ":" + v.hub + ":" + v.stratum).sort().join(" "));
  expectEqual(problems, "graph edges", view.edges, ledger.graph.edges.length);
}

// The page's documents against the endpoints, on what does not drift
// between two reads (QoS and rates move with time; counts do not here).
function checkEndpoints(view, endpoints, problems) {
  const pick = {
    broker: (b) => [b.connections, b.subscriptions, b.slow_consumers],
    queue: (q) => [q.submitted, q.pending, q.replied, q.dead, q.redelivered],
    nodes: (n) => [n.nodes.map((x) => x.name + "=" + x.status).sort(), n.counts,
      n.verdicts.map((v) => v.id), n.tree.nodes.map((t) => t.name + "<" + t.supervisor)],
    ledger: (l) => [l.supply, l.assets.map((a) => a.supply), l.largest_flows, l.graph.vertices],
  };
  for (const name of Object.keys(pick))
    expectEqual(problems, "/console/api/" + name,
      JSON.stringify(pick[name](view.documents[name])), JSON.stringify(pick[name](endpoints[name])));
}

async function compare(page) {
  const names = ["broker", "queue", "nodes", "ledger"];
  const before = await Promise.all(names.map(json));
  await morePolls(page, 1); // the page polled after these answers
  const view = await snapshot(page);
  const endpoints = Object.fromEntries(names.map((name, i) => [name, before[i]]));
  const problems = [];
  checkPanels(view, problems);
  checkEndpoints(view, endpoints, problems);
  return problems;
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox"], // root in CI
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
  const elsewhere = [];
  page.on("request", (request) => {
    if (!request.url().startsWith(url)) elsewhere.push(request.url());
  });
  const errors = [];
  page.on("pageerror", (error) => errors.push(error.message));
  await page.goto(url + "/", { waitUntil: "load" });
  await morePolls(page, 1);
  let problems = [];
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    problems = await compare(page);
    if (problems.length === 0) break;
  }
  await page.screenshot({ path: path.join(shots, "console.png"), fullPage: true });
  for (const panel of ["broker", "queue", "nodes", "ledger"])
    await page.locator("#" + panel).screenshot({ path: path.join(shots, "panel-" + panel + ".png") });
  await browser.close();
  if (elsewhere.length > 0) problems.push("the page loaded from elsewhere: " + elsewhere.join(" "));
  if (errors.length > 0) problems.push("script errors: " + errors.join("; "));
  if (problems.length > 0) {
    console.error("console_browser: FAIL\n  " + problems.join("\n  "));
    process.exit(1);
  }
  console.log("console_browser: every panel matches its JSON endpoint");
}

main().catch((error) => {
  console.error("console_browser: " + (error.stack || error));
  process.exit(1);
});
