import assert from "node:assert/strict";
import { formatIp, parseIp } from "../../net/address.ts";
import { normalizeConfig, parseConfig } from "../config/load.ts";
import { stringify } from "yaml";
import { ConfigError } from "../config/errors.ts";
import { startAdminServer } from "./admin.ts";
import { isAuthorized, loadAdminAuth, tokenDigest } from "./admin_auth.ts";
import { buildStatus } from "./status.ts";

const LOOPBACK = { address: parseIp("127.0.0.1")!, port: 0 };
const TOKEN = "s3cret-Token_42";
const basic = (text: string) => `Basic ${btoa(text)}`;

function startProtected() {
  return startAdminServer(LOOPBACK, {
    metrics: () => "x 1\n",
    status: () =>
      Promise.resolve(buildStatus({ metrics: [], live: [], history: [], workers: 1, now: 0 })),
    auth: {
      tokenSha256: tokenDigest(TOKEN),
      checkUser: (user, password) =>
        Promise.resolve(user === "alice" && password === "wonderland" ? "accepted" : "rejected"),
    },
  });
}

async function request(
  base: string,
  path: string,
  init: RequestInit & { client: Deno.HttpClient },
): Promise<{ status: number; body: string; headers: Headers }> {
  const response = await fetch(base + path, init);
  return { status: response.status, body: await response.text(), headers: response.headers };
}

Deno.test("admin.auth: without valid credentials every path but /healthz answers 401, nothing else", async () => {
  await using admin = startProtected();
  const base = `http://${formatIp(admin.endpoint.address)}:${admin.endpoint.port}`;
  const client = Deno.createHttpClient({});
  try {
    const wrong: (string | null)[] = [
      null,
      "Bearer wrong",
      `Bearer ${TOKEN}x`,
      `Bearer ${TOKEN.slice(0, -1)}`,
      `bearer  ${TOKEN}`,
      `Bearer ${TOKEN} `.trimEnd() + ",Bearer x",
      `Bearer ${TOKEN}, Bearer ${TOKEN}`,
      `Token ${TOKEN}`,
      basic(`token:${TOKEN}x`),
      basic("alice:wrong"),
      basic("alice:wonderland\u0000"),
      basic("alice"),
      "Basic !!!notbase64",
      `Bearer ${tokenDigest(TOKEN).toString()}`,
    ];
    for (const path of ["/", "/api/status", "/metrics", "/reload", "/nowhere"]) {
      for (const authorization of wrong) {
        for (const method of ["GET", "POST"]) {
          const headers = new Headers();
          if (authorization !== null) headers.set("authorization", authorization);
          const got = await request(base, path, {
            method,
            headers,
            client,
            ...(method === "POST" && { body: "{}" }),
          });
          assert.equal(got.status, 401, `${method} ${path} with ${authorization}`);
          assert.equal(got.body, "unauthorized\n");
          assert.match(got.headers.get("www-authenticate") ?? "", /^Basic realm="dualgate admin"/);
        }
      }
    }
    // A header injected into the credentials does not reach anything: it is one bad header.
    const injected = await fetch(`${base}/metrics`, {
      headers: { authorization: `Bearer wrong\tx-forwarded-user: alice` },
      client,
    });
    await injected.body?.cancel();
    assert.equal(injected.status, 401);
    const health = await request(base, "/healthz", { client });
    assert.equal(health.status, 200);
  } finally {
    client.close();
  }
});

Deno.test("admin.auth: the token (bearer or Basic token:…) and the users' credentials open every path", async () => {
  await using admin = startProtected();
  const base = `http://${formatIp(admin.endpoint.address)}:${admin.endpoint.port}`;
  const client = Deno.createHttpClient({});
  try {
    for (
      const authorization of [`Bearer ${TOKEN}`, basic(`token:${TOKEN}`), basic("alice:wonderland")]
    ) {
      const headers = { authorization };
      const metrics = await request(base, "/metrics", { headers, client });
      assert.equal(metrics.status, 200);
      assert.equal(metrics.body, "x 1\n");
      const status = await request(base, "/api/status", { headers, client });
      assert.equal(status.status, 200);
      assert.equal(JSON.parse(status.body).workers.count, 1);
      const page = await request(base, "/", { headers, client });
      assert.equal(page.status, 200);
      assert.match(page.body, /<title>dualgate status<\/title>/);
    }
  } finally {
    client.close();
  }
});

