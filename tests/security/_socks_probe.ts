/**
 * A raw SOCKS5 attack client for the security tests, run inside a client host with
 * `deno run --no-config --unstable-net -A _socks_probe.ts '<json>'`. It imports nothing, so it
 * runs in a namespace without a registry, and it writes exactly the bytes the test asks for
 * (addresses are given as ATYP plus hex bytes or a name). Prints one JSON line: the outcome.
 *
 * Modes:
 * - `connect`: greeting, RFC 1929 when `auth` is set, CONNECT `target`; on success reads what
 *   the destination sends first (a banner) until it closes or `readMs` passes.
 * - `nested`: like `connect`, then a second SOCKS handshake inside the tunnel (`inner`), as a
 *   client would do to reach the gateway through itself.
 * - `udp`: UDP ASSOCIATE, then each datagram in order; collects replies until the datagram
 *   marked `waitFor` has an answer (or `readMs` passes), then `graceMs` more.
 *
 * @module
 */

/** A destination as written on the wire. */
export interface ProbeTarget {
  /** 1 (IPv4), 3 (name) or 4 (IPv6). */
  readonly atyp: 1 | 3 | 4;
  /** Address bytes in hex (ATYP 1 and 4). */
  readonly hex?: string;
  /** The name (ATYP 3). */
  readonly name?: string;
  /** Port. */
  readonly port: number;
}

/** One SOCKS session's settings. */
export interface ProbeSession {
  /** RFC 1929 user and password, when the gateway asks for them. */
  readonly auth?: readonly [string, string];
  /** The CONNECT destination. */
  readonly target: ProbeTarget;
}

/** The probe's input. */
export type ProbeInput =
  & {
    readonly gateway: { readonly host: string; readonly port: number };
    /** How long to wait for data (or for the awaited datagram), in ms. @default 3000 */
    readonly readMs?: number;
    /** Text sent before the greeting (a PROXY protocol v1 line). */
    readonly proxyHeader?: string;
  }
  & (
    | ({ readonly mode: "connect" } & ProbeSession)
    | ({ readonly mode: "nested"; readonly inner: ProbeSession } & ProbeSession)
    | {
      readonly mode: "udp";
      readonly auth?: readonly [string, string];
      readonly datagrams: readonly (ProbeTarget & { readonly payload: string })[];
      readonly waitFor: string;
      readonly graceMs?: number;
    }
  );

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function hexBytes(hex: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < hex.length; i += 2) out.push(parseInt(hex.slice(i, i + 2), 16));
  return out;
}

function targetBytes(target: ProbeTarget): number[] {
  const address = target.atyp === 3
    ? [encoder.encode(target.name!).length, ...encoder.encode(target.name!)]
    : hexBytes(target.hex!);
  return [target.atyp, ...address, target.port >> 8, target.port & 0xff];
}

/** Reads exactly `n` bytes, or throws when the stream ends first. */
class Reader {
  #buffered = new Uint8Array(0);
  constructor(readonly conn: Deno.Conn) {}

