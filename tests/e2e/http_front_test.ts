/**
 * The HTTP proxy front door end to end: dualgate (`main.ts serve`) on the dual-stack gateway
 * host with `protocol: http` and `protocol: mixed` listeners; real programs on the IPv6-only
 * host fetch by name from the IPv4-only server, and those on the IPv4-only host from the
 * IPv6-only server (RFC 3089 types C and B). The names are known only to the gateway, so the
 * proxy resolves them. Every download is checked by digest: curl (`-x http://`, absolute-form,
 * and `-p`, CONNECT), wget, python urllib, git clone over dumb HTTP, pip download from a local
 * simple index, and apt-get update + download from a local flat repository. A remote client's
 * CONNECT to the gateway's own loopback is refused with 403 (host-local protection).
 */
import assert from "node:assert/strict";
import { createDumbHttpRepo, GIT_ENV } from "../helpers/dumb_git.ts";
import { startDualgate } from "../helpers/dualgate.ts";
import { createTopology, e2eTest, type HostName, NAMES, type Topology } from "../helpers/netns.ts";
import { createRandomFile, sha256File, startHttpServer } from "../helpers/http_server.ts";
import { aptOptions, createAptRepo, createPipIndex } from "../helpers/package_repos.ts";

const PROGRAMS = [
  "curl",
  "wget",
  "python3",
  "git",
  "apt-get",
  "dpkg-deb",
  "dpkg-scanpackages",
  "apt-ftparchive",
];

const DIRECTIONS = [
  { label: "IPv6-only host to IPv4-only server", client: "client6", name: NAMES.v4 },
  { label: "IPv4-only host to IPv6-only server", client: "client4", name: NAMES.v6 },
] as const;

function proxyUrl(topo: Topology, client: HostName, port: number): string {
  const host = client === "client4" ? topo.addresses.gateway.v4 : `[${topo.addresses.gateway.v6}]`;
  return `http://${host}:${port}`;
}

const URLLIB = `
import hashlib, sys, urllib.request
proxy, url, out = sys.argv[1:4]
opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy}))
with opener.open(url, timeout=30) as r, open(out, "wb") as f:
    while True:
        piece = r.read(65536)
        if not piece:
            break
        f.write(piece)
`;

