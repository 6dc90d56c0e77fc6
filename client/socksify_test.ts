import assert from "node:assert/strict";
import { parseGatewayUrl } from "./gateway_url.ts";
import { detectLaunchKind, proxychainsConfig, runSocksify } from "./socksify.ts";
import { startTestSocksServer } from "../tests/helpers/test_socks_server.ts";
import { buildPreload, PRELOAD_BUNDLES } from "./_build_node_preload.ts";

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

for (const bundle of PRELOAD_BUNDLES) {
  Deno.test(`${bundle.output} is up to date with its sources`, async () => {
    const committed = await Deno.readTextFile(new URL(`./${bundle.output}`, import.meta.url));
    assert.equal(
      committed,
      await buildPreload(bundle),
      "run: deno task bundle",
    );
  });
}

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

async function socksified(
  command: string[],
  gateway: string,
  options: { readonly proxychains?: string } = {},
): Promise<Record<string, string>> {
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
      ...options,
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

const APP_FETCH_ENV = `
const [port, out] = Deno.args;
const proxy = Deno.env.get("ALL_PROXY");
const response = await fetch("http://svc.test:" + port + "/"); // Deno follows ALL_PROXY
await Deno.writeTextFile(out, JSON.stringify({ proxy: proxy.replace(/:\\d+$/, ":PORT"), body: await response.text() }));
`;

/**
 * A Deno program run through sh (so the Deno preload, which sets its own ALL_PROXY, is not
 * involved): any program that follows the exported environment.
 */
function envOnly(app: string, port: number): string[] {
  const script = `exec "$0" run --no-config -A "$1" "$2" "$3"`;
  return ["sh", "-c", script, Deno.execPath(), app, String(port)];
}

/** A stand-in for proxychains4 that runs the program as is (`-q -f CONF PROGRAM ARGS...`). */
function noProxychains(dir: string): string {
  const path = `${dir}/no-proxychains`;
  Deno.writeTextFileSync(path, '#!/bin/sh\nshift 3\nexec "$@"\n');
  Deno.chmodSync(path, 0o755);
  return path;
}

Deno.test("runSocksify() exports ALL_PROXY as a loopback front, also for an IPv6 gateway", async () => {
  // Deno's own SOCKS client cannot use socks5h://[::1]:PORT; the exported front it can.
  await using server = startTestSocksServer({
    hostname: "::1",
    hosts: { "svc.test": "127.0.0.1" },
  });
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/fetch.ts`, APP_FETCH_ENV);
    const result = await withHttp((port) =>
      socksified(
        envOnly(`${dir}/fetch.ts`, port),
        `socks5://[::1]:${server.port}`,
        { proxychains: noProxychains(dir) },
      )
    );
    assert.deepEqual(result, { proxy: "socks5h://127.0.0.1:PORT", body: "hello" });
    assert.deepEqual(server.requests.map((r) => [r.atyp, r.host]), [["name", "svc.test"]]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the loopback front asks for its own credentials when the gateway has some", async () => {
  await using server = startTestSocksServer({
    credentials: { username: "alice", password: "s3cret" },
    hosts: { "svc.test": "127.0.0.1" },
  });
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/fetch.ts`, APP_FETCH_ENV);
    const result = await withHttp((port) =>
      socksified(
        envOnly(`${dir}/fetch.ts`, port),
        `socks5://alice:s3cret@127.0.0.1:${server.port}`,
        { proxychains: noProxychains(dir) },
      )
    );
    assert.match(result.proxy!, /^socks5h:\/\/socksify:[0-9a-f-]{36}@127\.0\.0\.1:PORT$/);
    assert.equal(result.body, "hello");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runSocksify() needs no source tree: a bundled launcher elsewhere socksifies Deno and Node", async () => {
  // Like a `deno compile` executable: the launcher is one file in a directory with no client/
  // modules next to it, so every preload must come from inside the program.
  await using server = startTestSocksServer({ hosts: { "svc.test": "127.0.0.1" } });
  const dir = await Deno.makeTempDir();
  try {
    const socksify = new URL("./socksify.ts", import.meta.url).href;
    await Deno.writeTextFile(
      `${dir}/entry.ts`,
      `import { runSocksify } from ${JSON.stringify(socksify)};\n` +
        `const [gateway, ...command] = Deno.args;\n` +
        `Deno.exit(await runSocksify({ gateways: [gateway], command, nativeFamilies: [4] }));\n`,
    );
    await Deno.mkdir(`${dir}/bin`);
    const bundled = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--quiet", "--platform=deno", `${dir}/entry.ts`, "-o", `${dir}/bin/sx.js`],
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.ok(bundled.success, new TextDecoder().decode(bundled.stderr));
    await Deno.remove(`${dir}/entry.ts`);
    assert.deepEqual([...Deno.readDirSync(`${dir}/bin`)].map((e) => e.name), ["sx.js"]);
    await Deno.writeTextFile(`${dir}/app.ts`, APP_DENO);
    await Deno.writeTextFile(`${dir}/app.cjs`, HTTP_GET_CJS);
    const run = async (command: string[]) => {
      const out = `${dir}/out.json`;
      const r = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--no-config", "-A", `${dir}/bin/sx.js`, ...command, out],
        cwd: dir,
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(60_000),
      }).output();
      assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
      return JSON.parse(await Deno.readTextFile(out));
    };
    const gateway = `socks5://127.0.0.1:${server.port}`;
    const deno = await withEcho((port) =>
      run([gateway, "deno", "run", "--no-config", "-A", `${dir}/app.ts`, String(port)])
    );
    assert.deepEqual(deno, { peer: "198.18.0.1", a: "198.18.0.1", aaaa: "100::1" });
    const node = await withHttp((port) => run([gateway, "node", `${dir}/app.cjs`, String(port)]));
    assert.deepEqual(node, { body: "hello" });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
