import assert from "node:assert/strict";
import { parseGatewayUrl } from "./gateway_url.ts";
import { detectLaunchKind, proxychainsConfig, runSocksify } from "./socksify.ts";
import { startTestSocksServer } from "./_test_socks_server.ts";
import { buildNodePreload } from "./_build_node_preload.ts";

Deno.test("detectLaunchKind() tells Deno, Node and native programs apart", () => {
  assert.equal(detectLaunchKind("/usr/local/bin/deno"), "deno");
  assert.equal(detectLaunchKind("node"), "node");
  assert.equal(detectLaunchKind("npx"), "node");
  assert.equal(detectLaunchKind("curl"), "native");
});

Deno.test("proxychainsConfig() uses remote DNS and reaches the gateways directly", () => {
  const text = proxychainsConfig(
    ["socks5://192.0.2.1:1080", "socks5://u:p@[2001:db8:1::1]:1081"].map(parseGatewayUrl),
  );
  assert.match(text, /^dynamic_chain$/m);
  assert.match(text, /^proxy_dns$/m);
  assert.match(text, /^localnet 192\.0\.2\.1\/255\.255\.255\.255$/m);
  assert.match(text, /^localnet 2001:db8:1::1\/128$/m);
  assert.match(text, /\[ProxyList\]\nsocks5 192\.0\.2\.1 1080\nsocks5 2001:db8:1::1 1081 u p\n$/);
});

Deno.test("proxychainsConfig() maps the strategy to one proxy per connection", () => {
  const gateways = ["socks5://192.0.2.1:1080", "socks5://192.0.2.2:1080"].map(parseGatewayUrl);
  assert.match(proxychainsConfig(gateways, "round-robin"), /^round_robin_chain\nchain_len = 1$/m);
  assert.match(proxychainsConfig(gateways, "random"), /^random_chain\nchain_len = 1$/m);
  assert.match(proxychainsConfig(gateways.slice(0, 1), "random"), /^strict_chain$/m);
});

Deno.test("runSocksify() fails clearly when proxychains4 is missing", async () => {
  await assert.rejects(
    runSocksify({
      gateways: ["socks5://127.0.0.1:1"],
      command: ["true"],
      proxychains: "no-such-proxychains4",
      stdio: "null",
    }),
    /proxychains4 is not installed/,
  );
});

Deno.test("node_preload.mjs is up to date with its sources", async () => {
  const committed = await Deno.readTextFile(new URL("./node_preload.mjs", import.meta.url));
  assert.equal(
    committed,
    await buildNodePreload(),
    "run: deno run -A client/_build_node_preload.ts",
  );
});

const APP_DENO = `
const port = Number(Deno.args[0]);
const conn = await Deno.connect({ hostname: "svc.test", port });
await conn.write(new TextEncoder().encode("x"));
const buffer = new Uint8Array(1);
await conn.read(buffer);
conn.close();
const [a] = await Deno.resolveDns("svc.test", "A");
const [aaaa] = await Deno.resolveDns("other.test", "AAAA");
await Deno.writeTextFile(Deno.args[1]!, JSON.stringify({ peer: conn.remoteAddr.hostname, a, aaaa }));
`;

const APP_NODE = `
import net from "node:net";
import dns from "node:dns";
import fs from "node:fs";
const socket = net.connect({ host: "svc.test", port: Number(process.argv[2]) }, () => socket.write("x"));
socket.once("data", () => {
  const peer = socket.remoteAddress;
  socket.end();
  dns.lookup("other.test", { family: 6 }, (error, address) =>
    fs.writeFileSync(process.argv[3], JSON.stringify({ peer, aaaa: address })));
});
`;

async function withEcho<T>(fn: (port: number) => Promise<T>): Promise<T> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepting = (async () => {
    for await (const conn of listener) await conn.readable.pipeTo(conn.writable).catch(() => {});
  })();
  try {
    return await fn(listener.addr.port);
  } finally {
    listener.close();
    await accepting;
  }
}

