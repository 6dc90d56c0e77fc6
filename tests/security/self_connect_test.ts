/**
 * Attack suite: connecting back through the gateway to itself (issue 10, item 3).
 *
 * A remote client CONNECTs to one of the gateway's own SOCKS listeners (its address toward the
 * client, its other addresses on a wildcard listener, an IPv4-mapped spelling) and runs a second
 * SOCKS handshake inside the tunnel. The inner session used to come from the gateway's own
 * address, count as a local client and reach the gateway's loopback. Now the outer CONNECT is
 * refused with REP 2, with and without auth, with and without rules. A route whose hop is the
 * gateway itself (by a name, so the config cannot tell) is refused when dialed instead of
 * nesting sessions until the connect timeout.
 */
import assert from "node:assert/strict";
import { createTopology, e2eTest, type Topology } from "../helpers/netns.ts";
import { dst, gateway, gatewayFor, probe, PROGRAMS, tcpBanner } from "./_helpers.ts";
import type { ProbeSession } from "./_socks_probe.ts";

const LOOPBACK_PORT = 8081;
const SECRET = "LOOPBACK-SECRET";
const CLIENTS = ["client4", "client6"] as const;

function listen(topo: Topology): string {
  const gw = topo.addresses.gateway;
  return `listen: ["${gw.v4}:1080", "[${gw.v6}]:1080", "[::]:1081"]\n` +
    "timeouts: { connect: 3 }\n";
}

/** The gateway's own listeners, as a remote client could name them. */
function ownListeners(topo: Topology): [string, ProbeSession["target"]][] {
  const gw = topo.addresses.gateway;
  return [
    ["its address toward client4", dst(gw.v4, 1080)],
    ["its address toward client6", dst(gw.v6, 1080)],
    ["IPv4-mapped", dst(`::ffff:${gw.v4}`, 1080)],
    ["wildcard listener, upstream IPv4", dst(gw.upstreamV4, 1081)],
    ["wildcard listener, upstream IPv6", dst(gw.upstreamV6, 1081)],
    ["wildcard listener, loopback", dst("127.0.0.1", 1081)],
    ["wildcard listener, 0.0.0.0", dst("0.0.0.0", 1081)],
  ];
}

async function nestAll(
  topo: Topology,
  t: Deno.TestContext,
  label: string,
  auth?: readonly [string, string],
): Promise<void> {
  for (const client of CLIENTS) {
    await t.step(`${label}: ${client} cannot nest a session through the gateway`, async () => {
      const through: string[] = [];
      for (const [what, target] of ownListeners(topo)) {
        const outcome = await probe(topo, client, {
          mode: "nested",
          gateway: gatewayFor(topo, client),
          target,
          inner: { target: dst("127.0.0.1", LOOPBACK_PORT), ...(auth ? { auth } : {}) },
          ...(auth ? { auth } : {}),
        });
        if (outcome.rep !== 2) through.push(`${what}: ${JSON.stringify(outcome)}`);
      }
      assert.deepEqual(through, []);
    });
  }
}

e2eTest("security: no session through the gateway's own listeners", async (t) => {
  await using topo = await createTopology();
  const dir = await Deno.makeTempDir({ prefix: "dualgate-self-" });
  try {
    const gw = topo.addresses.gateway;
    await using _loopback = await tcpBanner(topo, "gateway", "127.0.0.1", LOOPBACK_PORT, SECRET);
    const waitFor = [[gw.v4, 1080], [gw.v6, 1080], [gw.upstreamV4, 1081]] as const;
    {
      await using _gateway = await gateway(topo, dir, listen(topo), waitFor);
      await nestAll(topo, t, "no auth, no rules");
    }
    {
      await using _gateway = await gateway(
        topo,
        dir,
        listen(topo) + `auth:
  users: [{ name: alice, password: wonderland }]
rules:
  - { action: allow, from: ["192.0.2.0/24", "2001:db8:1::/48"] }
  - { action: allow, users: [alice] }
`,
        waitFor,
      );
      await nestAll(topo, t, "auth and rules", ["alice", "wonderland"]);
    }
    {
      // A chain whose hop is this gateway, by a name: each round would nest one more session.
      await using gateway_ = await gateway(
        topo,
        dir,
        listen(topo) + `resolver:
  hosts_file: ""
  hosts: { self.example: ["${gw.upstreamV4}"] }
routes:
  - { to: ["*.loop.example"], chain: ["socks5://self.example:1081"] }
`,
        waitFor,
      );
      for (const client of CLIENTS) {
        await t.step(`a route through the gateway itself is refused: ${client}`, async () => {
          const outcome = await probe(topo, client, {
            mode: "connect",
            gateway: gatewayFor(topo, client),
            target: dst("www.loop.example", 80),
          });
          assert.equal(outcome.rep, 2, JSON.stringify(outcome));
        });
      }
      await t.step("the log says why, and no session nested: one record per client", async () => {
        const records = () => gateway_.stderr.match(/connect www\.loop\.example:80/g)?.length ?? 0;
        // Records are written once each session has closed; wait (bounded) for both.
        for (let i = 0; i < 100 && records() < CLIENTS.length; i++) {
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        assert.equal(records(), CLIENTS.length, gateway_.stderr);
        assert.match(gateway_.stderr, /this gateway's own listener/);
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}, { programs: PROGRAMS });