e2eTest(
  "HTTP proxy front: curl, wget, urllib, git, pip and apt-get by name across families",
  async (t) => {
    await using topo = await createTopology();
    const dir = await Deno.makeTempDir({ prefix: "dualgate-http-front-" });
    try {
      const served = `${dir}/www`;
      await Deno.mkdir(served);
      const file = await createRandomFile(served, { name: "file.bin", size: 2 * 1024 * 1024 });
      await createDumbHttpRepo(served, [file.path]);
      const wheel = await createPipIndex(served);
      const deb = await createAptRepo(served);
      await using _http4 = await startHttpServer(topo, "server4", { directory: served });
      await using _http6 = await startHttpServer(topo, "server6", { directory: served });
      const gw = topo.addresses.gateway;
      await using gateway = await startDualgate(
        topo,
        [
          "listen:",
          `  - { address: "${gw.v4}:3128", protocol: http }`,
          `  - { address: "[${gw.v6}]:3128", protocol: http }`,
          `  - { address: "${gw.v4}:1080", protocol: mixed }`,
          `  - { address: "[${gw.v6}]:1080", protocol: mixed }`,
          "",
        ].join("\n"),
        { dir, waitFor: [[gw.v4, 3128], [gw.v6, 3128], [gw.v4, 1080], [gw.v6, 1080]] },
      );
      const why = (r: { stderr: string; stdout: string }) =>
        `${r.stdout}\n${r.stderr}\ndualgate: ${gateway.stderr.slice(-3000)}`;

      for (const { label, client, name } of DIRECTIONS) {
        const proxy = proxyUrl(topo, client, 3128);
        const base = `http://${name}:8080`;
        const out = `${dir}/${client}`;
        await Deno.mkdir(out);

        await t.step(`${label}: curl -x http:// (absolute-form) and -p (CONNECT)`, async () => {
          for (const [flag, suffix] of [[[], "abs"], [["-p"], "connect"]] as const) {
            const r = await topo.run(client, "curl", [
              "-sS",
              "--fail",
              "--max-time",
              "60",
              ...flag,
              "-x",
              proxy,
              `${base}/file.bin`,
              "-o",
              `${out}/curl-${suffix}.bin`,
            ], { timeoutMs: 70_000 });
            assert.equal(r.code, 0, why(r));
            assert.equal(await sha256File(`${out}/curl-${suffix}.bin`), file.sha256);
          }
          // The same through the mixed listener, which also serves SOCKS5.
          for (
            const viaProxy of [
              proxyUrl(topo, client, 1080),
              proxyUrl(topo, client, 1080).replace("http:", "socks5h:"),
            ]
          ) {
            const r = await topo.run(client, "curl", [
              "-sS",
              "--fail",
              "--max-time",
              "60",
              "-x",
              viaProxy,
              `${base}/file.bin`,
              "-o",
              `${out}/curl-mixed.bin`,
            ], { timeoutMs: 70_000 });
            assert.equal(r.code, 0, why(r));
            assert.equal(await sha256File(`${out}/curl-mixed.bin`), file.sha256);
          }
        });

        await t.step(`${label}: wget`, async () => {
          const r = await topo.run(client, "wget", [
            "-q",
            "-T",
            "30",
            "-e",
            "use_proxy=on",
            "-e",
            `http_proxy=${proxy}`,
            "-O",
            `${out}/wget.bin`,
            `${base}/file.bin`,
          ], { timeoutMs: 70_000 });
          assert.equal(r.code, 0, why(r));
          assert.equal(await sha256File(`${out}/wget.bin`), file.sha256);
        });

        await t.step(`${label}: python3 urllib`, async () => {
          const r = await topo.run(client, "python3", [
            "-c",
            URLLIB,
            proxy,
            `${base}/file.bin`,
            `${out}/urllib.bin`,
          ], { timeoutMs: 70_000 });
          assert.equal(r.code, 0, why(r));
          assert.equal(await sha256File(`${out}/urllib.bin`), file.sha256);
        });

        await t.step(`${label}: git clone over http`, async () => {
          const r = await topo.run(client, "git", [
            "-c",
            `http.proxy=${proxy}`,
            "clone",
            "-q",
            `${base}/repo.git`,
            `${out}/clone`,
          ], { timeoutMs: 70_000, env: GIT_ENV });
          assert.equal(r.code, 0, why(r));
          assert.equal(await sha256File(`${out}/clone/file.bin`), file.sha256);
        });

        await t.step(`${label}: pip download from a local simple index`, async () => {
          const r = await topo.run(client, "python3", [
            "-m",
            "pip",
            "download",
            "--isolated",
            "--no-cache-dir",
            "--no-deps",
            "--disable-pip-version-check",
            "--proxy",
            proxy,
            "--index-url",
            `${base}/simple/`,
            "--trusted-host",
            name,
            "-d",
            `${out}/pip`,
            `${wheel.name}==1.0`,
          ], { timeoutMs: 120_000 });
          assert.equal(r.code, 0, why(r));
          assert.equal(
            await sha256File(`${out}/pip/${wheel.fileName}`),
            await sha256File(wheel.path),
          );
        });

        await t.step(`${label}: apt-get update and download from a local repository`, async () => {
          const options = await aptOptions(`${out}/apt`, `${base}/apt`, proxy);
          const update = await topo.run(client, "apt-get", [...options, "update"], {
            timeoutMs: 120_000,
          });
          assert.equal(update.code, 0, why(update));
          const download = await topo.run(client, "apt-get", [...options, "download", deb.name], {
            timeoutMs: 120_000,
            cwd: out,
          });
          assert.equal(download.code, 0, why(download));
          assert.equal(await sha256File(`${out}/${deb.fileName}`), await sha256File(deb.path));
        });

        await t.step(`${label}: CONNECT to the gateway's own loopback is 403`, async () => {
          for (const target of ["127.0.0.1:8080", "[::1]:8080", `localhost:3128`]) {
            const r = await topo.run(client, "curl", [
              "-sS",
              "-o",
              "/dev/null",
              "-w",
              "%{http_connect}",
              "--max-time",
              "20",
              "-p",
              "-x",
              proxy,
              `http://${target}/`,
            ], { timeoutMs: 30_000 });
            assert.equal(r.stdout.trim(), "403", `${target}: ${why(r)}`);
          }
        });
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  { programs: PROGRAMS },
);
