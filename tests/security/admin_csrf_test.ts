/**
 * Attacks on the admin listener from a browser: a page on another site (or a rebound name)
 * posting to `/reload` on loopback, where an open admin listener, or one whose Basic
 * credentials the browser caches, would otherwise accept it (CSRF).
 */
import assert from "node:assert/strict";
import { formatIp, parseIp } from "../../net/address.ts";
import { startAdminServer } from "../../gateway/observe/admin.ts";

const LOOPBACK = { address: parseIp("127.0.0.1")!, port: 0 };

Deno.test("admin attack: a cross-site POST /reload is refused and reloads nothing", async () => {
  let reloads = 0;
  await using admin = startAdminServer(LOOPBACK, {
    metrics: () => "",
    reload: () => {
      reloads++;
      return Promise.resolve({ result: "accepted", generation: 2, closed: 0, message: "ok" });
    },
  });
  const origin = `http://${formatIp(admin.endpoint.address)}:${admin.endpoint.port}`;
  const client = Deno.createHttpClient({});
  const post = async (headers: Record<string, string>) => {
    const response = await fetch(`${origin}/reload`, {
      method: "POST",
      body: "x=1",
      headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
      client,
    });
    await response.body?.cancel();
    return response.status;
  };
  try {
    // What a browser sends for a form on https://evil.example posting here.
    assert.equal(
      await post({ origin: "https://evil.example", "sec-fetch-site": "cross-site" }),
      403,
    );
    // An older browser: Origin only.
    assert.equal(await post({ origin: "https://evil.example" }), 403);
    // Sec-Fetch-Site only (Origin stripped by a privacy extension).
    assert.equal(await post({ "sec-fetch-site": "same-site" }), 403);
    // An opaque origin (sandboxed frame, data: URL).
    assert.equal(await post({ origin: "null" }), 403);
    assert.equal(reloads, 0, "a cross-site request reloaded the configuration");
    // curl, scripts and the page's own origin still reload.
    assert.equal(await post({}), 200);
    assert.equal(await post({ origin, "sec-fetch-site": "same-origin" }), 200);
    assert.equal(await post({ "sec-fetch-site": "none" }), 200);
    assert.equal(reloads, 3);
  } finally {
    client.close();
  }
});

Deno.test("admin attack: an open admin listener refuses a rebound name (DNS rebinding)", async () => {
  let reloads = 0;
  await using admin = startAdminServer(LOOPBACK, {
    metrics: () => "secret_metric 1\n",
    reload: () => {
      reloads++;
      return Promise.resolve({ result: "accepted", generation: 2, closed: 0, message: "ok" });
    },
  });
  const port = admin.endpoint.port;
  // A page of http://rebind.example:PORT whose name now resolves to 127.0.0.1: same origin for
  // the browser, so no Origin or Sec-Fetch-Site gives it away; only the Host does.
  const ask = async (method: string, path: string, host: string) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      const request = `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 0\r\n` +
        "Connection: close\r\n\r\n";
      await conn.write(new TextEncoder().encode(request));
      let text = "";
      const buffer = new Uint8Array(4096);
      for (let i = 0; i < 100; i++) {
        const n = await conn.read(buffer);
        if (n === null) break;
        text += new TextDecoder().decode(buffer.subarray(0, n));
      }
      return Number(text.split(" ")[1]);
    } finally {
      conn.close();
    }
  };
  assert.equal(await ask("GET", "/metrics", `rebind.example:${port}`), 403);
  assert.equal(await ask("POST", "/reload", `rebind.example:${port}`), 403);
  assert.equal(reloads, 0);
  assert.equal(await ask("GET", "/metrics", `127.0.0.1:${port}`), 200);
  assert.equal(await ask("GET", "/metrics", `localhost:${port}`), 200);
  assert.equal(await ask("GET", "/metrics", `[::1]:${port}`), 200);
});