  async exact(n: number): Promise<Uint8Array> {
    while (this.#buffered.length < n) {
      const chunk = new Uint8Array(4096);
      const got = await this.conn.read(chunk);
      if (got === null) throw new Error(`closed after ${this.#buffered.length} of ${n} bytes`);
      const joined = new Uint8Array(this.#buffered.length + got);
      joined.set(this.#buffered);
      joined.set(chunk.subarray(0, got), this.#buffered.length);
      this.#buffered = joined;
    }
    const out = this.#buffered.slice(0, n);
    this.#buffered = this.#buffered.slice(n);
    return out;
  }

  /** Whatever arrives until the peer closes or `ms` passes. */
  async rest(ms: number): Promise<string> {
    let text = decoder.decode(this.#buffered);
    this.#buffered = new Uint8Array(0);
    const deadline = setTimeout(() => {
      try {
        this.conn.close();
      } catch { /* closed */ }
    }, ms);
    try {
      const chunk = new Uint8Array(4096);
      while (true) {
        const got = await this.conn.read(chunk);
        if (got === null) break;
        text += decoder.decode(chunk.subarray(0, got));
      }
    } catch {
      /* closed by the deadline */
    } finally {
      clearTimeout(deadline);
    }
    return text;
  }
}

/** Runs one handshake + request; returns REP and BND, or `null` REP when refused earlier. */
async function request(
  conn: Deno.Conn,
  reader: Reader,
  session: { auth?: readonly [string, string] | undefined },
  command: number,
  target: ProbeTarget,
): Promise<{ rep: number | null; bound?: { host: string; port: number }; why?: string }> {
  await conn.write(Uint8Array.of(5, 1, session.auth ? 2 : 0));
  const [, method] = await reader.exact(2);
  if (method === 0xff) return { rep: null, why: "no acceptable method" };
  if (method === 2) {
    const [user, pass] = session.auth ?? ["", ""];
    const u = encoder.encode(user), p = encoder.encode(pass);
    await conn.write(Uint8Array.of(1, u.length, ...u, p.length, ...p));
    const [, status] = await reader.exact(2);
    if (status !== 0) return { rep: null, why: "authentication failed" };
  }
  await conn.write(Uint8Array.of(5, command, 0, ...targetBytes(target)));
  const [, rep, , atyp] = await reader.exact(4);
  const size = atyp === 1 ? 4 : atyp === 4 ? 16 : (await reader.exact(1))[0]!;
  const address = await reader.exact(size);
  const portBytes = await reader.exact(2);
  const host = atyp === 1
    ? [...address].join(".")
    : atyp === 4
    ? [...Array(8).keys()].map((i) => ((address[2 * i]! << 8) | address[2 * i + 1]!).toString(16))
      .join(":")
    : decoder.decode(address);
  return { rep: rep!, bound: { host, port: (portBytes[0]! << 8) | portBytes[1]! } };
}

async function run(input: ProbeInput): Promise<unknown> {
  const readMs = input.readMs ?? 3000;
  const conn = await Deno.connect({ hostname: input.gateway.host, port: input.gateway.port });
  const reader = new Reader(conn);
  try {
    if (input.proxyHeader !== undefined) await conn.write(encoder.encode(input.proxyHeader));
    if (input.mode === "connect" || input.mode === "nested") {
      const outer = await request(conn, reader, input, 1, input.target);
      if (outer.rep !== 0 || input.mode === "connect") {
        return { ...outer, data: outer.rep === 0 ? await reader.rest(readMs) : "" };
      }
      const inner = await request(conn, reader, input.inner, 1, input.inner.target).catch(
        (error) => ({ rep: null, why: String(error) }),
      );
      return {
        ...outer,
        inner: { ...inner, data: inner.rep === 0 ? await reader.rest(readMs) : "" },
      };
    }
    const associated = await request(conn, reader, input, 3, {
      atyp: 1,
      hex: "00000000",
      port: 0,
    });
    if (associated.rep !== 0 || !associated.bound) return associated;
    const family6 = input.gateway.host.includes(":");
    const udp = Deno.listenDatagram({
      transport: "udp",
      hostname: family6 ? "::" : "0.0.0.0",
      port: 0,
    });
    const relay: Deno.NetAddr = {
      transport: "udp",
      hostname: associated.bound.host,
      port: associated.bound.port,
    };
    for (const datagram of input.datagrams) {
      const header = Uint8Array.of(0, 0, 0, ...targetBytes(datagram));
      const payload = encoder.encode(datagram.payload);
      const bytes = new Uint8Array(header.length + payload.length);
      bytes.set(header);
      bytes.set(payload, header.length);
      await udp.send(bytes, relay);
    }
    const replies: string[] = [];
    const collect = async () => {
      while (true) {
        const [bytes] = await udp.receive();
        const atyp = bytes[3];
        const headerLength = 4 + (atyp === 1 ? 4 : atyp === 4 ? 16 : 1 + bytes[4]!) + 2;
        replies.push(decoder.decode(bytes.subarray(headerLength)));
      }
    };
    const collecting = collect().catch(() => {});
    const until = Date.now() + readMs;
    while (!replies.includes(input.waitFor) && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await new Promise((resolve) => setTimeout(resolve, input.graceMs ?? 500));
    try {
      udp.close();
    } catch { /* closed */ }
    await collecting;
    return { ...associated, replies };
  } finally {
    try {
      conn.close();
    } catch { /* closed */ }
  }
}

if (import.meta.main) {
  const input = JSON.parse(Deno.args[0]!) as ProbeInput;
  const outcome = await run(input).catch((error) => ({ rep: null, why: String(error) }));
  Deno.stdout.writeSync(encoder.encode(JSON.stringify(outcome) + "\n"));
}
