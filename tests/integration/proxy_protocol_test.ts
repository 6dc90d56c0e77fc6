/** PROXY protocol listeners in process: the header's source is the client rules and logs see. */
import assert from "node:assert/strict";
import { PROXY_V2_SIGNATURE } from "../../gateway/listen/proxy_protocol.ts";
import { formatEndpoint, formatIp } from "../../net/address.ts";
import {
  encodeGreeting,
  encodePasswordAuthRequest,
  encodeRequest,
  readMethodSelection,
  readPasswordAuthReply,
} from "../../socks5/codec.ts";
import { httpGet, sampleValue } from "../helpers/http_get.ts";
import {
  connectTo,
  echo,
  readAll,
  readerOf,
  readSocksReply,
  startServer,
  startTestGateway,
  writeAll,
} from "./_fixtures.ts";

function v2Header(source: readonly number[], port: number): Uint8Array {
  const out = new Uint8Array(28);
  out.set(PROXY_V2_SIGNATURE);
  out.set([0x21, 0x11, 0, 12], 12);
  out.set(source, 16);
  out.set([127, 0, 0, 1], 20);
  out.set([port >> 8, port & 0xff, 0x04, 0x42], 24);
  return out;
}

const YAML = `listen:
  - { address: "127.0.0.1:0", proxy_protocol: v2 }
  - { address: "[::1]:0", proxy_protocol: any }
rules:
  # The test servers are on loopback: a remote client reaches them only by an explicit rule.
  - { action: allow, from: ["192.0.2.2/32"], to: ["127.0.0.0/8"] }
  - { action: deny }
`;

async function request(
  endpoint: ReturnType<ReturnType<typeof startTestGateway>["endpoint"]>,
  header: Uint8Array,
  port: number,
) {
  using conn = await connectTo(endpoint);
  const reader = readerOf(conn);
  // Header, greeting and request in one segment: the header read must not eat the rest.
  const greeting = encodeGreeting({ methods: [0] });
  const req = encodeRequest({
    command: 1,
    target: { address: { family: 4, bytes: new Uint8Array([127, 0, 0, 1]) }, port },
  });
  const all = new Uint8Array(header.length + greeting.length + req.length);
  all.set(header);
  all.set(greeting, header.length);
  all.set(req, header.length + greeting.length);
  await writeAll(conn, all);
  assert.equal(await readMethodSelection(reader), 0);
  return (await readSocksReply(reader)).reply;
}