async function socksified(command: string[], gateway: string): Promise<Record<string, string>> {
  const dir = await Deno.makeTempDir();
  const out = `${dir}/out.json`;
  try {
    const code = await runSocksify({
      gateways: [gateway],
      command: [...command, out],
      nativeFamilies: [4],
      stdio: "null",
      // A hung program fails the test (exit code 143) instead of hanging it.
      signal: AbortSignal.timeout(60_000),
    });
    assert.equal(code, 0);
    return JSON.parse(await Deno.readTextFile(out));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("runSocksify() socksifies an unmodified Deno program (loopback)", async () => {
  await using server = startTestSocksServer({ hosts: { "svc.test": "127.0.0.1" } });
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/app.ts`, APP_DENO);
    const result = await withEcho((port) =>
      socksified(
        ["deno", "run", "--no-config", "-A", `${dir}/app.ts`, String(port)],
        `socks5://127.0.0.1:${server.port}`,
      )
    );
    assert.deepEqual(result, { peer: "198.18.0.1", a: "198.18.0.1", aaaa: "100::1" });
    assert.deepEqual(server.requests.map((r) => [r.atyp, r.host]), [["name", "svc.test"]]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runSocksify() socksifies an unmodified Node program (loopback)", async () => {
  await using server = startTestSocksServer({ hosts: { "svc.test": "127.0.0.1" } });
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/app.mjs`, APP_NODE);
    const result = await withEcho((port) =>
      socksified(["node", `${dir}/app.mjs`, String(port)], `socks5://127.0.0.1:${server.port}`)
    );
    assert.deepEqual(result, { peer: "198.18.0.1", aaaa: "100::1" });
    assert.deepEqual(server.requests.map((r) => [r.atyp, r.host]), [["name", "svc.test"]]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function withHttp<T>(fn: (port: number) => Promise<T>): Promise<T> {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("hello"),
  );
  try {
    return await fn(server.addr.port);
  } finally {
    await server.shutdown();
  }
}

// CommonJS, and a write right after connect(): http.get sends its request at once.
const HTTP_GET_CJS = `
const out = process.argv[process.argv.length - 1];
const port = Number(process.argv[process.argv.length - 2]);
require("http").get("http://svc.test:" + port + "/", (res) => {
  let body = "";
  res.on("data", (chunk) => body += chunk);
  res.on("end", () => require("fs").writeFileSync(out, JSON.stringify({ body })));
}).on("error", (error) => {
  require("fs").writeFileSync(out, JSON.stringify({ error: error.code }));
  process.exit(0);
});
`;

Deno.test("runSocksify() socksifies `node -e` that writes right after connect (CommonJS)", async () => {
  await using server = startTestSocksServer({ hosts: { "svc.test": "127.0.0.1" } });
  const result = await withHttp((port) =>
    socksified(["node", "-e", HTTP_GET_CJS, String(port)], `socks5://127.0.0.1:${server.port}`)
  );
  assert.deepEqual(result, { body: "hello" });
  assert.deepEqual(server.requests.map((r) => [r.atyp, r.host]), [["name", "svc.test"]]);
});

// A CommonJS file: writes before `connect` arrive in order, and a refusal is an `error` with
// Node's code and no `connect` before it, as for a direct connection.
const NET_CJS = `
const net = require("net");
const fs = require("fs");
const [port, out] = process.argv.slice(2);
const socket = net.connect({ host: "svc.test", port: Number(port) });
socket.write("a");
socket.write("b");
socket.once("data", (data) => {
  socket.destroy();
  let connected = false;
  const refused = net.connect({ host: "refused.test", port: 80 });
  refused.write("x");
  refused.on("connect", () => connected = true);
  refused.on("error", (error) => {
    fs.writeFileSync(out, JSON.stringify({ echo: String(data), code: error.code, connected }));
    process.exit(0);
  });
});
socket.on("error", (error) => {
  fs.writeFileSync(out, JSON.stringify({ error: error.code }));
  process.exit(0);
});
`;

Deno.test("runSocksify() socksifies a CommonJS file: queued writes, Node's errors", async () => {
  await using server = startTestSocksServer({
    hosts: { "svc.test": "127.0.0.1" },
    forceReply: { "refused.test": 5 },
  });
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/app.cjs`, NET_CJS);
    const result = await withEcho((port) =>
      socksified(["node", `${dir}/app.cjs`, String(port)], `socks5://127.0.0.1:${server.port}`)
    );
    assert.deepEqual(result, { echo: "ab", code: "ECONNREFUSED", connected: false });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
