/**
 * The client matrix: real, unmodified clients from Debian drive dualgate (`main.ts serve`) on
 * the dual-stack gateway in both cross-family directions, each by a name only the gateway can
 * resolve, and each result is checked by SHA-256 against a random payload of a few hundred KiB:
 *
 * - client4 (IPv4 only) -> `v6.dualgate.example` (server6, IPv6 only): RFC 3089 type B;
 * - client6 (IPv6 only) -> `v4.dualgate.example` (server4, IPv4 only): type C.
 *
 * Clients: curl (`--socks5-hostname`, `-x socks5h://`), Python requests with PySocks
 * (`socks5h://`, Debian's /usr/bin/python3), ssh and scp through `ncat --proxy-type socks5` and
 * `nc.openbsd -X 5` as ProxyCommand (against a throwaway sshd), git clone over dumb HTTP with
 * `http.proxy=socks5h://`, headless Chromium with `--proxy-server=socks5://` (it sends names to
 * SOCKS5 proxies; the page hashes the payload itself), torsocks (IPv4 client only, through Tor's
 * RESOLVE command; it takes IPv4 answers only: it reaches the IPv4 server's name with its real
 * address and the IPv6-only name through dualgate's IPv4 stand-in address, which CONNECT maps
 * back to the name), and from npm, run by Node: socks-proxy-agent
 * (`socks5h://`) and undici's Socks5ProxyAgent (`socks5://`), pinned in
 * `npm_clients/package-lock.json` and installed with `npm ci` into a temporary directory. Neither
 * Node library accepts an IPv6 literal in the proxy URL (they look up `[2001:db8:1::1]` as a
 * name), so the IPv6-only client names the gateway in its own /etc/hosts; a step keeps that
 * gotcha checked, as another does `socks5://` (no h) resolving on the client. One topology and one
 * gateway serve the whole matrix; every recipe here is the one README's "Client cookbook" prints.
 *
 * @module
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { startDualgate } from "../helpers/dualgate.ts";
import { createDumbHttpRepo, GIT_ENV } from "../helpers/dumb_git.ts";
import { digestPage, readDigestPage } from "../helpers/digest_page.ts";
import {
  createRandomFile,
  type RandomFile,
  sha256File,
  startHttpServer,
} from "../helpers/http_server.ts";
import {
  ADDRESSES,
  createTopology,
  e2eTest,
  NAMES,
  type RunResult,
  type SpawnedProcess,
  type Topology,
} from "../helpers/netns.ts";
import { sshClientOptions, startSshd } from "../helpers/sshd.ts";

const PROGRAMS = [
  "curl",
  "node",
  "npm",
  "ssh",
  "scp",
  "ssh-keygen",
  "sshd",
  "ncat",
  "nc.openbsd",
  "git",
  "torsocks",
  "chromium",
];
/** Debian's Python, where python3-requests and python3-socks live (PATH may hold another). */
const DEBIAN_PYTHON = "/usr/bin/python3";
const PAYLOAD_SIZE = 384 * 1024;
const HTTP_PORT = 8080;
const SSH_PORT = 2222;
const SOCKS_PORT = 1080;
const PAGE_TOKEN = "dualgate-client-matrix";
const NPM_CLIENTS = fileURLToPath(new URL("./npm_clients/", import.meta.url));
/** Node library and the scheme it sends names with, for the IPv6-literal gotcha. */
const LITERAL_PROXY_CASES = [["socks-proxy-agent", "socks5h"], ["undici", "socks5"]] as const;
/** The gateway's IPv6 address by name, in client6's /etc/hosts only: see the module doc. */
const GATEWAY6_NAME = "gw6.dualgate.example";

/** One cross-family direction of the matrix. */
interface Direction {
  readonly client: "client4" | "client6";
  readonly server: "server4" | "server6";
  /** The server's name, known only to the gateway. */
  readonly name: string;
  /** The gateway as `HOST:PORT` in the client's family (IPv6 bracketed), for every client. */
  readonly proxy: string;
  /** The same for the Node libraries, which need a name instead of an IPv6 literal. */
  readonly nodeProxy: string;
}

