/**
 * RFC 3089 §4 multiple chained relays end to end: real curl on IPv4-only and IPv6-only hosts,
 * gateways G1 -> G2 (-> G3) on the dual-stack gateway host, each hop in either family.
 *
 * G1 cannot resolve anything (no hosts file, a DNS server that does not exist); the names are
 * only in the static `resolver.hosts` of the gateways behind it: they reach the last gateway
 * unresolved. The eight
 * client→G1 / G1→G2 / G2→destination family mixes (types E–L) are each fetched as a 4 MiB file
 * compared by SHA-256. The middle family is picked by port: port 8080 routes G1→G2 over IPv4,
 * port 8081 over IPv6.
 */
import assert from "node:assert/strict";
import { startDualgate } from "../helpers/dualgate.ts";
import { createTopology, e2eTest, type HostName, type Topology } from "../helpers/netns.ts";
import { createRandomFile, sha256File, startHttpServer } from "../helpers/http_server.ts";

const MIB = 1024 * 1024;
const PROGRAMS = ["curl", "python3", "bash"];

function proxyOf(topo: Topology, client: HostName): string {
  return client === "client4"
    ? `socks5h://${topo.addresses.gateway.v4}:1080`
    : `socks5h://[${topo.addresses.gateway.v6}]:1080`;
}

/** curl through G1; returns the exit code, stderr, and the SOCKS REP curl reports (or 0). */
async function curl(topo: Topology, client: HostName, url: string, out = "/dev/null") {
  const r = await topo.run(client, "curl", [
    "-sS",
    "--fail",
    "--connect-timeout",
    "10",
    "--max-time",
    "60",
    "-x",
    proxyOf(topo, client),
    url,
    "-o",
    out,
  ], { timeoutMs: 70_000 });
  const rep = r.stderr.match(/Can't complete SOCKS5 connection to .*\((\d+)\)/);
  return { code: r.code, stderr: r.stderr, rep: rep ? Number(rep[1]) : r.code === 0 ? 0 : -1 };
}

/** A fake gateway that accepts and closes at once, printing one line per accept. */
const DEAD_GATEWAY = `
import socket, sys
s = socket.create_server((sys.argv[1], int(sys.argv[2])))
print("ready", flush=True)
while True:
    c, _ = s.accept()
    print("accept", flush=True)
    c.close()
`;

const V4 = "v4.chain.example";
const V6 = "v6.chain.example";

const count = (text: string, pattern: RegExp) => (text.match(pattern) ?? []).length;

/** Polls (bounded): a connection's log line is written after the client has finished. */
async function eventually(check: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !check(); i++) await new Promise((r) => setTimeout(r, 50));
}

