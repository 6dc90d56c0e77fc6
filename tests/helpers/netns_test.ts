import assert from "node:assert/strict";
import { cleanupStale, createTopology, e2eTest, NAMES } from "./netns.ts";
import { createRandomFile, sha256File, startHttpServer } from "./http_server.ts";

const PROGRAMS = ["curl", "python3", "bash", "getent"];

e2eTest("`createTopology()` builds five hosts with the documented addresses", async () => {
  await using topo = await createTopology();
  const c4 = await topo.run("client4", "ip", ["-o", "addr", "show", "dev", "eth0"], {
    check: true,
  });
  assert.match(c4.stdout, /inet 192\.0\.2\.2\/24/);
  assert.doesNotMatch(c4.stdout, /inet6/, "client4 must have no IPv6 address");
  const c6 = await topo.run("client6", "ip", ["-o", "addr", "show"], { check: true });
  assert.match(c6.stdout, /inet6 2001:db8:1::2\/64/);
  assert.doesNotMatch(c6.stdout.replace(/inet 127\.0\.0\.1\/8/, ""), /\binet\b/);
  const gw = await topo.run("gateway", "ip", ["-o", "addr", "show"], { check: true });
  for (const cidr of ["192.0.2.1/24", "2001:db8:1::1/64", "198.51.100.1/24", "2001:db8:2::1/64"]) {
    assert.ok(gw.stdout.includes(cidr), `gateway lacks ${cidr}`);
  }
  const forward = await topo.run("gateway", "cat", [
    "/proc/sys/net/ipv4/ip_forward",
    "/proc/sys/net/ipv6/conf/all/forwarding",
  ], { check: true });
  assert.equal(forward.stdout, "0\n0\n");
  const route = await topo.run("client6", "ip", ["-6", "route", "show", "default"], {
    check: true,
  });
  assert.match(route.stdout, /via 2001:db8:1::1/);
}, { programs: PROGRAMS });

