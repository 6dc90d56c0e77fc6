/**
 * Attacks on the FTP translator through a live gateway (`main.ts serve`) in network namespaces:
 * an IPv6-only client (client6) reaches a malicious IPv4 FTP server (server4, a scripted
 * server of our own: `_evil_ftp_server.ts`) through the gateway, which translates the session.
 *
 * The rules deny ports 22 and 2222 of server4 and allow everything else. The server's passive
 * replies name those ports, or port 25 (allowed by the rules, but below 1024), and it reads
 * commands laxly (a bare CR or NUL ends a command, leading blanks and Telnet IAC bytes are
 * dropped, a last unterminated command counts), acting on any PORT/EPRT it reads that way. The
 * client (`_ftp_attack_client.ts`) sends commands that hide an EPRT from the translator, and
 * follows passive replies naively, like curl through SOCKS.
 *
 * What must hold: the client never gets a data channel to a denied or privileged port (the
 * gateway answers 425 instead of a translated passive reply), the server never hears a hidden
 * address command, a passive reply the gateway did not make never reaches the client, and the
 * forbidden ports never see a connection (the server counts them).
 *
 * @module
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { REPO_ROOT, startDualgate } from "../helpers/dualgate.ts";
import { createTopology, e2eTest, NAMES, type SpawnedProcess } from "../helpers/netns.ts";

const SERVER_SCRIPT = fileURLToPath(new URL("./_evil_ftp_server.ts", import.meta.url));
const CLIENT_SCRIPT = fileURLToPath(new URL("./_ftp_attack_client.ts", import.meta.url));
/** Ports of server4 the rules deny. */
const DENIED = [22, 2222];
/** Allowed by the rules, but below 1024. */
const PRIVILEGED = 25;
/** An ordinary passive port, for the control case. */
const ALLOWED = 40000;

interface ClientResult {
  lines: string[];
  data: { port: number; rep: number; received: string }[];
}

function countOf(process: SpawnedProcess, pattern: RegExp): number {
  return process.stdout.match(new RegExp(pattern.source, "gm"))?.length ?? 0;
}

