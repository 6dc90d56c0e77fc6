/**
 * Reply codes end to end, as a real client (curl) sees them from IPv4-only and IPv6-only hosts:
 * safe defaults (REP 2 for the gateway host's loopback), unknown names (4), refused (5), no
 * route to a family (3), host unreachable and connect timeout (4).
 */
import assert from "node:assert/strict";
import { startDualgate } from "../helpers/dualgate.ts";
import { createTopology, e2eTest, type HostName, NAMES, type Topology } from "../helpers/netns.ts";

const PROGRAMS = ["curl", "python3", "bash"];

/** Runs curl through the gateway and returns the SOCKS reply code curl reports (or 0). */
async function replyFor(topo: Topology, client: HostName, url: string): Promise<number> {
  const proxy = client === "client4"
    ? `socks5h://${topo.addresses.gateway.v4}:1080`
    : `socks5h://[${topo.addresses.gateway.v6}]:1080`;
  const r = await topo.run(client, "curl", [
    "-sS",
    "-o",
    "/dev/null",
    "--max-time",
    "20",
    "-x",
    proxy,
    url,
  ], { timeoutMs: 30_000 });
  if (r.code === 0) return 0;
  const match = r.stderr.match(/Can't complete SOCKS5 connection to .*\((\d+)\)/);
  assert.ok(match, `curl failed without a SOCKS reply: ${r.stderr}`);
  return Number(match[1]);
}

e2eTest("gateway reply codes seen by curl on IPv4-only and IPv6-only hosts", async (t) => {
  await using topo = await createTopology();
  const dir = await Deno.makeTempDir({ prefix: "dualgate-replies-" });
  try {
    // A server on the gateway's own loopback: reachable by gateway-local clients only.
    await using _local = topo.spawn("gateway", "python3", [
      "-m",
      "http.server",
      "8081",
      "--bind",
      "127.0.0.1",
      "--directory",
      dir,
    ]);
    await topo.waitForTcp("gateway", "127.0.0.1", 8081);
    await using gateway = await startDualgate(
      topo,
      [
        `listen: ["${topo.addresses.gateway.v4}:1080", "[${topo.addresses.gateway.v6}]:1080"]`,
        "timeouts: { connect: 1 }",
        "",
      ].join("\n"),
      { dir },
    );
    for (const client of ["client4", "client6"] as const) {
      await t.step(`${client}: the gateway's loopback is denied (REP 2)`, async () => {
        assert.equal(await replyFor(topo, client, "http://127.0.0.1:8081/"), 2);
        assert.equal(await replyFor(topo, client, "http://localhost:8081/"), 2);
        assert.equal(await replyFor(topo, client, "http://[::1]:8081/"), 2);
      });
      await t.step(`${client}: an unknown name is REP 4`, async () => {
        assert.equal(await replyFor(topo, client, "http://nowhere.dualgate.example/"), 4);
      });
      await t.step(`${client}: a closed port is REP 5`, async () => {
        assert.equal(await replyFor(topo, client, `http://${NAMES.v6}:9/`), 5);
        assert.equal(await replyFor(topo, client, `http://${NAMES.v4}:9/`), 5);
      });
      await t.step(`${client}: a prefix the gateway has no route to is REP 3`, async () => {
        assert.equal(await replyFor(topo, client, "http://[2001:db8:99::1]/"), 3);
        assert.equal(await replyFor(topo, client, "http://203.0.113.9/"), 3);
      });
      await t.step(`${client}: a silent host on a connected link times out as REP 4`, async () => {
        const started = performance.now();
        assert.equal(await replyFor(topo, client, "http://198.51.100.99/"), 4);
        assert.ok(performance.now() - started < 10_000);
      });
    }
    await t.step("the log names each refusal with its reply code", async () => {
      assert.match(await gateway.waitForStderr(/rep=2/), /rep=2/);
      // No rules here: the refusal is the safe defaults', not some rule's.
      assert.match(
        await gateway.waitForStderr(
          /rep=2 \(Cannot connect: denied by the safe defaults: destination is host-local\)/,
        ),
        /rep=2 \(Cannot connect: denied by the safe defaults: destination is host-local\)/,
      );
      assert.doesNotMatch(gateway.stderr, /denied by rules/);
      assert.match(await gateway.waitForStderr(/rep=3/), /rep=3/);
      assert.match(await gateway.waitForStderr(/rep=4/), /rep=4/);
      assert.match(await gateway.waitForStderr(/rep=5/), /rep=5/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}, { programs: PROGRAMS });
