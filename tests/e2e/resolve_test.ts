/**
 * Tor's RESOLVE and RESOLVE_PTR end to end with the real torsocks (Debian's 2.4.0) on the
 * IPv4-only client: curl's getaddrinfo() and getent's gethostbyaddr() are
 * answered by dualgate on the gateway, whose /etc/hosts alone knows the names; curl then
 * CONNECTs to the address through dualgate. Checked by digest.
 *
 * torsocks asks RESOLVE for IPv4 only (its `tsocks_tor_resolve()` refuses AF_INET6 and takes a
 * 4-byte answer, "Resolve destination buffer too small" otherwise) and opens its RESOLVE
 * connection with an AF_INET socket (so an IPv6 `TorAddress` fails with "Address family not
 * supported"): only the IPv4 client is exercised here. It reaches the IPv6-only server's name
 * through dualgate's IPv4 stand-in address (`resolver.stand_ins`), which CONNECT and
 * RESOLVE_PTR map back to the name.
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
      await using _http6 = await startHttpServer(topo, "server6", { directory: dir });
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
          assert.match(await gateway.waitForStderr(resolved), resolved);
          assert.match(
            await gateway.waitForStderr(
              new RegExp(`connect ${a.server4.v4.replaceAll(".", "\\.")}:8080`),
            ),
            new RegExp(`connect ${a.server4.v4.replaceAll(".", "\\.")}:8080`),
          );
        });
      }

      await t.step(
        `client4: torsocks curl fetches the IPv6-only ${NAMES.v6} through an IPv4 stand-in`,
        async () => {
          const out = `${dir}/client4-v6.bin`;
          const r = await torsocks("client4", [
            "curl",
            "-sS",
            "--fail",
            "--max-time",
            "30",
            `http://${NAMES.v6}:8080/${file.name}`,
            "-o",
            out,
          ]);
          assert.equal(r.code, 0, `curl: ${r.stderr}\ndualgate: ${gateway.stderr}`);
          assert.equal(await sha256File(out), file.sha256);
          assert.match(
            await gateway.waitForStderr(
              new RegExp(
                `resolved ${a.client4.v4}:\\d+ user=- resolve ${NAMES.v6}:\\d+ ` +
                  `via 198\\.1[89]\\.\\d+\\.\\d+:0 .*\\(stand-in: no usable IPv4 address\\)`,
              ),
            ),
            new RegExp(
              `resolved ${a.client4.v4}:\\d+ user=- resolve ${NAMES.v6}:\\d+ ` +
                `via 198\\.1[89]\\.\\d+\\.\\d+:0 .*\\(stand-in: no usable IPv4 address\\)`,
            ),
          );
          // Under torsocks, the program sees the stand-in; its reverse lookup is the name.
          const names = await torsocks("client4", [
            "python3",
            "-c",
            `import socket; a = socket.gethostbyname("${NAMES.v6}"); ` +
            `print(a, socket.gethostbyaddr(a)[0])`,
          ]);
          assert.equal(names.code, 0, `python3: ${names.stderr}\ndualgate: ${gateway.stderr}`);
          assert.match(names.stdout.trim(), new RegExp(`^198\\.1[89]\\.\\d+\\.\\d+ ${NAMES.v6}$`));
        },
      );

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
          assert.match(await gateway.waitForStderr(ptr), ptr);
        },
      );

      await t.step(
        "client4: RESOLVE of the gateway's own names is REP 2 (host-local)",
        async () => {
          const script = [
            "import socket, sys",
            "c = socket.create_connection((sys.argv[1], 1080), timeout=10)",
            'c.sendall(b"\\x05\\x01\\x00")',
            'assert c.recv(2) == b"\\x05\\x00"',
            "name = sys.argv[2].encode()",
            'c.sendall(b"\\x05\\xf0\\x00\\x03" + bytes([len(name)]) + name + b"\\x00\\x00")',
            "print(c.recv(4, socket.MSG_WAITALL)[1], flush=True)",
          ].join("\n");
          for (const own of ["localhost", "ip6-localhost"]) {
            const r = await topo.run("client4", "python3", ["-c", script, a.gateway.v4, own]);
            assert.equal(r.code, 0, r.stderr);
            assert.equal(r.stdout.trim(), "2", `RESOLVE ${own}`);
          }
        },
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  { programs: PROGRAMS },
);
