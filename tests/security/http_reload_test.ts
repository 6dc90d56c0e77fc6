/**
 * Hot reload against the HTTP proxy front door: a user removed from `auth.users` loses the
 * CONNECT tunnel and the kept-alive forwarding connection it opened, as a SOCKS session does.
 */
import assert from "node:assert/strict";
import { parseConfig } from "../../gateway/config/load.ts";
import {
  connectTo,
  echo,
  startServer,
  startTestGateway,
  writeAll,
} from "../integration/_fixtures.ts";
import { httpReaderOf, readResponse } from "../integration/_http_client.ts";
import { startHttpOrigin } from "../integration/_http_origin.ts";

const text = (s: string) => new TextEncoder().encode(s);

function yaml(users: string): string {
  return `listen:
  - { address: "127.0.0.1:0", protocol: http }
resolver:
  hosts:
    origin.test.example: ["127.0.0.1"]
auth:
  users:
${users}`;
}

const ALICE = "    - { name: alice, password: change-me }\n";
const BOB = "    - { name: bob, password: other-pass }\n";
const LOGIN = `Proxy-Authorization: Basic ${btoa("alice:change-me")}\r\n`;

/** True when `conn` was closed by the gateway (a write or the read fails, or reads EOF). */
async function closedByGateway(conn: Deno.TcpConn): Promise<boolean> {
  try {
    await writeAll(conn, text("ping"));
    return await conn.read(new Uint8Array(16)) === null;
  } catch {
    return true;
  }
}

Deno.test("http attack: a reload that removes a user closes its CONNECT tunnel and kept connection", async () => {
  await using echoServer = startServer("127.0.0.1", echo);
  await using origin = startHttpOrigin("127.0.0.1", "O");
  let next = yaml(ALICE + BOB);
  await using gw = startTestGateway(next, { loadConfig: () => Promise.resolve(parseConfig(next)) });

  const tunnel = await connectTo(gw.endpoint(4));
  const tunnelReader = httpReaderOf(tunnel);
  await writeAll(
    tunnel,
    text(`CONNECT origin.test.example:${echoServer.port} HTTP/1.1\r\n${LOGIN}\r\n`),
  );
  assert.equal((await readResponse(tunnelReader, "HEAD")).status, 200);
  await writeAll(tunnel, text("hi"));
  const echoed = new Uint8Array(2);
  assert.equal(await tunnel.read(echoed), 2);

  const kept = await connectTo(gw.endpoint(4));
  await writeAll(
    kept,
    text(`GET http://origin.test.example:${origin.port}/a HTTP/1.1\r\n${LOGIN}\r\n`),
  );
  assert.equal((await readResponse(httpReaderOf(kept))).status, 200);

  try {
    next = yaml(BOB);
    const outcome = await gw.gateway.reload();
    assert.equal(outcome.result, "accepted");
    assert.equal(outcome.closed, 2, outcome.message);
    assert.ok(await closedByGateway(tunnel), "alice's tunnel outlived her removal");
  } finally {
    tunnel.close();
    kept.close();
  }
});
