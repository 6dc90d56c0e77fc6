/**
 * The Socks Lib end to end (RFC 3089): unmodified programs on an IPv4-only host with no name
 * service reach an IPv6-only server by name, and programs on an IPv6-only host reach an
 * IPv4-only server, through dualgate on the dual-stack gateway. The names are known only to the
 * gateway's /etc/hosts, so success means the name (ATYP 3) reached the gateway; one step also
 * checks it on a logging SOCKS5 server that records the ATYP.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { createTopology, e2eTest, type HostName, NAMES, type Topology } from "../helpers/netns.ts";
import { startHttpServer } from "../helpers/http_server.ts";
import { startDualgate } from "../helpers/dualgate.ts";

const REPO = fileURLToPath(new URL("../../", import.meta.url));
const SOCKSIFY = fileURLToPath(new URL("../../client/socksify.ts", import.meta.url));
const LOGGING_SERVER = fileURLToPath(
  new URL("../helpers/test_socks_server.ts", import.meta.url),
);
const BODY = "hello through dualgate\n";

const APPS: Record<string, string> = {
  // An unmodified Deno program using Deno.connect by name.
  "connect.ts": `
const [name, port] = Deno.args;
const conn = await Deno.connect({ hostname: name, port: Number(port) });
await conn.write(new TextEncoder().encode("GET /hello.txt HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n"));
let text = "";
const buf = new Uint8Array(4096);
for (let n; (n = await conn.read(buf)) !== null;) text += new TextDecoder().decode(buf.subarray(0, n));
conn.close();
console.log(JSON.stringify({ body: text.split("\\r\\n\\r\\n")[1], peer: conn.remoteAddr.hostname }));
`,
  // An unmodified Deno program using fetch.
  "fetch.ts": `
const [name, port] = Deno.args;
const response = await fetch("http://" + name + ":" + port + "/hello.txt");
console.log(JSON.stringify({ body: await response.text() }));
`,
  // An unmodified Deno program that resolves the name itself, then connects to the address.
  "resolve.ts": `
const [name, port, type] = Deno.args;
const [address] = await Deno.resolveDns(name, type);
const host = address.includes(":") ? "[" + address + "]" : address;
const response = await fetch("http://" + host + ":" + port + "/hello.txt");
console.log(JSON.stringify({ body: await response.text(), address }));
`,
  // An unmodified Node program using http.get.
  "get.mjs": `
import http from "node:http";
const [name, port] = process.argv.slice(2);
http.get("http://" + name + ":" + port + "/hello.txt", (res) => {
  let body = "";
  const peer = res.socket.remoteAddress;
  res.on("data", (chunk) => body += chunk);
  res.on("end", () => console.log(JSON.stringify({ body, peer })));
}).on("error", (error) => { console.error(error); process.exit(1); });
`,
  // An unmodified CommonJS program that writes right after connect(), as \`node -e\` or a file.
  "get.cjs": `
const [name, port] = process.argv.slice(-2);
require("http").get("http://" + name + ":" + port + "/hello.txt", (res) => {
  let body = "";
  res.on("data", (chunk) => body += chunk);
  res.on("end", () => console.log(JSON.stringify({ body })));
}).on("error", (error) => { console.error(error); process.exit(1); });
`,
  // A program that only follows the exported ALL_PROXY (Deno's own fetch, no preload).
  "fetch_env.ts": `
const [name, port] = Deno.args;
const response = await fetch("http://" + name + ":" + port + "/hello.txt");
const proxy = Deno.env.get("ALL_PROXY").replace(/:\\d+$/, ":PORT");
console.log(JSON.stringify({ body: await response.text(), proxy }));
`,
  // Accepts TCP connections and never answers (a hung gateway).
  "silent.ts": `
const listener = Deno.listen({ hostname: "::", port: Number(Deno.args[0]) });
console.log("listening");
const held = [];
for await (const conn of listener) held.push(conn);
`,
  // Runs the program as is, in place of proxychains4 (-q -f CONF PROGRAM ARGS...).
  "no-proxychains": '#!/bin/sh\nshift 3\nexec "$@"\n',
  // The launcher, as main.ts socksify will call it.
  "socksify.ts": `
import { runSocksify } from ${JSON.stringify(new URL(`file://${SOCKSIFY}`).href)};
const sep = Deno.args.indexOf("--");
const gateways = Deno.args.slice(0, sep);
const env = Deno.env.get("ONLY_PROXYCHAINS") ? { ALL_PROXY: "", all_proxy: "" } : {};
const proxychains = Deno.env.get("SOCKSIFY_PROXYCHAINS");
Deno.exit(await runSocksify({
  gateways,
  command: Deno.args.slice(sep + 1),
  connectTimeoutMs: 5000,
  env,
  ...(proxychains ? { proxychains } : {}),
}));
`,
};

interface Case {
  readonly client: HostName;
  readonly name: string;
  readonly family: 4 | 6;
}

const CASES: readonly Case[] = [
  { client: "client4", name: NAMES.v6, family: 4 },
  { client: "client6", name: NAMES.v4, family: 6 },
];

function gatewayUrl(topo: Topology, client: HostName, port = 1080): string {
  return client === "client4"
    ? `socks5://${topo.addresses.gateway.v4}:${port}`
    : `socks5://[${topo.addresses.gateway.v6}]:${port}`;
}

async function socksify(
  topo: Topology,
  dir: string,
  client: HostName,
  gateway: string | readonly string[],
  command: readonly string[],
  env: Record<string, string> = {},
): Promise<Record<string, string>> {
  const r = await topo.run(
    client,
    Deno.execPath(),
    ["run", "--no-config", "-A", `${dir}/socksify.ts`, ...[gateway].flat(), "--", ...command],
    { cwd: dir, timeoutMs: 60_000, env: { NO_COLOR: "1", ...env } },
  );
  assert.equal(r.code, 0, `${command.join(" ")} on ${client}: ${r.stdout}\n${r.stderr}`);
  const line = r.stdout.trim().split("\n").pop() ?? "";
  return line.startsWith("{") ? JSON.parse(line) : { body: r.stdout };
}

async function startMicrosocks(topo: Topology) {
  const process = topo.spawn("gateway", "microsocks", ["-i", "::", "-p", "1080"]);
  await process.waitForTcp(topo.addresses.gateway.v4, 1080, { timeoutMs: 10_000 });
  return process;
}

e2eTest(
  "socksify: unmodified Deno, Node and native programs cross IP families by name",
  async (t) => {
    await using topo = await createTopology();
    const dir = await Deno.makeTempDir({ prefix: "dualgate-socksify-" });
    try {
      await Deno.writeTextFile(`${dir}/hello.txt`, BODY);
      for (const [file, text] of Object.entries(APPS)) {
        await Deno.writeTextFile(
          `${dir}/${file}`,
          text,
        );
      }
      await Deno.chmod(`${dir}/no-proxychains`, 0o755);
      await using _http4 = await startHttpServer(topo, "server4", { directory: dir });
      await using _http6 = await startHttpServer(topo, "server6", { directory: dir });
      // SOCKSIFY_E2E_GATEWAY=microsocks isolates the Socks Lib from the gateway when debugging.
      await using gateway = Deno.env.get("SOCKSIFY_E2E_GATEWAY") === "microsocks"
        ? await startMicrosocks(topo)
        : await startDualgate(
          topo,
          `listen: ["${topo.addresses.gateway.v4}:1080", "[${topo.addresses.gateway.v6}]:1080"]\n`,
          { dir },
        );
      const denoApp = (
        file: string,
        ...args: string[]
      ) => ["deno", "run", "--no-config", "-A", `${dir}/${file}`, ...args];

      for (const { client, name, family } of CASES) {
        const gw = gatewayUrl(topo, client);
        const fakePrefix = family === 4 ? "198.1" : "100::";
        await t.step(`${client}: Deno.connect("${name}")`, async () => {
          const out = await socksify(topo, dir, client, gw, denoApp("connect.ts", name, "8080"));
          assert.equal(out.body, BODY, gateway.stderr);
          assert.ok(out.peer?.startsWith(fakePrefix), `remoteAddr ${out.peer} is not a fake`);
        });
        await t.step(`${client}: fetch("http://${name}")`, async () => {
          const out = await socksify(topo, dir, client, gw, denoApp("fetch.ts", name, "8080"));
          assert.equal(out.body, BODY);
        });
        await t.step(
          `${client}: Deno.resolveDns answers a fake of the caller's family`,
          async () => {
            const out = await socksify(
              topo,
              dir,
              client,
              gw,
              denoApp("resolve.ts", name, "8080", family === 4 ? "A" : "AAAA"),
            );
            assert.ok(out.address?.startsWith(fakePrefix), `${out.address} is not from the range`);
            assert.equal(out.body, BODY);
          },
        );
        await t.step(`${client}: node http.get("http://${name}")`, async () => {
          const out = await socksify(topo, dir, client, gw, [
            "node",
            `${dir}/get.mjs`,
            name,
            "8080",
          ]);
          assert.equal(out.body, BODY);
          assert.ok(out.peer?.startsWith(fakePrefix), `remoteAddress ${out.peer} is not a fake`);
        });
        await t.step(`${client}: node -e 'require("http").get(...)' (CommonJS)`, async () => {
          const script = await Deno.readTextFile(`${dir}/get.cjs`);
          const out = await socksify(topo, dir, client, gw, ["node", "-e", script, name, "8080"]);
          assert.equal(out.body, BODY);
        });
        await t.step(`${client}: node get.cjs (a CommonJS file)`, async () => {
          const out = await socksify(topo, dir, client, gw, [
            "node",
            `${dir}/get.cjs`,
            name,
            "8080",
          ]);
          assert.equal(out.body, BODY);
        });
        await t.step(
          `${client}: a program following the exported ALL_PROXY (Deno fetch)`,
          async () => {
            // Through sh and no proxychains4: nothing but the exported environment is involved.
            const script = `exec "$0" run --no-config -A "$1" "$2" "$3"`;
            const out = await socksify(
              topo,
              dir,
              client,
              gw,
              ["sh", "-c", script, Deno.execPath(), `${dir}/fetch_env.ts`, name, "8080"],
              { SOCKSIFY_PROXYCHAINS: `${dir}/no-proxychains` },
            );
            assert.deepEqual(out, { body: BODY, proxy: "socks5h://127.0.0.1:PORT" });
          },
        );
        const curl = ["curl", "-sS", "--max-time", "20", `http://${name}:8080/hello.txt`];
        await t.step(`${client}: native curl with the exported ALL_PROXY`, async () => {
          assert.equal((await socksify(topo, dir, client, gw, curl)).body, BODY);
        });
        await t.step(`${client}: native curl through proxychains4 alone`, async () => {
          // ALL_PROXY emptied so that proxychains4, not curl's own SOCKS support, does the work.
          const out = await socksify(topo, dir, client, gw, curl, { ONLY_PROXYCHAINS: "1" });
          assert.equal(out.body, BODY);
        });
      }

      await t.step("a silent first gateway is skipped after the negotiation bound", async () => {
        await using silent = topo.spawn("gateway", Deno.execPath(), [
          "run",
          "--no-config",
          "-A",
          `${dir}/silent.ts`,
          "1082",
        ]);
        await silent.waitForTcp(topo.addresses.gateway.v4, 1082, { timeoutMs: 30_000 });
        const { client, name } = CASES[0]!;
        const gateways = [gatewayUrl(topo, client, 1082), gatewayUrl(topo, client)];
        const node = await socksify(topo, dir, client, gateways, [
          "node",
          `${dir}/get.cjs`,
          name,
          "8080",
        ]);
        assert.equal(node.body, BODY);
        const curl = ["curl", "-sS", "--max-time", "20", `http://${name}:8080/hello.txt`];
        const out = await socksify(topo, dir, client, gateways, curl, {
          SOCKSIFY_PROXYCHAINS: `${dir}/no-proxychains`,
        });
        assert.equal(out.body, BODY);
      });

      await t.step("the name, not an address, reaches the gateway", async () => {
        const hosts = [
          `${NAMES.v4}=${topo.addresses.server4.v4}`,
          `${NAMES.v6}=${topo.addresses.server6.v6}`,
        ];
        await using logging = topo.spawn("gateway", Deno.execPath(), [
          "run",
          "--no-config",
          "-A",
          LOGGING_SERVER,
          "1081",
          ...hosts,
        ], { cwd: REPO });
        await logging.waitForTcp(topo.addresses.gateway.v4, 1081, { timeoutMs: 30_000 });
        for (const { client, name } of CASES) {
          const out = await socksify(
            topo,
            dir,
            client,
            gatewayUrl(topo, client, 1081),
            denoApp("connect.ts", name, "8080"),
          );
          assert.equal(out.body, BODY);
        }
        const requests = logging.stdout.trim().split("\n").filter((l) => l.startsWith("{"))
          .map((l) => JSON.parse(l));
        assert.deepEqual(
          requests.map((r) => [r.atyp, r.host]),
          [["name", NAMES.v6], ["name", NAMES.v4]],
        );
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  { programs: ["curl", "python3", "node", "proxychains4"] },
);