e2eTest("`createTopology()` keeps clients off the servers except through the gateway", async () => {
  await using topo = await createTopology();
  const dir = await Deno.makeTempDir({ prefix: "dualgate-netns-" });
  try {
    const file = await createRandomFile(dir, { size: 64 * 1024 });
    await using http4 = await startHttpServer(topo, "server4", { directory: dir });
    await using http6 = await startHttpServer(topo, "server6", { directory: dir });

    // Positive control: the gateway downloads from both servers.
    for (const http of [http4, http6]) {
      const out = `${dir}/gw-${http.host}.bin`;
      await topo.run(
        "gateway",
        "curl",
        ["-sS", "--max-time", "10", "-o", out, http.url(file.name)],
        {
          check: true,
        },
      );
      assert.equal(await sha256File(out), file.sha256);
    }

    // No forwarding: clients cannot reach either server directly, by address.
    const cases = [
      ["client4", http4.url(file.name)],
      ["client4", http6.url(file.name)],
      ["client6", http4.url(file.name)],
      ["client6", http6.url(file.name)],
    ] as const;
    for (const [client, url] of cases) {
      const r = await topo.run(client, "curl", [
        "-sS",
        "--connect-timeout",
        "2",
        "-o",
        "/dev/null",
        url,
      ], {
        timeoutMs: 10_000,
      });
      assert.notEqual(r.code, 0, `${client} reached ${url} directly: forwarding is on`);
      assert.equal(r.timedOut, false);
    }

    // No names on the clients; the gateway resolves both.
    for (const client of ["client4", "client6"] as const) {
      for (const name of [NAMES.v4, NAMES.v6]) {
        const r = await topo.run(client, "getent", ["hosts", name], { timeoutMs: 10_000 });
        assert.notEqual(r.code, 0, `${client} resolved ${name}: ${r.stdout}`);
      }
    }
    const v4 = await topo.run("gateway", "getent", ["ahosts", NAMES.v4], { check: true });
    assert.match(v4.stdout, /^198\.51\.100\.2\s/m);
    const v6 = await topo.run("gateway", "getent", ["ahosts", NAMES.v6], { check: true });
    assert.match(v6.stdout, /^2001:db8:2::2\s/m);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}, { programs: PROGRAMS });

e2eTest("`Topology` hosts and /etc files are per host and extendable", async () => {
  await using topo = await createTopology({
    hosts: { client4: { "extra.example": ["192.0.2.77"] } },
    etcFiles: { client6: { "hostname": "client6-test\n" } },
  });
  const a = await topo.run("client4", "getent", ["hosts", "extra.example"], { check: true });
  assert.match(a.stdout, /192\.0\.2\.77/);
  const b = await topo.run("gateway", "getent", ["hosts", "extra.example"]);
  assert.notEqual(b.code, 0, "an entry for client4 leaked to the gateway");
  await topo.addHosts("gateway", { "later.example": ["2001:db8:2::99"] });
  const c = await topo.run("gateway", "getent", ["hosts", "later.example"], { check: true });
  assert.match(c.stdout, /2001:db8:2::99/);
  const d = await topo.run("client6", "cat", ["/etc/hostname"], { check: true });
  assert.equal(d.stdout, "client6-test\n");
  const resolv = await topo.run("client4", "cat", ["/etc/resolv.conf"], { check: true });
  assert.equal(resolv.stdout, "");
  await assert.rejects(() => topo.writeEtcFile("gateway", "no-such-file-here", "x"), TypeError);
}, { programs: PROGRAMS });

e2eTest("`Topology.run()` and `spawn()` bound time and kill process groups", async () => {
  const namespaces = await (async () => {
    await using topo = await createTopology();
    const started = Date.now();
    const slow = await topo.run("gateway", "sh", ["-c", "sleep 30 & sleep 30"], { timeoutMs: 300 });
    assert.equal(slow.timedOut, true);
    assert.equal(slow.success, false);
    assert.ok(Date.now() - started < 5_000, "timeout did not kill the group");

    const echo = await topo.run("server6", "cat", [], { stdin: "hello" });
    assert.equal(echo.stdout, "hello");

    await using proc = topo.spawn("server4", "sh", ["-c", "echo ready; exec sleep 60"]);
    await assert.rejects(
      () => topo.waitForTcp("server4", topo.addresses.server4.v4, 9, { timeoutMs: 500 }),
      /not accepting/,
    );
    const status = await proc.stop();
    assert.equal(status.signal, "SIGTERM");
    assert.equal(proc.stdout, "ready\n");

    // A spawned process left running is killed by the topology's disposal.
    topo.spawn("client4", "sleep", ["60"]);
    return topo.namespaces;
  })();
  const list = await new Deno.Command("ip", { args: ["netns", "list"], stdout: "piped" }).output();
  const listed = new TextDecoder().decode(list.stdout);
  for (const ns of Object.values(namespaces)) {
    assert.ok(!listed.includes(ns), `${ns} survived disposal`);
    await assert.rejects(() => Deno.stat(`/etc/netns/${ns}`), Deno.errors.NotFound);
  }
}, { programs: PROGRAMS });

e2eTest("`cleanupStale()` removes namespaces of dead runs only", async () => {
  // A pid far above pid_max (4194304) can never be alive.
  const stale = "dgt-99999999-abcdef-gw";
  const add = await new Deno.Command("ip", { args: ["netns", "add", stale], stderr: "piped" })
    .output();
  assert.ok(add.success);
  await Deno.mkdir(`/etc/netns/${stale}`, { recursive: true });
  try {
    await using topo = await createTopology({ cleanupStale: false });
    const removed = await cleanupStale();
    assert.deepEqual(removed, [stale]);
    const r = await topo.run("gateway", "true", [], { check: true });
    assert.equal(r.code, 0, "cleanupStale removed a live topology");
  } finally {
    await new Deno.Command("ip", { args: ["netns", "del", stale], stderr: "null" }).output();
    await Deno.remove(`/etc/netns/${stale}`, { recursive: true }).catch(() => {});
  }
}, { programs: PROGRAMS });
