/**
 * RFC 3089 CONNECT end to end: dualgate (`main.ts serve`) runs on the dual-stack gateway host,
 * real curl clients on IPv4-only and IPv6-only hosts fetch 4 MiB files by name from IPv4-only
 * and IPv6-only servers. The names are known only to the gateway's /etc/hosts, so `socks5h`
 * (name sent as ATYP 3) is the only way through. Types, as in RFC 3089 section 2:
 * A v4 -> v4, B v4 -> v6, C v6 -> v4, D v6 -> v6.
 */
import assert from "node:assert/strict";
import { startDualgate } from "../helpers/dualgate.ts";
import { createTopology, e2eTest, type HostName, NAMES, type Topology } from "../helpers/netns.ts";
import {
  createRandomFile,
  type RandomFile,
  sha256File,
  startHttpServer,
} from "../helpers/http_server.ts";

const MIB = 1024 * 1024;
const PROGRAMS = ["curl", "python3", "bash"];

const TYPES = [
  { type: "A", client: "client4", name: NAMES.v4 },
  { type: "B", client: "client4", name: NAMES.v6 },
  { type: "C", client: "client6", name: NAMES.v4 },
  { type: "D", client: "client6", name: NAMES.v6 },
] as const;

/** The gateway address each client talks to, as it appears in a proxy URL. */
function proxyHost(topo: Topology, client: HostName): string {
  return client === "client4" ? topo.addresses.gateway.v4 : `[${topo.addresses.gateway.v6}]`;
}

/** Downloads `file` from `name` through the gateway; returns curl's exit code and stderr. */
async function fetchThrough(
  topo: Topology,
  client: HostName,
  proxy: string,
  name: string,
  file: RandomFile,
  out: string,
): Promise<{ code: number; stderr: string }> {
  const r = await topo.run(client, "curl", [
    "-sS",
    "--fail",
    "--connect-timeout",
    "5",
    "--max-time",
    "60",
    "-x",
    proxy,
    `http://${name}:8080/${file.name}`,
    "-o",
    out,
  ], { timeoutMs: 70_000 });
  return { code: r.code, stderr: r.stderr };
}

async function runTypes(t: Deno.TestContext, withAuth: boolean): Promise<void> {
  await using topo = await createTopology();
  const dir = await Deno.makeTempDir({ prefix: "dualgate-connect-" });
  try {
    const file = await createRandomFile(dir, { name: "file.bin", size: 4 * MIB });
    await using _http4 = await startHttpServer(topo, "server4", { directory: dir });
    await using _http6 = await startHttpServer(topo, "server6", { directory: dir });

    await using gateway = await startDualgate(
      topo,
      [
        `listen: ["${topo.addresses.gateway.v4}:1080", "[${topo.addresses.gateway.v6}]:1080"]`,
        ...(withAuth ? ["auth:", "  users:", "    - { name: alice, password: change-me }"] : []),
        "",
      ].join("\n"),
      { dir },
    );

    const credentials = withAuth ? "alice:change-me@" : "";
    for (const { type, client, name } of TYPES) {
      await t.step(`type ${type}: ${client} fetches ${name} by name`, async () => {
        const out = `${dir}/type-${type}.bin`;
        const proxy = `socks5h://${credentials}${proxyHost(topo, client)}:1080`;
        const r = await fetchThrough(topo, client, proxy, name, file, out);
        assert.equal(r.code, 0, `curl via ${proxy}: ${r.stderr}\ndualgate: ${gateway.stderr}`);
        assert.equal(await sha256File(out), file.sha256);
      });
    }

    if (withAuth) {
      for (const client of ["client4", "client6"] as const) {
        await t.step(`${client} without or with wrong credentials is refused`, async () => {
          for (const creds of ["", "alice:wrong@", "mallory:change-me@"]) {
            const proxy = `socks5h://${creds}${proxyHost(topo, client)}:1080`;
            const out = `${dir}/refused-${client}.bin`;
            const r = await fetchThrough(topo, client, proxy, NAMES.v6, file, out);
            assert.notEqual(r.code, 0, `${proxy} was let through`);
          }
        });
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

e2eTest(
  "`main.ts serve` relays RFC 3089 types A-D by name without authentication",
  (t) => runTypes(t, false),
  { programs: PROGRAMS },
);

e2eTest(
  "`main.ts serve` relays RFC 3089 types A-D by name with RFC 1929 user/password",
  (t) => runTypes(t, true),
  { programs: PROGRAMS },
);
