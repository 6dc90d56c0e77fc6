/**
 * Egress addresses in process, on loopback: the 127.0.0.0/8 addresses are all the host's, so a
 * pool of them is a real pool the server can tell apart. CONNECT and UDP ASSOCIATE leave from
 * the configured source; a family without a source is never used.
 */
import assert from "node:assert/strict";
import { formatIp, type IpAddress, parseIp } from "../../net/address.ts";
import {
  decodeUdpDatagram,
  encodeGreeting,
  encodePasswordAuthRequest,
  encodeRequest,
  encodeUdpDatagram,
  readMethodSelection,
  readPasswordAuthReply,
} from "../../socks5/codec.ts";
import type { SocksTarget } from "../../socks5/types.ts";
import {
  connectTo,
  echo,
  readAll,
  readerOf,
  readSocksReply,
  startServer,
  startTestGateway,
  type TestGateway,
  writeAll,
} from "./_fixtures.ts";

const ip = (text: string): IpAddress => parseIp(text)!;

/** The first record of `command`, waiting for it (records are written after the reply). */
async function recordOf(gw: TestGateway, command: string) {
  for (let i = 0; i < 150; i++) {
    const found = gw.records.find((r) => r.command === command);
    if (found) return found;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`no ${command} record`);
}

/** Opens a SOCKS session (as `user`, password `pw`, when given) and sends one request. */
async function socks(
  gw: TestGateway,
  command: number,
  target: SocksTarget,
  user?: string,
) {
  const conn = await connectTo(gw.endpoint(4));
  const reader = readerOf(conn);
  await writeAll(conn, encodeGreeting({ methods: [user ? 2 : 0] }));
  assert.equal(await readMethodSelection(reader), user ? 2 : 0);
  if (user) {
    await writeAll(conn, encodePasswordAuthRequest({ username: user, password: "pw" }));
    assert.equal(await readPasswordAuthReply(reader), 0);
  }
  await writeAll(conn, encodeRequest({ command, target }));
  return { conn, reader, reply: await readSocksReply(reader) };
}

/** A server on 127.0.0.1 that writes back the peer address it saw. */
function tellingServer() {
  return startServer("127.0.0.1", async (conn) => {
    await writeAll(conn, new TextEncoder().encode((conn.remoteAddr as Deno.NetAddr).hostname));
    await conn.closeWrite();
  });
}

async function sourceSeen(gw: TestGateway, port: number, user?: string): Promise<string> {
  const { conn, reader, reply } = await socks(gw, 1, { address: ip("127.0.0.1"), port }, user);
  assert.equal(reply.reply, 0);
  const body = [...reader.takeBuffered(), ...await readAll(conn)];
  conn.close();
  return new TextDecoder().decode(Uint8Array.from(body));
}

Deno.test("egress: CONNECT leaves from the route's addresses, round robin per connection", async () => {
  await using server = tellingServer();
  await using gw = startTestGateway(`routes:
  - to: ["127.0.0.0/8"]
    egress: ["127.0.0.2", "127.0.0.3"]
`);
  const seen = [];
  for (let i = 0; i < 3; i++) seen.push(await sourceSeen(gw, server.port));
  assert.deepEqual(seen, ["127.0.0.2", "127.0.0.3", "127.0.0.2"]);
});

Deno.test("egress: a user's pool wins over the route's; sticky_user keeps one source", async () => {
  await using server = tellingServer();
  await using gw = startTestGateway(`auth:
  users:
    - { name: alice, password: pw, egress: ["127.0.0.7", "127.0.0.8", "127.0.0.9"], egress_policy: sticky_user }
    - { name: bob, password: pw }
routes:
  - to: ["*"]
    egress: ["127.0.0.2"]
`);
  const alice = new Set<string>();
  for (let i = 0; i < 3; i++) alice.add(await sourceSeen(gw, server.port, "alice"));
  assert.equal(alice.size, 1);
  assert.match([...alice][0]!, /^127\.0\.0\.[789]$/);
  assert.equal(await sourceSeen(gw, server.port, "bob"), "127.0.0.2");
});

Deno.test("egress: a destination of a family the pool lacks is REP 3, never dialed", async () => {
  let accepted = 0;
  await using server = startServer("::1", (conn) => (accepted++, echo(conn)));
  await using gw = startTestGateway(`routes:
  - to: ["*"]
    egress: ["127.0.0.2"]
`);
  const { conn, reply } = await socks(gw, 1, { address: ip("::1"), port: server.port });
  assert.equal(reply.reply, 3);
  conn.close();
  assert.equal(accepted, 0);
  assert.match((await recordOf(gw, "connect")).reason ?? "", /no IPv6 egress address/);
});

Deno.test("egress: UDP ASSOCIATE sends from the pool's source; a family without one is dropped", async () => {
  const peer = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const peerPort = (peer.addr as Deno.NetAddr).port;
  await using gw = startTestGateway(`auth:
  users:
    - { name: carol, password: pw, egress: ["127.0.0.4"] }
`);
  const client = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const clientPort = (client.addr as Deno.NetAddr).port;
  const { conn, reply } = await socks(
    gw,
    3,
    { address: ip("127.0.0.1"), port: clientPort },
    "carol",
  );
  assert.equal(reply.reply, 0);
  const relay = {
    transport: "udp" as const,
    hostname: formatIp(reply.bound.address as IpAddress),
    port: reply.bound.port,
  };
  // First to ::1 (no IPv6 source: dropped), then to the IPv4 peer.
  await client.send(
    encodeUdpDatagram({
      fragment: 0,
      target: { address: ip("::1"), port: peerPort },
      payload: new Uint8Array([6]),
    }),
    relay,
  );
  await client.send(
    encodeUdpDatagram({
      fragment: 0,
      target: { address: ip("127.0.0.1"), port: peerPort },
      payload: new Uint8Array([4]),
    }),
    relay,
  );
  const [data, from] = await peer.receive();
  assert.deepEqual([...data], [4]);
  assert.equal((from as Deno.NetAddr).hostname, "127.0.0.4");
  // The answer comes back through the association.
  await peer.send(new Uint8Array([9]), from);
  const [back] = await client.receive();
  assert.deepEqual([...decodeUdpDatagram(back).payload], [9]);
  conn.close();
  assert.match((await recordOf(gw, "udp")).reason ?? "", /no_egress=1/);
  peer.close();
  client.close();
});

Deno.test("egress: on a chained route, the first hop is dialed from the route's source", async () => {
  await using server = tellingServer();
  await using hop = startTestGateway(`listen: ["127.0.0.1:0"]`);
  const hopPort = hop.endpoint(4).port;
  await using gw = startTestGateway(`routes:
  - to: ["*"]
    chain: ["socks5://127.0.0.1:${hopPort}"]
    egress: ["127.0.0.9"]
`);
  // The server sees the hop; the hop sees this gateway's egress source.
  assert.equal(await sourceSeen(gw, server.port), "127.0.0.1");
  const record = await recordOf(hop, "connect");
  assert.equal(formatIp(record.client.address), "127.0.0.9");
});
