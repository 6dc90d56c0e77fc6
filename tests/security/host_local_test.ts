/**
 * Attack suite: the gateway host itself stays closed to remote clients, whatever form the
 * destination arrives in, with and without `rules` (issue 10, items 1 and 4).
 *
 * The gateway namespace runs a service on its own 127.0.0.1 and one on every own address (a
 * wildcard listener: the "admin port on the LAN address" case). Clients on the IPv4-only and
 * IPv6-only hosts try every alias: `::ffff:0.0.0.0` and `::ffff:127.0.0.1` as ATYP 4 and as
 * DOMAINNAME text, `0.0.0.0`, `0.1.2.3`, names whose static answer is IPv4-mapped loopback, the
 * gateway's own interface addresses, and UDP datagrams to the same; a name rule whose answer is
 * loopback (DNS rebinding). Every attempt must get REP 2 (or no datagram back). Explicit rules
 * that name loopback open it: the positive controls, which show the services are up.
 */
import assert from "node:assert/strict";
import { createTopology, e2eTest, type Topology } from "../helpers/netns.ts";
import {
  assertRefused,
  dst,
  gateway,
  gatewayFor,
  notRefused,
  probe,
  PROGRAMS,
  tcpBanner,
  udpEcho,
} from "./_helpers.ts";
import type { ProbeTarget } from "./_socks_probe.ts";

const LOOPBACK_PORT = 8081;
const OWN_PORT = 8082;
const ECHO_PORT = 7;
const LOOPBACK_SECRET = "LOOPBACK-SECRET";
const OWN_SECRET = "OWN-ADDRESS-SECRET";

const CLIENTS = ["client4", "client6"] as const;

/** Every spelling of "the gateway host" a remote client might try, with what it stands for. */
function hostAliases(topo: Topology): [string, ProbeTarget][] {
  const gw = topo.addresses.gateway;
  return [
    ["ATYP 4 ::ffff:0.0.0.0", dst("::ffff:0.0.0.0", LOOPBACK_PORT)],
    ["ATYP 4 ::ffff:127.0.0.1", dst("::ffff:127.0.0.1", LOOPBACK_PORT)],
    ["ATYP 4 ::ffff:0.1.2.3", dst("::ffff:0.1.2.3", LOOPBACK_PORT)],
    ["ATYP 1 0.0.0.0", dst("0.0.0.0", LOOPBACK_PORT)],
    ["ATYP 1 0.1.2.3", dst("0.1.2.3", LOOPBACK_PORT)],
    ["ATYP 1 127.0.0.1", dst("127.0.0.1", LOOPBACK_PORT)],
    ["ATYP 1 127.0.0.2", dst("127.0.0.2", OWN_PORT)],
    ["ATYP 4 ::", dst("::", OWN_PORT)],
    ["ATYP 4 ::1", dst("::1", OWN_PORT)],
    ["name ::ffff:0.0.0.0", dst("::ffff:0.0.0.0", LOOPBACK_PORT, true)],
    ["name [::ffff:127.0.0.1]", dst("[::ffff:127.0.0.1]", LOOPBACK_PORT, true)],
    ["name localhost", dst("localhost", LOOPBACK_PORT)],
    ["name whose answer is ::ffff:127.0.0.1", dst("mapped.example", LOOPBACK_PORT)],
    ["name whose answer is ::ffff:0.0.0.0", dst("zero.example", LOOPBACK_PORT)],
    ["own address toward client4", dst(gw.v4, OWN_PORT)],
    ["own address toward client6", dst(gw.v6, OWN_PORT)],
    ["own address toward server4", dst(gw.upstreamV4, OWN_PORT)],
    ["own address toward server6", dst(gw.upstreamV6, OWN_PORT)],
    ["own address, ATYP 4 mapped", dst(`::ffff:${gw.upstreamV4}`, OWN_PORT)],
    ["own address, as a name", dst(gw.upstreamV4, OWN_PORT, true)],
  ];
}

/** UDP datagrams to the gateway's loopback echo in every form, and one allowed control. */
function udpAliases(topo: Topology) {
  const datagrams = [
    { ...dst("::ffff:127.0.0.1", ECHO_PORT), payload: "mapped-loopback" },
    { ...dst("::ffff:0.0.0.0", ECHO_PORT), payload: "mapped-zero" },
    { ...dst("127.0.0.1", ECHO_PORT), payload: "loopback" },
    { ...dst("0.0.0.0", ECHO_PORT), payload: "zero" },
    { ...dst("::ffff:127.0.0.1", ECHO_PORT, true), payload: "mapped-name" },
    { ...dst("mapped.example", ECHO_PORT), payload: "mapped-static" },
    { ...dst(topo.addresses.gateway.upstreamV4, ECHO_PORT), payload: "own-address" },
    { ...dst(topo.addresses.server4.v4, ECHO_PORT), payload: "control" },
  ];
  return { datagrams, waitFor: "control" };
}

const HOSTS = `resolver:
  hosts_file: ""
  hosts:
    mapped.example: ["::ffff:127.0.0.1"]
    zero.example: ["::ffff:0.0.0.0"]
    evil.example: ["127.0.0.1"]
    localhost: ["127.0.0.1", "::1"]
timeouts: { connect: 2 }
`;

function listen(topo: Topology): string {
  const gw = topo.addresses.gateway;
  return `listen: ["${gw.v4}:1080", "[${gw.v6}]:1080"]\n`;
}

