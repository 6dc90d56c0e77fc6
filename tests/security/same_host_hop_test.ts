/**
 * Attack suite: a chain whose hop is another gateway on the same host (red-team F2, F3).
 *
 * The front gateway listens on the gateway host's client-side addresses with a catch-all route
 * through a hop gateway on 127.0.0.1:1090 (no rules, safe defaults). A service on the gateway
 * host's loopback (127.0.0.1:9999) holds a secret. The hop used to see the front, a loopback
 * peer, as a local client, exempt from host-local protection: a remote client reached the
 * loopback service by `localhost`, by a name the front resolves to 127.0.0.1, and nested a SOCKS
 * session back into the front by a name only the hop knows (→ the front's own address).
 *
 * - With `?proxy_protocol=v2` on the hop URL and `proxy_protocol: v2` on the hop's listener, the
 *   hop sees the real client and refuses every one of these itself (its log names the client).
 * - Without it, the front refuses what it can tell is host-local (`localhost`, a name it
 *   resolves to this host), a name it cannot resolve (REP 4: only the hop would know it), and
 *   any request through the hop from this host's own non-loopback address (a nested session).
 *   A name it resolves elsewhere goes to the hop as the checked address, never as the name: a
 *   rebinding DNS server (TTL 0, first a remote address, then 127.0.0.1), used by both
 *   gateways, no longer sends the hop to the loopback.
 */
import assert from "node:assert/strict";
import { createTopology, e2eTest, type Topology } from "../helpers/netns.ts";
import { dst, gateway, gatewayFor, probe, PROGRAMS, tcpBanner } from "./_helpers.ts";
import type { ProbeOutcome } from "./_helpers.ts";

const DNS_PORT = 5353;
/**
 * A rebinding DNS server: the first A query for a name `rebind-*` gets `argv[3]`, every later
 * one 127.0.0.1, both with TTL 0; other queries get no record.
 */
const REBINDING_DNS = String.raw`
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
first = socket.inet_aton(sys.argv[3])
seen = set()
print("ready", flush=True)
while True:
    query, peer = s.recvfrom(512)
    i = 12
    while query[i] != 0:
        i += query[i] + 1
    name = query[12:i].lower()
    qtype = int.from_bytes(query[i + 1:i + 3], "big")
    count = 1 if qtype == 1 and b"rebind-" in name else 0
    body = query[12:i + 5]
    if count:
        address = socket.inet_aton("127.0.0.1") if name in seen else first
        seen.add(name)
        body += b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x00\x00\x04" + address
    header = query[0:2] + b"\x81\x80\x00\x01" + count.to_bytes(2, "big") + b"\x00\x00\x00\x00"
    s.sendto(header + body, peer)
`;

const SECRET_PORT = 9999;
const SECRET = "LOOPBACK-SECRET";
const REMOTE = "REMOTE-BANNER";
const HOP_PORT = 1090;
const CLIENTS = ["client4", "client6"] as const;

function hopYaml(topo: Topology, proxyProtocol: boolean): string {
  const listen = proxyProtocol
    ? `[{ address: "127.0.0.1:${HOP_PORT}", proxy_protocol: v2 }]`
    : `["127.0.0.1:${HOP_PORT}"]`;
  return `listen: ${listen}
resolver:
  servers: ["127.0.0.1:${DNS_PORT}"]
  timeout: 1
  hosts:
    lo.example: ["127.0.0.1"]
    me.example: ["${topo.addresses.gateway.v4}"]
    www.example: ["${topo.addresses.server4.v4}"]
`;
}

function frontYaml(topo: Topology, proxyProtocol: boolean): string {
  const gw = topo.addresses.gateway;
  return `listen: ["${gw.v4}:1080", "[${gw.v6}]:1080"]
resolver:
  servers: ["127.0.0.1:${DNS_PORT}"]
  timeout: 1
  hosts: { lo.example: ["127.0.0.1"], www.example: ["${topo.addresses.server4.v4}"] }
timeouts: { connect: 5 }
routes:
  - chain: ["socks5://127.0.0.1:${HOP_PORT}${proxyProtocol ? "?proxy_protocol=v2" : ""}"]
`;
}

function leaked(outcome: ProbeOutcome): boolean {
  return JSON.stringify(outcome).includes(SECRET);
}

