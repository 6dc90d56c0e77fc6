import assert from "node:assert/strict";
import { parseIp } from "./address.ts";
import { connectFrom } from "./node_tcp.ts";

const LOOPBACK = parseIp("127.0.0.1")!;

async function readAll(conn: Deno.Conn, size = 1000): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const buffer = new Uint8Array(size);
  while (true) {
    const n = await conn.read(buffer);
    if (n === null) break;
    parts.push(buffer.slice(0, n));
  }
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  let at = 0;
  for (const p of parts) (out.set(p, at), at += p.length);
  return out;
}

Deno.test("connectFrom binds the source address the server sees", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const conn = await connectFrom(parseIp("127.0.0.3")!, {
    address: LOOPBACK,
    port: listener.addr.port,
  });
  const server = await accepted;
  assert.equal((server.remoteAddr as Deno.NetAddr).hostname, "127.0.0.3");
  assert.equal(conn.localAddr.hostname, "127.0.0.3");
  assert.equal(conn.remoteAddr.port, listener.addr.port);
  server.close();
  conn.close();
});

Deno.test("connectFrom: bytes both ways, half-close, a slow small reader loses nothing", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const payload = crypto.getRandomValues(new Uint8Array(60_000));
  const big = new Uint8Array(3_000_000).map((_, i) => (i * 7) & 0xff);
  const serving = (async () => {
    const server = await listener.accept();
    const got = await readAll(server);
    // Echoes the upload, then a large body: the client reads it in small pieces.
    let at = 0;
    while (at < got.length) at += await server.write(got.subarray(at));
    at = 0;
    while (at < big.length) at += await server.write(big.subarray(at));
    server.close();
    return got;
  })();
  const conn = await connectFrom(LOOPBACK, { address: LOOPBACK, port: listener.addr.port });
  let at = 0;
  while (at < payload.length) at += await conn.write(payload.subarray(at));
  await conn.closeWrite();
  const back = await readAll(conn, 777);
  assert.deepEqual(await serving, payload);
  assert.equal(back.length, payload.length + big.length);
  assert.deepEqual(back.subarray(0, payload.length), payload);
  assert.deepEqual(back.subarray(payload.length), big);
  conn.close();
});

Deno.test("connectFrom: a refused connection fails with ECONNREFUSED", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  await assert.rejects(
    connectFrom(LOOPBACK, { address: LOOPBACK, port }),
    (error: { code?: string }) => error.code === "ECONNREFUSED",
  );
});

Deno.test("connectFrom: a source address the host does not have fails with EADDRNOTAVAIL", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  await assert.rejects(
    connectFrom(parseIp("192.0.2.77")!, { address: LOOPBACK, port: listener.addr.port }),
    (error: { code?: string }) => error.code === "EADDRNOTAVAIL",
  );
});

Deno.test("connectFrom: close() ends a pending read with BadResource", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const conn = await connectFrom(LOOPBACK, { address: LOOPBACK, port: listener.addr.port });
  const server = await accepted;
  const reading = conn.read(new Uint8Array(10));
  conn.close();
  await assert.rejects(reading, Deno.errors.BadResource);
  server.close();
});
