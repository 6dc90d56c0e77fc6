/**
 * Faults: a destination that resets mid-stream, a DNS server that never answers, and SIGTERM
 * draining a gateway process within its bound.
 */
import assert from "node:assert/strict";
import { parseConfig } from "../../gateway/config/load.ts";
import { startGateway } from "../../gateway/mod.ts";
import {
  encodeGreeting,
  encodeRequest,
  readMethodSelection,
  readReply,
} from "../../socks5/codec.ts";
import { ExactReader } from "../../socks5/exact_reader.ts";
import type { SocksTarget } from "../../socks5/types.ts";
import { spawnLocalGateway } from "../helpers/dualgate.ts";
import {
  connectTo,
  echo,
  readAll,
  startServer,
  startTestGateway,
  writeAll,
} from "../integration/_fixtures.ts";

async function request(
  hostname: string,
  port: number,
  target: SocksTarget,
): Promise<{ conn: Deno.TcpConn; reply: number }> {
  const conn = await Deno.connect({ hostname, port });
  const reader = new ExactReader(conn);
  await writeAll(
    conn,
    Uint8Array.from([
      ...encodeGreeting({ methods: [0] }),
      ...encodeRequest({ command: 1, target }),
    ]),
  );
  assert.equal(await readMethodSelection(reader), 0);
  return { conn, reply: (await readReply(reader)).reply };
}

const loopback = (port: number): SocksTarget => ({
  address: { family: 4, bytes: Uint8Array.of(127, 0, 0, 1) },
  port,
});

Deno.test("a destination reset mid-stream ends the client's connection promptly", async () => {
  await using gw = startTestGateway("log: { level: error }");
  // The server reads a little, then closes with unread data queued: the kernel answers RST.
  await using server = startServer("127.0.0.1", async (conn) => {
    await conn.read(new Uint8Array(16));
    await new Promise((resolve) => setTimeout(resolve, 100));
    conn.close();
  });
  const endpoint = gw.endpoint(4);
  const { conn, reply } = await request(
    endpoint.address.family === 4 ? "127.0.0.1" : "::1",
    endpoint.port,
    loopback(server.port),
  );
  using _conn = conn;
  assert.equal(reply, 0);
  const started = performance.now();
  const writer = (async () => {
    const chunk = new Uint8Array(64 * 1024);
    try {
      for (let i = 0; i < 1000; i++) await writeAll(conn, chunk);
    } catch { /* expected: the gateway closed us */ }
  })();
  await readAll(conn).catch(() => {});
  await writer;
  assert.ok(performance.now() - started < 5000, "the reset took too long to reach the client");
  for (let i = 0; i < 50 && gw.records.length === 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const record = gw.records.find((r) => r.outcome === "relayed");
  assert.ok(record);
  assert.match(record.reason ?? "", /error|closed/);
});

Deno.test("a DNS server that never answers gives REP 4 after the resolver timeout; others are served meanwhile", async () => {
  const silent = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  const dnsPort = (silent.addr as Deno.NetAddr).port;
  await using server = startServer("127.0.0.1", echo);
  const config = parseConfig(
    `listen: ["127.0.0.1:0"]\nresolver: { servers: ["127.0.0.1:${dnsPort}"], timeout: 1, hosts_file: "" }\nlog: { level: error }`,
  );
  await using gateway = startGateway(config);
  const { port } = gateway.endpoints[0]!;
  try {
    const started = performance.now();
    const slow = request("127.0.0.1", port, {
      address: { family: "name", name: "unanswered.dualgate.example" },
      port: 80,
    });
    // While the lookup hangs, a request by literal is served at once.
    const fast = await request("127.0.0.1", port, loopback(server.port));
    assert.equal(fast.reply, 0);
    assert.ok(performance.now() - started < 900, "a literal waited for the hung lookup");
    await writeAll(fast.conn, Uint8Array.of(9));
    await fast.conn.closeWrite();
    assert.deepEqual(await readAll(fast.conn), Uint8Array.of(9));
    fast.conn.close();
    const answer = await slow;
    answer.conn.close();
    assert.equal(answer.reply, 4);
    assert.ok(performance.now() - started >= 900, "REP 4 came before the resolver timeout");
  } finally {
    silent.close();
  }
});

Deno.test("SIGTERM stops accepting, drains live relays, and exits within the drain bound", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dualgate-sigterm-" });
  await using server = startServer("127.0.0.1", echo);
  try {
    await using gateway = await spawnLocalGateway(
      'listen: ["127.0.0.1:0"]\ntimeouts: { drain: 2 }\nlog: { level: info }',
      { dir, listeners: 1 },
    );
    const { hostname, port } = gateway.endpoints[0]!;
    const { conn, reply } = await request(hostname, port, loopback(server.port));
    using _conn = conn;
    assert.equal(reply, 0);
    const started = performance.now();
    Deno.kill(gateway.pid, "SIGTERM");
    // During the drain the live relay still works.
    await new Promise((resolve) => setTimeout(resolve, 300));
    await writeAll(conn, Uint8Array.of(7));
    const one = new Uint8Array(1);
    assert.equal(await conn.read(one), 1);
    // New connections are refused.
    await assert.rejects(Deno.connect({ hostname, port }));
    const status = await gateway.status;
    const elapsed = performance.now() - started;
    assert.equal(status.code, 0);
    assert.ok(elapsed >= 1500 && elapsed < 6000, `exited after ${elapsed} ms (drain 2 s)`);
    assert.match(gateway.stderr(), /SIGTERM received/);
    await readAll(conn).catch(() => {});
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an idle relay is closed at the idle timeout", async () => {
  await using gw = startTestGateway("timeouts: { idle: 0.5 }\nlog: { level: error }");
  await using server = startServer("127.0.0.1", echo);
  const endpoint = gw.endpoint(4);
  using conn = await connectTo(endpoint);
  const reader = new ExactReader(conn);
  await writeAll(
    conn,
    Uint8Array.from([
      ...encodeGreeting({ methods: [0] }),
      ...encodeRequest({ command: 1, target: loopback(server.port) }),
    ]),
  );
  assert.equal(await readMethodSelection(reader), 0);
  assert.equal((await readReply(reader)).reply, 0);
  const started = performance.now();
  await readAll(conn).catch(() => {});
  const elapsed = performance.now() - started;
  assert.ok(elapsed >= 400 && elapsed < 3000, `closed after ${elapsed} ms`);
  for (let i = 0; i < 50 && gw.records.length === 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.equal(gw.records[0]?.reason, "idle");
});
