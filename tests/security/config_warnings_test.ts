/**
 * Exposure warnings at start: `main.ts serve` (here with two workers) logs a plain-text password
 * on a non-loopback listener and an admin listener off loopback exactly once each, from the same
 * function `main.ts check` prints them with.
 */
import assert from "node:assert/strict";
import { startDualgate } from "../helpers/dualgate.ts";
import { createTopology, e2eTest } from "../helpers/netns.ts";

e2eTest("`main.ts serve --workers 2` logs each exposure warning once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dualgate-warnings-" });
  try {
    await using topo = await createTopology();
    const a = topo.addresses;
    await using gateway = await startDualgate(
      topo,
      `listen: ["${a.gateway.v4}:1080", "[${a.gateway.v6}]:1080"]
auth: { users: [{ name: alice, password: change-me }] }
admin: { listen: "${a.gateway.v4}:9090", auth: { users: true } }
workers: 2
`,
      { dir },
    );
    const count = (pattern: RegExp) => (gateway.stderr.match(pattern) ?? []).length;
    const password =
      /\[WRN\] dualgate·gateway\S*: config auth\.users\[0\]\.password: user "alice"/g;
    const admin = /\[WRN\] dualgate·gateway\S*: config admin\.listen: 192\.0\.2\.1:9090 is not/g;
    const deadline = performance.now() + 20_000;
    while ((count(password) < 1 || count(admin) < 1) && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(count(password), 1, gateway.stderr);
    assert.equal(count(admin), 1, gateway.stderr);
    assert.doesNotMatch(gateway.stderr, /change-me/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
