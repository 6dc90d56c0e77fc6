/**
 * File descriptors: a gateway under `ulimit -n 256` lowers its connection cap to what the
 * descriptors allow, refuses a flood of clients far beyond it (counted in the metrics), never
 * crashes, and serves normally once the flood is gone.
 */
import assert from "node:assert/strict";
import { parseIp } from "../../net/address.ts";
import { encodeGreeting, encodeRequest, encodeUdpDatagram } from "../../socks5/codec.ts";
import { spawnLocalGateway } from "../helpers/dualgate.ts";
import { httpGet, sampleValue } from "../helpers/http_get.ts";
import {
  connectTo,
  echo,
  readAll,
  readerOf,
  readSocksReply,
  startServer,
  writeAll,
} from "../integration/_fixtures.ts";
import { readMethodSelection } from "../../socks5/codec.ts";

const OPEN_FILES = 256;
/** (256 - 64 reserve) / 2, see gateway/limits/fd_limit.ts. */
const EXPECTED_CAP = 96;
const FLOOD = Number(Deno.env.get("DUALGATE_FD_FLOOD") ?? 800);
const CONCURRENCY = 64;

/** One SOCKS CONNECT request in a single write: greeting (no auth) and request. */
function connectBytes(port: number): Uint8Array {
  const target = { address: parseIp("127.0.0.1")!, port };
  return Uint8Array.from([
    ...encodeGreeting({ methods: [0] }),
    ...encodeRequest({ command: 1, target }),
  ]);
}

/** Opens a relay through the gateway: the connection when it succeeded, `null` when refused. */
async function tryRelay(
  gateway: { hostname: string; port: number },
  port: number,
): Promise<Deno.TcpConn | null> {
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect(gateway);
  } catch {
    return null;
  }
  const timer = setTimeout(() => conn.close(), 10_000);
  try {
    await writeAll(conn, connectBytes(port));
    const reader = readerOf(conn);
    if (await readMethodSelection(reader) !== 0) throw new Error("method");
    if ((await readSocksReply(reader)).reply !== 0) throw new Error("reply");
    clearTimeout(timer);
    return conn;
  } catch {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed by the timer */ }
    return null;
  }
}

/** Waits for the admin endpoint's log line. */
async function adminOf(
  gateway: { stderr: () => string },
): Promise<{ hostname: string; port: number }> {
  for (let i = 0; i < 100; i++) {
    const match = gateway.stderr().match(/admin endpoint on ([\d.]+):(\d+)/);
    if (match) return { hostname: match[1]!, port: Number(match[2]) };
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`Cannot find the admin endpoint:\n${gateway.stderr()}`);
}

/** A CONNECT round trip with a few bytes through the gateway. */
async function roundTrip(socks: { hostname: string; port: number }, port: number): Promise<void> {
  using conn = await connectTo({ address: parseIp(socks.hostname)!, port: socks.port });
  await writeAll(conn, connectBytes(port));
  const reader = readerOf(conn);
  assert.equal(await readMethodSelection(reader), 0);
  assert.equal((await readSocksReply(reader)).reply, 0);
  const payload = new TextEncoder().encode("still serving");
  await writeAll(conn, payload);
  await conn.closeWrite();
  assert.deepEqual(await readAll(conn), payload);
}

