/**
 * Tor's RESOLVE and RESOLVE_PTR end to end with the real torsocks (Debian's 2.4.0) on the
 * IPv4-only client: curl's getaddrinfo() and getent's gethostbyaddr() are
 * answered by dualgate on the gateway, whose /etc/hosts alone knows the names; curl then
 * CONNECTs to the address through dualgate. Checked by digest.
 *
 * torsocks asks RESOLVE for IPv4 only (its `tsocks_tor_resolve()` refuses AF_INET6 and takes a
 * 4-byte answer, "Resolve destination buffer too small" otherwise) and opens its RESOLVE
 * connection with an AF_INET socket (so an IPv6 `TorAddress` fails with "Address family not
 * supported"): only the IPv4 client and the IPv4 server's name are exercised here.
 */
import assert from "node:assert/strict";
import { startDualgate } from "../helpers/dualgate.ts";
import { createRandomFile, sha256File, startHttpServer } from "../helpers/http_server.ts";
import { createTopology, e2eTest, NAMES } from "../helpers/netns.ts";

const PROGRAMS = ["torsocks", "curl", "python3"];

e2eTest(
  "torsocks resolves names and addresses through dualgate (RESOLVE, RESOLVE_PTR)",
  async (t) => {
    await using topo = await createTopology();
    const a = topo.addresses;
    const dir = await Deno.makeTempDir({ prefix: "dualgate-resolve-" });
    try {
      const file = await createRandomFile(dir, { name: "file.bin", size: 1024 * 1024 });
      await using _http4 = await startHttpServer(topo, "server4", { directory: dir });
      await using gateway = await startDualgate(
        topo,
        `listen: ["${a.gateway.v4}:1080", "[${a.gateway.v6}]:1080"]\n`,
        { dir },
      );
      const confOf = async (client: "client4" | "client6") => {
        const path = `${dir}/torsocks-${client}.conf`;
        const address = client === "client4" ? a.gateway.v4 : a.gateway.v6;
        await Deno.writeTextFile(path, `TorAddress ${address}\nTorPort 1080\n`);
        return path;
      };
      const torsocks = async (client: "client4" | "client6", args: string[]) =>
        await topo.run(client, "torsocks", args, {
          env: { TORSOCKS_CONF_FILE: await confOf(client) },
          timeoutMs: 60_000,
        });

      for (const client of ["client4"] as const) {
        await t.step(`${client}: torsocks curl fetches ${NAMES.v4} by name`, async () => {
          const out = `${dir}/${client}.bin`;
          const r = await torsocks(client, [
            "curl",
            "-sS",
            "--fail",
            "--max-time",
            "30",
            `http://${NAMES.v4}:8080/${file.name}`,
            "-o",
            out,
          ]);
          assert.equal(r.code, 0, `curl: ${r.stderr}\ndualgate: ${gateway.stderr}`);
          assert.equal(await sha256File(out), file.sha256);
          // The name went to dualgate as a RESOLVE, the connection as a CONNECT to the address.
          const from = client === "client4" ? a.client4.v4 : `[${a.client6.v6}]`;
          const resolved = new RegExp(
            `resolved ${from.replace(/[.[\]]/g, "\\$&")}:\\d+ user=- resolve ${NAMES.v4}:\\d+ ` +
              `via ${a.server4.v4.replaceAll(".", "\\.")}:0`,
          );
          assert.match(gateway.stderr, resolved);
          assert.match(
            gateway.stderr,
            new RegExp(`connect ${a.server4.v4.replaceAll(".", "\\.")}:8080`),
          );
        });
      }

      await t.step(
        "client4: torsocks' gethostbyaddr() gets the gateway's name of an address (PTR)",
        async () => {
          const r = await torsocks("client4", [
            "python3",
            "-c",
            `import socket; print(socket.gethostbyaddr("${a.server4.v4}"))`,
          ]);
          assert.equal(r.code, 0, `python3: ${r.stderr}\ndualgate: ${gateway.stderr}`);
          assert.equal(r.stdout.trim(), `('${NAMES.v4}', [], ['${a.server4.v4}'])`);
          const ptr = new RegExp(
            `resolved ${a.client4.v4}:\\d+ user=- resolve ${a.server4.v4}:\\d+ .*rep=0 ` +
              `\\(name ${NAMES.v4}\\)`,
          );
          assert.match(gateway.stderr, ptr);
        },
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  { programs: PROGRAMS },
);
