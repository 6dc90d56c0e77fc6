/**
 * A malicious, and naively parsing, FTP server for the attack suite (`ftp_test.ts`), run inside
 * the server4 namespace: `deno run -A _evil_ftp_server.ts ADDRESS CONTROL_PORT DATA_PORT...`.
 *
 * - Its passive replies name whatever port the login asked for (`USER port-2222` → 229/227/228
 *   with port 2222; `USER pasv-only-22` refuses EPSV so that the gateway falls back to PASV).
 * - It reads commands the way lax servers do: a bare CR or a NUL also ends a command, leading
 *   blanks and Telnet IAC sequences are dropped, verbs are case-insensitive, and a last
 *   command without its line end still counts at EOF. A PORT or EPRT it reads that way makes
 *   it connect to the address named (an FTP bounce).
 * - With `USER hide` its NOOP replies smuggle 227 replies in various disguises.
 * - It listens on every DATA_PORT and prints `HIT <port>` for each connection there; a data
 *   port serves `evil data <port>`. Every command read is printed as `CMD <json>`, every
 *   bounce as `BOUNCE <host>:<port>`, and `END` when a control session that sent anything ends.
 *
 * No imports: it runs in a namespace without a module cache.
 *
 * @module
 */

const encoder = new TextEncoder();

function say(line: string): void {
  Deno.stdout.writeSync(encoder.encode(line + "\n"));
}

async function writeText(conn: Deno.Conn, text: string): Promise<void> {
  const bytes = encoder.encode(text);
  let offset = 0;
  while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
}

/** Splits the way a lax server would: LF, CR and NUL all end a command. */
function commandsOf(text: string): string[] {
  return text.split(/[\r\n\0]/);
}

/** Drops Telnet IAC sequences (IAC x) and leading blanks. */
function normalise(piece: string): string {
  let out = "";
  for (let i = 0; i < piece.length; i++) {
    if (piece.charCodeAt(i) === 0xff) {
      i++;
      continue;
    }
    out += piece[i];
  }
  return out.trimStart();
}

function bounce(host: string, port: number): void {
  say(`BOUNCE ${host}:${port}`);
  Deno.connect({ hostname: host, port }).then((conn) => conn.close(), () => {});
}

async function serveControl(conn: Deno.Conn, address: string): Promise<void> {
  await writeText(conn, "220 evil FTP\r\n");
  let user = "";
  let noops = 0;
  let pending = "";
  let spoke = false;
  const buffer = new Uint8Array(4096);
  const passivePort = () => Number(/(\d+)$/.exec(user)?.[1] ?? "0");
  const handle = async (raw: string): Promise<boolean> => {
    const line = normalise(raw);
    if (line === "") return true;
    say(`CMD ${JSON.stringify(raw)}`);
    const space = line.indexOf(" ");
    const verb = (space < 0 ? line : line.slice(0, space)).toUpperCase();
    const argument = space < 0 ? "" : line.slice(space + 1).trim();
    const port = passivePort();
    const h = address.split(".").join(",");
    switch (verb) {
      case "USER":
        user = argument;
        await writeText(conn, "331 any password\r\n");
        return true;
      case "PASS":
        await writeText(conn, "230 logged in\r\n");
        return true;
      case "EPSV":
        if (user.startsWith("pasv-only")) await writeText(conn, "500 EPSV not understood\r\n");
        else await writeText(conn, `229 Entering Extended Passive Mode (|||${port}|)\r\n`);
        return true;
      case "PASV":
        await writeText(conn, `227 Entering Passive Mode (${h},${port >> 8},${port & 255}).\r\n`);
        return true;
      case "LPSV":
        await writeText(
          conn,
          `228 Entering Long Passive Mode (4,4,${h},2,${port >> 8},${port & 255})\r\n`,
        );
        return true;
      case "PORT": {
        const n = argument.split(",").map(Number);
        bounce(n.slice(0, 4).join("."), (n[4]! << 8) + n[5]!);
        await writeText(conn, "200 PORT ok\r\n");
        return true;
      }
      case "EPRT": {
        const [, , host = "", p = "0"] = argument.split(argument[0] ?? "|");
        bounce(host, Number(p));
        await writeText(conn, "200 EPRT ok\r\n");
        return true;
      }
      case "NOOP": {
        if (user !== "hide") {
          await writeText(conn, "200 NOOP ok\r\n");
          return true;
        }
        const smuggled = `227 Entering Passive Mode (${h},0,25)`;
        const disguises = [
          `${smuggled}\r\n`,
          `200 ok\r${smuggled}\r\n`,
          `211-status\r\n${smuggled}\r\n211 end\r\n`,
          `227\t(${h},0,25)\r\n200 ok\r\n`,
        ];
        await writeText(conn, disguises[noops++ % disguises.length]!);
        return true;
      }
      case "QUIT":
        await writeText(conn, "221 bye\r\n");
        return false;
      default:
        await writeText(conn, `502 ${verb} not implemented\r\n`);
        return true;
    }
  };
  try {
    while (true) {
      const n = await conn.read(buffer);
      if (n === null) {
        // A lax server runs a last command that the end of the stream cut short.
        if (pending !== "") await handle(pending);
        return;
      }
      spoke = true;
      pending += String.fromCharCode(...buffer.subarray(0, n));
      const pieces = commandsOf(pending);
      pending = pieces.pop()!;
      for (const piece of pieces) if (!(await handle(piece))) return;
    }
  } finally {
    try {
      conn.close();
    } catch { /* closed */ }
    // Port probes (waitForTcp) send nothing: only real sessions count.
    if (spoke) say("END");
  }
}

if (import.meta.main) {
  const [address = "", controlPort = "21", ...dataPorts] = Deno.args;
  for (const port of dataPorts.map(Number)) {
    const listener = Deno.listen({ hostname: address, port });
    (async () => {
      for await (const conn of listener) {
        say(`HIT ${port}`);
        writeText(conn, `evil data ${port}`).catch(() => {}).finally(() => {
          try {
            conn.close();
          } catch { /* closed */ }
        });
      }
    })();
  }
  const control = Deno.listen({ hostname: address, port: Number(controlPort) });
  say("READY");
  for await (const conn of control) serveControl(conn, address).catch(() => {});
}
