/**
 * Proves the e2e harness with a known-good SOCKS5 server (microsocks) on the gateway, before
 * dualgate takes its place in connect_test.ts: an IPv4-only client fetches from an IPv6-only
 * server by a name only the gateway knows, and the other way round.
 */
import assert from "node:assert/strict";
import { createTopology, e2eTest, NAMES } from "../helpers/netns.ts";
import { createRandomFile, sha256File, startHttpServer } from "../helpers/http_server.ts";

const MIB = 1024 * 1024;

e2eTest("harness: clients cross IP families only through microsocks on the gateway", async (t) => {
  await using topo = await createTopology();
  const dir = await Deno.makeTempDir({ prefix: "dualgate-harness-" });
  try {
    const file = await createRandomFile(dir, { name: "file.bin", size: 4 * MIB });
    await using _http4 = await startHttpServer(topo, "server4", { directory: dir });
    await using _http6 = await startHttpServer(topo, "server6", { directory: dir });

    await t.step("client4 cannot reach server4 or server6 directly", async () => {
      for (
        const url of [
          `http://198.51.100.2:8080/${file.name}`,
          `http://[2001:db8:2::2]:8080/${file.name}`,
        ]
      ) {
        const r = await topo.run("client4", "curl", [
          "-sS",
          "--connect-timeout",
          "2",
          "-o",
          "/dev/null",
          url,
        ], { timeoutMs: 10_000 });
        assert.notEqual(r.code, 0, `client4 reached ${url} without the gateway`);
      }
    });

    // `-i ::` takes both families (bindv6only is 0 in a fresh namespace).
    await using socks = topo.spawn("gateway", "microsocks", ["-i", "::", "-p", "1080"]);
    await socks.waitForTcp(topo.addresses.gateway.v4, 1080);
    await socks.waitForTcp(topo.addresses.gateway.v6, 1080);

    const cases = [
      { client: "client4", proxy: "socks5h://192.0.2.1:1080", name: NAMES.v6 },
      { client: "client6", proxy: "socks5h://[2001:db8:1::1]:1080", name: NAMES.v4 },
    ] as const;
    for (const { client, proxy, name } of cases) {
      await t.step(`${client} downloads 4 MiB from ${name} via ${proxy}`, async () => {
        const out = `${dir}/${client}.bin`;
        const r = await topo.run(client, "curl", [
          "-sS",
          "--fail",
          "--max-time",
          "30",
          "-x",
          proxy,
          `http://${name}:8080/${file.name}`,
          "-o",
          out,
        ], { timeoutMs: 40_000 });
        assert.equal(r.code, 0, `curl failed: ${r.stderr}\nmicrosocks: ${socks.stderr}`);
        assert.equal(await sha256File(out), file.sha256);
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}, { programs: ["curl", "python3", "microsocks", "bash"] });
