import assert from "node:assert/strict";
import { endpointFromNetAddr, parseIp, toHostname } from "../net/address.ts";
import { standInRelay, tcpPair } from "./testing.ts";
import { createDataChannelBroker } from "./broker.ts";
import { ExpectationRegistry } from "./expectations.ts";
import type { BrokerDeps, TranslatorContext } from "./types.ts";

async function setup(overrides: Partial<BrokerDeps> = {}) {
  const [a, b] = await tcpPair();
  const ctx: TranslatorContext = {
    id: "b",
    client: endpointFromNetAddr(b.remoteAddr),
    clientSideLocal: endpointFromNetAddr(b.localAddr),
    server: endpointFromNetAddr(a.remoteAddr),
    serverSideLocal: endpointFromNetAddr(a.localAddr),
    target: { address: { family: "name", name: "x.example" }, port: 21 },
    user: null,
  };
  const broker = createDataChannelBroker(ctx, {
    dial: (endpoint, { signal }) =>
      Deno.connect({ hostname: toHostname(endpoint.address), port: endpoint.port, signal }),
    check: () => null,
    refused: () => {},
    relay: standInRelay,
    expectations: new ExpectationRegistry(),
    ...overrides,
  });
  return { ctx, broker, [Symbol.dispose]: () => (a.close(), b.close()) };
}

Deno.test("DataChannelBroker.listen() accepts the expected peer once, on a port from the range", async () => {
  using s = await setup();
  const listener = await s.broker.listen({
    side: "client",
    peer: parseIp("127.0.0.1")!,
    ports: { from: 40000, to: 40100 },
    timeoutMs: 2000,
    signal: new AbortController().signal,
  });
  assert.ok(listener.endpoint.port >= 40000 && listener.endpoint.port <= 40100);
  const [conn, accepted] = await Promise.all([
    Deno.connect({ hostname: "127.0.0.1", port: listener.endpoint.port }),
    listener.accept(),
  ]);
  conn.close();
  accepted.close();
  await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port: listener.endpoint.port }));
});

Deno.test("DataChannelBroker.listen() refuses other peers and times out", async () => {
  using s = await setup();
  const listener = await s.broker.listen({
    side: "client",
    peer: parseIp("192.0.2.1")!,
    ports: { from: 0, to: 0 },
    timeoutMs: 200,
    signal: new AbortController().signal,
  });
  const accepting = listener.accept();
  const intruder = await Deno.connect({ hostname: "127.0.0.1", port: listener.endpoint.port });
  const buffer = new Uint8Array(1);
  assert.equal(await intruder.read(buffer), null); // closed by the gateway at once
  intruder.close();
  await assert.rejects(accepting, /Cannot accept data connection: timed out/);
});

Deno.test("DataChannelBroker.listen() with a peer filter takes the first peer it accepts", async () => {
  using s = await setup();
  const seen: number[] = [];
  let refuseNext = true;
  const listener = await s.broker.listen({
    side: "client",
    peer: (peer) => {
      seen.push(peer.port);
      const take = !refuseNext;
      refuseNext = false;
      return take;
    },
    ports: { from: 0, to: 0 },
    timeoutMs: 2000,
    signal: new AbortController().signal,
  });
  const accepting = listener.accept();
  const refused = await Deno.connect({ hostname: "127.0.0.1", port: listener.endpoint.port });
  assert.equal(await refused.read(new Uint8Array(1)), null); // closed at once
  refused.close();
  const taken = await Deno.connect({ hostname: "127.0.0.1", port: listener.endpoint.port });
  const accepted = await accepting;
  assert.equal(endpointFromNetAddr(accepted.remoteAddr).port, taken.localAddr.port);
  assert.equal(seen.length, 2);
  taken.close();
  accepted.close();
});

Deno.test("DataChannelBroker.listen() closes the listener on abort", async () => {
  using s = await setup();
  const controller = new AbortController();
  const listener = await s.broker.listen({
    side: "server",
    peer: parseIp("127.0.0.1")!,
    ports: { from: 0, to: 0 },
    timeoutMs: 5000,
    signal: controller.signal,
  });
  const accepting = listener.accept();
  controller.abort(new Error("replaced"));
  await assert.rejects(accepting, /replaced/);
});

Deno.test("DataChannelBroker.connect() uses the injected dial with a deadline", async () => {
  const sides: string[] = [];
  using s = await setup({
    dial: (_endpoint, { side, signal }) => {
      sides.push(side);
      return new Promise((_, reject) =>
        signal.addEventListener("abort", () => reject(signal.reason))
      );
    },
  });
  await assert.rejects(
    s.broker.connect(s.ctx.server, {
      side: "server",
      timeoutMs: 50,
      signal: new AbortController().signal,
    }),
    Deno.errors.TimedOut,
  );
  assert.deepEqual(sides, ["server"]);
});

Deno.test("DataChannelBroker.listen() rejects a bad port range", async () => {
  using s = await setup();
  await assert.rejects(
    async () =>
      await s.broker.listen({
        side: "client",
        peer: parseIp("127.0.0.1")!,
        ports: { from: 2000, to: 1000 },
        timeoutMs: 100,
        signal: new AbortController().signal,
      }),
    RangeError,
  );
});

Deno.test("DataChannelBroker.permits() asks the gateway's check and records refusals; refuse() records", async () => {
  const checked: string[] = [];
  const refused: string[] = [];
  using s = await setup({
    check: (endpoint, { side }) => {
      checked.push(`${side} ${endpoint.port}`);
      return endpoint.port === 22 ? "denied by rules" : null;
    },
    refused: (endpoint, { side, reason, label }) =>
      refused.push(`${label} ${side} ${endpoint.port}: ${reason}`),
  });
  const at = (port: number) => ({ address: s.ctx.server.address, port });
  assert.equal(s.broker.permits(at(50000), { side: "server", label: "ftp-data" }), true);
  assert.equal(s.broker.permits(at(22), { side: "server", label: "ftp-data" }), false);
  s.broker.refuse(at(25), { side: "server", label: "ftp-data", reason: "below 1024" });
  assert.deepEqual(checked, ["server 50000", "server 22"]);
  assert.deepEqual(refused, [
    "ftp-data server 22: denied by rules",
    "ftp-data server 25: below 1024",
  ]);
});
