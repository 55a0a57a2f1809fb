// services_js.js - KingCobra's services seen by the nats.js services client
// (npm @nats-io/services on @nats-io/transport-node), run by services_js.sh
// against kcobrad (its components) or nats-server (the same components as
// `kcobra <part> serve`), with a `kcobra serve calc` on either.
//
// Checks, with the real client: ping, info and stats discover calc and the
// components; a ping by name and id reaches that instance alone; N good and
// M failing requests to calc come back (the failures as ServiceError from
// the Nats-Service-Error headers, and with Kc-Error), and calc's stats say N
// + M requests and M errors; the ledger counts a refusal; and a nats.js
// service of its own is listed by `kcobra services --json`.
//
// Usage: node services_js.js URL KCOBRA_BINARY
"use strict";

const assert = require("node:assert/strict");
const { execFile } = require("node:child_process");
const { promisify } = require("node:util");
const { connect } = require("@nats-io/transport-node");
const { Svcm, ServiceError } = require("@nats-io/services");

const [url, kcobra] = process.argv.slice(2);
const COMPONENTS = ["kc-persister", "kc-keeper", "kc-ledger", "kc-arbiter"];
const GOOD = 7;
const BAD = 3;
const READY_MS = 30000;
const REQUEST_MS = 10000;
// Gather replies until none came for a second (a loaded machine), 5 s at most.
const GATHER = { strategy: "stall", stall: 1000, maxWait: 5000 };

async function all(iterator) {
  const out = [];
  for await (const item of await iterator) out.push(item);
  return out;
}

function byName(list, name) {
  return list.filter((item) => item.name === name);
}

// Until calc and every component answer a ping (they start after the port).
async function waitForServices(client) {
  const wanted = ["calc", ...COMPONENTS];
  const deadline = Date.now() + READY_MS;
  let names = [];
  while (Date.now() < deadline) {
    names = (await all(client.ping())).map((ping) => ping.name);
    if (wanted.every((name) => names.includes(name))) return;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  assert.fail(`not all answered: wanted ${wanted}, got ${names}`);
}

async function checkDiscovery(client) {
  const pings = await all(client.ping());
  for (const ping of pings) {
    assert.equal(ping.type, "io.nats.micro.v1.ping_response");
    assert.match(ping.version, /^\d+\.\d+\.\d+/);
  }
  const infos = await all(client.info());
  for (const name of ["calc", ...COMPONENTS]) {
    const [info] = byName(infos, name);
    assert.ok(info, `no info from ${name}`);
    assert.equal(info.type, "io.nats.micro.v1.info_response");
    assert.ok(info.description.length > 0);
    assert.ok(info.metadata.kc_node.length > 0);
    assert.ok(info.endpoints.length > 0);
    for (const endpoint of info.endpoints) assert.ok(endpoint.subject.length > 0);
  }
  const [calc] = byName(infos, "calc");
  assert.deepEqual(calc.endpoints.map((e) => [e.name, e.subject, e.queue_group]),
                   [["calc", "kc.req.calc", "calc"]]);
  assert.equal(calc.metadata.kc_type, "calc");
  assert.equal(calc.metadata.kc_price, "0");
  // By name, then by name and id: that instance alone.
  assert.equal((await all(client.info("calc"))).length, 1);
  const exact = await all(client.ping("calc", calc.id));
  assert.deepEqual(exact.map((ping) => ping.id), [calc.id]);
  console.log(`discovered ${infos.length} services: ${infos.map((i) => i.name).sort()}`);
  return calc;
}

async function sendRequests(nc) {
  for (let index = 0; index < GOOD + BAD; index++) {
    const bad = index >= GOOD;
    const reply = await nc.request("kc.req.calc", bad ? "fail" : `n${index}`,
                                   { timeout: REQUEST_MS });
    const error = ServiceError.toServiceError(reply);
    if (bad) {
      assert.ok(error, "a refusal is a ServiceError");
      assert.equal(error.code, 3);
      assert.equal(error.message, "bad input");
      assert.equal(reply.headers.get("Kc-Error"), "3 bad input");
    } else {
      assert.equal(error, null);
      assert.equal(reply.string(), `ok n${index}\n`);
    }
  }
}

async function checkStats(client, nc) {
  await sendRequests(nc);
  const [stats] = await all(client.stats("calc"));
  assert.equal(stats.type, "io.nats.micro.v1.stats_response");
  assert.ok(!Number.isNaN(Date.parse(stats.started)));
  const [endpoint] = stats.endpoints;
  assert.equal(endpoint.num_requests, GOOD + BAD);
  assert.equal(endpoint.num_errors, BAD);
  assert.equal(endpoint.last_error, "3:bad input");
  assert.ok(endpoint.processing_time > 0);
  assert.equal(endpoint.average_processing_time,
               Math.floor(endpoint.processing_time / endpoint.num_requests));
  console.log(`calc stats: ${endpoint.num_requests} requests, ${endpoint.num_errors} errors`);
  // A component counts too: the ledger refuses a balance of no wallet.
  const refused = await nc.request("kc.ledger.balance", "{\"wallet\":\"nonsense\"}",
                                     { timeout: REQUEST_MS });
  assert.ok(ServiceError.isServiceError(refused));
  const [ledger] = await all(client.stats("kc-ledger"));
  assert.equal(ledger.endpoints[0].num_requests, 1);
  assert.equal(ledger.endpoints[0].num_errors, 1);
}

// The other way round: a nats.js service is listed by kcobra services.
async function checkOurListing(nc) {
  const service = await new Svcm(nc).add({ name: "jsecho", version: "1.0.0",
                                           description: "nats.js echo" });
  service.addEndpoint("echo", (error, message) => message.respond(message.data));
  await nc.flush();
  // Asynchronously: the service answers from this process's event loop.
  const { stdout: output } = await promisify(execFile)(
    kcobra, ["services", "--json", "--name", "jsecho", "--timeout", "5s", "--server", url]);
  const lines = output.trim().split("\n").map((line) => JSON.parse(line));
  assert.equal(lines.length, 1);
  assert.equal(lines[0].name, "jsecho");
  assert.equal(lines[0].id, service.info().id);
  assert.equal(lines[0].endpoints[0].subject, "echo");
  await service.stop();
}

async function main() {
  const nc = await connect({ servers: url, timeout: REQUEST_MS });
  try {
    const client = new Svcm(nc).client(GATHER);
    await waitForServices(client);
    await checkDiscovery(client);
    await checkStats(client, nc);
    await checkOurListing(nc);
  } finally {
    await nc.close();
  }
  console.log("services_js: all checks passed");
}

main().catch((error) => {
  console.error(`services_js: FAILED: ${error.stack || error}`);
  process.exit(1);
});
