/**
 * Chained relays in process: gateways G1 -> G2 -> G3 on 127.0.0.1 and ::1, names known only at
 * the last gateway (its static `resolver.hosts`), every other resolver knowing nothing.
 */
import assert from "node:assert/strict";
import { formatTarget } from "../../gateway/observe/connection_log.ts";
import { formatEndpoint, formatIp, type IpEndpoint, parseIp } from "../../net/address.ts";
import { socksHandshake } from "../../socks5/client.ts";
import { SocksReplyError } from "../../socks5/errors.ts";
import { Command, type SocksTarget } from "../../socks5/types.ts";
import {
  connectTo,
  echo,
  randomBytes,
  readAll,
  sha256,
  startServer,
  startTestGateway,
  type TestGateway,
  writeAll,
} from "./_fixtures.ts";

const name = (n: string, port: number): SocksTarget => ({
  address: { family: "name", name: n },
  port,
});
const ip = (text: string, port: number): SocksTarget => ({ address: parseIp(text)!, port });

function url(endpoint: IpEndpoint, credentials = ""): string {
  const host = formatIp(endpoint.address);
  return `socks5://${credentials}${
    endpoint.address.family === 6 ? `[${host}]` : host
  }:${endpoint.port}`;
}

/** Opens CONNECT through `gateway`; the REP of a failure is thrown as a SocksReplyError. */
async function open(gateway: IpEndpoint, target: SocksTarget, command: number = Command.Connect) {
  const conn = await connectTo(gateway);
  try {
    const { bound } = await socksHandshake(conn, { command, target });
    return { conn, bound };
  } catch (error) {
    conn.close();
    throw error;
  }
}

async function replyOf(gateway: IpEndpoint, target: SocksTarget, command?: number) {
  try {
    const { conn } = await open(gateway, target, command);
    conn.close();
    return 0;
  } catch (error) {
    if (error instanceof SocksReplyError) return error.reply;
    throw error;
  }
}

/** Sends `size` random bytes through an echo relay and checks they come back intact. */
async function roundTrip(gateway: IpEndpoint, target: SocksTarget, size = 256 * 1024) {
  const { conn, bound } = await open(gateway, target);
  try {
    const data = randomBytes(size);
    const [, back] = await Promise.all([
      writeAll(conn, data).then(() => conn.closeWrite()),
      readAll(conn),
    ]);
    assert.equal(await sha256(back), await sha256(data));
    return bound;
  } finally {
    conn.close();
  }
}

const LAST_HOSTS = `resolver:
  hosts:
    v4.chain.example: ["127.0.0.1"]
    v6.chain.example: ["::1"]
`;

/** Waits (bounded) until `check` holds: records are written after the client saw the reply. */
async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(check(), `timed out waiting for ${what}`);
}

/** Counts connections on `records` of a gateway. */
const relayed = (gw: TestGateway) => gw.records.filter((r) => r.outcome === "relayed").length;

