import assert from "node:assert/strict";
import { WatchedConn } from "./_bind_watch.ts";

async function pair(): Promise<[Deno.TcpConn, Deno.TcpConn]> {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [a, b] = await Promise.all([
    Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
    listener.accept(),
  ]);
  return [a, b];
}

Deno.test("WatchedConn.gone is true when the client closes before sending", async () => {
  const [client, server] = await pair();
  const watched = new WatchedConn(server);
  client.close();
  assert.equal(await watched.gone, true);
  assert.equal(await watched.read(new Uint8Array(4)), null);
  watched.close();
});

Deno.test("WatchedConn keeps the bytes its watching read got, in order and in pieces", async () => {
  const [client, server] = await pair();
  const watched = new WatchedConn(server);
  await client.write(new TextEncoder().encode("hello"));
  const small = new Uint8Array(2);
  const got: string[] = [];
  for (let i = 0; i < 3; i++) {
    const n = await watched.read(small);
    got.push(new TextDecoder().decode(small.subarray(0, n!)));
  }
  assert.deepEqual(got, ["he", "ll", "o"]);
  await client.write(Uint8Array.of(33));
  assert.equal(await watched.read(small), 1);
  client.close();
  assert.equal(await watched.read(small), null);
  watched.close();
});

Deno.test("WatchedConn.gone is true when the client closes after sending (the bytes are kept)", async () => {
  const [client, server] = await pair();
  const watched = new WatchedConn(server);
  await client.write(new TextEncoder().encode("early"));
  // The watch goes on after the first bytes: the client's FIN ends it at once.
  await client.closeWrite();
  assert.equal(await watched.gone, true);
  const buffer = new Uint8Array(16);
  const n = await watched.read(buffer);
  assert.equal(new TextDecoder().decode(buffer.subarray(0, n!)), "early");
  assert.equal(await watched.read(buffer), null);
  client.close();
  watched.close();
});

Deno.test("WatchedConn.gone is true when the client resets after sending", async () => {
  const [client, server] = await pair();
  const watched = new WatchedConn(server);
  await client.write(Uint8Array.of(1));
  // Unread bytes at close turn the close into a reset.
  await server.write(Uint8Array.of(2));
  client.close();
  assert.equal(await watched.gone, true);
  watched.close();
});

Deno.test("WatchedConn keeps watching up to the hold limit, then ends as overflowed", async () => {
  const [client, server] = await pair();
  const watched = new WatchedConn(server, { holdLimit: 8 });
  let settled: boolean | undefined;
  watched.gone.then((gone) => settled = gone);
  await client.write(new Uint8Array(8).fill(7));
  // At the limit the watch goes on: a client leaving now is still noticed.
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.equal(settled, undefined);
  assert.equal(watched.overflowed, false);
  // One byte more: the watch ends, and says why.
  await client.write(Uint8Array.of(9));
  assert.equal(await watched.gone, true);
  assert.equal(watched.overflowed, true);
  // Every byte is still there for whoever reads.
  await client.write(new Uint8Array(3).fill(9));
  client.closeWrite();
  const got: number[] = [];
  const buffer = new Uint8Array(3);
  for (let i = 0; i < 20; i++) {
    const n = await watched.read(buffer);
    if (n === null) break;
    got.push(...buffer.subarray(0, n));
  }
  assert.deepEqual(got, [...new Array(8).fill(7), ...new Array(4).fill(9)]);
  client.close();
  watched.close();
});

Deno.test("WatchedConn notices a client leaving after it sent exactly the hold limit", async () => {
  const [client, server] = await pair();
  const watched = new WatchedConn(server, { holdLimit: 8 });
  await client.write(new Uint8Array(8).fill(7));
  client.close();
  assert.equal(await watched.gone, true);
  assert.equal(watched.overflowed, false);
  watched.close();
});

Deno.test("WatchedConn.gone is false when the relay's first read stops the watch", async () => {
  const [client, server] = await pair();
  const watched = new WatchedConn(server);
  const reading = watched.read(new Uint8Array(4));
  await client.write(Uint8Array.of(5));
  assert.equal(await reading, 1);
  assert.equal(await watched.gone, false);
  client.close();
  watched.close();
});

Deno.test("WatchedConn hands held bytes over at once while the watch's read is in flight", async () => {
  const [client, server] = await pair();
  const watched = new WatchedConn(server);
  await client.write(new TextEncoder().encode("first"));
  // Let the watch take the bytes and start its next read.
  await new Promise((resolve) => setTimeout(resolve, 30));
  const buffer = new Uint8Array(16);
  const n = await watched.read(buffer);
  assert.equal(new TextDecoder().decode(buffer.subarray(0, n!)), "first");
  await client.write(new TextEncoder().encode("second"));
  const m = await watched.read(buffer);
  assert.equal(new TextDecoder().decode(buffer.subarray(0, m!)), "second");
  client.close();
  watched.close();
});

/**
 * A stand-in connection whose reads give one byte each, `count` times, then wait until closed
 * (resolving `drained` when the watch asks for more).
 */
function oneByteReads(count: number) {
  let given = 0;
  let drain!: () => void;
  const drained = new Promise<void>((resolve) => drain = resolve);
  let end!: (n: null) => void;
  const ended = new Promise<null>((resolve) => end = resolve);
  const conn = {
    read(buffer: Uint8Array): Promise<number | null> {
      if (given === count) {
        drain();
        return ended;
      }
      buffer[0] = given++ % 251;
      return Promise.resolve(1);
    },
    close: () => end(null),
  };
  return { conn: conn as unknown as Deno.TcpConn, drained };
}

Deno.test("WatchedConn holds 16,000 one-byte reads in one buffer, not one array each", async () => {
  const { conn, drained } = oneByteReads(16000);
  const watched = new WatchedConn(conn);
  await drained;
  // Stopped now: the held bytes come in one piece, as from one buffer.
  const buffer = new Uint8Array(65536);
  const n = await watched.read(buffer);
  assert.equal(n, 16000);
  for (let i = 0; i < 16000; i++) assert.equal(buffer[i], i % 251);
  watched.close();
  assert.equal(await watched.read(buffer), null);
});

Deno.test("WatchedConn still ends as overflowed past the limit when bytes come one at a time", async () => {
  const { conn } = oneByteReads(16385);
  const watched = new WatchedConn(conn);
  assert.equal(await watched.gone, true);
  assert.equal(watched.overflowed, true);
  const buffer = new Uint8Array(65536);
  assert.equal(await watched.read(buffer), 16385);
  watched.close();
});
