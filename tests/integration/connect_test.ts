import assert from "node:assert/strict";
import { hashPassword } from "../../gateway/config/password.ts";
import { connectionLogLevel, type ConnectionRecord } from "../../gateway/observe/connection_log.ts";
import { parseIp } from "../../net/address.ts";
import {
  encodeGreeting,
  encodePasswordAuthRequest,
  encodeRequest,
  readMethodSelection,
  readPasswordAuthReply,
} from "../../socks5/codec.ts";
import type { ExactReader } from "../../socks5/exact_reader.ts";
import type { SocksReply, SocksTarget } from "../../socks5/types.ts";
import {
  connectTo,
  echo,
  randomBytes,
  readAll,
  readerOf,
  readSocksReply,
  sha256,
  startServer,
  startTestGateway,
  TEST_HOSTS,
  writeAll,
} from "./_fixtures.ts";

const HOSTS = TEST_HOSTS;

function nameTarget(name: string, port: number): SocksTarget {
  return { address: { family: "name", name }, port };
}

function ipTarget(text: string, port: number): SocksTarget {
  return { address: parseIp(text)!, port };
}

interface Opened {
  conn: Deno.TcpConn;
  reader: ExactReader;
  reply: SocksReply;
}

async function socksConnect(
  conn: Deno.TcpConn,
  target: SocksTarget,
  command = 1,
): Promise<Opened> {
  const reader = readerOf(conn);
  await writeAll(conn, encodeGreeting({ methods: [0] }));
  assert.equal(await readMethodSelection(reader), 0);
  await writeAll(conn, encodeRequest({ command, target }));
  return { conn, reader, reply: await readSocksReply(reader) };
}

/** Reads until EOF or reset: the gateway closed the connection. */
async function recordWhere(
  gw: { records: ConnectionRecord[] },
  match: (record: ConnectionRecord) => boolean,
): Promise<ConnectionRecord> {
  const deadline = performance.now() + 5000;
  while (performance.now() < deadline) {
    const found = gw.records.find(match);
    if (found) return found;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`no matching record in ${JSON.stringify(gw.records)}`);
}

async function closedByGateway(conn: Deno.TcpConn): Promise<boolean> {
  try {
    const buffer = new Uint8Array(64);
    while ((await conn.read(buffer)) !== null) { /* drain */ }
    return true;
  } catch (error) {
    return error instanceof Deno.errors.ConnectionReset;
  }
}

for (const family of [4, 6] as const) {
  for (const server of ["v4", "v6"] as const) {
    Deno.test(`CONNECT by name: IPv${family} client to ${server}-only server relays and replies with the outbound socket`, async () => {
      await using gw = startTestGateway(HOSTS);
      await using srv = startServer(server === "v4" ? "127.0.0.1" : "::1", echo);
      using conn = await connectTo(gw.endpoint(family));
      const { reply, reader } = await socksConnect(
        conn,
        nameTarget(`${server}.test.example`, srv.port),
      );
      assert.equal(reply.reply, 0);
      assert.equal(reply.bound.address.family, server === "v4" ? 4 : 6);
      assert.notEqual(reply.bound.port, 0);
      assert.equal(reader.buffered, 0);
      const payload = randomBytes(256 * 1024);
      const [, echoed] = await Promise.all([
        writeAll(conn, payload).then(() => conn.closeWrite()),
        readAll(conn),
      ]);
      assert.equal(await sha256(echoed), await sha256(payload));
    });
  }
}

Deno.test("CONNECT: an IPv6 literal sent as DOMAINNAME is an address, bracketed or not", async () => {
  await using gw = startTestGateway();
  await using srv = startServer("::1", echo);
  for (const name of ["::1", "[::1]", "127.0.0.1"]) {
    await using srv4 = startServer("127.0.0.1", echo);
    using conn = await connectTo(gw.endpoint(4));
    const port = name === "127.0.0.1" ? srv4.port : srv.port;
    const { reply } = await socksConnect(conn, nameTarget(name, port));
    assert.equal(reply.reply, 0, `literal ${name}`);
  }
});

Deno.test("CONNECT: a name with no address gets REP 4", async () => {
  await using gw = startTestGateway(HOSTS);
  using conn = await connectTo(gw.endpoint(4));
  const { reply } = await socksConnect(conn, nameTarget("nowhere.test.example", 80));
  assert.equal(reply.reply, 4);
  assert.deepEqual(reply.bound, { address: { family: 4, bytes: new Uint8Array(4) }, port: 0 });
  assert.ok(await closedByGateway(conn));
});