Deno.test("a flood beyond the descriptor limit is refused and the gateway keeps serving", async () => {
  const dir = await Deno.makeTempDir();
  await using server = startServer("127.0.0.1", echo);
  const held: Deno.TcpConn[] = [];
  try {
    await using gateway = await spawnLocalGateway(
      `listen: ["127.0.0.1:0"]
admin: { listen: "127.0.0.1:0" }
limits: { max_connections: 4096, max_connections_per_client: 100000 }
log: { level: info }
`,
      { dir, listeners: 1, openFilesLimit: OPEN_FILES },
    );
    const socks = gateway.endpoints[0]!;
    const admin = await adminOf(gateway);
    assert.match(
      gateway.stderr(),
      new RegExp(`max_connections lowered from 4096 to ${EXPECTED_CAP}`),
    );
    const metrics = async () => (await httpGet(admin, "/metrics")).body;
    assert.equal(sampleValue(await metrics(), "dualgate_max_connections"), EXPECTED_CAP);

    // The flood: every client asks for a relay (two descriptors each in the gateway).
    let next = 0;
    let refused = 0;
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next < FLOOD) {
        next++;
        const conn = await tryRelay(socks, server.port);
        if (conn) held.push(conn);
        else refused++;
      }
    }));
    assert.ok(held.length <= EXPECTED_CAP, `${held.length} relays held, cap ${EXPECTED_CAP}`);
    assert.ok(held.length >= EXPECTED_CAP / 2, `only ${held.length} relays held`);
    assert.equal(held.length + refused, FLOOD);

    // Still alive and answering while full.
    const exited = await Promise.race([
      gateway.status.then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 100)),
    ]);
    assert.equal(exited, false, `the gateway exited:\n${gateway.stderr().slice(-4000)}`);
    const full = await metrics();
    assert.ok(
      sampleValue(full, 'dualgate_limit_rejections_total{limit="global"}') > 0,
      "refusals are counted",
    );
    assert.equal(sampleValue(full, 'dualgate_active_relays{command="connect"}'), held.length);
    assert.equal((await httpGet(admin, "/healthz")).status, 200);

    // The flood ends; a normal round trip works again.
    for (const conn of held.splice(0)) conn.close();
    for (let i = 0; i < 100; i++) {
      if (sampleValue(await metrics(), "dualgate_active_connections") === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await roundTrip(socks, server.port);
    assert.match(gateway.stderr(), /global limit reached; refused/);
  } finally {
    for (const conn of held) conn.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** A UDP association with one datagram sent (three descriptors in the gateway), or `null`. */
async function tryAssociation(
  gateway: { hostname: string; port: number },
  echoPort: number,
): Promise<{ conn: Deno.TcpConn; socket: Deno.DatagramConn } | null> {
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect(gateway);
  } catch {
    return null;
  }
  const timer = setTimeout(() => conn.close(), 10_000);
  try {
    const zero = { address: parseIp("0.0.0.0")!, port: 0 };
    await writeAll(
      conn,
      Uint8Array.from([
        ...encodeGreeting({ methods: [0] }),
        ...encodeRequest({ command: 3, target: zero }),
      ]),
    );
    const reader = readerOf(conn);
    if (await readMethodSelection(reader) !== 0) throw new Error("method");
    const reply = await readSocksReply(reader);
    if (reply.reply !== 0) throw new Error("reply");
    clearTimeout(timer);
    const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    await socket.send(
      encodeUdpDatagram({
        fragment: 0,
        target: { address: parseIp("127.0.0.1")!, port: echoPort },
        payload: Uint8Array.of(1, 2, 3),
      }),
      { transport: "udp", hostname: "127.0.0.1", port: reply.bound.port },
    );
    return { conn, socket };
  } catch {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed by the timer */ }
    return null;
  }
}

Deno.test("UDP associations that run the gateway out of descriptors do not stop it", async () => {
  const dir = await Deno.makeTempDir();
  await using server = startServer("127.0.0.1", echo);
  const udpEcho = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const udpLoop = (async () => {
    for (;;) {
      const [data, from] = await udpEcho.receive();
      await udpEcho.send(data, from);
    }
  })().catch(() => {});
  const held: { conn: Deno.TcpConn; socket: Deno.DatagramConn }[] = [];
  try {
    await using gateway = await spawnLocalGateway(
      `listen: ["127.0.0.1:0"]
admin: { listen: "127.0.0.1:0" }
log: { level: info }
`,
      { dir, listeners: 1, openFilesLimit: OPEN_FILES },
    );
    const socks = gateway.endpoints[0]!;
    const admin = await adminOf(gateway);
    let next = 0;
    const flood = Math.min(FLOOD, 400);
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (next < flood) {
        next++;
        const association = await tryAssociation(socks, (udpEcho.addr as Deno.NetAddr).port);
        if (association) held.push(association);
      }
    }));
    assert.ok(held.length > 0 && held.length < flood, `${held.length} of ${flood} held`);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const exited = await Promise.race([
      gateway.status.then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 100)),
    ]);
    assert.equal(exited, false, `the gateway exited:\n${gateway.stderr().slice(-4000)}`);

    for (const { conn, socket } of held.splice(0)) {
      conn.close();
      socket.close();
    }
    let text = "";
    for (let i = 0; i < 200; i++) {
      try {
        text = (await httpGet(admin, "/metrics")).body;
        if (sampleValue(text, "dualgate_active_connections") === 0) break;
      } catch { /* the admin listener may be out of descriptors for a moment */ }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(sampleValue(text, "dualgate_active_connections"), 0, text);
    await roundTrip(socks, server.port);
    assert.equal((await httpGet(admin, "/healthz")).status, 200);
  } finally {
    for (const { conn, socket } of held) {
      conn.close();
      socket.close();
    }
    udpEcho.close();
    await udpLoop;
    await Deno.remove(dir, { recursive: true });
  }
});
