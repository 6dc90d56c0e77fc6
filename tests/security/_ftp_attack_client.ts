/**
 * The attacking (or naive) FTP client of the attack suite (`ftp_test.ts`), run inside a client
 * namespace: `deno run -A _ftp_attack_client.ts GATEWAY_HOST GATEWAY_PORT TARGET_NAME SCENARIO
 * [ARG...]`. It reaches the FTP server through a SOCKS5 CONNECT (no authentication), like curl
 * `--socks5-hostname`, and prints one JSON object: every line it received and what its data
 * connections did.
 *
 * Scenarios:
 * - `passive USER VERB`: logs in as USER, sends VERB (PASV, EPSV, LPSV); on a 227/228/229 it
 *   CONNECTs through SOCKS to the target name and the advertised port and reads the data.
 * - `lines USER LINE...`: logs in, then sends each LINE (JSON-encoded strings, so they may hold
 *   CR, NUL, tabs) with CRLF and reads one reply each.
 * - `eof USER LINE`: logs in, sends LINE without a line end, then closes its write side.
 * - `hidden USER COUNT`: logs in, sends NOOP COUNT times; like a naive client it treats every
 *   CR- or LF-separated piece that starts with `227` as a passive reply and CONNECTs to the
 *   target name and the port it names.
 *
 * No imports: it runs in a namespace without a module cache.
 *
 * @module
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder("latin1");
const READ_MS = 5000;

interface Result {
  lines: string[];
  data: { port: number; rep: number; received: string }[];
}

class Reader {
  #conn: Deno.Conn;
  #buffer = new Uint8Array(0);
  #eof = false;

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  async #fill(): Promise<boolean> {
    if (this.#eof) return false;
    const chunk = new Uint8Array(4096);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const n = await Promise.race([
      this.#conn.read(chunk),
      new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), READ_MS);
      }),
    ]).finally(() => clearTimeout(timer));
    if (n === "timeout") throw new Error("read timed out");
    if (n === null) {
      this.#eof = true;
      return false;
    }
    const next = new Uint8Array(this.#buffer.length + n);
    next.set(this.#buffer);
    next.set(chunk.subarray(0, n), this.#buffer.length);
    this.#buffer = next;
    return true;
  }

  async exactly(n: number): Promise<Uint8Array> {
    while (this.#buffer.length < n) {
      if (!(await this.#fill())) throw new Error("Cannot read: end of stream");
    }
    const out = this.#buffer.slice(0, n);
    this.#buffer = this.#buffer.slice(n);
    return out;
  }

  /** The next LF-terminated line (without CRLF), or `null` at EOF or on timeout. */
  async line(): Promise<string | null> {
    while (true) {
      const end = this.#buffer.indexOf(0x0a);
      if (end >= 0) {
        const line = decoder.decode(this.#buffer.subarray(0, end)).replace(/\r$/, "");
        this.#buffer = this.#buffer.slice(end + 1);
        return line;
      }
      try {
        if (!(await this.#fill())) return null;
      } catch {
        return null;
      }
    }
  }

  /** Everything until EOF (or a timeout). */
  async rest(): Promise<string> {
    try {
      while (await this.#fill()) { /* more */ }
    } catch { /* timed out */ }
    const out = decoder.decode(this.#buffer);
    this.#buffer = new Uint8Array(0);
    return out;
  }
}

async function writeText(conn: Deno.Conn, text: string): Promise<void> {
  const bytes = Uint8Array.from(text, (c) => c.charCodeAt(0) & 0xff);
  let offset = 0;
  while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
}

/** SOCKS5 CONNECT to `name:port`: the connection and the REP code. */
async function socksConnect(
  gateway: { hostname: string; port: number },
  name: string,
  port: number,
): Promise<{ conn: Deno.Conn; reader: Reader; rep: number }> {
  const conn = await Deno.connect(gateway);
  const reader = new Reader(conn);
  await conn.write(Uint8Array.of(5, 1, 0));
  await reader.exactly(2);
  const host = encoder.encode(name);
  await conn.write(Uint8Array.of(5, 1, 0, 3, host.length, ...host, port >> 8, port & 255));
  const head = await reader.exactly(4);
  const rep = head[1]!;
  const atyp = head[3]!;
  const length = atyp === 1 ? 4 : atyp === 4 ? 16 : (await reader.exactly(1))[0]!;
  await reader.exactly(length + 2);
  return { conn, reader, rep };
}

/** A whole reply: lines until one that starts with a code and a space. */
async function reply(reader: Reader, result: Result): Promise<string | null> {
  while (true) {
    const line = await reader.line();
    if (line === null) return null;
    result.lines.push(line);
    if (/^\d{3} /.test(line) || /^\d{3}$/.test(line)) return line;
  }
}

async function dataFrom(
  gateway: { hostname: string; port: number },
  name: string,
  port: number,
  result: Result,
): Promise<void> {
  let data: Awaited<ReturnType<typeof socksConnect>>;
  try {
    data = await socksConnect(gateway, name, port);
  } catch (error) {
    result.data.push({ port, rep: -1, received: String(error) });
    return;
  }
  const received = data.rep === 0 ? await data.reader.rest() : "";
  result.data.push({ port, rep: data.rep, received });
  data.conn.close();
}

function passivePortOf(line: string): number | null {
  const code = line.slice(0, 3);
  if (code === "229") {
    const m = /\((.)\1\1(\d+)\1\)/.exec(line);
    return m ? Number(m[2]) : null;
  }
  const numbers = [...line.slice(3).matchAll(/\d+/g)].map((m) => Number(m[0]));
  if (code === "227" && numbers.length >= 6) return numbers[4]! * 256 + numbers[5]!;
  if (code === "228" && numbers.length >= 9) return numbers.at(-2)! * 256 + numbers.at(-1)!;
  return null;
}

async function main(): Promise<void> {
  const [gatewayHost = "", gatewayPort = "1080", name = "", scenario = "", user = "", ...rest] =
    Deno.args;
  const gateway = { hostname: gatewayHost, port: Number(gatewayPort) };
  const result: Result = { lines: [], data: [] };
  const control = await socksConnect(gateway, name, 21);
  if (control.rep !== 0) throw new Error(`CONNECT refused: ${control.rep}`);
  const { conn, reader } = control;
  try {
    await reply(reader, result);
    await writeText(conn, `USER ${user}\r\n`);
    await reply(reader, result);
    await writeText(conn, "PASS x\r\n");
    await reply(reader, result);
    if (scenario === "passive") {
      await writeText(conn, `${rest[0]}\r\n`);
      const answer = await reply(reader, result);
      const port = answer === null ? null : passivePortOf(answer);
      if (port !== null) await dataFrom(gateway, name, port, result);
    } else if (scenario === "lines") {
      for (const encoded of rest) {
        await writeText(conn, `${JSON.parse(encoded)}\r\n`);
        await reply(reader, result);
      }
    } else if (scenario === "eof") {
      await writeText(conn, JSON.parse(rest[0]!));
      await conn.closeWrite();
      const tail = await reader.rest();
      result.lines.push(...tail.split("\n").filter((line) => line !== ""));
    } else if (scenario === "hidden") {
      for (let i = 0; i < Number(rest[0]); i++) {
        await writeText(conn, "NOOP\r\n");
        await reply(reader, result);
      }
      // Naive: any CR- or LF-separated piece starting with 227 is taken for a passive reply.
      for (const piece of result.lines.flatMap((line) => line.split("\r"))) {
        if (!piece.startsWith("227")) continue;
        const port = passivePortOf(piece);
        if (port !== null) await dataFrom(gateway, name, port, result);
      }
    } else {
      throw new Error(`unknown scenario ${scenario}`);
    }
    if (scenario !== "eof") {
      await writeText(conn, "QUIT\r\n");
      await reply(reader, result);
    }
  } finally {
    try {
      conn.close();
    } catch { /* closed */ }
  }
  Deno.stdout.writeSync(encoder.encode(JSON.stringify(result) + "\n"));
}

if (import.meta.main) await main();
