import assert from "node:assert/strict";
import { connectVia } from "./connect.ts";
import { GatewayList } from "./gateway_list.ts";
import { connectViaNode } from "./node_patches.ts";
import { parseGatewayUrl } from "./gateway_url.ts";
import { startTestSocksServer } from "../tests/helpers/test_socks_server.ts";

Deno.test("GatewayList.attempts() follows the strategy and tries marked gateways last", () => {
  const urls = ["socks5://192.0.2.1:1080", "socks5://192.0.2.2:1080", "socks5://192.0.2.3:1080"];
  const failover = new GatewayList(urls.map(parseGatewayUrl));
  const order = () => failover.attempts().map((a) => a.gateway.hostname);
  assert.deepEqual(order(), ["192.0.2.1", "192.0.2.2", "192.0.2.3"]);
  failover.attempts()[0]!.failed();
  assert.deepEqual(order(), ["192.0.2.2", "192.0.2.3", "192.0.2.1"]);

  const roundRobin = new GatewayList(urls.map(parseGatewayUrl), { strategy: "round-robin" });
  const firsts = Array.from({ length: 6 }, () => roundRobin.attempts()[0]!.gateway.hostname);
  assert.deepEqual(firsts, [
    "192.0.2.1",
    "192.0.2.2",
    "192.0.2.3",
    "192.0.2.1",
    "192.0.2.2",
    "192.0.2.3",
  ]);
});

Deno.test("connectVia() spreads connections over gateways round-robin and skips a dead one", async () => {
  await using a = startTestSocksServer();
  await using b = startTestSocksServer();
  const dead = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const deadPort = dead.addr.port;
  dead.close();
  const target = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepting = (async () => {
    for await (const conn of target) conn.close();
  })().catch(() => {});
  const list = new GatewayList(
    [
      `socks5://127.0.0.1:${a.port}`,
      `socks5://127.0.0.1:${deadPort}`,
      `socks5://127.0.0.1:${b.port}`,
    ]
      .map(parseGatewayUrl),
    { strategy: "round-robin" },
  );
  const used: number[] = [];
  for (let i = 0; i < 6; i++) {
    const { conn, gateway } = await connectVia(list, {
      address: { family: 4, bytes: Uint8Array.of(127, 0, 0, 1) },
      port: target.addr.port,
    }, { connectTimeoutMs: 2000 });
    used.push(gateway.port);
    conn.close();
  }
  assert.equal(used.filter((p) => p === a.port).length, 3);
  assert.equal(used.filter((p) => p === b.port).length, 3);
  assert.ok(!used.includes(deadPort));
  target.close();
  await accepting;
});

/** Accepts TCP connections and never says a word (holds them until disposed). */
function silentGateway() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const done = (async () => {
    for await (const conn of listener) held.push(conn);
  })();
  return {
    url: `socks5://127.0.0.1:${listener.addr.port}`,
    accepted: () => held.length,
    async [Symbol.asyncDispose]() {
      listener.close();
      await done;
      for (const conn of held) conn.close();
    },
  };
}

// The connect timeout is far longer than the test's own abort: only the negotiation bound can get
// past the silent gateway before the abort.
const FOREVER_MS = 600_000;

Deno.test("connectVia() gives up on a silent gateway after the negotiation bound and marks it", async () => {
  await using silent = silentGateway();
  await using server = startTestSocksServer({ hosts: { "svc.test": "127.0.0.1" } });
  const list = new GatewayList(
    [silent.url, `socks5://127.0.0.1:${server.port}`].map(parseGatewayUrl),
  );
  const { conn, gateway } = await connectVia(list, {
    address: { family: "name", name: "svc.test" },
    port: server.port,
  }, {
    negotiationTimeoutMs: 50,
    connectTimeoutMs: FOREVER_MS,
    signal: AbortSignal.timeout(30_000),
  });
  conn.close();
  assert.equal(gateway.port, server.port);
  assert.equal(silent.accepted(), 1);
  assert.equal(list.attempts()[0]!.gateway.port, server.port, "the silent gateway is marked");
});

Deno.test("connectViaNode() (node:net) gives up on a silent gateway after the negotiation bound", async () => {
  await using silent = silentGateway();
  await using server = startTestSocksServer({ hosts: { "svc.test": "127.0.0.1" } });
  const list = new GatewayList(
    [silent.url, `socks5://127.0.0.1:${server.port}`].map(parseGatewayUrl),
  );
  const abort = AbortSignal.timeout(30_000);
  const socket = await Promise.race([
    connectViaNode(list, {
      address: { family: "name", name: "svc.test" },
      port: server.port,
    }, { negotiationTimeoutMs: 50, connectTimeoutMs: FOREVER_MS, signal: abort }),
    new Promise<never>((_, reject) => abort.addEventListener("abort", () => reject(abort.reason))),
  ]);
  socket.destroy();
  assert.equal(silent.accepted(), 1);
  assert.equal(list.attempts()[0]!.gateway.port, server.port, "the silent gateway is marked");
  assert.deepEqual(server.requests.map((r) => r.host), ["svc.test"]);
});
