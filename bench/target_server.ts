/**
 * The far end of every benchmark transfer, run as its own process so that its CPU does not
 * compete inside the load generator's event loop. Listens on `127.0.0.1:0` and `[::1]:0`,
 * prints `{"v4":PORT,"v6":PORT,"udp4":PORT,"udp6":PORT}` on one stdout line, then serves until
 * stdin closes. The UDP ports echo every datagram to its sender.
 *
 * Each connection starts with a 9-byte header (see `_wire.ts`): upload sink, download source,
 * small echo, or hold. The server always closes first: TIME_WAIT then lands on tuples of the
 * listening ports, never on the ephemeral ports that the next `connect()` (the load
 * generator's, or a proxy's outbound one) needs; otherwise the connection-rate and
 * held-connection runs exhaust the 28k ephemeral ports within seconds.
 *
 * @module
 */

import { closeQuietly, decodeHeader, HEADER_SIZE, Mode, readExact, writeAll } from "./_wire.ts";

const CHUNK = 256 * 1024;
const payload = new Uint8Array(CHUNK).fill(0x61);

async function upload(conn: Deno.TcpConn, size: number, buffer: Uint8Array): Promise<void> {
  let received = 0;
  while (received < size) {
    const n = await conn.read(buffer);
    if (n === null) throw new Error("Cannot sink: early end of stream");
    received += n;
  }
  const ack = new Uint8Array(8);
  new DataView(ack.buffer).setBigUint64(0, BigInt(received));
  await writeAll(conn, ack);
}

async function download(conn: Deno.TcpConn, size: number): Promise<void> {
  let sent = 0;
  while (sent < size) {
    const n = Math.min(CHUNK, size - sent);
    await writeAll(conn, n === CHUNK ? payload : payload.subarray(0, n));
    sent += n;
  }
}

async function echo(conn: Deno.TcpConn, size: number): Promise<void> {
  const bytes = await readExact(conn, new Uint8Array(size));
  await writeAll(conn, bytes);
}

async function hold(conn: Deno.TcpConn): Promise<void> {
  await writeAll(conn, new Uint8Array([1]));
  // Any byte from the client (or its end of stream) means "done": close first.
  await conn.read(new Uint8Array(16));
}

async function serve(conn: Deno.TcpConn): Promise<void> {
  try {
    conn.setNoDelay(true);
    const { mode, arg } = decodeHeader(await readExact(conn, new Uint8Array(HEADER_SIZE)));
    if (mode === Mode.Upload) await upload(conn, arg, new Uint8Array(CHUNK));
    else if (mode === Mode.Download) await download(conn, arg);
    else if (mode === Mode.Echo) await echo(conn, arg);
    else if (mode === Mode.Hold) await hold(conn);
  } catch {
    /* the peer went away: nothing to report */
  } finally {
    closeQuietly(conn);
  }
}

async function acceptLoop(listener: Deno.TcpListener): Promise<void> {
  try {
    for await (const conn of listener) serve(conn);
  } catch { /* closed */ }
}

async function echoDatagrams(socket: Deno.DatagramConn): Promise<void> {
  const buffer = new Uint8Array(65536);
  try {
    while (true) {
      const [data, from] = await socket.receive(buffer);
      await socket.send(data, from);
    }
  } catch { /* closed */ }
}

if (import.meta.main) {
  const v4 = Deno.listen({ hostname: "127.0.0.1", port: 0, transport: "tcp" });
  const v6 = Deno.listen({ hostname: "::1", port: 0, transport: "tcp" });
  const udp4 = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
  const udp6 = Deno.listenDatagram({ hostname: "::1", port: 0, transport: "udp" });
  const loops = [acceptLoop(v4), acceptLoop(v6), echoDatagrams(udp4), echoDatagrams(udp6)];
  const ports = {
    v4: v4.addr.port,
    v6: v6.addr.port,
    udp4: (udp4.addr as Deno.NetAddr).port,
    udp6: (udp6.addr as Deno.NetAddr).port,
  };
  Deno.stdout.writeSync(new TextEncoder().encode(JSON.stringify(ports) + "\n"));
  // Stop when the parent closes our stdin (it exited or finished).
  const sink = new Uint8Array(64);
  while ((await Deno.stdin.read(sink)) !== null) { /* ignore */ }
  v4.close();
  v6.close();
  udp4.close();
  udp6.close();
  await Promise.allSettled(loops);
  Deno.exit(0);
}