function directions(topo: Topology): readonly Direction[] {
  return [
    {
      client: "client4",
      server: "server6",
      name: NAMES.v6,
      proxy: `${topo.addresses.gateway.v4}:${SOCKS_PORT}`,
      nodeProxy: `${topo.addresses.gateway.v4}:${SOCKS_PORT}`,
    },
    {
      client: "client6",
      server: "server4",
      name: NAMES.v4,
      proxy: `[${topo.addresses.gateway.v6}]:${SOCKS_PORT}`,
      nodeProxy: `${GATEWAY6_NAME}:${SOCKS_PORT}`,
    },
  ];
}

/** requests with PySocks: `socks5h://` sends the name to the proxy (`socks5://` resolves it). */
const REQUESTS_SCRIPT = `
import sys
import requests

proxy, url, out = sys.argv[1:4]
response = requests.get(url, proxies={"http": proxy, "https": proxy}, timeout=30)
response.raise_for_status()
with open(out, "wb") as f:
    f.write(response.content)
`;

/**
 * Installs the pinned npm clients (`npm ci`) into `dir`, on this host: the namespaces have no
 * route to a registry.
 */
async function installNpmClients(dir: string): Promise<void> {
  for (const file of ["package.json", "package-lock.json", "client.mjs"]) {
    await Deno.copyFile(`${NPM_CLIENTS}${file}`, `${dir}/${file}`);
  }
  const out = await new Deno.Command("npm", {
    args: ["ci", "--no-audit", "--no-fund", "--ignore-scripts"],
    cwd: dir,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(180_000),
  }).output();
  assert.ok(out.success, `npm ci of the npm clients: ${new TextDecoder().decode(out.stderr)}`);
}