Deno.test("CONNECT: a refused connection gets REP 5", async () => {
  await using gw = startTestGateway(HOSTS);
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = closed.addr.port;
  closed.close();
  using conn = await connectTo(gw.endpoint(6));
  const { reply } = await socksConnect(conn, ipTarget("127.0.0.1", port));
  assert.equal(reply.reply, 5);
  assert.ok(await closedByGateway(conn));
});

Deno.test("CONNECT: a family the gateway may not use gets REP 3", async () => {
  await using gw = startTestGateway("resolver: { prefer: ipv4-only }");
  using conn = await connectTo(gw.endpoint(4));
  const { reply } = await socksConnect(conn, ipTarget("::1", 9));
  assert.equal(reply.reply, 3);
});

Deno.test("CONNECT: a name with only AAAA under ipv4-only gets REP 4", async () => {
  await using gw = startTestGateway(HOSTS + "  prefer: ipv4-only\n");
  using conn = await connectTo(gw.endpoint(4));
  const { reply } = await socksConnect(conn, nameTarget("v6.test.example", 9));
  assert.equal(reply.reply, 4);
});

Deno.test("CONNECT: denied by rules gets REP 2, allowed destinations still work", async () => {
  await using gw = startTestGateway(
    HOSTS + `rules:
  - { action: deny, to: ["::1"] }
  - { action: allow, from: ["127.0.0.0/8", "::1"] }
`,
  );
  await using srv = startServer("127.0.0.1", echo);
  {
    using conn = await connectTo(gw.endpoint(4));
    const { reply } = await socksConnect(conn, nameTarget("v6.test.example", srv.port));
    assert.equal(reply.reply, 2);
  }
  const denied = await recordWhere(gw, (r) => r.reply === 2);
  assert.equal(denied.reason, "Cannot connect: denied by rules[0]");
  {
    // A name with both families: the denied IPv6 address is skipped, IPv4 is used.
    using conn = await connectTo(gw.endpoint(4));
    const { reply } = await socksConnect(conn, nameTarget("both.test.example", srv.port));
    assert.equal(reply.reply, 0);
    assert.equal(reply.bound.address.family, 4);
  }
});

Deno.test("CONNECT: a destination no rule allows is recorded as such", async () => {
  await using gw = startTestGateway(
    HOSTS + `rules: [{ action: allow, to: ["192.0.2.0/24"] }]\n`,
  );
  using conn = await connectTo(gw.endpoint(4));
  const { reply } = await socksConnect(conn, ipTarget("127.0.0.1", 9));
  assert.equal(reply.reply, 2);
  const record = await recordWhere(gw, (r) => r.reply === 2);
  assert.equal(record.reason, "Cannot connect: denied by rules: no rule allows it");
});

Deno.test("requests: unknown command gets REP 7", async () => {
  await using gw = startTestGateway(HOSTS);
  for (const command of [9]) {
    using conn = await connectTo(gw.endpoint(4));
    const { reply } = await socksConnect(conn, ipTarget("127.0.0.1", 1), command);
    assert.equal(reply.reply, 7, `command ${command}`);
    assert.ok(await closedByGateway(conn));
  }
});

Deno.test("requests: unknown address type gets REP 8 and a complete reply", async () => {
  await using gw = startTestGateway();
  using conn = await connectTo(gw.endpoint(4));
  const reader = readerOf(conn);
  await writeAll(conn, Uint8Array.of(5, 1, 0, 5, 1, 0, 5, 1, 2, 3, 4, 0, 80));
  assert.equal(await readMethodSelection(reader), 0);
  const reply = await readSocksReply(reader);
  assert.equal(reply.reply, 8);
  assert.ok(await closedByGateway(conn));
});

