import assert from "node:assert/strict";
import { SocksReplyError } from "../socks5/errors.ts";
import { associateUdpVia, bindVia, connectVia } from "./connect.ts";
import { parseGatewayUrl } from "./gateway_url.ts";
import { startTestSocksServer } from "../tests/helpers/test_socks_server.ts";

const name = (n: string) => ({ family: "name" as const, name: n });

function echoServer() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const done = (async () => {
    for await (const conn of listener) {
      await conn.readable.pipeTo(conn.writable).catch(() => {});
    }
  })();
  return {
    port: listener.addr.port,
    async [Symbol.asyncDispose]() {
      listener.close();
      await done;
    },
  };
}

async function roundTrip(conn: Deno.Conn, text: string): Promise<string> {
  await conn.write(new TextEncoder().encode(text));
  const buffer = new Uint8Array(100);
  const n = await conn.read(buffer);
  return new TextDecoder().decode(buffer.subarray(0, n ?? 0));
}

Deno.test("connectVia() sends the name and fails over to the next gateway", async () => {
  await using echo = await echoServer();
  await using server = startTestSocksServer({ hosts: { "svc.test": "127.0.0.1" } });
  const dead = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const deadPort = dead.addr.port;
  dead.close();
  const gateways = [`socks5://127.0.0.1:${deadPort}`, `socks5://127.0.0.1:${server.port}`]
    .map(parseGatewayUrl);
  const { conn, gateway } = await connectVia(gateways, {
    address: name("svc.test"),
    port: echo.port,
  });
  try {
    assert.equal(gateway.port, server.port);
    assert.equal(await roundTrip(conn, "ping"), "ping");
  } finally {
    conn.close();
  }
  assert.deepEqual(server.requests, [{
    command: 1,
    atyp: "name",
    host: "svc.test",
    port: echo.port,
  }]);
});

Deno.test("connectVia() keeps the gateway's REP and authenticates with RFC 1929", async () => {
  await using server = startTestSocksServer({
    credentials: { username: "alice", password: "change-me" },
    forceReply: { "refused.test": 5 },
  });
  const good = parseGatewayUrl(`socks5://alice:change-me@127.0.0.1:${server.port}`);
  await assert.rejects(
    connectVia([good], { address: name("nowhere.test"), port: 80 }),
    (error: unknown) => error instanceof SocksReplyError && error.reply === 4,
  );
  await assert.rejects(
    connectVia([good], { address: name("refused.test"), port: 80 }),
    (error: unknown) => error instanceof SocksReplyError && error.reply === 5,
  );
  const bad = parseGatewayUrl(`socks5://alice:wrong@127.0.0.1:${server.port}`);
  await assert.rejects(
    connectVia([bad], { address: name("nowhere.test"), port: 80 }),
    /no gateway answered.*refused user "alice"/,
  );
});

Deno.test("connectVia() times out a gateway that never answers", async () => {
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of silent) held.push(conn);
  })();
  try {
    const started = Date.now();
    await assert.rejects(
      connectVia([parseGatewayUrl(`socks5://127.0.0.1:${silent.addr.port}`)], {
        address: name("x.test"),
        port: 1,
      }, { connectTimeoutMs: 200 }),
      AggregateError,
    );
    assert.ok(Date.now() - started < 2000);
  } finally {
    silent.close();
    await accepting;
    for (const conn of held) conn.close();
  }
});

Deno.test("bindVia() reports the bound address, then the peer", async () => {
  await using server = startTestSocksServer();
  const gateways = [parseGatewayUrl(`socks5://127.0.0.1:${server.port}`)];
  const binding = await bindVia(gateways, {
    address: { family: 4, bytes: Uint8Array.of(127, 0, 0, 1) },
    port: 0,
  });
  try {
    const peer = await Deno.connect({ hostname: "127.0.0.1", port: binding.bound.port });
    try {
      const from = await binding.accept();
      assert.equal(from.port, peer.localAddr.port);
      await peer.write(new TextEncoder().encode("hi"));
      const buffer = new Uint8Array(2);
      assert.equal(await binding.conn.read(buffer), 2);
    } finally {
      peer.close();
    }
  } finally {
    binding.conn.close();
  }
  assert.equal(server.requests[0]?.command, 2);
});

Deno.test("associateUdpVia() returns the relay endpoint", async () => {
  await using server = startTestSocksServer();
  const gateways = [parseGatewayUrl(`socks5://127.0.0.1:${server.port}`)];
  const association = await associateUdpVia(gateways, {
    address: { family: 4, bytes: new Uint8Array(4) },
    port: 0,
  });
  association.conn.close();
  assert.equal(association.bound.port, 9);
  assert.equal(server.requests[0]?.command, 3);
});
