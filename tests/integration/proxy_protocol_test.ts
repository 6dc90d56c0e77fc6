/** PROXY protocol listeners in process: the header's source is the client rules and logs see. */
import assert from "node:assert/strict";
import { PROXY_V2_SIGNATURE } from "../../gateway/proxy_protocol.ts";
import { formatEndpoint } from "../../net/address.ts";
import { encodeGreeting, encodeRequest, readMethodSelection } from "../../socks5/codec.ts";
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