/** Waits (bounded) until the evil server has seen `sessions` control sessions end. */
async function sessionsEnded(server: SpawnedProcess, sessions: number): Promise<void> {
  for (let i = 0; i < 500 && countOf(server, /^END$/) < sessions; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.equal(countOf(server, /^END$/), sessions, `server output:\n${server.stdout}`);
}

e2eTest(
  "FTP translator attacks: no data channel to denied or privileged ports, no hidden commands or replies",
  async (t) => {
    await using topo = await createTopology();
    const dir = await Deno.makeTempDir({ prefix: "dualgate-ftp-attack-" });
    const server4 = topo.addresses.server4.v4;
    await using server = topo.spawn("server4", Deno.execPath(), [
      "run",
      "--allow-all",
      SERVER_SCRIPT,
      server4,
      "21",
      ...[...DENIED, PRIVILEGED, ALLOWED].map(String),
    ], { cwd: REPO_ROOT, env: { NO_COLOR: "1" } });
    await server.waitForTcp(server4, 21, { timeoutMs: 30_000 });
    try {
      await using gateway = await startDualgate(
        topo,
        `listen: ["${topo.addresses.gateway.v4}:1080", "[${topo.addresses.gateway.v6}]:1080"]
rules:
  - { action: deny, to: ["${server4}"], ports: [${DENIED.join(", ")}] }
  - { action: allow }
translators:
  - { type: ftp, ports: [21], data_timeout: 10 }
`,
        { dir },
      );
      let sessions = 0;
      const attack = async (scenario: string, user: string, ...args: string[]) => {
        const r = await topo.run("client6", Deno.execPath(), [
          "run",
          "--allow-all",
          CLIENT_SCRIPT,
          topo.addresses.gateway.v6,
          "1080",
          NAMES.v4,
          scenario,
          user,
          ...args,
        ], { timeoutMs: 60_000, cwd: REPO_ROOT, env: { NO_COLOR: "1" } });
        const show = `client exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}\n` +
          `--- server:\n${server.stdout.slice(-3000)}\n--- gateway:\n${
            gateway.stderr.slice(-4000)
          }`;
        assert.equal(r.code, 0, show);
        await sessionsEnded(server, ++sessions);
        return { result: JSON.parse(r.stdout.trim().split("\n").at(-1)!) as ClientResult, show };
      };

      await t.step("control case: a passive reply to an ordinary port works", async () => {
        const { result, show } = await attack("passive", `port-${ALLOWED}`, "EPSV");
        assert.match(result.lines.at(-2) ?? "", /^229 /, show);
        assert.deepEqual(result.data.map((d) => [d.rep, d.received]), [
          [0, `evil data ${ALLOWED}`],
        ], show);
      });

      const passiveCases = [
        ["229 naming a port the rules deny", "port-2222", "EPSV", /rules refuse .* 2222/],
        ["229 naming port 25 (below 1024)", `port-${PRIVILEGED}`, "EPSV", /port 25 is below 1024/],
        ["227 (after a refused EPSV) naming port 22", "pasv-only-22", "PASV", /port 22 is below/],
        ["227 to LPSV naming a denied port", "pasv-only-2222", "LPSV", /rules refuse .* 2222/],
      ] as const;
      for (const [label, user, verb, why] of passiveCases) {
        await t.step(`${label}: the client gets 425, never a data channel`, async () => {
          const { result, show } = await attack("passive", user, verb);
          const answer = result.lines.find((line) => /^(227|228|229|425) /.test(line)) ?? "";
          assert.match(answer, /^425 Cannot open data connection: /, show);
          assert.match(answer, why, show);
          assert.deepEqual(result.data, [], show);
        });
      }

      const hidden = [
        ["a leading space", ` EPRT |1|${server4}|${PRIVILEGED}|`],
        ["a leading tab", `\tEPRT |1|${server4}|${PRIVILEGED}|`],
        ["a bare CR", `NOOP\rEPRT |1|${server4}|${PRIVILEGED}|`],
        ["a NUL", `NOOP x\0EPRT |1|${server4}|${PRIVILEGED}|`],
        ["a Telnet IAC NOP in the verb", `EP\xff\xf1RT |1|${server4}|${PRIVILEGED}|`],
      ] as const;
      for (const [label, line] of hidden) {
        await t.step(
          `a command hiding EPRT behind ${label} gets 500 and never reaches the server`,
          async () => {
            const bounces = countOf(server, /^BOUNCE /);
            const { result, show } = await attack("lines", "anonymous", JSON.stringify(line));
            assert.match(result.lines[3] ?? "", /^500 /, show);
            assert.equal(countOf(server, /^BOUNCE /), bounces, show);
            assert.doesNotMatch(server.stdout, /^CMD .*EP.*RT/m, show);
          },
        );
      }

      await t.step(
        "lower-case eprt is translated (and refused as IPv4 on IPv6), not forwarded",
        async () => {
          const bounces = countOf(server, /^BOUNCE /);
          const { result, show } = await attack(
            "lines",
            "anonymous",
            JSON.stringify(`eprt |1|${server4}|${PRIVILEGED}|`),
          );
          assert.match(result.lines[3] ?? "", /^522 /, show);
          assert.equal(countOf(server, /^BOUNCE /), bounces, show);
        },
      );

      await t.step(
        "a last EPRT cut short by the client's EOF is translated, never forwarded",
        async () => {
          const bounces = countOf(server, /^BOUNCE /);
          const { result, show } = await attack(
            "eof",
            "anonymous",
            JSON.stringify(`EPRT |1|${server4}|${PRIVILEGED}|`),
          );
          assert.match(result.lines.at(-1) ?? "", /^522 /, show);
          assert.equal(countOf(server, /^BOUNCE /), bounces, show);
        },
      );

      await t.step(
        "227 replies the server smuggles into other replies never reach the client",
        async () => {
          const { result, show } = await attack("hidden", "hide", "4");
          const pieces = result.lines.flatMap((line) => line.split(/[\r\0]/));
          assert.deepEqual(pieces.filter((piece) => piece.startsWith("227")), [], show);
          assert.deepEqual(result.data, [], show);
          // Every NOOP got one reply: the unsolicited 227 became a 425, the rest kept step.
          assert.deepEqual(result.lines.slice(3), [
            "425 Cannot open data connection: unexpected passive reply refused",
            "200 ok 227 Entering Passive Mode (198,51,100,2,0,25)",
            "211-status",
            " 227 Entering Passive Mode (198,51,100,2,0,25)",
            "211 end",
            "200 ok",
            "221 bye",
          ], show);
        },
      );

      await t.step(
        "the forbidden ports never saw a connection; refusals are recorded",
        async () => {
          await server.stop();
          for (const port of [...DENIED, PRIVILEGED]) {
            assert.equal(countOf(server, new RegExp(`^HIT ${port}$`)), 0, server.stdout);
          }
          assert.equal(countOf(server, /^BOUNCE /), 0, server.stdout);
          assert.match(
            await gateway.waitForStderr(/rejected .*ftp-data .*198\.51\.100\.2:2222/),
            /rejected .*ftp-data .*198\.51\.100\.2:2222/,
          );
          assert.match(
            await gateway.waitForStderr(/rejected .*ftp-data .*198\.51\.100\.2:25 /),
            /rejected .*ftp-data .*198\.51\.100\.2:25 /,
          );
        },
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
