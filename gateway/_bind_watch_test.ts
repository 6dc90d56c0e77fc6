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
  assert.equal(await watched.gone, false);
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