/** Waits (at most 5 s) for a line matching `pattern` in the gateway's log; asserts it came. */
async function logged(gateway: SpawnedProcess, pattern: RegExp): Promise<void> {
  for (let i = 0; i < 100 && !pattern.test(gateway.stderr); i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.match(gateway.stderr, pattern);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Context for a failed client: its output and the gateway's log, both trimmed. */
function why(r: RunResult, gateway: SpawnedProcess): string {
  return `exit ${r.code}${r.timedOut ? " (timed out)" : ""}\nstdout: ${
    r.stdout.slice(-2000)
  }\nstderr: ${r.stderr.slice(-3000)}\n--- dualgate stderr:\n${gateway.stderr.slice(-3000)}`;
}

e2eTest(
  "client matrix: curl, requests, ssh/scp (ncat, nc.openbsd), git, Chromium, Node libraries and torsocks cross families by name",
  async (t) => {
    const python = await new Deno.Command(DEBIAN_PYTHON, {
      args: ["-c", "import requests, socks"],
      stdout: "null",
      stderr: "piped",
    }).output().catch((error) => ({ success: false, stderr: new TextEncoder().encode(error) }));
    assert.ok(
      python.success,
      `Cannot run the matrix: ${DEBIAN_PYTHON} lacks requests/PySocks (Debian python3-requests ` +
        `python3-socks): ${new TextDecoder().decode(python.stderr)}`,
    );

    await using topo = await createTopology({
      hosts: { client6: { [GATEWAY6_NAME]: [ADDRESSES.gateway.v6] } },
    });
    const dir = await Deno.makeTempDir({ prefix: "dualgate-clients-" });
    try {
      const npmClients = `${dir}/npm`;
      await Deno.mkdir(npmClients);
      await installNpmClients(npmClients);
      const www = `${dir}/www`;
      await Deno.mkdir(www);
      const payload = await createRandomFile(www, { name: "payload.bin", size: PAYLOAD_SIZE });
      await Deno.writeTextFile(`${www}/page.html`, digestPage(payload.name, PAGE_TOKEN));
      await createDumbHttpRepo(www, [payload.path]);
      await Deno.writeTextFile(`${dir}/requests_get.py`, REQUESTS_SCRIPT);
      const home = `${dir}/home`;
      await Deno.mkdir(home);
      // Clients write nothing into the real home directory (Chromium, ssh, git all look there).
      const env = { HOME: home, XDG_CONFIG_HOME: `${home}/.config`, ...GIT_ENV };

      await using _http4 = await startHttpServer(topo, "server4", { directory: www });
      await using _http6 = await startHttpServer(topo, "server6", { directory: www });
      await using sshd4 = await startSshd(topo, "server4", {
        dir,
        address: topo.addresses.server4.v4,
        port: SSH_PORT,
      });
      await using sshd6 = await startSshd(topo, "server6", {
        dir,
        address: topo.addresses.server6.v6,
        port: SSH_PORT,
      });
      await using gateway = await startDualgate(
        topo,
        `listen: ["${topo.addresses.gateway.v4}:${SOCKS_PORT}", "[${topo.addresses.gateway.v6}]:${SOCKS_PORT}"]\n`,
        { dir },
      );

      /** Runs a client in its host; asserts exit 0 and that `out` has the payload's digest. */
      const fetches = async (
        client: Direction["client"],
        cmd: string,
        args: readonly string[],
        out: string,
        file: RandomFile = payload,
        stdin?: Uint8Array,
      ) => {
        const r = await topo.run(client, cmd, args, {
          cwd: dir,
          env,
          timeoutMs: 60_000,
          ...(stdin === undefined ? {} : { stdin }),
        });
        assert.equal(r.code, 0, `${cmd} ${args.join(" ")}\n${why(r, gateway)}`);
        assert.equal(await sha256File(out), file.sha256, `${cmd}: ${out} differs from the payload`);
      };

      for (const d of directions(topo)) {
        const url = `http://${d.name}:${HTTP_PORT}`;
        const tag = `${d.client}->${d.server}`;
        const out = (step: string) => `${dir}/${tag}-${step}.bin`;
        const sshd = d.server === "server4" ? sshd4 : sshd6;
        const ssh = sshClientOptions(sshd.identity);

        await t.step(`${d.client}: curl --socks5-hostname ${d.proxy} ${url}`, async () => {
          await fetches(d.client, "curl", [
            "-sS",
            "--fail",
            "--max-time",
            "30",
            "--socks5-hostname",
            d.proxy,
            `${url}/${payload.name}`,
            "-o",
            out("curl-hostname"),
          ], out("curl-hostname"));
        });

        await t.step(`${d.client}: curl -x socks5h://${d.proxy} ${url}`, async () => {
          await fetches(d.client, "curl", [
            "-sS",
            "--fail",
            "--max-time",
            "30",
            "-x",
            `socks5h://${d.proxy}`,
            `${url}/${payload.name}`,
            "-o",
            out("curl-socks5h"),
          ], out("curl-socks5h"));
        });

        await t.step(`${d.client}: Python requests + PySocks, socks5h://${d.proxy}`, async () => {
          await fetches(d.client, DEBIAN_PYTHON, [
            `${dir}/requests_get.py`,
            `socks5h://${d.proxy}`,
            `${url}/${payload.name}`,
            out("requests"),
          ], out("requests"));
        });

        await t.step(
          `${d.client}: socks5:// (no h) resolves on the client and fails: curl, requests, git, socks-proxy-agent`,
          async () => {
            // The client has no name service: a client that resolves locally cannot even start.
            const tries: [string, string[]][] = [
              ["curl", ["-sS", "--max-time", "30", "-x", `socks5://${d.proxy}`, `${url}/`]],
              [DEBIAN_PYTHON, [
                `${dir}/requests_get.py`,
                `socks5://${d.proxy}`,
                `${url}/${payload.name}`,
                out("requests-socks5"),
              ]],
              ["git", [
                "-c",
                `http.proxy=socks5://${d.proxy}`,
                "clone",
                "-q",
                `${url}/repo.git`,
                `${dir}/${tag}-socks5-clone`,
              ]],
              ["node", [
                "--no-warnings",
                `${npmClients}/client.mjs`,
                "socks-proxy-agent",
                `socks5://${d.nodeProxy}`,
                `${url}/${payload.name}`,
                out("socks-proxy-agent-socks5"),
              ]],
            ];
            for (const [cmd, args] of tries) {
              const r = await topo.run(d.client, cmd, args, { cwd: dir, env, timeoutMs: 60_000 });
              assert.notEqual(r.code, 0, `${cmd} with socks5:// got through: ${r.stderr}`);
              assert.match(
                r.stderr,
                /resolve|name resolution|EAI_AGAIN|ENOTFOUND/i,
                `${cmd} failed otherwise: ${r.stderr}`,
              );
            }
          },
        );

        const proxyCommands = {
          ncat: `ncat --proxy-type socks5 --proxy '${d.proxy}' %h %p`,
          "nc.openbsd": `nc.openbsd -X 5 -x '${d.proxy}' %h %p`,
        };
        for (const [via, proxyCommand] of Object.entries(proxyCommands)) {
          const proxied = [...ssh, "-o", `ProxyCommand=${proxyCommand}`];
          await t.step(`${d.client}: scp from ${d.name} through ${via}`, async () => {
            await fetches(d.client, "scp", [
              ...proxied,
              "-P",
              String(sshd.port),
              `${sshd.user}@${d.name}:${payload.path}`,
              out(`scp-${via}`),
            ], out(`scp-${via}`));
          });
          await t.step(`${d.client}: ssh to ${d.name} through ${via} uploads`, async () => {
            // The server host shares this file system: what sshd wrote is checked right here.
            const upload = out(`ssh-upload-${via}`);
            await fetches(
              d.client,
              "ssh",
              [...proxied, "-p", String(sshd.port), `${sshd.user}@${d.name}`, `cat > '${upload}'`],
              upload,
              payload,
              await Deno.readFile(payload.path),
            );
          });
        }

        await t.step(`${d.client}: git clone ${url}/repo.git, http.proxy=socks5h://`, async () => {
          const clone = `${dir}/${tag}-clone`;
          await fetches(d.client, "git", [
            "-c",
            `http.proxy=socks5h://${d.proxy}`,
            "clone",
            "-q",
            `${url}/repo.git`,
            clone,
          ], `${clone}/${payload.name}`);
        });

        await t.step(`${d.client}: chromium --proxy-server=socks5://${d.proxy}`, async () => {
          const profile = await Deno.makeTempDir({ dir, prefix: "chromium-" });
          const r = await topo.run(d.client, "chromium", [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            `--user-data-dir=${profile}`,
            `--proxy-server=socks5://${d.proxy}`,
            "--dump-dom",
            `${url}/page.html`,
          ], { cwd: dir, env, timeoutMs: 90_000 });
          assert.equal(r.code, 0, `chromium\n${why(r, gateway)}`);
          const page = readDigestPage(r.stdout);
          assert.equal(page.token, PAGE_TOKEN, `the page did not arrive\n${why(r, gateway)}`);
          assert.deepEqual(
            { size: page.size, sha256: page.sha256 },
            { size: payload.size, sha256: payload.sha256 },
            `the page's script did not hash the payload\n${why(r, gateway)}`,
          );
        });

        const node = (library: string, proxy: string, step: string) => [
          "--no-warnings",
          `${npmClients}/client.mjs`,
          library,
          proxy,
          `${url}/${payload.name}`,
          out(step),
        ];
        await t.step(
          `${d.client}: Node, socks-proxy-agent 10.1.0, socks5h://${d.nodeProxy}`,
          async () => {
            await fetches(
              d.client,
              "node",
              node("socks-proxy-agent", `socks5h://${d.nodeProxy}`, "socks-proxy-agent"),
              out("socks-proxy-agent"),
            );
          },
        );
        await t.step(
          `${d.client}: Node, undici 7.30.2 Socks5ProxyAgent, socks5://${d.nodeProxy}`,
          async () => {
            await fetches(
              d.client,
              "node",
              node("undici", `socks5://${d.nodeProxy}`, "undici"),
              out("undici"),
            );
          },
        );
        if (d.client === "client6") {
          await t.step(
            `${d.client}: Node libraries take [${topo.addresses.gateway.v6}] in a proxy URL for a name`,
            async () => {
              for (const [library, scheme] of LITERAL_PROXY_CASES) {
                const r = await topo.run(
                  d.client,
                  "node",
                  node(library, `${scheme}://${d.proxy}`, `literal-${library}`),
                  { cwd: dir, env, timeoutMs: 60_000 },
                );
                assert.notEqual(r.code, 0, `${library} now accepts an IPv6 literal proxy URL`);
                assert.match(r.stderr, /ENOTFOUND \[2001:db8:1::1\]/, `${library}: ${r.stderr}`);
              }
            },
          );
        }

        if (d.client === "client4") {
          // torsocks only on the IPv4 client: on an IPv6-only host it cannot reach the gateway.
          const conf = `${dir}/torsocks.conf`;
          await Deno.writeTextFile(
            conf,
            `TorAddress ${topo.addresses.gateway.v4}\nTorPort ${SOCKS_PORT}\n`,
          );
          const torsocksCurl = (name: string, file: string) =>
            topo.run(d.client, "torsocks", [
              "curl",
              "-sS",
              "--fail",
              "--max-time",
              "30",
              `http://${name}:${HTTP_PORT}/${payload.name}`,
              "-o",
              file,
            ], { cwd: dir, env: { ...env, TORSOCKS_CONF_FILE: conf }, timeoutMs: 60_000 });

          await t.step(`${d.client}: torsocks curl http://${NAMES.v4} (Tor RESOLVE)`, async () => {
            const r = await torsocksCurl(NAMES.v4, out("torsocks"));
            assert.equal(r.code, 0, `torsocks curl\n${why(r, gateway)}`);
            assert.equal(await sha256File(out("torsocks")), payload.sha256);
          });

          await t.step(
            `${d.client}: torsocks curl http://${d.name} (RESOLVE answers an IPv4 stand-in)`,
            async () => {
              // torsocks 2.4.0 takes 4-byte RESOLVE answers and 4-byte CONNECT BND addresses
              // only: dualgate answers the IPv6-only name with a stand-in of 198.18.0.0/15, maps
              // the CONNECT to it back to the name, and replies with its own IPv4 address.
              const r = await torsocksCurl(d.name, out("torsocks-v6"));
              assert.equal(r.code, 0, `torsocks curl\n${why(r, gateway)}`);
              assert.equal(await sha256File(out("torsocks-v6")), payload.sha256);
              const standIn = gateway.stderr.match(
                new RegExp(
                  `resolved ${escapeRegExp(topo.addresses.client4.v4)}:\\d+ user=- resolve ` +
                    `${escapeRegExp(d.name)}:\\d+ via (198\\.1[89]\\.\\d+\\.\\d+):0 .*stand-in`,
                ),
              );
              assert.ok(standIn, `no stand-in answer logged\n${why(r, gateway)}`);
              // The relay's record is written once both ends have closed: wait for it (bounded).
              await logged(
                gateway,
                new RegExp(
                  `relayed ${escapeRegExp(topo.addresses.client4.v4)}:\\d+ user=- connect ` +
                    `${escapeRegExp(d.name)}:${HTTP_PORT} via \\[${
                      escapeRegExp(topo.addresses.server6.v6)
                    }\\]:${HTTP_PORT} .*stand-in ${escapeRegExp(standIn[1]!)}, `,
                ),
              );
            },
          );
        }
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  { programs: PROGRAMS },
);
