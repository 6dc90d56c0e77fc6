/**
 * The HTTP proxy front door in process: CONNECT tunnels, absolute-form requests with keep-alive
 * and pipelining, header rewriting, chunked bodies both ways, authentication, the mixed
 * listener, and the error statuses, against loopback servers.
 */
import assert from "node:assert/strict";
import { connectTo, echo, readAll, startServer, startTestGateway, writeAll } from "./_fixtures.ts";
import { parseConfig } from "../../gateway/config/load.ts";
import { startGateway } from "../../gateway/mod.ts";
import { Resolver } from "../../resolver/mod.ts";
import { field, httpReaderOf, readResponse } from "./_http_client.ts";
import { type SeenRequest, startHttpOrigin } from "./_http_origin.ts";

const HOSTS = `resolver:
  hosts:
    v4.test.example: ["127.0.0.1"]
    v6.test.example: ["::1"]
`;
const text = (s: string) => new TextEncoder().encode(s);

function gatewayYaml(protocol: string, extra = ""): string {
  return `listen:
  - { address: "127.0.0.1:0", protocol: ${protocol} }
  - { address: "[::1]:0", protocol: ${protocol} }
${HOSTS}${extra}`;
}

Deno.test("http: CONNECT by name opens a tunnel through the core relay", async () => {
  await using server = startServer("::1", echo);
  await using gw = startTestGateway(gatewayYaml("http"));
  const conn = await connectTo(gw.endpoint(4));
  await writeAll(
    conn,
    text(`CONNECT v6.test.example:${server.port} HTTP/1.1\r\nHost: v6.test.example\r\n\r\nearly`),
  );
  const reader = httpReaderOf(conn);
  const line = await reader.readLine(1000, 400);
  assert.equal(line, "HTTP/1.1 200 Connection established");
  assert.equal(await reader.readLine(1000, 400), "");
  // While it runs, the tunnel counts as a live CONNECT relay, v4 client to v6 server.
  assert.match(
    gw.gateway.metrics.render(),
    /dualgate_active_families\{command="connect",families="v4→v6"\} 1/,
  );
  await writeAll(conn, text(" data"));
  await conn.closeWrite();
  const rest = new TextDecoder().decode(
    new Uint8Array([...reader.takeBuffered(), ...await readAll(conn)]),
  );
  assert.equal(rest, "early data", "bytes pipelined after the CONNECT head are relayed first");
  conn.close();
  await gw.gateway.stop(0);
  const record = gw.records.find((r) => r.command === "http-connect")!;
  assert.equal(record.outcome, "relayed");
  assert.equal(record.used?.address.family, 6);
});

Deno.test("http: pipelined absolute-form requests are answered in order; a new host is a new upstream", async () => {
  await using a = startHttpOrigin("127.0.0.1", "A");
  await using gw = startTestGateway(gatewayYaml("http"));
  await using b = startHttpOrigin("::1", "B");
  const conn = await connectTo(gw.endpoint(6));
  const get = (host: string, port: number, path: string, extra = "") =>
    `GET http://${host}:${port}${path} HTTP/1.1\r\nHost: wrong.example\r\n${extra}\r\n`;
  // Three requests in one write: A, B (other host, other family), then A again.
  await writeAll(
    conn,
    text(
      get("v4.test.example", a.port, "/one?x=1", "Connection: X-Secret\r\nX-Secret: s\r\n") +
        get("v6.test.example", b.port, "/two/chunked") +
        get(
          "v4.test.example",
          a.port,
          "/three",
          "Proxy-Connection: keep-alive\r\nTE: trailers\r\n",
        ),
    ),
  );
  const reader = httpReaderOf(conn);
  const answers: SeenRequest[] = [];
  for (let i = 0; i < 3; i++) {
    const response = await readResponse(reader);
    assert.equal(response.status, 200);
    assert.equal(field(response.fields, "via"), "1.1 dualgate");
    assert.equal(field(response.fields, "x-hop"), undefined, "Connection-listed field removed");
    assert.equal(field(response.fields, "keep-alive"), undefined);
    answers.push(JSON.parse(response.body));
  }
  conn.close();
  assert.deepEqual(answers.map((r) => [r.origin, r.target]), [
    ["A", "/one?x=1"],
    ["B", "/two/chunked"],
    ["A", "/three"],
  ]);
  const first = answers[0]!;
  assert.equal(field(first.fields, "host"), `v4.test.example:${a.port}`, "Host from the URI");
  assert.equal(field(first.fields, "x-secret"), undefined);
  assert.equal(field(first.fields, "connection"), undefined);
  assert.equal(field(first.fields, "via"), "1.1 dualgate");
  assert.equal(field(answers[2]!.fields, "proxy-connection"), undefined);
  assert.equal(field(answers[2]!.fields, "te"), undefined);
});

