/**
 * Behaviour under load: slow clients are closed at the handshake timeout while well-behaved
 * clients keep being served; hundreds of concurrent streams with half-closes stay byte-exact;
 * limits refuse new clients quickly without touching existing relays.
 */
import assert from "node:assert/strict";
import {
  encodeGreeting,
  encodeRequest,
  readMethodSelection,
  readReply,
} from "../../socks5/codec.ts";
import { ExactReader } from "../../socks5/exact_reader.ts";
import {
  connectTo,
  echo,
  randomBytes,
  readAll,
  sha256,
  startServer,
  startTestGateway,
  writeAll,
} from "../integration/_fixtures.ts";
import type { IpEndpoint } from "../../net/address.ts";

const SLOW_CLIENTS = Number(Deno.env.get("DUALGATE_SLOW_CLIENTS") ?? 2000);
const STREAMS = Number(Deno.env.get("DUALGATE_STREAMS") ?? 300);

async function openRelay(gateway: IpEndpoint, port: number): Promise<Deno.TcpConn> {
  const conn = await connectTo(gateway);
  const reader = new ExactReader(conn);
  const target = { address: { family: 4 as const, bytes: Uint8Array.of(127, 0, 0, 1) }, port };
  await writeAll(
    conn,
    Uint8Array.from([
      ...encodeGreeting({ methods: [0] }),
      ...encodeRequest({ command: 1, target }),
    ]),
  );
  assert.equal(await readMethodSelection(reader), 0);
  assert.equal((await readReply(reader)).reply, 0);
  assert.equal(reader.buffered, 0);
  return conn;
}

Deno.test("slow clients are closed at the handshake timeout while others are served", async () => {
  await using gw = startTestGateway(
    "timeouts: { handshake: 1.5 }\nlimits: { max_connections: 10000, max_connections_per_client: 10000 }\nlog: { level: error }",
  );
  await using server = startServer("127.0.0.1", echo);
  const slow: Deno.TcpConn[] = [];
  const started = performance.now();
  try {
    for (let i = 0; i < SLOW_CLIENTS; i++) {
      const conn = await connectTo(gw.endpoint(4));
      // Half a greeting, then silence.
      await writeAll(conn, Uint8Array.of(5));
      slow.push(conn);
    }
    // Well-behaved clients are served while the slow ones wait.
    for (let i = 0; i < 20; i++) {
      using conn = await openRelay(gw.endpoint(4), server.port);
      await writeAll(conn, Uint8Array.of(1, 2, 3));
      await conn.closeWrite();
      assert.deepEqual(await readAll(conn), Uint8Array.of(1, 2, 3));
    }
    assert.ok(gw.gateway.activeConnections >= SLOW_CLIENTS);
    // Every slow client is closed by the gateway, at its timeout.
    const closed = await Promise.all(slow.map(async (conn) => {
      const ended = await Promise.race([
        readAll(conn).then(() => true, () => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 10_000)),
      ]);
      return ended;
    }));
    assert.equal(closed.filter(Boolean).length, SLOW_CLIENTS);
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 1400, `slow clients closed after ${elapsed} ms, before the timeout`);
    for (let i = 0; i < 50 && gw.gateway.activeConnections > 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(gw.gateway.activeConnections, 0);
  } finally {
    for (const conn of slow) {
      try {
        conn.close();
      } catch { /* closed */ }
    }
  }
});

Deno.test("hundreds of concurrent streams with half-closes stay byte-exact both ways", async () => {
  await using gw = startTestGateway("log: { level: error }");
  // Each stream: the client sends A and half-closes; concurrently the server sends B and, after
  // A's end, the SHA-256 of what it received, then closes.
  const expected = new Map<number, Uint8Array<ArrayBuffer>>();
  await using server = startServer("127.0.0.1", async (conn) => {
    const head = new Uint8Array(4);
    let got = 0;
    while (got < 4) {
      const n = await conn.read(head.subarray(got));
      if (n === null) return;
      got += n;
    }
    const id = new DataView(head.buffer).getUint32(0);
    const b = expected.get(id)!;
    const [received] = await Promise.all([readAll(conn), writeAll(conn, b)]);
    await writeAll(conn, new TextEncoder().encode(await sha256(received)));
    await conn.closeWrite();
  });
  const streams = Array.from({ length: STREAMS }, async (_, id) => {
    const a = randomBytes(8 * 1024 + (id * 7919) % (256 * 1024));
    const b = randomBytes(8 * 1024 + (id * 104729) % (256 * 1024));
    expected.set(id, b);
    using conn = await openRelay(gw.endpoint(id % 2 === 0 ? 4 : 6), server.port);
    const head = new Uint8Array(4);
    new DataView(head.buffer).setUint32(0, id);
    const [, answer] = await Promise.all([
      writeAll(conn, head).then(() => writeAll(conn, a)).then(() => conn.closeWrite()),
      readAll(conn),
    ]);
    assert.equal(answer.length, b.length + 64, `stream ${id}`);
    assert.equal(await sha256(answer.slice(0, b.length)), await sha256(b), `stream ${id}: B`);
    assert.equal(
      new TextDecoder().decode(answer.slice(b.length)),
      await sha256(a),
      `stream ${id}: A`,
    );
  });
  await Promise.all(streams);
});

Deno.test("connection limits refuse new clients at once and leave live relays alone", async () => {
  await using gw = startTestGateway(
    "limits: { max_connections: 5, max_connections_per_client: 3 }\nlog: { level: error }",
  );
  await using server = startServer("127.0.0.1", echo);
  const live: Deno.TcpConn[] = [];
  try {
    for (let i = 0; i < 3; i++) live.push(await openRelay(gw.endpoint(4), server.port));
    // A fourth from the same address is closed without a byte.
    {
      using extra = await connectTo(gw.endpoint(4));
      await writeAll(extra, encodeGreeting({ methods: [0] })).catch(() => {});
      const bytes = await readAll(extra).catch(() => new Uint8Array());
      assert.equal(bytes.length, 0);
    }
    // Another client address (IPv6 loopback) still gets in, up to the global limit.
    for (let i = 0; i < 2; i++) live.push(await openRelay(gw.endpoint(6), server.port));
    {
      using extra = await connectTo(gw.endpoint(6));
      await writeAll(extra, encodeGreeting({ methods: [0] })).catch(() => {});
      assert.equal((await readAll(extra).catch(() => new Uint8Array())).length, 0);
    }
    // The live relays are unaffected.
    for (const conn of live) {
      await writeAll(conn, Uint8Array.of(42));
      const one = new Uint8Array(1);
      assert.equal(await conn.read(one), 1);
      assert.equal(one[0], 42);
    }
  } finally {
    for (const conn of live) conn.close();
  }
});