Deno.test("isAuthorized() compares the token's digest, never a prefix or another scheme", async () => {
  const auth = { tokenSha256: tokenDigest(TOKEN) };
  const client = { endpoint: LOOPBACK, signal: new AbortController().signal };
  assert.equal(await isAuthorized(`Bearer ${TOKEN}`, auth, client), true);
  assert.equal(await isAuthorized(`Bearer ${TOKEN.toUpperCase()}`, auth, client), false);
  assert.equal(await isAuthorized(basic(`alice:${TOKEN}`), auth, client), false);
  assert.equal(await isAuthorized(`Bearer ${TOKEN}`, {}, client), false);
  assert.equal(await isAuthorized(basic("alice:wonderland"), auth, client), false);
});

Deno.test("admin listener off loopback without admin.auth is a config error naming admin.listen", () => {
  assert.throws(
    () => parseConfig('admin: { listen: "0.0.0.0:9090" }'),
    (error: unknown) =>
      error instanceof ConfigError && /admin\.listen/.test(error.message) &&
      /not a loopback address/.test(error.message),
  );
  assert.throws(
    () => parseConfig('admin: { listen: "[2001:db8::1]:9090" }'),
    (error: unknown) => error instanceof ConfigError && /admin\.listen/.test(error.message),
  );
  assert.throws(
    () => parseConfig('admin: { listen: "0.0.0.0:9090", auth: {} }'),
    (error: unknown) => error instanceof ConfigError && /admin\.auth/.test(error.message),
  );
  assert.throws(
    () => parseConfig('admin: { auth: { token_sha256: "abc" } }'),
    (error: unknown) =>
      error instanceof ConfigError && /admin\.auth\.token_sha256/.test(error.message),
  );
  assert.throws(
    () => parseConfig("admin: { auth: { users: true } }"),
    (error: unknown) => error instanceof ConfigError && /admin\.auth\.users/.test(error.message),
  );
  const config = parseConfig(
    `admin: { listen: "0.0.0.0:9090", auth: { token_sha256: "${"AB".repeat(32)}" } }`,
  );
  assert.equal(config.admin?.auth?.tokenSha256, "ab".repeat(32));
  assert.equal(parseConfig('admin: { listen: "[::1]:9090" }').admin?.auth, undefined);
});

Deno.test("loadAdminAuth() reads token_file, refuses an unreadable or empty one naming the key", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dualgate-admin-auth-" });
  try {
    await Deno.writeTextFile(`${dir}/token`, `${TOKEN}\n`);
    const auth = loadAdminAuth({ tokenFile: `${dir}/token`, users: false }, () => {
      throw new Error("users are off");
    });
    assert.deepEqual(auth.tokenSha256, tokenDigest(TOKEN));
    assert.equal(auth.checkUser, undefined);
    await Deno.writeTextFile(`${dir}/empty`, "\n");
    assert.throws(
      () => loadAdminAuth({ tokenFile: `${dir}/empty`, users: false }, () => Promise.resolve("")),
      /^Error: admin\.auth\.token_file: /,
    );
    assert.throws(
      () => loadAdminAuth({ tokenFile: `${dir}/missing`, users: false }, () => Promise.resolve("")),
      /admin\.auth\.token_file: cannot read/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("normalizeConfig() keeps admin.auth, and the normalized text parses to the same config", () => {
  const config = parseConfig(`auth: { users: [{ name: alice, password: wonderland }] }
admin: { listen: "0.0.0.0:9090", auth: { token_file: /etc/dualgate/admin.token, users: true } }
`);
  const normalized = normalizeConfig(config) as { admin: unknown };
  assert.deepEqual(normalized.admin, {
    listen: "0.0.0.0:9090",
    auth: { token_file: "/etc/dualgate/admin.token", users: true },
  });
  assert.deepEqual(parseConfig(stringify(normalizeConfig(config))).admin, config.admin);
});
