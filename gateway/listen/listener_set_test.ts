import assert from "node:assert/strict";
import { parseConfig } from "../config/load.ts";
import type { ListenConfig } from "../config/types.ts";
import { ListenerSet } from "./listener_set.ts";

function listenOf(...addresses: string[]): readonly ListenConfig[] {
  return parseConfig(`listen: ${JSON.stringify(addresses)}`).listen;
}

async function connects(port: number, hostname = "127.0.0.1"): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname, port });
    conn.close();
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.ConnectionRefused) return false;
    // Accepted and closed at once by the handler, before the connect call returned.
    if (error instanceof Deno.errors.ConnectionReset) return true;
    throw error;
  }
}

Deno.test("ListenerSet.change() keeps an unchanged address's socket, opens new ones, closes removed ones", async () => {
  const accepted: string[] = [];
  const set = new ListenerSet({
    onConnection: (conn, listen) => {
      accepted.push(listen.proxyProtocol ?? "plain");
      conn.close();
    },
  });
  await set.change(listenOf("127.0.0.1:0")).commit();
  const [first] = set.listeners;
  const port = set.endpoints[0]!.port;

  const grow = set.change(listenOf("127.0.0.1:0", "[::1]:0"));
  assert.equal(grow.added.length, 1);
  assert.equal(grow.removed.length, 0);
  await grow.commit();
  assert.equal(set.listeners[0], first, "the same socket, not a new one");
  assert.equal(set.endpoints[0]!.port, port);
  assert.ok(await connects(set.endpoints[1]!.port, "::1"));

  // The kept listener takes the new entry's settings from the next connection.
  const v6Port = set.endpoints[1]!.port;
  const shrink = set.change(
    parseConfig(`listen:\n  - { address: "[::1]:0", proxy_protocol: v2 }\n`).listen,
  );
  assert.equal(shrink.removed.length, 1);
  await shrink.commit();
  assert.equal(set.endpoints.length, 1);
  assert.equal(await connects(port), false, "the removed listener is closed");
  assert.ok(await connects(v6Port, "::1"));
  set.close();
  await Promise.all(set.loops);
  assert.deepEqual(accepted, ["plain", "v2"]);
});

Deno.test("ListenerSet.change() that cannot open an address changes nothing", async () => {
  const set = new ListenerSet({ onConnection: (conn) => conn.close() });
  await set.change(listenOf("127.0.0.1:0")).commit();
  const port = set.endpoints[0]!.port;
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  assert.throws(
    () => set.change(listenOf("127.0.0.1:0", "[::1]:0", `127.0.0.1:${taken.addr.port}`)),
    Deno.errors.AddrInUse,
  );
  assert.equal(set.endpoints.length, 1);
  assert.ok(await connects(port));
  const abandoned = set.change(listenOf("[::1]:0"));
  const openedPort = abandoned.added[0]!.port;
  abandoned.abandon();
  assert.equal(await connects(openedPort, "::1"), false);
  assert.ok(await connects(port), "an abandoned change leaves the set as it was");
  set.close();
  await Promise.all(set.loops);
});