Deno.test("negotiation: a greeting and request split into single bytes parse the same", async () => {
  await using gw = startTestGateway(HOSTS);
  await using srv = startServer("127.0.0.1", echo);
  using conn = await connectTo(gw.endpoint(4));
  const reader = readerOf(conn);
  const bytes = [
    ...encodeGreeting({ methods: [0] }),
    ...encodeRequest({ command: 1, target: nameTarget("v4.test.example", srv.port) }),
  ];
  for (const byte of bytes) {
    await writeAll(conn, Uint8Array.of(byte));
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  assert.equal(await readMethodSelection(reader), 0);
  assert.equal((await readSocksReply(reader)).reply, 0);
});

Deno.test("negotiation: greeting, request and data in one segment reach the server in order", async () => {
  await using gw = startTestGateway(HOSTS);
  await using srv = startServer("127.0.0.1", echo);
  using conn = await connectTo(gw.endpoint(4));
  const reader = readerOf(conn);
  const data = new TextEncoder().encode("pipelined payload");
  await writeAll(
    conn,
    Uint8Array.from([
      ...encodeGreeting({ methods: [0] }),
      ...encodeRequest({ command: 1, target: nameTarget("v4.test.example", srv.port) }),
      ...data,
    ]),
  );
  await conn.closeWrite();
  assert.equal(await readMethodSelection(reader), 0);
  assert.equal((await readSocksReply(reader)).reply, 0);
  const rest = [...reader.takeBuffered(), ...await readAll(conn)];
  assert.deepEqual(Uint8Array.from(rest), data);
});

Deno.test("negotiation: no acceptable method gets 05 FF and a close", async () => {
  await using gw = startTestGateway("auth: { users: [{ name: alice, password: change-me }] }");
  using conn = await connectTo(gw.endpoint(4));
  const reader = readerOf(conn);
  await writeAll(conn, encodeGreeting({ methods: [0, 1] }));
  assert.equal(await readMethodSelection(reader), 0xff);
  assert.ok(await closedByGateway(conn));
});

Deno.test("negotiation: a non-SOCKS5 greeting is closed without a reply", async () => {
  await using gw = startTestGateway();
  using conn = await connectTo(gw.endpoint(4));
  await writeAll(conn, Uint8Array.of(4, 1, 0, 80, 127, 0, 0, 1, 0));
  assert.deepEqual(await readAll(conn).catch(() => new Uint8Array()), new Uint8Array());
});

Deno.test("negotiation: a client that sends nothing is closed at the handshake timeout", async () => {
  await using gw = startTestGateway("timeouts: { handshake: 0.3 }");
  using conn = await connectTo(gw.endpoint(4));
  const started = performance.now();
  assert.ok(await closedByGateway(conn));
  const elapsed = performance.now() - started;
  assert.ok(elapsed >= 250 && elapsed < 3000, `closed after ${elapsed} ms`);
});

for (const kind of ["password", "password_hash"] as const) {
  Deno.test(`RFC 1929: ${kind} accepted, wrong password refused with status 1 and a close`, async () => {
    const secret = kind === "password" ? "change-me" : await hashPassword("change-me", { N: 1024 });
    await using gw = startTestGateway(
      HOSTS + `auth: { users: [{ name: alice, ${kind}: "${secret}" }] }`,
    );
    await using srv = startServer("127.0.0.1", echo);
    for (const [password, expected] of [["change-me", 0], ["wrong", 1]] as const) {
      using conn = await connectTo(gw.endpoint(6));
      const reader = readerOf(conn);
      await writeAll(conn, encodeGreeting({ methods: [0, 2] }));
      assert.equal(await readMethodSelection(reader), 2);
      await writeAll(conn, encodePasswordAuthRequest({ username: "alice", password }));
      assert.equal(await readPasswordAuthReply(reader), expected);
      if (expected !== 0) {
        assert.ok(await closedByGateway(conn));
        continue;
      }
      await writeAll(
        conn,
        encodeRequest({ command: 1, target: nameTarget("v4.test.example", srv.port) }),
      );
      assert.equal((await readSocksReply(reader)).reply, 0);
    }
    assert.ok(gw.records.some((r) => r.user === "alice" && r.outcome === "relayed"));
  });
}

Deno.test("RFC 1929: a failed login is recorded with the configured user it tried, not an unknown name", async () => {
  await using gw = startTestGateway("auth: { users: [{ name: alice, password: change-me }] }");
  for (const username of ["alice", "change-me-typed-as-user"]) {
    using conn = await connectTo(gw.endpoint(4));
    const reader = readerOf(conn);
    await writeAll(conn, encodeGreeting({ methods: [2] }));
    assert.equal(await readMethodSelection(reader), 2);
    await writeAll(conn, encodePasswordAuthRequest({ username, password: "guess" }));
    assert.equal(await readPasswordAuthReply(reader), 1);
    assert.ok(await closedByGateway(conn));
  }
  const known = await recordWhere(gw, (r) => r.reason === "authentication failed");
  assert.equal(known.user, "alice");
  assert.equal(connectionLogLevel(known), "warning");
  const unknown = await recordWhere(gw, (r) => r.reason === "authentication failed: unknown user");
  assert.equal(unknown.user, undefined);
  assert.equal(connectionLogLevel(unknown), "warning");
});

Deno.test("negotiation: a client that closes after the greeting is logged at info, a truncated message is a warning", async () => {
  await using gw = startTestGateway();
  {
    using conn = await connectTo(gw.endpoint(4));
    await writeAll(conn, encodeGreeting({ methods: [0] }));
    assert.equal(await readMethodSelection(readerOf(conn)), 0);
  }
  const left = await recordWhere(gw, () => true);
  assert.equal(left.reason, "client closed before its request");
  assert.equal(left.clientClosed, true);
  assert.equal(connectionLogLevel(left), "info");
  {
    using conn = await connectTo(gw.endpoint(6));
    await writeAll(conn, encodeGreeting({ methods: [0] }));
    assert.equal(await readMethodSelection(readerOf(conn)), 0);
    await writeAll(conn, Uint8Array.of(5, 1, 0, 1, 127));
  }
  const cut = await recordWhere(gw, (r) => r !== left);
  assert.match(cut.reason ?? "", /mid-message/);
  assert.equal(cut.clientClosed, undefined);
  assert.equal(connectionLogLevel(cut), "warning");
});

Deno.test("RFC 1929: a sub-negotiation with VER 5 is refused", async () => {
  await using gw = startTestGateway("auth: { users: [{ name: alice, password: change-me }] }");
  using conn = await connectTo(gw.endpoint(4));
  const reader = readerOf(conn);
  await writeAll(conn, encodeGreeting({ methods: [2] }));
  assert.equal(await readMethodSelection(reader), 2);
  const request = encodePasswordAuthRequest({ username: "alice", password: "change-me" });
  request[0] = 5;
  await writeAll(conn, request);
  assert.ok(await closedByGateway(conn));
});

Deno.test("relay: half-close keeps the reply flowing after the client stops writing", async () => {
  await using gw = startTestGateway(HOSTS);
  const answer = randomBytes(1024 * 1024);
  await using srv = startServer("::1", async (conn) => {
    await readAll(conn); // until the client's half-close arrives
    await writeAll(conn, answer);
    await conn.closeWrite();
  });
  using conn = await connectTo(gw.endpoint(4));
  const { reply } = await socksConnect(conn, nameTarget("v6.test.example", srv.port));
  assert.equal(reply.reply, 0);
  await writeAll(conn, new TextEncoder().encode("request"));
  await conn.closeWrite();
  assert.equal(await sha256(await readAll(conn)), await sha256(answer));
});

Deno.test("relay: 64 concurrent connections stay byte-exact in both directions", async () => {
  await using gw = startTestGateway(HOSTS);
  await using srv = startServer("127.0.0.1", echo);
  const runs = Array.from({ length: 64 }, async (_, i) => {
    using conn = await connectTo(gw.endpoint(i % 2 === 0 ? 4 : 6));
    const { reply } = await socksConnect(
      conn,
      nameTarget(i % 3 === 0 ? "v4.test.example" : "both.test.example", srv.port),
    );
    assert.equal(reply.reply, 0);
    const payload = randomBytes(64 * 1024 + i * 997);
    const [, echoed] = await Promise.all([
      writeAll(conn, payload).then(() => conn.closeWrite()),
      readAll(conn),
    ]);
    assert.equal(await sha256(echoed), await sha256(payload));
  });
  await Promise.all(runs);
  // Each record is written when both relay directions are finished.
  const relayed = gw.records.filter((r) => r.outcome === "relayed");
  assert.equal(relayed.length, 64);
  for (const record of relayed) assert.equal(record.bytesUp, record.bytesDown);
});

Deno.test("logging: a finished connection records destination, address used, families, bytes", async () => {
  await using gw = startTestGateway(HOSTS);
  await using srv = startServer("::1", echo);
  {
    using conn = await connectTo(gw.endpoint(4));
    await socksConnect(conn, nameTarget("v6.test.example", srv.port));
    await writeAll(conn, new Uint8Array(100));
    await conn.closeWrite();
    await readAll(conn);
  }
  await gw.gateway.stop(2000);
  const record = gw.records.find((r) => r.outcome === "relayed");
  assert.ok(record);
  assert.equal(record.client.address.family, 4);
  assert.equal(record.used?.address.family, 6);
  assert.equal(record.bytesUp, 100);
  assert.equal(record.bytesDown, 100);
  assert.equal(record.reply, 0);
});

Deno.test("stop: drains live relays for a bounded time, then closes them", async () => {
  await using gw = startTestGateway(HOSTS);
  await using srv = startServer("127.0.0.1", echo);
  using conn = await connectTo(gw.endpoint(4));
  await socksConnect(conn, nameTarget("v4.test.example", srv.port));
  const started = performance.now();
  await gw.gateway.stop(300);
  const elapsed = performance.now() - started;
  assert.ok(elapsed >= 250 && elapsed < 3000, `stopped after ${elapsed} ms`);
  assert.ok(await closedByGateway(conn));
  await assert.rejects(connectTo(gw.endpoint(4)));
});
