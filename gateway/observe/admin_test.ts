import assert from "node:assert/strict";
import { formatIp, parseIp } from "../../net/address.ts";
import { httpGet } from "../../tests/helpers/http_get.ts";
import { startAdminServer } from "./admin.ts";
import { buildStatus } from "./status.ts";

const LOOPBACK = { address: parseIp("127.0.0.1")!, port: 0 };

Deno.test("startAdminServer() serves /metrics in the exposition format and /healthz", async () => {
  let healthy = true;
  let scrapes = 0;
  await using admin = startAdminServer(LOOPBACK, {
    metrics: () => `# TYPE x counter\nx ${++scrapes}\n`,
    healthy: () => healthy,
  });
  const at = { hostname: formatIp(admin.endpoint.address), port: admin.endpoint.port };
  assert.notEqual(at.port, 0);

  const metrics = await httpGet(at, "/metrics");
  assert.equal(metrics.status, 200);
  assert.match(metrics.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  assert.equal(metrics.body, "# TYPE x counter\nx 1\n");

  const health = await httpGet(at, "/healthz");
  assert.equal(health.status, 200);
  assert.equal(health.body, "ok\n");
  healthy = false;
  const draining = await httpGet(at, "/healthz");
  assert.equal(draining.status, 503);
  assert.equal(draining.body, "draining\n");

  assert.equal((await httpGet(at, "/")).status, 404);
  assert.equal((await httpGet(at, "/metrics/x")).status, 404);
});

Deno.test("startAdminServer() answers 405 to methods other than GET and HEAD", async () => {
  await using admin = startAdminServer(LOOPBACK, { metrics: () => "" });
  const url = `http://${formatIp(admin.endpoint.address)}:${admin.endpoint.port}/metrics`;
  const client = Deno.createHttpClient({});
  try {
    const post = await fetch(url, { method: "POST", body: "x", client });
    await post.body?.cancel();
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("allow"), "GET, HEAD");
    const head = await fetch(url, { method: "HEAD", client });
    await head.body?.cancel();
    assert.equal(head.status, 200);
  } finally {
    client.close();
  }
});

Deno.test("AdminServer.close() stops listening", async () => {
  const admin = startAdminServer(LOOPBACK, { metrics: () => "" });
  const at = { hostname: "127.0.0.1", port: admin.endpoint.port };
  assert.equal((await httpGet(at, "/healthz")).status, 200);
  await admin.close();
  await admin.close();
  await assert.rejects(() => httpGet(at, "/healthz"), Deno.errors.ConnectionRefused);
});

Deno.test("startAdminServer() throws when the address is taken", () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  assert.throws(
    () => startAdminServer({ ...LOOPBACK, port: taken.addr.port }, { metrics: () => "" }),
    Deno.errors.AddrInUse,
  );
});

Deno.test("startAdminServer() serves the self-contained page at / and the JSON at /api/status", async () => {
  await using admin = startAdminServer(LOOPBACK, {
    metrics: () => "",
    status: () =>
      Promise.resolve(buildStatus({ metrics: [], live: [], history: [], workers: 1, now: 0 })),
  });
  const at = { hostname: formatIp(admin.endpoint.address), port: admin.endpoint.port };
  const page = await httpGet(at, "/");
  assert.equal(page.status, 200);
  assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
  const csp = page.headers.get("content-security-policy") ?? "";
  assert.match(csp, /default-src 'none'/);
  const nonce = /script-src 'nonce-([^']+)'/.exec(csp)?.[1];
  assert.ok(nonce && page.body.includes(`<script nonce="${nonce}">`));
  // No external asset: nothing is loaded from anywhere but the page's own origin.
  assert.doesNotMatch(
    page.body,
    /\b(src|href)=|@import|url\(|https?:\/\/(?!www\.w3\.org\/2000\/svg)/,
  );
  const json = await httpGet(at, "/api/status");
  assert.equal(json.status, 200);
  assert.match(json.headers.get("content-type") ?? "", /^application\/json/);
  assert.deepEqual(JSON.parse(json.body).connections.activeByFamilies, {
    "v4-v4": 0,
    "v4-v6": 0,
    "v6-v4": 0,
    "v6-v6": 0,
  });
});

Deno.test("startAdminServer() runs POST /reload and shows the generation in /healthz", async () => {
  const results = ["refused", "accepted", "failed"] as const;
  let runs = 0;
  await using admin = startAdminServer(LOOPBACK, {
    metrics: () => "",
    details: () => `generation ${runs}\n`,
    reload: () => {
      const result = results[runs++]!;
      return Promise.resolve({ result, generation: runs, closed: 0, message: `run ${runs}` });
    },
  });
  const base = `http://${formatIp(admin.endpoint.address)}:${admin.endpoint.port}`;
  const client = Deno.createHttpClient({});
  try {
    const answers = [];
    for (let i = 0; i < 3; i++) {
      const response = await fetch(`${base}/reload`, { method: "POST", client });
      answers.push([response.status, await response.text()]);
    }
    assert.deepEqual(answers, [
      [400, "refused: run 1\n"],
      [200, "accepted: run 2\n"],
      [500, "failed: run 3\n"],
    ]);
    const get = await fetch(`${base}/reload`, { client });
    await get.body?.cancel();
    assert.equal(get.status, 405, "a GET never reloads");
    assert.equal(runs, 3);
    const health = await fetch(`${base}/healthz`, { client });
    assert.equal(await health.text(), "ok\ngeneration 3\n");
  } finally {
    client.close();
  }
  // Without a reload function there is no /reload.
  await using plain = startAdminServer(LOOPBACK, { metrics: () => "" });
  const at = { hostname: "127.0.0.1", port: plain.endpoint.port };
  assert.equal((await httpGet(at, "/reload")).status, 404);
});