Deno.test("chain: a name resolvable only at G3 reaches v4 and v6 servers through G1 -> G2 -> G3", async () => {
  await using g3 = startTestGateway(LAST_HOSTS);
  await using g2 = startTestGateway();
  await using g1 = startTestGateway(`routes:
  - to: ["*.chain.example", "127.0.0.0/8", "::1/128"]
    chain:
      - "${url(g2.endpoint(4))}"
      - "${url(g3.endpoint(6))}"
`);
  await using srv4 = startServer("127.0.0.1", echo);
  await using srv6 = startServer("::1", echo);
  // Without the chain, G1 cannot resolve the name: REP 4 from G2 directly, which knows nothing.
  assert.equal(await replyOf(g2.endpoint(4), name("v4.chain.example", srv4.port)), 4);
  for (const family of [4, 6] as const) {
    await roundTrip(g1.endpoint(family), name("v4.chain.example", srv4.port));
    await roundTrip(g1.endpoint(family), name("v6.chain.example", srv6.port));
    // A literal (also one sent as a name) stays a literal and matches the CIDR patterns.
    await roundTrip(g1.endpoint(family), ip("::1", srv6.port));
    await roundTrip(g1.endpoint(family), name("127.0.0.1", srv4.port));
  }
  // Every connection went through all three gateways; the name reached G3 unresolved.
  await until(() => relayed(g1) === 8 && relayed(g2) === 8 && relayed(g3) === 8, "records");
  assert.equal(relayed(g1), 8);
  assert.equal(relayed(g2), 8);
  assert.equal(relayed(g3), 8);
  const atG2 = g2.records.map((r) => r.target && formatTarget(r.target));
  assert.equal(atG2.filter((t) => t === `[::1]:${g3.endpoint(6).port}`).length, 8, `${atG2}`);
  const families = g3.records.map((r) => r.target?.address.family);
  assert.deepEqual(families.filter((f) => f === "name").length, 4);
  assert.deepEqual(families.filter((f) => f === 4).length, 2, "a literal sent as a name");
});

Deno.test("chain: BND comes from the last hop, the log's `used` is the first hop", async () => {
  await using g3 = startTestGateway(LAST_HOSTS);
  await using g2 = startTestGateway();
  await using g1 = startTestGateway(`routes:
  - to: ["*.chain.example"]
    chain: ["${url(g2.endpoint(6))}", "${url(g3.endpoint(4))}"]
`);
  const seen: IpEndpoint[] = [];
  await using srv = startServer("::1", async (conn) => {
    seen.push({ address: parseIp(conn.remoteAddr.hostname)!, port: conn.remoteAddr.port });
    await echo(conn);
  });
  const bound = await roundTrip(g1.endpoint(4), name("v6.chain.example", srv.port), 1024);
  assert.equal(seen.length, 1);
  assert.equal(formatEndpoint(bound as IpEndpoint), formatEndpoint(seen[0]!));
  await until(() => g1.records.length === 1, "the record");
  const record = g1.records.find((r) => r.outcome === "relayed")!;
  assert.equal(formatEndpoint(record.used!), formatEndpoint(g2.endpoint(6)));
});

Deno.test("chain: the last hop's REP reaches the client unchanged and marks no hop", async () => {
  await using g3 = startTestGateway(`${LAST_HOSTS}    x.denied.example: ["127.0.0.1"]
rules:
  - { action: deny, to: ["*.denied.example"] }
  - { action: allow }
`);
  await using g2b = startTestGateway();
  await using g2 = startTestGateway();
  await using g1 = startTestGateway(`routes:
  - to: ["*.example"]
    chain: [["${url(g2.endpoint(4))}", "${url(g2b.endpoint(4))}"], "${url(g3.endpoint(4))}"]
`);
  await using srv = startServer("127.0.0.1", echo);
  using closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closedPort = closed.addr.port;
  closed.close();
  assert.equal(await replyOf(g1.endpoint(4), name("nowhere.chain.example", 80)), 4);
  assert.equal(await replyOf(g1.endpoint(4), name("v4.chain.example", closedPort)), 5);
  assert.equal(await replyOf(g1.endpoint(6), name("x.denied.example", 80)), 2);
  // No retry on another alternative, no mark: everything went through G2's first alternative.
  assert.equal(g2b.records.length, 0);
  await roundTrip(g1.endpoint(4), name("v4.chain.example", srv.port), 1024);
  await until(() => g2.records.length === 4, "G2's records");
  assert.equal(g2b.records.length, 0);
});

