/**
 * Server-side load balancing: HAProxy (TCP mode, `send-proxy-v2`) in front of two dualgate
 * instances, with examples/haproxy.cfg run verbatim on the gateway host. The gateways allow
 * only client4's address, so client6 getting REP 2 — and client4 getting through — proves that
 * the real client address, not HAProxy's, reached the rules.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { startDualgate } from "../helpers/dualgate.ts";
import { createTopology, e2eTest, type HostName, NAMES, type Topology } from "../helpers/netns.ts";
import { createRandomFile, sha256File, startHttpServer } from "../helpers/http_server.ts";

const PROGRAMS = ["curl", "python3", "bash", "haproxy"];
const HAPROXY_CFG = fileURLToPath(new URL("../../examples/haproxy.cfg", import.meta.url));

async function curl(topo: Topology, client: HostName, url: string, out = "/dev/null") {
  const proxy = client === "client4"
    ? `socks5h://${topo.addresses.gateway.v4}:1090`
    : `socks5h://[${topo.addresses.gateway.v6}]:1090`;
  const r = await topo.run(client, "curl", [
    "-sS",
    "--fail",
    "--max-time",
    "30",
    "-x",
    proxy,
    url,
    "-o",
    out,
  ], { timeoutMs: 40_000 });
  const rep = r.stderr.match(/Can't complete SOCKS5 connection to .*\((\d+)\)/);
  return { code: r.code, stderr: r.stderr, rep: rep ? Number(rep[1]) : r.code === 0 ? 0 : -1 };
}

const count = (text: string, pattern: RegExp) => (text.match(pattern) ?? []).length;

/** Polls (bounded): a connection's log line is written after the client has finished. */
async function eventually(check: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !check(); i++) await new Promise((r) => setTimeout(r, 50));
}

e2eTest(
  "HAProxy with send-proxy-v2 in front of two gateways: rules see the real client",
  async (t) => {
    await using topo = await createTopology();
    const dir = await Deno.makeTempDir({ prefix: "dualgate-haproxy-" });
    try {
      const file = await createRandomFile(dir, { name: "file.bin", size: 2 * 1024 * 1024 });
      await using _http6 = await startHttpServer(topo, "server6", { directory: dir });
      const gateway = (port: number) =>
        `listen:
  - { address: "127.0.0.1:${port}", proxy_protocol: v2 }
rules:
  - { action: allow, from: ["${topo.addresses.client4.v4}/32"] }
  - { action: deny }
`;
      await using gw1 = await startDualgate(topo, gateway(1181), {
        dir,
        fileName: "gw1.yaml",
        waitFor: [["127.0.0.1", 1181]],
      });
      await using gw2 = await startDualgate(topo, gateway(1182), {
        dir,
        fileName: "gw2.yaml",
        waitFor: [["127.0.0.1", 1182]],
      });
      await using haproxy = topo.spawn("gateway", "haproxy", ["-db", "-f", HAPROXY_CFG]);
      await topo.waitForTcp("gateway", topo.addresses.gateway.v4, 1090, { process: haproxy });
      await topo.waitForTcp("gateway", topo.addresses.gateway.v6, 1090, { process: haproxy });

      await t.step(
        "client4 (allowed) fetches through HAProxy, spread over both gateways",
        async () => {
          for (let i = 0; i < 4; i++) {
            const out = `${dir}/out-${i}.bin`;
            const r = await curl(topo, "client4", `http://${NAMES.v6}:8080/${file.name}`, out);
            assert.equal(r.code, 0, `${r.stderr}\nhaproxy: ${haproxy.stderr}\ngw1: ${gw1.stderr}`);
            assert.equal(await sha256File(out), file.sha256);
          }
          const client = /relayed 192\.0\.2\.2:\d+ .*connect v6\.dualgate\.example:8080/g;
          await eventually(() => count(gw1.stderr, client) + count(gw2.stderr, client) === 4);
          assert.equal(count(gw1.stderr, client) + count(gw2.stderr, client), 4);
          assert.ok(count(gw1.stderr, client) >= 1 && count(gw2.stderr, client) >= 1);
        },
      );

      await t.step("client6 (denied by its real address) gets REP 2", async () => {
        for (let i = 0; i < 2; i++) {
          assert.equal((await curl(topo, "client6", `http://${NAMES.v6}:8080/`)).rep, 2);
        }
        const denied = /rejected \[2001:db8:1::2\]:\d+ .*rep=2/g;
        await eventually(() => count(gw1.stderr, denied) + count(gw2.stderr, denied) === 2);
        assert.equal(count(gw1.stderr, denied) + count(gw2.stderr, denied), 2);
      });

      await t.step("a connection that skips HAProxy is closed without a SOCKS reply", async () => {
        const r = await topo.run("gateway", "curl", [
          "-sS",
          "--max-time",
          "10",
          "-x",
          "socks5h://127.0.0.1:1181",
          `http://${NAMES.v6}:8080/`,
        ], { timeoutMs: 20_000 });
        assert.notEqual(r.code, 0);
        assert.doesNotMatch(r.stderr, /Can't complete SOCKS5 connection/);
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  { programs: PROGRAMS },
);
