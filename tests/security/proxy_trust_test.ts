/**
 * PROXY protocol trust against a live gateway: a client that reaches a `proxy_protocol`
 * listener directly must not be able to claim a source (the gateway's loopback, an address a
 * `from` rule allows) — it is closed before anything is read, counted and logged (rate-limited)
 * — while a header from a proxy named in `trusted_proxies` is what rules see.
 */
import assert from "node:assert/strict";
import { startDualgate } from "../helpers/dualgate.ts";
import { createTopology, e2eTest } from "../helpers/netns.ts";
import { startHttpServer } from "../helpers/http_server.ts";
import { attack, scrape } from "./_helpers.ts";

const PROGRAMS = ["curl", "python3"];

e2eTest("PROXY protocol: only trusted proxies may name the client", async (t) => {
  await using topo = await createTopology();
  const a = topo.addresses;
  const dir = await Deno.makeTempDir({ prefix: "dualgate-proxy-trust-" });
  try {
    await using http = await startHttpServer(topo, "server4", { directory: dir });
    await using gateway = await startDualgate(
      topo,
      `listen:
  - { address: "${a.gateway.v4}:1090", proxy_protocol: v1 }
  - { address: "[${a.gateway.v6}]:1090", proxy_protocol: any, trusted_proxies: ["${a.client6.v6}/128"] }
rules:
  - { action: allow, from: ["127.0.0.1/32", "203.0.113.7/32"] }
  - { action: deny }
admin: { listen: "127.0.0.1:9090" }
`,
      { dir, waitFor: [[a.gateway.v4, 1090], [a.gateway.v6, 1090], ["127.0.0.1", 9090]] },
    );
    const target: [string, number] = [a.server4.v4, http.port];
    const header = (source: string, to: string) => `PROXY TCP4 ${source} ${to} 40000 1090\r\n`;

    await t.step(
      "start warns about the non-loopback listener without trusted_proxies",
      async () => {
        assert.match(
          await gateway.waitForStderr(/listen\[0\]: 192\.0\.2\.1:1090 takes PROXY headers without/),
          /listen\[0\]: 192\.0\.2\.1:1090 takes PROXY headers without/,
        );
        assert.doesNotMatch(gateway.stderr, /listen\[1\]: .* takes PROXY headers/);
      },
    );

    await t.step(
      "client4 (not a trusted proxy) claiming 127.0.0.1 or an allowed source is closed unread",
      async () => {
        // startDualgate's readiness probes (from the gateway host itself) were refused too.
        const before = (await scrape(topo))(
          'dualgate_limit_rejections_total{limit="untrusted_proxy"}',
        );
        for (const source of ["127.0.0.1", "203.0.113.7", a.client4.v4]) {
          const result = await attack<{ received: number[] }>(topo, "client4", {
            plan: "proxy",
            host: a.gateway.v4,
            port: 1090,
            header: header(source, a.gateway.v4),
            target,
          });
          assert.deepEqual(result.received, [], `claiming ${source}`);
        }
        const metric = await scrape(topo);
        assert.equal(
          metric('dualgate_limit_rejections_total{limit="untrusted_proxy"}') - before,
          3,
        );
        assert.equal(
          metric(
            'dualgate_connections_total{command="connect",families="v4-v4",outcome="relayed"}',
          ),
          0,
        );
      },
    );

    await t.step("refusals are logged at most once a second", async () => {
      const before = (gateway.stderr.match(/not a trusted proxy/g) ?? []).length;
      assert.ok(before >= 1, gateway.stderr);
      const refused = (await scrape(topo))(
        'dualgate_limit_rejections_total{limit="untrusted_proxy"}',
      );
      await Promise.all(Array.from({ length: 4 }, () =>
        attack(topo, "client4", {
          plan: "logins",
          host: a.gateway.v4,
          port: 1090,
          count: 5,
          header: header("127.0.0.1", a.gateway.v4),
        })));
      const metric = await scrape(topo);
      assert.equal(
        metric('dualgate_limit_rejections_total{limit="untrusted_proxy"}') - refused,
        20,
      );
      const lines = (gateway.stderr.match(/not a trusted proxy/g) ?? []).length;
      assert.ok(lines - before < 20, `${lines - before} lines for 20 refusals`);
    });

    await t.step("client6 (a trusted proxy) names the client that the rules see", async () => {
      const allowed = await attack<{ received: number[] }>(topo, "client6", {
        plan: "proxy",
        host: a.gateway.v6,
        port: 1090,
        header: header("203.0.113.7", a.gateway.v4),
        target,
      });
      assert.deepEqual(allowed.received.slice(0, 4), [5, 0, 5, 0]);
      const denied = await attack<{ received: number[] }>(topo, "client6", {
        plan: "proxy",
        host: a.gateway.v6,
        port: 1090,
        header: header("203.0.113.8", a.gateway.v4),
        target,
      });
      assert.deepEqual(denied.received.slice(0, 4), [5, 0, 5, 2]);
      assert.match(
        await gateway.waitForStderr(/rejected 203\.0\.113\.8:40000 /),
        /rejected 203\.0\.113\.8:40000 /,
      );
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}, { programs: PROGRAMS });