Deno.test("chain: credentials per hop; a hop refusing them fails over, then fails with REP 1", async () => {
  await using g3 = startTestGateway(
    `${LAST_HOSTS}auth: { users: [{ name: carol, password: c-pass }] }\n`,
  );
  await using g2 = startTestGateway("auth: { users: [{ name: bob, password: b-pass }] }\n");
  await using g1 = startTestGateway(`routes:
  - to: ["v4.chain.example"]
    chain: ["${url(g2.endpoint(4), "bob:b-pass@")}", "${url(g3.endpoint(6), "carol:c-pass@")}"]
  - to: ["v6.chain.example"]
    chain: ["${url(g2.endpoint(4), "bob:b-pass@")}", "${url(g3.endpoint(6), "carol:wrong@")}"]
`);
  await using srv = startServer("127.0.0.1", echo);
  await using srv6 = startServer("::1", echo);
  await roundTrip(g1.endpoint(4), name("v4.chain.example", srv.port), 4096);
  assert.equal(await replyOf(g1.endpoint(4), name("v6.chain.example", srv6.port)), 1);
  await until(() => g1.records.some((r) => r.outcome === "rejected"), "the rejection record");
  const failed = g1.records.find((r) => r.outcome === "rejected")!;
  assert.match(failed.reason!, /refused user "carol"/);
});

Deno.test("chain: a dead first alternative is skipped, and not tried again while marked", async () => {
  await using g2 = startTestGateway(LAST_HOSTS);
  let accepts = 0;
  // A fake gateway that accepts and closes at once.
  await using dead = startServer("127.0.0.1", (conn) => {
    accepts++;
    conn.close();
    return Promise.resolve();
  });
  using refused = Deno.listen({ hostname: "::1", port: 0 });
  const refusedPort = refused.addr.port;
  refused.close();
  await using g1 = startTestGateway(`routes:
  - to: ["*.chain.example"]
    chain:
      - any: ["socks5://127.0.0.1:${dead.port}", "socks5://[::1]:${refusedPort}", "${
    url(g2.endpoint(6))
  }"]
        fail_timeout: 60
`);
  await using srv = startServer("127.0.0.1", echo);
  for (let i = 0; i < 4; i++) {
    await roundTrip(g1.endpoint(4), name("v4.chain.example", srv.port), 1024);
  }
  assert.equal(accepts, 1);
  await until(() => relayed(g2) === 4, "records");
});

Deno.test("chain: an alternative that accepts but never negotiates is given up on early", async () => {
  await using g2 = startTestGateway(LAST_HOSTS);
  // A fake gateway that accepts and then says nothing until the client leaves.
  await using silent = startServer("127.0.0.1", async (conn) => {
    await conn.read(new Uint8Array(64)).catch(() => null);
    await conn.read(new Uint8Array(64)).catch(() => null);
  });
  await using g1 = startTestGateway(`timeouts: { connect: 20 }
routes:
  - to: ["*.chain.example"]
    chain:
      - ["socks5://127.0.0.1:${silent.port}", "${url(g2.endpoint(4))}"]
`);
  await using srv = startServer("127.0.0.1", echo);
  const started = performance.now();
  await roundTrip(g1.endpoint(4), name("v4.chain.example", srv.port), 1024);
  const elapsed = performance.now() - started;
  // The negotiation bound (3 s), not the connect timeout (20 s), decided.
  assert.ok(elapsed >= 2500 && elapsed < 10_000, `took ${elapsed} ms`);
});

Deno.test("chain: round-robin spreads connections over the alternatives", async () => {
  await using g2a = startTestGateway(LAST_HOSTS);
  await using g2b = startTestGateway(LAST_HOSTS);
  await using g2c = startTestGateway(LAST_HOSTS);
  await using g1 = startTestGateway(`routes:
  - to: ["*.chain.example"]
    chain:
      - { any: ["${url(g2a.endpoint(4))}", "${url(g2b.endpoint(6))}", "${
    url(g2c.endpoint(4))
  }"], strategy: round-robin }
`);
  await using srv = startServer("::1", echo);
  for (let i = 0; i < 9; i++) {
    await roundTrip(g1.endpoint(6), name("v6.chain.example", srv.port), 512);
  }
  await until(() => relayed(g2a) + relayed(g2b) + relayed(g2c) === 9, "records");
  assert.deepEqual([relayed(g2a), relayed(g2b), relayed(g2c)], [3, 3, 3]);
});

