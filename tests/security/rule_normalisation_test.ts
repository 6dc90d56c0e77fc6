/**
 * Attack suite: an IPv4 rule holds however the destination is written (issue 10, item 2).
 *
 * `deny to: [198.51.100.0/24]` (server4's prefix) must hold for CONNECT and UDP when server4
 * arrives as an IPv4-mapped ATYP 4 literal, as a mapped literal sent as DOMAINNAME, as a name
 * whose static answer is mapped, as a name whose DNS AAAA answer is mapped, and in a UDP
 * datagram header. Before, the mapped forms slipped past the IPv4 rule and reached server4 over
 * IPv4. Server6 stays reachable: the positive control that the relay itself works.
 */
import assert from "node:assert/strict";
import { createTopology, e2eTest, type Topology } from "../helpers/netns.ts";
import {
  dnsServer,
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

const PORT = 8083;
const ECHO_PORT = 7;
const DNS_PORT = 5353;
const CLIENTS = ["client4", "client6"] as const;

function forbidden(topo: Topology): [string, ProbeTarget][] {
  const s4 = topo.addresses.server4.v4;
  return [
    ["ATYP 1 (the control)", dst(s4, PORT)],
    ["ATYP 4 ::ffff:198.51.100.2", dst(`::ffff:${s4}`, PORT)],
    ["ATYP 4 ::ffff:c633:6402", dst("::ffff:c633:6402", PORT)],
    ["name ::ffff:198.51.100.2", dst(`::ffff:${s4}`, PORT, true)],
    ["name [::ffff:198.51.100.2]", dst(`[::ffff:${s4}]`, PORT, true)],
    ["name with a mapped static answer", dst("static-mapped.example", PORT)],
    ["name with a mapped DNS AAAA answer", dst("dns-mapped.example", PORT)],
  ];
}

e2eTest("security: IPv4 rules hold for IPv4-mapped destinations in CONNECT and UDP", async (t) => {
  await using topo = await createTopology();
  const dir = await Deno.makeTempDir({ prefix: "dualgate-normalise-" });
  try {
    const { server4, server6 } = topo.addresses;
    await using _s4 = await tcpBanner(topo, "server4", server4.v4, PORT, "SERVER4");
    await using _s6 = await tcpBanner(topo, "server6", server6.v6, PORT, "SERVER6");
    await using _e4 = await udpEcho(topo, "server4", server4.v4, ECHO_PORT);
    await using _e6 = await udpEcho(topo, "server6", server6.v6, ECHO_PORT);
    // The gateway's DNS answers every AAAA query with server4 in IPv4-mapped form.
    await using _dns = await dnsServer(
      topo,
      "gateway",
      "127.0.0.1",
      DNS_PORT,
      `::ffff:${server4.v4}`,
    );
    const gw = topo.addresses.gateway;
    await using gatewayProcess = await gateway(
      topo,
      dir,
      `listen: ["${gw.v4}:1080", "[${gw.v6}]:1080"]
timeouts: { connect: 3 }
resolver:
  hosts_file: ""
  servers: ["127.0.0.1:${DNS_PORT}"]
  hosts: { static-mapped.example: ["::ffff:${server4.v4}"] }
rules:
  - { action: deny, to: ["198.51.100.0/24"] }
  - { action: allow }
`,
    );
    const gatewayLog = () => gatewayProcess.stderr;
    for (const client of CLIENTS) {
      await t.step(`${client}: CONNECT to the denied prefix in every form is REP 2`, async () => {
        assert.deepEqual(await notRefused(topo, client, forbidden(topo)), []);
        const control = await probe(topo, client, {
          mode: "connect",
          gateway: gatewayFor(topo, client),
          target: dst(server6.v6, PORT),
        });
        assert.equal(control.rep, 0, JSON.stringify(control));
        assert.match(control.data ?? "", /SERVER6/);
      });
      await t.step(`${client}: UDP to the denied prefix in every form is dropped`, async () => {
        const outcome = await probe(topo, client, {
          mode: "udp",
          gateway: gatewayFor(topo, client),
          datagrams: [
            { ...dst(server4.v4, ECHO_PORT), payload: "plain" },
            { ...dst(`::ffff:${server4.v4}`, ECHO_PORT), payload: "mapped" },
            { ...dst(`::ffff:${server4.v4}`, ECHO_PORT, true), payload: "mapped-name" },
            { ...dst("static-mapped.example", ECHO_PORT), payload: "static" },
            { ...dst("dns-mapped.example", ECHO_PORT), payload: "dns" },
            { ...dst(server6.v6, ECHO_PORT), payload: "control" },
          ],
          waitFor: "control",
          readMs: 10_000,
        });
        assert.equal(outcome.rep, 0, JSON.stringify(outcome));
        assert.deepEqual(outcome.replies, ["control"]);
        // Dropped by the rule, every one of the five: not by chance (a v6-only socket failing
        // to send to a mapped address is no rule that holds).
        const own = client === "client4" ? "192\\.0\\.2\\.2" : "\\[2001:db8:1::2\\]";
        const record = new RegExp(`${own}:\\d+ .*udp.*datagrams up=1 down=1 dropped ([^)]*)\\)`);
        let match: RegExpMatchArray | null = null;
        // The record is written once the association has closed; wait (bounded) for it.
        for (let i = 0; i < 100 && !(match = gatewayLog().match(record)); i++) {
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        assert.equal(match?.[1], "denied=5", gatewayLog());
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}, { programs: PROGRAMS });
