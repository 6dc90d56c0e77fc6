/**
 * `workers: N` end to end, on a real `main.ts serve` process: connections are spread over the
 * workers, `/metrics` sums them, SIGTERM drains and exits 0, translators are refused, and
 * `workers: 1` is the single-isolate gateway as before.
 */
import assert from "node:assert/strict";
import { parseIp } from "../../net/address.ts";
import { encodeGreeting, encodeRequest, readMethodSelection } from "../../socks5/codec.ts";
import {
  type LocalGatewayProcess,
  MAIN_TS,
  REPO_ROOT,
  spawnLocalGateway,
} from "../helpers/dualgate.ts";
import { httpGet, sampleValue } from "../helpers/http_get.ts";
import {
  connectTo,
  echo,
  readAll,
  readerOf,
  readSocksReply,
  startServer,
  writeAll,
} from "./_fixtures.ts";

const RELAYED = 'dualgate_connections_total{command="connect",families="v4-v4",outcome="relayed"}';

function endpointOf(gateway: LocalGatewayProcess) {
  return { address: parseIp(gateway.endpoints[0]!.hostname)!, port: gateway.endpoints[0]!.port };
}

async function adminPort(gateway: LocalGatewayProcess): Promise<number> {
  const deadline = performance.now() + 10_000;
  while (performance.now() < deadline) {
    const match = gateway.stderr().match(/admin endpoint on 127\.0\.0\.1:(\d+)/);
    if (match) return Number(match[1]);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`no admin endpoint logged:\n${gateway.stderr()}`);
}

async function scrape(port: number): Promise<string> {
  const response = await httpGet({ hostname: "127.0.0.1", port }, "/metrics");
  assert.equal(response.status, 200);
  return response.body;
}

/** One CONNECT through the gateway to the echo server, 1000 bytes there and back. */
async function roundTrip(gateway: LocalGatewayProcess, echoPort: number): Promise<void> {
  using conn = await connectTo(endpointOf(gateway));
  const reader = readerOf(conn);
  await writeAll(conn, encodeGreeting({ methods: [0] }));
  assert.equal(await readMethodSelection(reader), 0);
  await writeAll(
    conn,
    encodeRequest({ command: 1, target: { address: parseIp("127.0.0.1")!, port: echoPort } }),
  );
  assert.equal((await readSocksReply(reader)).reply, 0);
  await writeAll(conn, new Uint8Array(1000).fill(42));
  await conn.closeWrite();
  assert.equal((await readAll(conn)).length, 1000);
}

async function until(what: string, condition: () => Promise<boolean>, ms = 10_000) {
  const deadline = performance.now() + ms;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`Cannot wait: ${what} after ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

Deno.test("serve with workers: 2 spreads connections, sums /metrics and drains on SIGTERM", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await using server = startServer("127.0.0.1", echo);
    await using gateway = await spawnLocalGateway(
      `listen: ["127.0.0.1:0"]\nadmin: { listen: "127.0.0.1:0" }\nworkers: 2\n`,
      { dir, listeners: 1 },
    );
    const admin = await adminPort(gateway);
    const total = 60;
    for (let i = 0; i < total; i += 10) {
      await Promise.all(Array.from({ length: 10 }, () => roundTrip(gateway, server.port)));
    }
    let text = "";
    await until(`${total} relayed connections counted`, async () => {
      text = await scrape(admin);
      return sampleValue(text, RELAYED) === total;
    });
    assert.equal(sampleValue(text, "dualgate_workers"), 2);
    assert.equal(sampleValue(text, "dualgate_workers_up"), 2);
    const perWorker = [0, 1].map((w) =>
      sampleValue(text, `dualgate_worker_connections_total{worker="${w}"}`)
    );
    assert.equal(perWorker[0]! + perWorker[1]!, total);
    assert.ok(perWorker.every((n) => n > 0), `both workers served: ${perWorker}`);
    assert.equal(sampleValue(text, 'dualgate_bytes_total{direction="up"}'), total * 1000);
    // The log tells the workers apart too.
    const log = gateway.stderr();
    assert.match(log, /dualgate·conn·worker-0: relayed/);
    assert.match(log, /dualgate·conn·worker-1: relayed/);
    assert.equal((await httpGet({ hostname: "127.0.0.1", port: admin }, "/healthz")).status, 200);

    // SIGTERM with a relay open: it drains (the client finishes) and the process exits 0.
    using open = await connectTo(endpointOf(gateway));
    const reader = readerOf(open);
    await writeAll(open, encodeGreeting({ methods: [0] }));
    assert.equal(await readMethodSelection(reader), 0);
    await writeAll(
      open,
      encodeRequest({ command: 1, target: { address: parseIp("127.0.0.1")!, port: server.port } }),
    );
    assert.equal((await readSocksReply(reader)).reply, 0);
    // /api/status merges the workers: the finished connections, each worker's share, the live relay.
    const apiStatus = async () =>
      JSON.parse((await httpGet({ hostname: "127.0.0.1", port: admin }, "/api/status")).body);
    let merged = await apiStatus();
    await until("the open relay on the status", async () => {
      merged = await apiStatus();
      return merged.connections.activeByFamilies["v4-v4"] === 1;
    });
    assert.deepEqual(merged.workers, {
      count: 2,
      answered: 2,
      connections: { "0": perWorker[0], "1": perWorker[1] },
    });
    assert.equal(merged.connections.finishedByFamilies["v4-v4"], total);
    assert.equal(merged.connections.activeByCommand["connect"], 1);
    Deno.kill(gateway.pid, "SIGTERM");
    await until(
      "draining logged",
      () => Promise.resolve(/draining 1 connections/.test(gateway.stderr())),
    );
    await writeAll(open, new Uint8Array(10).fill(1));
    await open.closeWrite();
    assert.equal((await readAll(open)).length, 10);
    const status = await gateway.status;
    assert.equal(status.code, 0, gateway.stderr());
    assert.match(gateway.stderr(), /dualgate·main: stopped/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serve refuses translators with workers above 1", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const config = `${dir}/dualgate.yaml`;
    await Deno.writeTextFile(
      config,
      'listen: ["127.0.0.1:0"]\ntranslators: [{ type: ftp, ports: [21] }]\n',
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN_TS, "serve", "--config", config, "--workers", "2"],
      cwd: REPO_ROOT,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 1);
    assert.match(
      new TextDecoder().decode(out.stderr),
      /workers: translators need workers: 1 — the FTP data-connection table lives in one isolate/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serve with workers: 1 runs the single-isolate gateway", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await using server = startServer("127.0.0.1", echo);
    await using gateway = await spawnLocalGateway(
      `listen: ["127.0.0.1:0"]\nadmin: { listen: "127.0.0.1:0" }\nworkers: 1\n`,
      { dir, listeners: 1 },
    );
    const admin = await adminPort(gateway);
    await roundTrip(gateway, server.port);
    let text = "";
    await until("the relay counted", async () => {
      text = await scrape(admin);
      return sampleValue(text, RELAYED) === 1;
    });
    assert.ok(!text.includes("dualgate_workers"));
    assert.ok(!gateway.stderr().includes("worker-"));
    Deno.kill(gateway.pid, "SIGTERM");
    assert.equal((await gateway.status).code, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
