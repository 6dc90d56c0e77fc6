/**
 * Attack suite of the HTTP proxy front door (in process, loopback): request smuggling
 * (Content-Length with Transfer-Encoding, bad chunk sizes), oversized heads, a slowloris client,
 * authentication bypass attempts, and credentials leaking to the origin. Each attack must end in
 * its error status with the origin never seeing a smuggled request.
 */
import assert from "node:assert/strict";
import {
  connectTo,
  readAll,
  startServer,
  startTestGateway,
  writeAll,
} from "../integration/_fixtures.ts";
import { field, httpReaderOf, readResponse } from "../integration/_http_client.ts";
import { type SeenRequest, startHttpOrigin } from "../integration/_http_origin.ts";

const text = (s: string) => new TextEncoder().encode(s);

function yaml(extra = ""): string {
  return `listen:
  - { address: "127.0.0.1:0", protocol: http }
resolver:
  hosts:
    origin.test.example: ["127.0.0.1"]
${extra}`;
}

/** Sends `request` on a new connection; returns the status and everything after it. */
async function send(gw: ReturnType<typeof startTestGateway>, request: string) {
  const conn = await connectTo(gw.endpoint(4));
  await writeAll(conn, text(request));
  const response = await readResponse(httpReaderOf(conn));
  conn.close();
  return response;
}

Deno.test("http attack: Content-Length with Transfer-Encoding is 400 and smuggles nothing", async () => {
  await using origin = startHttpOrigin("127.0.0.1", "O");
  await using gw = startTestGateway(yaml());
  const url = `http://origin.test.example:${origin.port}`;
  for (
    const framing of [
      "Content-Length: 47\r\nTransfer-Encoding: chunked",
      "Transfer-Encoding: chunked\r\nContent-Length: 47",
      "Content-Length: 47\r\nTransfer-Encoding: identity, chunked",
    ]
  ) {
    const response = await send(
      gw,
      `POST ${url}/a HTTP/1.1\r\n${framing}\r\n\r\n0\r\n\r\nGET ${url}/smuggled HTTP/1.1\r\n\r\n`,
    );
    assert.equal(response.status, 400, framing);
    assert.match(response.body, /Content-Length and Transfer-Encoding/);
  }
  assert.deepEqual(origin.seen, [], "the origin saw no request at all");
});

Deno.test("http attack: bad chunk sizes end the request with 400, nothing smuggled", async () => {
  await using origin = startHttpOrigin("127.0.0.1", "O");
  await using gw = startTestGateway(yaml());
  const url = `http://origin.test.example:${origin.port}`;
  for (const size of ["0x5", "5 ", " 5", "-5", "+5", "5\n", "fffffffffffffffff"]) {
    const response = await send(
      gw,
      `POST ${url}/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n${size}\r\nhello\r\n0\r\n\r\n` +
        `GET ${url}/smuggled HTTP/1.1\r\n\r\n`,
    );
    assert.equal(response.status, 400, JSON.stringify(size));
    assert.match(response.body, /chunk/);
  }
  assert.ok(!origin.seen.some((r: SeenRequest) => r.target === "/smuggled"));
});

Deno.test("http attack: oversized request lines and header sections are refused (414, 431)", async () => {
  await using origin = startHttpOrigin("127.0.0.1", "O");
  await using gw = startTestGateway(yaml());
  const url = `http://origin.test.example:${origin.port}`;
  assert.equal((await send(gw, `GET ${url}/${"a".repeat(10_000)} HTTP/1.1\r\n\r\n`)).status, 414);
  const big = Array.from({ length: 80 }, (_, i) => `X-F${i}: ${"v".repeat(1000)}\r\n`).join("");
  assert.equal((await send(gw, `GET ${url}/ HTTP/1.1\r\n${big}\r\n`)).status, 431);
  assert.equal(
    (await send(gw, `GET ${url}/ HTTP/1.1\r\nX: ${"v".repeat(9000)}\r\n\r\n`)).status,
    431,
  );
  assert.equal((await send(gw, `GET ${url}/ HTTP/1.1\r\nX: a\r\n  folded\r\n\r\n`)).status, 400);
  assert.deepEqual(origin.seen, []);
});