e2eTest("security: no host loopback through a hop gateway on the same host", async (t) => {
  await using topo = await createTopology();
  const dir = await Deno.makeTempDir({ prefix: "dualgate-samehost-" });
  try {
    await using _secret = await tcpBanner(topo, "gateway", "127.0.0.1", SECRET_PORT, SECRET);
    await using _remote = await tcpBanner(topo, "server4", topo.addresses.server4.v4, 80, REMOTE);
    await using _remoteSecretPort = await tcpBanner(
      topo,
      "server4",
      topo.addresses.server4.v4,
      SECRET_PORT,
      REMOTE,
    );
    await using dns = topo.spawn("gateway", "python3", [
      "-c",
      REBINDING_DNS,
      "127.0.0.1",
      String(DNS_PORT),
      topo.addresses.server4.v4,
    ]);
    for (let i = 0; i < 200 && !dns.stdout.includes("ready") && !dns.exited; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.ok(dns.stdout.includes("ready"), `no rebinding DNS server: ${dns.stderr}`);
    for (const proxyProtocol of [true, false]) {
      const mode = proxyProtocol ? "with proxy_protocol" : "without proxy_protocol";
      await using hop = await gateway(topo, dir, hopYaml(topo, proxyProtocol), [
        ["127.0.0.1", HOP_PORT],
      ]);
      await using front = await gateway(topo, dir, frontYaml(topo, proxyProtocol));
      for (const client of CLIENTS) {
        const via = gatewayFor(topo, client);
        await t.step(`${mode}: ${client} still reaches a remote destination by name`, async () => {
          const outcome = await probe(topo, client, {
            mode: "connect",
            gateway: via,
            target: dst("www.example", 80),
          });
          assert.equal(outcome.rep, 0, JSON.stringify(outcome));
          assert.equal(outcome.data?.trim(), REMOTE);
        });
        for (
          const [what, target] of [
            ["localhost", dst("localhost", SECRET_PORT)],
            ["LOCALHOST.", dst("LOCALHOST.", SECRET_PORT)],
            ["a name the front resolves to 127.0.0.1", dst("lo.example", SECRET_PORT)],
            ["a literal sent as a name", dst("127.0.0.1", SECRET_PORT, true)],
          ] as const
        ) {
          await t.step(`${mode}: ${client} cannot reach the loopback by ${what}`, async () => {
            const outcome = await probe(topo, client, { mode: "connect", gateway: via, target });
            assert.equal(outcome.rep, 2, JSON.stringify(outcome));
            assert.ok(!leaked(outcome), JSON.stringify(outcome));
          });
        }
        await t.step(
          `${mode}: ${client} cannot nest a session by a name only the hop knows`,
          async () => {
            for (const inner of [dst("localhost", SECRET_PORT), dst("me.example", 1080)]) {
              const outcome = await probe(topo, client, {
                mode: "nested",
                gateway: via,
                target: dst("me.example", 1080),
                inner: { target: inner },
              });
              assert.ok(!leaked(outcome), JSON.stringify(outcome));
              // With the header, the hop sees the real client: the front's own address is
              // host-local to it (REP 2). Without, the front cannot resolve me.example and
              // does not let the hop resolve it (REP 4).
              assert.equal(outcome.rep, proxyProtocol ? 2 : 4, JSON.stringify(outcome));
            }
          },
        );
        if (!proxyProtocol) {
          await t.step(`${mode}: ${client} cannot rebind a name to the loopback`, async () => {
            // The front's lookup gets server4's address; any later lookup gets 127.0.0.1.
            const outcome = await probe(topo, client, {
              mode: "connect",
              gateway: via,
              target: dst(`rebind-${client}.example`, SECRET_PORT),
            });
            assert.ok(!leaked(outcome), JSON.stringify(outcome));
            assert.equal(outcome.rep, 0, JSON.stringify(outcome));
            assert.equal(outcome.data?.trim(), REMOTE, "the hop dialed the address checked");
          });
        }
      }
      if (proxyProtocol) {
        await t.step("with proxy_protocol: the hop logs the real clients", () => {
          assert.match(
            hop.stderr,
            new RegExp(
              `rejected 192\\.0\\.2\\.2:\\d+ user=- connect localhost:${SECRET_PORT} .*rep=2`,
            ),
          );
          assert.doesNotMatch(front.stderr, /routes\[0\]\.chain\[0\]/);
        });
      } else {
        await t.step("without proxy_protocol: the front warns about the hop at start", () => {
          assert.match(front.stderr, /routes\[0\]\.chain\[0\]: socks5:\/\/127\.0\.0\.1:1090 is on/);
        });
      }
      // Both gateways stop here; the next round starts them with the other configs.
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}, { programs: PROGRAMS });