Deno.test("PROXY v2 listener: rules see the header's source, not the balancer's address", async () => {
  await using gw = startTestGateway(YAML);
  await using srv = startServer("127.0.0.1", echo);
  assert.equal(await request(gw.endpoint(4), v2Header([192, 0, 2, 2], 40000), srv.port), 0);
  assert.equal(await request(gw.endpoint(4), v2Header([192, 0, 2, 3], 40001), srv.port), 2);
  const v1 = new TextEncoder().encode("PROXY TCP4 192.0.2.2 127.0.0.1 40002 1090\r\n");
  assert.equal(await request(gw.endpoint(6), v1, srv.port), 0);
  for (let i = 0; i < 200 && gw.records.length < 3; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  const clients = gw.records.map((r) => formatEndpoint(r.client)).sort();
  assert.deepEqual(clients, ["192.0.2.2:40000", "192.0.2.2:40002", "192.0.2.3:40001"]);
});

Deno.test("PROXY listener: a connection without a valid header is closed without a SOCKS reply", async () => {
  await using gw = startTestGateway(YAML);
  for (
    const [family, bytes] of [
      [4, encodeGreeting({ methods: [0] })],
      [4, new TextEncoder().encode("PROXY TCP4 192.0.2.2 127.0.0.1 1 2\r\n")],
      [6, new TextEncoder().encode("PROXY TCP4 192.0.2.2\r\n")],
    ] as const
  ) {
    using conn = await connectTo(gw.endpoint(family));
    await writeAll(conn, bytes);
    let got: Uint8Array;
    try {
      got = await readAll(conn);
    } catch (error) {
      assert.ok(error instanceof Deno.errors.ConnectionReset, String(error));
      got = new Uint8Array(0);
    }
    assert.equal(got.length, 0);
  }
});

const v1Header = (source: string) =>
  new TextEncoder().encode(`PROXY TCP4 ${source} 127.0.0.1 40000 1080\r\n`);

async function metric(gw: ReturnType<typeof startTestGateway>, series: string): Promise<number> {
  const admin = gw.gateway.adminEndpoint!;
  const response = await httpGet(
    { hostname: formatIp(admin.address), port: admin.port },
    "/metrics",
  );
  return sampleValue(response.body, series);
}

/** True when the gateway closes the connection without sending a byte. */
async function closedSilently(conn: Deno.TcpConn): Promise<boolean> {
  const timer = setTimeout(() => conn.close(), 5000);
  try {
    return (await conn.read(new Uint8Array(16))) === null;
  } catch (error) {
    return error instanceof Deno.errors.ConnectionReset;
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("PROXY listener: a peer outside trusted_proxies is closed unread, even claiming an allowed source", async () => {
  await using gw = startTestGateway(`listen:
  - { address: "127.0.0.1:0", proxy_protocol: v1, trusted_proxies: ["192.0.2.0/24"] }
  - { address: "[::1]:0", proxy_protocol: any }
rules:
  # The echo server is on loopback: host-local, so the rule must name it to open it.
  - { action: allow, from: ["127.0.0.1/32", "192.0.2.2/32"], to: ["127.0.0.0/8"] }
  - { action: deny }
admin: { listen: "127.0.0.1:0" }
log: { level: error }
`);
  await using srv = startServer("127.0.0.1", echo);
  for (const claimed of ["127.0.0.1", "192.0.2.2"]) {
    using conn = await connectTo(gw.endpoint(4));
    const greeting = encodeGreeting({ methods: [0] });
    await writeAll(conn, new Uint8Array([...v1Header(claimed), ...greeting])).catch(() => {});
    assert.ok(await closedSilently(conn), `claiming ${claimed}`);
  }
  assert.equal(await metric(gw, 'dualgate_limit_rejections_total{limit="untrusted_proxy"}'), 2);
  assert.equal(gw.records.length, 0);
  // Without trusted_proxies, loopback is trusted: ::1 is a proxy whose header counts.
  assert.equal(await request(gw.endpoint(6), v1Header("192.0.2.2"), srv.port), 0);
});

Deno.test("PROXY listener: the failed-login limit counts the header's client, attempts in flight included", async () => {
  await using gw = startTestGateway(`listen:
  - { address: "127.0.0.1:0", proxy_protocol: v1 }
auth:
  users:
    - { name: alice, password: right-one }
limits: { auth_failures_per_minute: 2 }
admin: { listen: "127.0.0.1:0" }
log: { level: error }
`);
  const open = async (claimed: string) => {
    const conn = await connectTo(gw.endpoint(4));
    await writeAll(
      conn,
      new Uint8Array([...v1Header(claimed), ...encodeGreeting({ methods: [2] })]),
    );
    return conn;
  };
  // Eight connections of one client are set up first; then all send a password at once,
  // seven wrong and the right one last.
  const conns = await Promise.all(Array.from({ length: 8 }, () => open("192.0.2.2")));
  try {
    for (const conn of conns) assert.equal(await readMethodSelection(readerOf(conn)), 2);
    const replies = await Promise.all(conns.map(async (conn, i) => {
      const password = i === conns.length - 1 ? "right-one" : `wrong-${i}`;
      await writeAll(conn, encodePasswordAuthRequest({ username: "alice", password }));
      return await readPasswordAuthReply(readerOf(conn));
    }));
    assert.deepEqual(replies, [1, 1, 1, 1, 1, 1, 1, 1]);
  } finally {
    for (const conn of conns) conn.close();
  }
  assert.equal(await metric(gw, "dualgate_auth_failures_total"), 2);
  // The client is blocked (05 FF) ...
  {
    using conn = await open("192.0.2.2");
    assert.equal(await readMethodSelection(readerOf(conn)), 0xff);
  }
  // ... not the balancer: another client behind it logs in.
  {
    using conn = await open("192.0.2.3");
    const reader = readerOf(conn);
    assert.equal(await readMethodSelection(reader), 2);
    await writeAll(conn, encodePasswordAuthRequest({ username: "alice", password: "right-one" }));
    assert.equal(await readPasswordAuthReply(reader), 0);
  }
});