e2eTest(
  "chains: types E–L, three hops, authenticated hops, failover and round-robin",
  async (t) => {
    await using topo = await createTopology();
    const dir = await Deno.makeTempDir({ prefix: "dualgate-chain-" });
    try {
      const file = await createRandomFile(dir, { name: "file.bin", size: 4 * MIB });
      await using _h4a = await startHttpServer(topo, "server4", { directory: dir });
      await using _h6a = await startHttpServer(topo, "server6", { directory: dir });
      await using _h4b = await startHttpServer(topo, "server4", { directory: dir, port: 8081 });
      await using _h6b = await startHttpServer(topo, "server6", { directory: dir, port: 8081 });

      const gw = topo.addresses.gateway;
      // The names exist only in the static hosts of the gateways after G1: not in the gateway
      // host's /etc/hosts (which Deno.resolveDns consults whatever the DNS server), not in DNS.
      const auth = `auth: { users: [{ name: bob, password: b-pass }] }
resolver:
  hosts:
    ${V4}: ["${topo.addresses.server4.v4}"]
    ${V6}: ["${topo.addresses.server6.v6}"]
    fo.chain.example: ["${topo.addresses.server6.v6}"]
    rr.chain.example: ["${topo.addresses.server4.v4}"]
# The three-hop chain's next hops are on this same host (G2b on its address, G3 on loopback),
# which a gateway opens to clients from other addresses only by naming them.
rules:
  - { action: allow, to: ["${gw.v4}/32", "127.0.0.1/32"], ports: [1082, 1083] }
  - { action: allow }`;
      // G2: authenticated, on the upstream side of the gateway host, both families.
      await using g2 = await startDualgate(
        topo,
        // The first hops are on G1's host: they take G1's PROXY header (the real client), so
        // that G1 forwards names unresolved (a same-host hop without it gets checked addresses).
        `listen:
  - { address: "${gw.upstreamV4}:1081", proxy_protocol: v2, trusted_proxies: ["${gw.v4}/32", "${gw.v6}/128", "${gw.upstreamV4}/32", "${gw.upstreamV6}/128"] }
  - { address: "[${gw.upstreamV6}]:1081", proxy_protocol: v2, trusted_proxies: ["${gw.v4}/32", "${gw.v6}/128", "${gw.upstreamV4}/32", "${gw.upstreamV6}/128"] }
${auth}\n`,
        { dir, fileName: "g2.yaml", waitFor: [[gw.upstreamV4, 1081], [gw.upstreamV6, 1081]] },
      );
      // G2b: a second gateway for round-robin, on the client side addresses.
      await using g2b = await startDualgate(
        topo,
        `listen:
  - { address: "${gw.v4}:1083", proxy_protocol: any, trusted_proxies: ["${gw.v4}/32", "${gw.v6}/128", "${gw.upstreamV4}/32", "${gw.upstreamV6}/128"] }
  - { address: "[${gw.v6}]:1083", proxy_protocol: any, trusted_proxies: ["${gw.v4}/32", "${gw.v6}/128", "${gw.upstreamV4}/32", "${gw.upstreamV6}/128"] }
${auth}\n`,
        { dir, fileName: "g2b.yaml", waitFor: [[gw.v4, 1083], [gw.v6, 1083]] },
      );
      // G3: the last hop of the three-hop chain, on loopback.
      await using g3 = await startDualgate(
        topo,
        `listen: ["127.0.0.1:1082", "[::1]:1082"]\n`,
        { dir, fileName: "g3.yaml", waitFor: [["127.0.0.1", 1082], ["::1", 1082]] },
      );
      await using dead = topo.spawn("gateway", "python3", ["-c", DEAD_GATEWAY, gw.v4, "1099"]);
      await topo.waitForTcp("gateway", gw.v4, 1099);

      const bob = "bob:b-pass@";
      await using g1 = await startDualgate(
        topo,
        `listen: ["${gw.v4}:1080", "[${gw.v6}]:1080"]
resolver: { hosts_file: "", servers: ["127.0.0.1:9"], timeout: 1 }
timeouts: { connect: 10 }
routes:
  - to: ["fo.chain.example"]
    chain:
      - ["socks5://${gw.v4}:1099?proxy_protocol=v2", "socks5://${bob}${gw.upstreamV4}:1081?proxy_protocol=v2"]
  - to: ["rr.chain.example"]
    chain:
      - any: ["socks5://${bob}[${gw.upstreamV6}]:1081?proxy_protocol=v2", "socks5://${bob}${gw.v4}:1083?proxy_protocol=v2"]
        strategy: round-robin
  - to: ["*.chain.example"]
    ports: [8080]
    chain: ["socks5://${bob}${gw.upstreamV4}:1081?proxy_protocol=v2"]
  - to: ["*.chain.example"]
    ports: [8081]
    chain: ["socks5://${bob}[${gw.upstreamV6}]:1081?proxy_protocol=v2"]
  - to: ["${topo.addresses.server4.v4}/32", "${topo.addresses.server6.v6}/128"]
    chain:
      - "socks5://${bob}[${gw.upstreamV6}]:1081?proxy_protocol=v2"
      - "socks5://${bob}${gw.v4}:1083?proxy_protocol=v2"
      - "socks5://127.0.0.1:1082"
`,
        { dir, fileName: "g1.yaml" },
      );

      await t.step(
        "G1 itself cannot resolve the names: a direct (unrouted) request is REP 4",
        async () => {
          for (const client of ["client4", "client6"] as const) {
            assert.equal((await curl(topo, client, `http://${V4}:9999/`)).rep, 4);
            assert.equal((await curl(topo, client, `http://${V6}:9999/`)).rep, 4);
          }
        },
      );

      for (const client of ["client4", "client6"] as const) {
        for (const [port, middle] of [[8080, 4], [8081, 6]] as const) {
          for (const [name, last] of [[V4, 4], [V6, 6]] as const) {
            const type = `v${client === "client4" ? 4 : 6}→G1 v${middle}→G2 v${last}→D`;
            await t.step(`${type}: 4 MiB by name, intact`, async () => {
              const out = `${dir}/${client}-${port}-${last}.bin`;
              const r = await curl(topo, client, `http://${name}:${port}/${file.name}`, out);
              assert.equal(r.code, 0, `${type}: ${r.stderr}\nG1: ${g1.stderr}\nG2: ${g2.stderr}`);
              assert.equal(await sha256File(out), file.sha256);
              await Deno.remove(out);
            });
          }
        }
      }

      await t.step("the last gateway's REP comes back through the chain", async () => {
        assert.equal((await curl(topo, "client4", "http://nowhere.chain.example:8080/")).rep, 4);
        assert.equal(
          (await curl(topo, "client6", `http://${V4}:8080/x`)).code,
          22,
          "HTTP 404",
        );
      });

      await t.step(
        "three hops G1 -v6-> G2 -v4-> G2b -v4-> G3 -> literal destinations",
        async () => {
          for (const client of ["client4", "client6"] as const) {
            for (const host of [topo.addresses.server4.v4, `[${topo.addresses.server6.v6}]`]) {
              const out = `${dir}/three-${client}.bin`;
              const r = await curl(topo, client, `http://${host}:8080/${file.name}`, out);
              assert.equal(r.code, 0, `${r.stderr}\nG1: ${g1.stderr}`);
              assert.equal(await sha256File(out), file.sha256);
              await Deno.remove(out);
            }
          }
          const atG3 =
            /relayed 127\.0\.0\.1:\d+ .*connect (198\.51\.100\.2|\[2001:db8:2::2\]):8080/g;
          await eventually(() => count(g3.stderr, atG3) === 4);
          assert.equal(count(g3.stderr, atG3), 4);
        },
      );

      await t.step("a dead first alternative is tried once, then skipped", async () => {
        const before = count(dead.stdout, /accept/g); // waitForTcp's probe
        for (let i = 0; i < 3; i++) {
          const r = await curl(
            topo,
            i % 2 ? "client6" : "client4",
            `http://fo.chain.example:8080/${file.name}`,
          );
          assert.equal(r.code, 0, `${r.stderr}\nG1: ${g1.stderr}`);
        }
        assert.equal(count(dead.stdout, /accept/g) - before, 1);
        assert.match(g1.stderr, /hop socks5:\/\/192\.0\.2\.1:1099 failed/);
        await eventually(() => count(g2.stderr, /connect fo\.chain\.example:8080/g) === 3);
        assert.equal(count(g2.stderr, /connect fo\.chain\.example:8080/g), 3);
      });

      await t.step("round-robin spreads connections over both alternatives", async () => {
        for (let i = 0; i < 6; i++) {
          const r = await curl(
            topo,
            i % 2 ? "client6" : "client4",
            `http://rr.chain.example:8080/${file.name}`,
          );
          assert.equal(r.code, 0, r.stderr);
        }
        const rr = () =>
          count(g2.stderr, /connect rr\.chain\.example:8080/g) +
          count(g2b.stderr, /connect rr\.chain\.example:8080/g);
        await eventually(() => rr() === 6);
        const atG2 = count(g2.stderr, /connect rr\.chain\.example:8080/g);
        const atG2b = count(g2b.stderr, /connect rr\.chain\.example:8080/g);
        assert.deepEqual([atG2, atG2b], [3, 3]);
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  { programs: PROGRAMS },
);