Deno.test("http: chunked and Content-Length request bodies are streamed to the origin", async () => {
  await using origin = startHttpOrigin("127.0.0.1", "A");
  await using gw = startTestGateway(gatewayYaml("http"));
  const conn = await connectTo(gw.endpoint(4));
  const url = `http://v4.test.example:${origin.port}/post`;
  const reader = httpReaderOf(conn);
  await writeAll(conn, text(`POST ${url} HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n`));
  for (const piece of ["hello", " ", "world"]) {
    await writeAll(conn, text(`${piece.length.toString(16)}\r\n${piece}\r\n`));
  }
  await writeAll(conn, text("0\r\n\r\n"));
  const chunked: SeenRequest = JSON.parse((await readResponse(reader)).body);
  assert.equal(chunked.bodyLength, 11);
  assert.equal(field(chunked.fields, "transfer-encoding"), "chunked");
  await writeAll(conn, text(`PUT ${url} HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world`));
  const sized: SeenRequest = JSON.parse((await readResponse(reader)).body);
  assert.equal(sized.bodySha256, chunked.bodySha256);
  conn.close();
});

Deno.test("http: an HTTP/1.0 client gets a chunked response decoded and the connection closed", async () => {
  await using origin = startHttpOrigin("127.0.0.1", "A");
  await using gw = startTestGateway(gatewayYaml("http"));
  const conn = await connectTo(gw.endpoint(4));
  await writeAll(
    conn,
    text(`GET http://v4.test.example:${origin.port}/chunked HTTP/1.0\r\n\r\n`),
  );
  const all = new TextDecoder().decode(await readAll(conn));
  conn.close();
  assert.match(all, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(all, /\r\nConnection: close\r\n/);
  assert.doesNotMatch(all, /Transfer-Encoding/i);
  const body = all.slice(all.indexOf("\r\n\r\n") + 4);
  assert.equal(JSON.parse(body).origin, "A");
});

Deno.test("http: a mixed listener serves SOCKS5 and HTTP on one port", async () => {
  await using server = startServer("127.0.0.1", echo);
  await using gw = startTestGateway(gatewayYaml("mixed"));
  const socks = await connectTo(gw.endpoint(4));
  await writeAll(
    socks,
    Uint8Array.of(5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, server.port >> 8, server.port & 255),
  );
  const reply = new Uint8Array(12);
  let got = 0;
  while (got < 12) got += (await socks.read(reply.subarray(got)))!;
  assert.deepEqual([...reply.subarray(0, 4)], [5, 0, 5, 0]);
  socks.close();
  const http = await connectTo(gw.endpoint(4));
  await writeAll(http, text(`CONNECT 127.0.0.1:${server.port} HTTP/1.1\r\n\r\n`));
  assert.equal(await httpReaderOf(http).readLine(1000, 400), "HTTP/1.1 200 Connection established");
  http.close();
});

Deno.test("http: a mixed listener relays data a SOCKS client pipelined in a long first segment", async () => {
  await using server = startServer("127.0.0.1", echo);
  await using gw = startTestGateway(gatewayYaml("mixed"));
  const conn = await connectTo(gw.endpoint(4));
  // Greeting, CONNECT and 2 KiB of data in one write: the sniffed first segment is longer than
  // the handshake reader's usual read-ahead, and none of it may be lost.
  const data = Uint8Array.from({ length: 2048 }, (_, i) => i % 251);
  const head = [5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, server.port >> 8, server.port & 255];
  await writeAll(conn, Uint8Array.from([...head, ...data]));
  const expected = 12 + data.length;
  const got = new Uint8Array(expected);
  let n = 0;
  // Lost bytes would leave the echo waiting forever: give up after 5 s, and fail.
  const deadline = setTimeout(() => conn.close(), 5000);
  try {
    while (n < expected) {
      const read = await conn.read(got.subarray(n));
      if (read === null) break;
      n += read;
    }
  } catch { /* closed at the deadline */ }
  clearTimeout(deadline);
  try {
    conn.close();
  } catch { /* closed at the deadline */ }
  assert.equal(n, expected, "reply and every pipelined byte came back");
  assert.deepEqual([...got.subarray(0, 4)], [5, 0, 5, 0]);
  assert.deepEqual(got.subarray(12), data);
});

Deno.test("http: errors are 400, 403, 502 with a one-line body and a close", async () => {
  await using gw = startTestGateway(
    gatewayYaml(
      "http",
      'rules:\n  - { action: deny, to: ["v6.test.example"] }\n  - { action: allow }\n',
    ),
  );
  const closed = startServer("127.0.0.1", () => Promise.resolve());
  const port = closed.port;
  await closed[Symbol.asyncDispose]();
  const cases: [string, number, RegExp][] = [
    ["GET /relative HTTP/1.1\r\n\r\n", 400, /not a proxy request/],
    ["CONNECT v6.test.example:443 HTTP/1.1\r\n\r\n", 403, /denied by rules\[0\]/],
    [`CONNECT 127.0.0.1:${port} HTTP/1.1\r\n\r\n`, 502, /refused/i],
    [`GET http://v4.test.example:${port}/ HTTP/1.1\r\n\r\n`, 502, /refused/i],
  ];
  for (const [request, status, why] of cases) {
    const conn = await connectTo(gw.endpoint(4));
    await writeAll(conn, text(request));
    const response = await readResponse(httpReaderOf(conn));
    conn.close();
    assert.equal(response.status, status, request);
    assert.equal(field(response.fields, "connection"), "close");
    assert.match(response.body, why);
    assert.equal(response.body.trimEnd().split("\n").length, 1);
  }
});

Deno.test("http: Proxy-Authorization Basic maps to auth.users; 407 names the realm", async () => {
  await using server = startServer("127.0.0.1", echo);
  await using gw = startTestGateway(
    gatewayYaml("http", "auth:\n  users:\n    - { name: alice, password: change-me }\n"),
  );
  const ask = async (auth: string) => {
    const conn = await connectTo(gw.endpoint(4));
    await writeAll(conn, text(`CONNECT 127.0.0.1:${server.port} HTTP/1.1\r\n${auth}\r\n`));
    const reader = httpReaderOf(conn);
    const line = await reader.readLine(1000, 400);
    const fields: string[] = [];
    for (let l = await reader.readLine(1000, 400); l; l = await reader.readLine(1000, 400)) {
      fields.push(l!);
    }
    conn.close();
    return { line, fields };
  };
  const none = await ask("");
  assert.equal(none.line, "HTTP/1.1 407 Proxy Authentication Required");
  assert.ok(none.fields.includes('Proxy-Authenticate: Basic realm="dualgate"'));
  const wrong = await ask(`Proxy-Authorization: Basic ${btoa("alice:wrong")}\r\n`);
  assert.equal(wrong.line, "HTTP/1.1 407 Proxy Authentication Required");
  const right = await ask(`Proxy-Authorization: Basic ${btoa("alice:change-me")}\r\n`);
  assert.equal(right.line, "HTTP/1.1 200 Connection established");
  await gw.gateway.stop(0);
  assert.equal(gw.records.find((r) => r.outcome === "relayed")?.user, "alice");
});

Deno.test("http: a kept upstream the server closed meanwhile is dialed anew for a body-less request", async () => {
  let served = 0;
  // Answers one request per connection as if it kept it, then closes (its keep-alive timeout).
  await using server = startServer("127.0.0.1", async (conn) => {
    const reader = httpReaderOf(conn);
    const head = await reader.readLine(8000, 400);
    while ((await reader.readLine(8000, 400)) !== "") { /* fields */ }
    served++;
    const body = `served ${served}: ${head}`;
    await writeAll(conn, text(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`));
  });
  await using gw = startTestGateway(gatewayYaml("http"));
  const conn = await connectTo(gw.endpoint(4));
  const reader = httpReaderOf(conn);
  for (const path of ["/first", "/second"]) {
    await writeAll(conn, text(`GET http://127.0.0.1:${server.port}${path} HTTP/1.1\r\n\r\n`));
    const response = await readResponse(reader);
    assert.equal(response.status, 200, response.body);
    assert.match(response.body, new RegExp(`GET ${path} `));
  }
  conn.close();
  assert.equal(served, 2);
});

Deno.test("http: pipelined requests with bodies keep their boundaries", async () => {
  await using origin = startHttpOrigin("127.0.0.1", "A");
  await using gw = startTestGateway(gatewayYaml("http"));
  const conn = await connectTo(gw.endpoint(4));
  const url = `http://v4.test.example:${origin.port}`;
  await writeAll(
    conn,
    text(
      `POST ${url}/a HTTP/1.1\r\nContent-Length: 5\r\n\r\nGET /` +
        `POST ${url}/b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nGET\r\n0\r\n\r\n` +
        `GET ${url}/c HTTP/1.1\r\n\r\n`,
    ),
  );
  const reader = httpReaderOf(conn);
  const seen: SeenRequest[] = [];
  for (let i = 0; i < 3; i++) seen.push(JSON.parse((await readResponse(reader)).body));
  conn.close();
  assert.deepEqual(seen.map((r) => [r.method, r.target, r.bodyLength]), [
    ["POST", "/a", 5],
    ["POST", "/b", 3],
    ["GET", "/c", 0],
  ]);
  assert.equal(origin.seen.length, 3);
});

Deno.test("http: CONNECT and forwarded requests leave from the same egress pool as SOCKS", async () => {
  // Writes back the source address it saw (as a complete HTTP response for the forwarded case).
  await using server = startServer("127.0.0.1", async (conn) => {
    const seen = (conn.remoteAddr as Deno.NetAddr).hostname;
    const reader = httpReaderOf(conn);
    const line = await reader.readLine(8000, 400);
    if (line?.startsWith("GET ")) {
      while ((await reader.readLine(8000, 400)) !== "") { /* fields */ }
      await writeAll(
        conn,
        text(`HTTP/1.1 200 OK\r\nContent-Length: ${seen.length}\r\n\r\n${seen}`),
      );
    } else {
      await writeAll(conn, text(seen));
    }
  });
  await using gw = startTestGateway(gatewayYaml(
    "http",
    `auth:
  users:
    - { name: alice, password: pw, egress: ["127.0.0.7"] }
routes:
  - to: ["*"]
    egress: ["127.0.0.2"]
`,
  ));
  const auth = `Proxy-Authorization: Basic ${btoa("alice:pw")}\r\n`;
  const tunnel = await connectTo(gw.endpoint(4));
  await writeAll(tunnel, text(`CONNECT 127.0.0.1:${server.port} HTTP/1.1\r\n${auth}\r\n`));
  const reader = httpReaderOf(tunnel);
  assert.equal(await reader.readLine(1000, 400), "HTTP/1.1 200 Connection established");
  assert.equal(await reader.readLine(1000, 400), "");
  await writeAll(tunnel, text("hello\r\n"));
  const body = new TextDecoder().decode(
    new Uint8Array([...reader.takeBuffered(), ...await readAll(tunnel)]),
  );
  tunnel.close();
  assert.equal(body, "127.0.0.7", "the user's pool wins over the route's");

  const forward = await connectTo(gw.endpoint(4));
  await writeAll(forward, text(`GET http://127.0.0.1:${server.port}/ HTTP/1.1\r\n${auth}\r\n`));
  const response = await readResponse(httpReaderOf(forward));
  forward.close();
  assert.equal(response.body, "127.0.0.7");
});

Deno.test("http: a reload that removes the user closes that user's CONNECT tunnel", async () => {
  await using server = startServer("127.0.0.1", echo);
  const users = (names: string[]) =>
    `listen: [{ address: "127.0.0.1:0", protocol: http }]\nauth:\n  users:\n` +
    names.map((n) => `    - { name: ${n}, password: pw }\n`).join("");
  let yaml = users(["alice", "bob"]);
  const config = parseConfig(yaml);
  const resolver = new Resolver({ ...config.resolver, hostsFile: "" }, {
    query: () => Promise.resolve([]),
    queryPtr: () => Promise.resolve([]),
  });
  const gateway = startGateway(config, {
    resolver,
    loadConfig: () => Promise.resolve(parseConfig(yaml)),
  });
  try {
    const tunnel = await connectTo(gateway.endpoints[0]!);
    // A guard so that a regression fails instead of hanging.
    let guarded = false;
    const guard = setTimeout(() => {
      guarded = true;
      tunnel.close();
    }, 20_000);
    await writeAll(
      tunnel,
      text(
        `CONNECT 127.0.0.1:${server.port} HTTP/1.1\r\n` +
          `Proxy-Authorization: Basic ${btoa("alice:pw")}\r\n\r\n`,
      ),
    );
    const reader = httpReaderOf(tunnel);
    assert.equal(await reader.readLine(1000, 400), "HTTP/1.1 200 Connection established");
    assert.equal(await reader.readLine(1000, 400), "");
    yaml = users(["bob"]);
    await gateway.reload();
    const rest = await readAll(tunnel).catch(() => new Uint8Array(0));
    clearTimeout(guard);
    if (!guarded) tunnel.close();
    assert.equal(rest.length, 0);
    assert.ok(!guarded, "the tunnel outlived its user's removal");
  } finally {
    await gateway.stop(0);
  }
});