async function attackAll(topo: Topology, t: Deno.TestContext, label: string): Promise<void> {
  for (const client of CLIENTS) {
    await t.step(`${label}: ${client} cannot reach the gateway host by any alias`, async () => {
      // Every alias is tried, and every one that gets through is named.
      assert.deepEqual(await notRefused(topo, client, hostAliases(topo)), []);
    });
    await t.step(`${label}: ${client} cannot send UDP to the gateway host`, async () => {
      const outcome = await probe(topo, client, {
        mode: "udp",
        gateway: gatewayFor(topo, client),
        ...udpAliases(topo),
        readMs: 10_000,
      });
      assert.equal(outcome.rep, 0, JSON.stringify(outcome));
      assert.deepEqual(outcome.replies, ["control"]);
    });
  }
}

e2eTest("security: host-local destinations stay closed, with and without rules", async (t) => {
  await using topo = await createTopology();
  const dir = await Deno.makeTempDir({ prefix: "dualgate-hostlocal-" });
  try {
    const gw = topo.addresses.gateway;
    await using _loopback = await tcpBanner(
      topo,
      "gateway",
      "127.0.0.1",
      LOOPBACK_PORT,
      LOOPBACK_SECRET,
    );
    await using _own = await tcpBanner(topo, "gateway", "::", OWN_PORT, OWN_SECRET);
    await using _echo = await udpEcho(topo, "gateway", "127.0.0.1", ECHO_PORT);
    await using _echoOwn = await udpEcho(topo, "gateway", gw.upstreamV4, ECHO_PORT);
    await using _control = await udpEcho(topo, "server4", topo.addresses.server4.v4, ECHO_PORT);

    {
      await using _gateway = await gateway(topo, dir, listen(topo) + HOSTS);
      await attackAll(topo, t, "no rules");
    }
    {
      // Any rules used to drop the protection: `allow from: [client nets]` opened loopback.
      await using _gateway = await gateway(
        topo,
        dir,
        listen(topo) + HOSTS + `rules:
  - { action: allow, from: ["192.0.2.0/24", "2001:db8:1::/48"] }
  - { action: allow, to: ["0.0.0.0/0", "::/0"] }
`,
      );
      await attackAll(topo, t, "allow-all rules");
    }
    {
      await using _gateway = await gateway(
        topo,
        dir,
        listen(topo) + HOSTS + `rules:
  - { action: allow, to: ["evil.example", "*.example"] }
`,
      );
      for (const client of CLIENTS) {
        await t.step(`DNS rebinding: ${client} to a name allowed by name`, async () => {
          const outcome = await probe(topo, client, {
            mode: "connect",
            gateway: gatewayFor(topo, client),
            target: dst("evil.example", LOOPBACK_PORT),
          });
          assertRefused(outcome, `${client} evil.example -> 127.0.0.1`);
        });
      }
    }
    {
      // A PROXY protocol header cannot make a remote peer a loopback ("local") client, even
      // from a trusted proxy (an untrusted one is closed unread: tests/security/proxy_trust_test.ts).
      await using _gateway = await gateway(
        topo,
        dir,
        `listen:
  - { address: "${gw.v4}:1090", proxy_protocol: v1, trusted_proxies: ["192.0.2.0/24"] }
  - { address: "[${gw.v6}]:1090", proxy_protocol: v1, trusted_proxies: ["2001:db8:1::/64"] }
` + HOSTS,
        [[gw.v4, 1090], [gw.v6, 1090]],
      );
      for (const client of CLIENTS) {
        await t.step(`PROXY header claiming 127.0.0.1: ${client} stays remote`, async () => {
          const outcome = await probe(topo, client, {
            mode: "connect",
            gateway: gatewayFor(topo, client, 1090),
            proxyHeader: "PROXY TCP4 127.0.0.1 127.0.0.1 40000 1090\r\n",
            target: dst("127.0.0.1", LOOPBACK_PORT),
          });
          assertRefused(outcome, `${client} via PROXY 127.0.0.1`);
        });
      }
    }
    {
      // Positive controls: only rules that name the host open it, and only what they name.
      await using _gateway = await gateway(
        topo,
        dir,
        listen(topo) + HOSTS + `rules:
  - { action: allow, to: ["127.0.0.1/32"], ports: [${LOOPBACK_PORT}] }
  - { action: allow, to: ["localhost"] }
  - { action: allow, to: ["${gw.upstreamV4}/32"] }
  - { action: allow }
`,
      );
      for (const client of CLIENTS) {
        await t.step(`explicit rules: ${client} reaches what they name`, async () => {
          const connect = (target: ProbeTarget) =>
            probe(topo, client, { mode: "connect", gateway: gatewayFor(topo, client), target });
          const opened = [
            dst("127.0.0.1", LOOPBACK_PORT),
            dst("::ffff:127.0.0.1", LOOPBACK_PORT),
            dst("localhost", LOOPBACK_PORT),
            dst(gw.upstreamV4, OWN_PORT),
          ];
          for (const target of opened) {
            const outcome = await connect(target);
            assert.equal(outcome.rep, 0, `${JSON.stringify(target)}: ${JSON.stringify(outcome)}`);
            assert.match(outcome.data ?? "", /SECRET/);
          }
          for (
            const target of [
              dst(gw.v4, OWN_PORT),
              dst("127.0.0.1", OWN_PORT),
            ]
          ) {
            assertRefused(await connect(target), JSON.stringify(target));
          }
        });
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}, { programs: PROGRAMS });
