/**
 * Attack suite: a PROXY header that names no client (red-team follow-up of F2).
 *
 * A balancer on the gateway host's loopback relays clients to a PROXY protocol listener. A
 * header without a client (v1 `UNKNOWN`, v2 `LOCAL`, v2 UDP or UNIX families) used to leave the
 * balancer as the client: a loopback peer, so the session counted as local and host-local
 * protection did not apply. Whoever the balancer relays with such a header now is a remote
 * client: the loopback service is refused (REP 2), while a header naming a loopback client
 * (a client on the host, relayed by the balancer) still reaches it. Through a chain to a hop on
 * this host with `?proxy_protocol=v2`, the hop gets `LOCAL` for such a session (not the
 * balancer's loopback address as the client), so the hop refuses `localhost` too.
 */
import assert from "node:assert/strict";
import { createTopology, e2eTest } from "../helpers/netns.ts";
import { dst, gateway, probe, PROGRAMS, tcpBanner } from "./_helpers.ts";

const SECRET_PORT = 9998;
const SECRET = "LOOPBACK-SECRET";
const LISTEN_PORT = 1085;
const CHAINED_PORT = 1086;
const HOP_PORT = 1091;

/** The v2 signature and version/command byte, as text (every byte is ASCII). */
const V2 = "\r\n\r\n\u0000\r\nQUIT\n";
const v2 = (command: number, family: number, body: string) =>
  V2 + String.fromCharCode(0x20 | command, family, body.length >> 8, body.length & 0xff) + body;

e2eTest("security: a PROXY header without a client does not make the session local", async (t) => {
  await using topo = await createTopology();
  const dir = await Deno.makeTempDir({ prefix: "dualgate-proxylocal-" });
  try {
    await using _secret = await tcpBanner(topo, "gateway", "127.0.0.1", SECRET_PORT, SECRET);
    await using _gateway = await gateway(
      topo,
      dir,
      `listen: [{ address: "127.0.0.1:${LISTEN_PORT}", proxy_protocol: any }]\n`,
      [["127.0.0.1", LISTEN_PORT]],
    );
    await using _hop = await gateway(
      topo,
      dir,
      `listen: [{ address: "127.0.0.1:${HOP_PORT}", proxy_protocol: v2 }]\n`,
      [["127.0.0.1", HOP_PORT]],
    );
    await using _chained = await gateway(
      topo,
      dir,
      `listen: [{ address: "127.0.0.1:${CHAINED_PORT}", proxy_protocol: any }]
routes: [{ chain: ["socks5://127.0.0.1:${HOP_PORT}?proxy_protocol=v2"] }]
`,
      [["127.0.0.1", CHAINED_PORT]],
    );
    const connect = (proxyHeader: string, chained = false) =>
      probe(topo, "gateway", {
        mode: "connect",
        gateway: { host: "127.0.0.1", port: chained ? CHAINED_PORT : LISTEN_PORT },
        proxyHeader,
        target: chained ? dst("localhost", SECRET_PORT) : dst("127.0.0.1", SECRET_PORT),
      });
    // The probe sends the header as UTF-8: every byte must be ASCII. 12 bytes of UDP-over-IPv4
    // addresses: 127.0.0.1:7232 -> 127.0.0.1:1085.
    const udpBody = "\x7f\x00\x00\x01\x7f\x00\x00\x01\x1c\x40\x04\x3d";
    for (
      const [what, header] of [
        ["v1 UNKNOWN", "PROXY UNKNOWN\r\n"],
        ["v1 UNKNOWN with addresses", "PROXY UNKNOWN 127.0.0.1 127.0.0.1 40000 1085\r\n"],
        ["v2 LOCAL", v2(0, 0x00, "")],
        ["v2 UDP over IPv4", v2(1, 0x12, udpBody)],
        ["v2 UNIX stream", v2(1, 0x31, "\x00".repeat(100))],
      ] as const
    ) {
      await t.step(`${what}: the loopback service is refused`, async () => {
        const outcome = await connect(header);
        assert.equal(outcome.rep, 2, JSON.stringify(outcome));
        assert.ok(!JSON.stringify(outcome).includes(SECRET), JSON.stringify(outcome));
      });
      await t.step(`${what}: a same-host hop does not see the balancer as the client`, async () => {
        const outcome = await connect(header, true);
        assert.equal(outcome.rep, 2, JSON.stringify(outcome));
        assert.ok(!JSON.stringify(outcome).includes(SECRET), JSON.stringify(outcome));
      });
    }
    await t.step("a header naming a loopback client still reaches it", async () => {
      const outcome = await connect("PROXY TCP4 127.0.0.1 127.0.0.1 40000 1085\r\n");
      assert.equal(outcome.rep, 0, JSON.stringify(outcome));
      assert.equal(outcome.data?.trim(), SECRET);
      // Through the chain too: the hop gets the loopback client in the PROXY header.
      const chained = await connect("PROXY TCP4 127.0.0.1 127.0.0.1 40000 1086\r\n", true);
      assert.equal(chained.rep, 0, JSON.stringify(chained));
      assert.equal(chained.data?.trim(), SECRET);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}, { programs: PROGRAMS });