Deno.test("http attack: a slowloris head is cut off by the header timeout with 408", async () => {
  await using gw = startTestGateway(yaml("timeouts: { handshake: 0.3 }\n"));
  const conn = await connectTo(gw.endpoint(4));
  const answer = readAll(conn);
  let done = false;
  answer.finally(() => done = true);
  await writeAll(conn, text("GET http://origin.test.example/ HTTP/1.1\r\n"));
  // One header line every 50 ms keeps every single read short; only a deadline on the whole
  // head ends it. Bounded: 400 lines (20 s) if the gateway never cut it off.
  let sent = 0;
  for (; sent < 400 && !done; sent++) {
    try {
      await writeAll(conn, text(`X-Slow-${sent}: 1\r\n`));
    } catch {
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const received = new TextDecoder().decode(await answer.catch(() => new Uint8Array(0)));
  conn.close();
  assert.ok(sent < 400, "the gateway kept reading a head that never ended");
  assert.match(received, /^HTTP\/1\.1 408 Request Timeout\r\n/);
});

Deno.test("http attack: authentication cannot be skipped, swapped or leaked on a kept connection", async () => {
  await using origin = startHttpOrigin("127.0.0.1", "O");
  await using gw = startTestGateway(
    yaml(
      "auth:\n  users:\n    - { name: alice, password: change-me }\n" +
        "    - { name: bob, password: other-pass }\n",
    ),
  );
  const url = `http://origin.test.example:${origin.port}`;
  const alice = `Proxy-Authorization: Basic ${btoa("alice:change-me")}\r\n`;
  // 1. Authenticated once, then a request without credentials on the same connection.
  {
    const conn = await connectTo(gw.endpoint(4));
    const reader = httpReaderOf(conn);
    await writeAll(conn, text(`GET ${url}/ok HTTP/1.1\r\n${alice}\r\n`));
    const ok = await readResponse(reader);
    assert.equal(ok.status, 200);
    const seen: SeenRequest = JSON.parse(ok.body);
    assert.equal(field(seen.fields, "proxy-authorization"), undefined, "credentials leaked");
    await writeAll(conn, text(`GET ${url}/no-credentials HTTP/1.1\r\n\r\n`));
    assert.equal((await readResponse(reader)).status, 407);
    conn.close();
  }
  // 2. Authenticated, then another user's wrong password on the same connection.
  {
    const conn = await connectTo(gw.endpoint(4));
    const reader = httpReaderOf(conn);
    await writeAll(conn, text(`GET ${url}/ok HTTP/1.1\r\n${alice}\r\n`));
    assert.equal((await readResponse(reader)).status, 200);
    await writeAll(
      conn,
      text(`GET ${url}/swap HTTP/1.1\r\nProxy-Authorization: Basic ${btoa("bob:wrong")}\r\n\r\n`),
    );
    assert.equal((await readResponse(reader)).status, 407);
    conn.close();
  }
  // 3. Origin credentials are not proxy credentials; doubled or malformed ones are refused.
  assert.equal(
    (await send(
      gw,
      `GET ${url}/ HTTP/1.1\r\nAuthorization: Basic ${btoa("alice:change-me")}\r\n\r\n`,
    ))
      .status,
    407,
  );
  assert.equal((await send(gw, `GET ${url}/ HTTP/1.1\r\n${alice}${alice}\r\n`)).status, 400);
  assert.equal(
    (await send(gw, `GET ${url}/ HTTP/1.1\r\nProxy-Authorization: Digest x\r\n\r\n`)).status,
    400,
  );
  assert.deepEqual(origin.seen.map((r) => r.target), ["/ok", "/ok"]);
});

Deno.test("http attack: failed proxy logins count toward the same failed-login limit (429)", async () => {
  await using gw = startTestGateway(
    yaml(
      "auth:\n  users:\n    - { name: alice, password: change-me }\n" +
        "limits: { auth_failures_per_minute: 2 }\n",
    ),
  );
  const wrong = `Proxy-Authorization: Basic ${btoa("alice:nope")}\r\n`;
  const statuses: number[] = [];
  for (let i = 0; i < 4; i++) {
    // Over the limit, the gateway closes at accept (as for SOCKS) or answers 429: status 0
    // stands for the close.
    statuses.push(
      await send(gw, `CONNECT 127.0.0.1:9 HTTP/1.1\r\n${wrong}\r\n`).then((r) => r.status, () => 0),
    );
  }
  assert.deepEqual(statuses.slice(0, 2), [407, 407]);
  assert.ok(statuses.slice(2).every((s) => s === 429 || s === 0), `statuses ${statuses}`);
});

Deno.test("http attack: a server that never answers, or stalls its body, gets 504 or a close, not a hang", async () => {
  const stalled: Deno.TcpConn[] = [];
  // Reads the request, then: for /silent nothing at all; for /stall a head and half a body.
  await using server = startServer("127.0.0.1", async (conn) => {
    stalled.push(conn);
    const reader = httpReaderOf(conn);
    const line = await reader.readLine(8000, 400);
    while ((await reader.readLine(8000, 400)) !== "") { /* fields */ }
    if (line?.includes("/stall")) {
      await writeAll(conn, text("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf"));
    }
    await reader.readSome(1); // until the gateway gives up and closes
  });
  await using gw = startTestGateway(yaml("timeouts: { idle: 0.3 }\n"));
  const url = `http://origin.test.example:${server.port}`;
  // A guard so that a regression fails instead of hanging the suite.
  const guard = AbortSignal.timeout(20_000);
  guard.addEventListener("abort", () => {
    for (const conn of stalled) {
      try {
        conn.close();
      } catch { /* closed */ }
    }
  });
  const silent = await connectTo(gw.endpoint(4));
  guard.addEventListener("abort", () => silent.close());
  await writeAll(silent, text(`GET ${url}/silent HTTP/1.1\r\n\r\n`));
  const response = await readResponse(httpReaderOf(silent));
  silent.close();
  assert.equal(response.status, 504);
  assert.match(response.body, /nothing from the server/);

  const stall = await connectTo(gw.endpoint(4));
  guard.addEventListener("abort", () => stall.close());
  await writeAll(stall, text(`GET ${url}/stall HTTP/1.1\r\n\r\n`));
  const all = new TextDecoder().decode(await readAll(stall).catch(() => new Uint8Array(0)));
  stall.close();
  assert.ok(!guard.aborted, "the gateway kept a stalled exchange open");
  assert.match(all, /^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nhalf$/);
});