Deno.test("chain: every alternative down gives the hop's failure code, within the connect timeout", async () => {
  using a = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = a.addr.port;
  a.close();
  await using g1 = startTestGateway(`routes:
  - to: ["*.chain.example"]
    chain: [["socks5://127.0.0.1:${port}", "socks5://[::1]:${port}"], "socks5://127.0.0.1:9"]
`);
  assert.equal(await replyOf(g1.endpoint(4), name("v4.chain.example", 80)), 5);
  await until(() => g1.records.length === 1, "the rejection record");
  const record = g1.records.at(-1)!;
  assert.match(record.reason!, /Cannot reach any gateway of hop/);
});

Deno.test("chain: rules apply to literal targets and to names by name patterns; BIND and UDP get REP 7", async () => {
  await using g2 = startTestGateway(LAST_HOSTS);
  await using g1 = startTestGateway(`routes:
  - to: ["*.example", "0.0.0.0/0", "::/0"]
    chain: ["${url(g2.endpoint(4))}"]
rules:
  - { action: deny, to: ["secret.chain.example", "127.0.0.2/32"] }
  - { action: deny, commands: [connect], to: ["10.0.0.0/8"] }
  - { action: allow }
`);
  await using srv = startServer("127.0.0.1", echo);
  assert.equal(await replyOf(g1.endpoint(4), name("secret.chain.example", srv.port)), 2);
  assert.equal(await replyOf(g1.endpoint(4), ip("127.0.0.2", srv.port)), 2);
  assert.equal(await replyOf(g1.endpoint(4), name("10.1.2.3", srv.port)), 2);
  assert.equal(g2.records.length, 0, "denied requests never reach the next hop");
  await roundTrip(g1.endpoint(4), name("v4.chain.example", srv.port), 512);
  assert.equal(await replyOf(g1.endpoint(4), name("v4.chain.example", 0), Command.Bind), 7);
  assert.equal(await replyOf(g1.endpoint(6), ip("0.0.0.0", 0), Command.UdpAssociate), 7);
  await until(() => g2.records.length === 1, "G2's record");
});

Deno.test("chain: a catch-all route (`to: [*]`, or no `to`) carries names and literals through the upstream", async () => {
  await using g2 = startTestGateway(LAST_HOSTS);
  await using srv4 = startServer("127.0.0.1", echo);
  await using srv6 = startServer("::1", echo);
  for (const to of ['to: ["*"], ', ""]) {
    await using g1 = startTestGateway(`routes: [{ ${to}chain: ["${url(g2.endpoint(6))}"] }]\n`);
    const before = relayed(g2);
    await roundTrip(g1.endpoint(4), name("v4.chain.example", srv4.port), 4096);
    await roundTrip(g1.endpoint(6), name("V6.Chain.Example.", srv6.port), 4096);
    await roundTrip(g1.endpoint(4), ip("::1", srv6.port), 4096);
    await roundTrip(g1.endpoint(6), ip("127.0.0.1", srv4.port), 4096);
    await roundTrip(g1.endpoint(4), name("[::1]", srv6.port), 4096);
    // Every connection went through G2: the names reached it unresolved, the literals as such.
    await until(() => relayed(g2) === before + 5 && relayed(g1) === 5, "records");
    const atG2 = g2.records.slice(-5).map((r) => r.target?.address.family).sort();
    // (A literal sent as a name is forwarded as the address it is.)
    assert.deepEqual(atG2, [4, 6, 6, "name", "name"].sort());
    // BIND and UDP on the catch-all route are not served here.
    assert.equal(await replyOf(g1.endpoint(4), ip("127.0.0.1", 0), Command.Bind), 7);
  }
});
