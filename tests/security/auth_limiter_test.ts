/**
 * The RFC 1929 failed-login limiter against a live gateway, attacked from client4:
 * - 300 connections opened first, then 300 passwords sent at once (the right one last): once
 *   the limit is reached no password is checked, so the right one does not get in;
 * - an unknown user costs what a known one does: the dummy scrypt check runs (counted by the
 *   gateway's `dualgate_password_hashes_total`, not timed);
 * - with the limit out of the way, 300 concurrent logins against a `password_hash` user run
 *   at most the slots' worth of scrypt derivations at once (`dualgate_password_hashes_peak`),
 *   refuse the overflow quickly, and keep the gateway's peak RSS bounded.
 */
import assert from "node:assert/strict";
import { hashPassword } from "../../gateway/config/password.ts";
import { startDualgate } from "../helpers/dualgate.ts";
import { createTopology, e2eTest, type Topology } from "../helpers/netns.ts";
import { attack, scrape } from "./_helpers.ts";

const PROGRAMS = ["curl"];
const RIGHT = "c0rrect-h0rse";
const HASH = await hashPassword(RIGHT);

interface Logins {
  methods: number[];
  replies: number[];
}

function config(topo: Topology, limit: number): string {
  return `listen: ["${topo.addresses.gateway.v4}:1080", "[${topo.addresses.gateway.v6}]:1080"]
auth:
  users:
    - { name: alice, password_hash: "${HASH}" }
limits: { auth_failures_per_minute: ${limit} }
# Long enough that, without the limiter, all 300 checks finish (and the right one gets in).
timeouts: { handshake: 300 }
admin: { listen: "127.0.0.1:9090" }
`;
}

/** Peak resident set size of a process, in MiB. */
async function peakRssMiB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(status.match(/VmHWM:\s+(\d+) kB/)?.[1] ?? NaN) / 1024;
}

e2eTest("RFC 1929 limiter: passwords sent at once are checked only up to the limit", async (t) => {
  await using topo = await createTopology();
  const a = topo.addresses;
  const dir = await Deno.makeTempDir({ prefix: "dualgate-auth-limiter-" });
  try {
    await using gateway = await startDualgate(topo, config(topo, 10), {
      dir,
      waitFor: [[a.gateway.v4, 1080], [a.gateway.v6, 1080], ["127.0.0.1", 9090]],
    });

    await t.step(
      "300 connections first, then 300 passwords: the right one last stays out",
      async () => {
        const result = await attack<Logins>(topo, "client4", {
          plan: "logins",
          host: a.gateway.v4,
          port: 1080,
          count: 300,
          username: "alice",
          right: RIGHT,
        }, 400_000);
        assert.ok(result.methods.every((method) => method === 2), "every greeting was answered");
        assert.equal(result.replies.filter((reply) => reply === 0).length, 0);
        assert.equal(result.replies[299], 1);
        const metric = await scrape(topo);
        assert.equal(metric("dualgate_auth_failures_total"), 10);
        assert.equal(metric("dualgate_password_hashes_total"), 10);
        assert.equal(metric('dualgate_limit_rejections_total{limit="auth_failures"}'), 290);
        // Failed logins name the configured user they tried (`user=alice - - via -`); a login
        // that got in would be followed by its command.
        assert.doesNotMatch(gateway.stderr, /relayed|user=alice (?!- - via -)/);
      },
    );

    await t.step(
      "an unknown user's login runs the same scrypt check as a known user's",
      async () => {
        const before = (await scrape(topo))("dualgate_password_hashes_total");
        for (const username of ["alice", "mallory", "alice", "mallory"]) {
          const result = await attack<Logins>(topo, "client6", {
            plan: "logins",
            host: a.gateway.v6,
            port: 1080,
            count: 1,
            username,
            right: "wrong",
          });
          assert.deepEqual(result.replies, [1]);
        }
        const metric = await scrape(topo);
        assert.equal(metric("dualgate_password_hashes_total") - before, 4);
        assert.equal(metric("dualgate_auth_failures_total"), 14);
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}, { programs: PROGRAMS });

e2eTest(
  "RFC 1929 limiter: concurrent scrypt checks are capped and memory stays bounded",
  async () => {
    await using topo = await createTopology();
    const a = topo.addresses;
    const dir = await Deno.makeTempDir({ prefix: "dualgate-auth-memory-" });
    try {
      await using gateway = await startDualgate(topo, config(topo, 100_000), {
        dir,
        waitFor: [[a.gateway.v4, 1080], [a.gateway.v6, 1080], ["127.0.0.1", 9090]],
      });
      const result = await attack<Logins>(topo, "client4", {
        plan: "logins",
        host: a.gateway.v4,
        port: 1080,
        count: 300,
        username: "alice",
        right: "not-it-either",
      }, 400_000);
      assert.ok(result.replies.every((reply) => reply === 1), "every login failed");
      const metric = await scrape(topo);
      const slots = metric("dualgate_password_hash_slots");
      assert.ok(slots >= 1 && slots <= 8, `slots ${slots}`);
      const peak = metric("dualgate_password_hashes_peak");
      assert.ok(peak >= 1 && peak <= slots, `peak ${peak} of ${slots} slots`);
      // Every login was either checked or refused as busy, none queued without bound.
      const checked = metric("dualgate_password_hashes_total");
      const busy = metric('dualgate_limit_rejections_total{limit="auth_busy"}');
      assert.equal(checked + busy, 300);
      assert.ok(checked <= 300 && checked >= slots);
      // scrypt at N=16384 takes 16 MiB a check: 300 at once took the gateway to ~740 MiB.
      const rss = await peakRssMiB(gateway.pid);
      assert.ok(rss < 400, `peak RSS ${rss.toFixed(0)} MiB`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  { programs: PROGRAMS },
);
