import assert from "node:assert/strict";
import { endpointFromNetAddr, type IpEndpoint, parseIp, toHostname } from "../../net/address.ts";
import type { SocksTarget } from "../../socks5/types.ts";
import { LineReader, standInRelay, tcpPair, writeText } from "../testing.ts";
import { createDataChannelBroker } from "../broker.ts";
import { ExpectationRegistry } from "../expectations.ts";
import { runLineSession } from "../line_session.ts";
import type { Side, TranslatorContext } from "../types.ts";
import { ftpOptionsSchema } from "./options.ts";
import { FtpSession } from "./session.ts";

const HOST = { 4: "127.0.0.1", 6: "::1" } as const;
const TARGET_NAME = "ftp.example";

/** A gateway FTP session between a scripted client (family c) and server (family s). */
async function harness(
  clientFamily: 4 | 6,
  serverFamily: 4 | 6,
  options: Record<string, unknown> = {},
) {
  const [client, gatewayClient] = await tcpPair(HOST[clientFamily]);
  const [gatewayServer, server] = await tcpPair(HOST[serverFamily]);
  const target: SocksTarget = { address: { family: "name", name: TARGET_NAME }, port: 21 };
  const ctx: TranslatorContext = {
    id: "t1",
    client: endpointFromNetAddr(gatewayClient.remoteAddr),
    clientSideLocal: endpointFromNetAddr(gatewayClient.localAddr),
    server: {
      ...endpointFromNetAddr(gatewayServer.remoteAddr),
      ...(typeof options.control_port === "number" ? { port: options.control_port } : {}),
    },
    serverSideLocal: endpointFromNetAddr(gatewayServer.localAddr),
    target,
    user: null,
  };
  const expectations = new ExpectationRegistry();
  const dials: string[] = [];
  const refusals: string[] = [];
  /** Ports the stand-in rules deny, per side. */
  const denied = { client: new Set<number>(), server: new Set<number>() };
  const check = (endpoint: IpEndpoint, { side }: { side: Side }) =>
    denied[side].has(endpoint.port) ? "Cannot connect data channel: denied by rules" : null;
  const broker = createDataChannelBroker(ctx, {
    dial: (endpoint, { side, signal }) => {
      dials.push(`${side} ${toHostname(endpoint.address)}`);
      const refusal = check(endpoint, { side });
      if (refusal) return Promise.reject(new Error(refusal));
      return Deno.connect({ hostname: toHostname(endpoint.address), port: endpoint.port, signal });
    },
    check,
    refused: (endpoint, { side, reason, label }) =>
      refusals.push(`${label} ${side} ${endpoint.port}: ${reason}`),
    relay: standInRelay,
    expectations,
  });
  const { control_port: _, ...ftpOptions } = options;
  const parsed = ftpOptionsSchema.parse({
    passive_ports: { from: 0, to: 0 },
    active_ports: { from: 0, to: 0 },
    data_timeout: 2,
    reply_timeout: 1,
    ...ftpOptions,
  });
  const controller = new AbortController();
  const done = runLineSession(new FtpSession(ctx, broker, parsed), gatewayClient, gatewayServer, {
    signal: controller.signal,
    maxLineBytes: 512,
  });
  const c = new LineReader(client);
  const s = new LineReader(server);
  return {
    ctx,
    client,
    server,
    c,
    s,
    expectations,
    dials,
    refusals,
    denied,
    done,
    /** Client sends a command. */
    send: (line: string) => writeText(client, line + "\r\n"),
    /** Server sends a reply. */
    reply: (line: string) => writeText(server, line + "\r\n"),
    async finish() {
      await c.close();
      await s.close();
      return await done;
    },
  };
}

/** A data listener of the fake server (or client), serving `payload` to its one peer. */
function dataServer(hostname: string, payload: string) {
  const listener = Deno.listen({ hostname, port: 0 });
  const served = (async () => {
    const conn = await listener.accept();
    listener.close();
    await writeText(conn, payload);
    conn.close();
  })();
  return { port: listener.addr.port, served };
}

async function readAll(hostname: string, port: number): Promise<string> {
  const conn = await Deno.connect({ hostname, port });
  const reader = new LineReader(conn);
  try {
    return await reader.all();
  } finally {
    await reader.close();
  }
}

function portOf227(line: string): number {
  const numbers = /\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)/.exec(line)!.slice(1).map(Number);
  return numbers[4]! * 256 + numbers[5]!;
}

Deno.test("FtpSession: IPv4 PASV becomes EPSV toward IPv6, answered 227 with a gateway listener", async () => {
  const h = await harness(4, 6);
  await h.reply("220 ready");
  assert.equal(await h.c.line(), "220 ready");
  await h.send("PASV");
  assert.equal(await h.s.line(), "EPSV");
  const data = dataServer("::1", "file contents");
  await h.reply(`229 Entering Extended Passive Mode (|||${data.port}|)`);
  const answer = (await h.c.line())!;
  assert.match(answer, /^227 Entering Passive Mode \(127,0,0,1,\d+,\d+\)\.$/);
  assert.equal(await readAll("127.0.0.1", portOf227(answer)), "file contents");
  await data.served;
  assert.deepEqual(h.dials, ["server ::1"]);
  await h.finish();
});

Deno.test("FtpSession: EPSV refused toward IPv6 falls back to LPSV, never PASV; 228 to EPSV is accepted", async () => {
  const h = await harness(4, 6);
  await h.send("EPSV");
  assert.equal(await h.s.line(), "EPSV");
  await h.reply("500 Unknown command.");
  assert.equal(await h.s.line(), "LPSV");
  const data = dataServer("::1", "via lpsv");
  const p = data.port;
  await h.reply(
    `228 Entering Long Passive Mode (6,16,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,2,${p >> 8},${p & 255})`,
  );
  const answer = (await h.c.line())!;
  const port = Number(/\(\|\|\|(\d+)\|\)/.exec(answer)![1]);
  assert.equal(await readAll("127.0.0.1", port), "via lpsv");
  await data.served;
  await h.finish();
});

Deno.test("FtpSession: when every passive form fails the server's last reply is relayed", async () => {
  const h = await harness(4, 6);
  await h.send("LPSV");
  assert.equal(await h.s.line(), "EPSV");
  await h.reply("425 You cannot use PASV on IPv6 connections.");
  assert.equal(await h.s.line(), "LPSV");
  await h.reply("500 LPSV not understood");
  assert.equal(await h.c.line(), "500 LPSV not understood");
  await h.send("NOOP");
  assert.equal(await h.s.line(), "NOOP");
  await h.reply("200 ok");
  assert.equal(await h.c.line(), "200 ok");
  await h.finish();
});

Deno.test("FtpSession: a SOCKS CONNECT to the destination name and advertised port is routed to the server", async () => {
  const h = await harness(4, 6);
  await h.send("PASV");
  await h.s.line();
  const data = dataServer("::1", "through socks");
  // A broken 227 address must never be used: only its port (and the control peer).
  await h.reply(`227 Entering Passive Mode (0,0,0,0,${data.port >> 8},${data.port & 255}).`);
  // (That 227 came after EPSV: accepted as a passive reply.)
  const port = portOf227((await h.c.line())!);
  const client = { address: parseIp("127.0.0.1")!, user: null };
  assert.equal(
    h.expectations.take(client, { address: { family: "name", name: "other.example" }, port }),
    undefined,
  );
  const expected = h.expectations.take(client, {
    address: { family: "name", name: "FTP.example" },
    port,
  });
  assert.ok(expected);
  const serverConn = await expected.open(AbortSignal.timeout(2000));
  const reader = new LineReader(serverConn);
  assert.equal(await reader.all(), "through socks");
  await reader.close();
  await data.served;
  // Taken once; the gateway listener was closed when the expectation won.
  assert.equal(
    h.expectations.take(client, { address: { family: "name", name: TARGET_NAME }, port }),
    undefined,
  );
  await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port }));
  await h.finish();
});

Deno.test("FtpSession: IPv4 PORT becomes EPRT with a gateway IPv6 listener, then LPRT on refusal", async () => {
  const h = await harness(4, 6);
  using clientData = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const pc = clientData.addr.port;
  await h.send(`PORT 127,0,0,1,${pc >> 8},${pc & 255}`);
  const eprt = (await h.s.line())!;
  const match = /^EPRT \|2\|::1\|(\d+)\|$/.exec(eprt);
  assert.ok(match, eprt);
  await h.reply("500 Illegal EPRT command.");
  const lprt = (await h.s.line())!;
  assert.match(lprt, /^LPRT 6,16,(0,){15}1,2,\d+,\d+$/);
  await h.reply("200 LPRT command successful.");
  assert.equal(await h.c.line(), "200 PORT command successful");
  // The server connects to the gateway's listener; the gateway connects to the client.
  const upstream = await Deno.connect({ hostname: "::1", port: Number(match[1]) });
  await writeText(upstream, "active data");
  upstream.close();
  const conn = await clientData.accept();
  const reader = new LineReader(conn);
  assert.equal(await reader.all(), "active data");
  await reader.close();
  assert.deepEqual(h.dials, ["client 127.0.0.1"]);
  await h.finish();
});

Deno.test("FtpSession: bounce PORTs and low ports are refused locally, nothing reaches the server", async () => {
  const h = await harness(4, 6);
  await h.send("PORT 10,1,2,3,195,80");
  assert.match((await h.c.line())!, /^501 /);
  await h.send("EPRT |1|127.0.0.1|25|");
  assert.match((await h.c.line())!, /^504 /);
  await h.send("EPRT |2|::1|50000|");
  assert.equal(await h.c.line(), "522 Network protocol not supported, use (1)");
  await h.send("LPRT 6,16,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,2,195,80");
  assert.equal(await h.c.line(), "521 Supported address families are (4)");
  await h.send("PORT 1,2,3");
  assert.match((await h.c.line())!, /^501 /);
  await h.send("EPSV 2");
  assert.equal(await h.c.line(), "522 Network protocol not supported, use (1)");
  await h.send("NOOP");
  assert.equal(await h.s.line(), "NOOP");
  await h.finish();
});

Deno.test("FtpSession: PORT 0.0.0.0 means the client's own address", async () => {
  const h = await harness(4, 6);
  await h.send("PORT 0,0,0,0,195,80");
  assert.match((await h.s.line())!, /^EPRT \|2\|::1\|\d+\|$/);
  await h.reply("200 EPRT command successful.");
  assert.equal(await h.c.line(), "200 PORT command successful");
  await h.finish();
});

Deno.test("FtpSession: EPSV ALL is answered and enforced by the gateway; REIN lifts it", async () => {
  const h = await harness(4, 6);
  await h.send("EPSV ALL");
  assert.equal(await h.c.line(), "200 EPSV ALL command successful");
  for (
    const command of [
      "PASV",
      "LPSV",
      "PORT 127,0,0,1,195,80",
      "EPRT |1|127.0.0.1|50000|",
      "LPRT 4,4,127,0,0,1,2,195,80",
    ]
  ) {
    await h.send(command);
    assert.equal(await h.c.line(), `501 ${command.split(" ")[0]} not allowed after EPSV ALL`);
  }
  await h.send("EPSV");
  assert.equal(await h.s.line(), "EPSV");
  await h.reply("229 Entering Extended Passive Mode (|||40000|)");
  assert.match((await h.c.line())!, /^229 /);
  await h.send("REIN");
  assert.equal(await h.s.line(), "REIN");
  await h.reply("220 ready");
  assert.equal(await h.c.line(), "220 ready");
  await h.send("PASV");
  assert.equal(await h.s.line(), "EPSV");
  await h.finish();
});

Deno.test("FtpSession: AUTH gets 534 and TLS features are removed from FEAT", async () => {
  const h = await harness(4, 6);
  await h.send("AUTH TLS");
  assert.equal(await h.c.line(), "534 TLS cannot be used through this translating gateway");
  await h.send("PBSZ 0");
  assert.match((await h.c.line())!, /^503 /);
  await h.send("FEAT");
  assert.equal(await h.s.line(), "FEAT");
  await writeText(
    h.server,
    "211-Features:\r\n AUTH TLS\r\n EPSV\r\n PBSZ\r\n PROT\r\n MDTM\r\n211 End\r\n",
  );
  const lines = [];
  for (let i = 0; i < 4; i++) lines.push(await h.c.line());
  assert.deepEqual(lines, ["211-Features:", " EPSV", " MDTM", "211 End"]);
  await h.finish();
});

Deno.test("FtpSession: multi-line and unexpected extra replies pass through and keep step", async () => {
  const h = await harness(4, 6);
  await writeText(h.server, "220-Welcome\r\n220-more\r\n220 ready\r\n");
  assert.equal(await h.c.line(), "220-Welcome");
  assert.equal(await h.c.line(), "220-more");
  assert.equal(await h.c.line(), "220 ready");
  await h.send("LPRT 4,4,127,0,0,1,2,195,80");
  assert.match((await h.s.line())!, /^EPRT /);
  await h.reply("200 EPRT command successful.");
  assert.equal(await h.c.line(), "200 LPRT command successful");
  // An extra reply nobody asked for (inetutils sends two to one LPRT).
  await h.reply("500 Illegal LPRT Command");
  assert.equal(await h.c.line(), "500 Illegal LPRT Command");
  await h.send("EPSV");
  assert.equal(await h.s.line(), "EPSV");
  await h.reply("229 Entering Extended Passive Mode (|||40001|)");
  assert.match((await h.c.line())!, /^229 Entering Extended Passive Mode \(\|\|\|\d+\|\)$/);
  await h.finish();
});

Deno.test("FtpSession: IPv6 EPSV falls back to PASV toward IPv4 and never trusts the 227 address", async () => {
  const h = await harness(6, 4);
  await h.send("EPSV");
  assert.equal(await h.s.line(), "EPSV");
  await h.reply("550 Permission denied.");
  assert.equal(await h.s.line(), "PASV");
  const data = dataServer("127.0.0.1", "v4 data");
  await h.reply(`227 Entering Passive Mode (10,9,9,9,${data.port >> 8},${data.port & 255}).`);
  const answer = (await h.c.line())!;
  const port = Number(/\(\|\|\|(\d+)\|\)/.exec(answer)![1]);
  assert.equal(await readAll("::1", port), "v4 data");
  await data.served;
  assert.deepEqual(h.dials, ["server 127.0.0.1"]);
  await h.send("EPSV 1");
  assert.equal(await h.c.line(), "522 Network protocol not supported, use (2)");
  await h.finish();
});

Deno.test("FtpSession: IPv6 EPRT |2|::| becomes EPRT |1| then PORT with a gateway IPv4 address", async () => {
  const h = await harness(6, 4);
  await h.send("EPRT |2|::|50000|");
  assert.match((await h.s.line())!, /^EPRT \|1\|127\.0\.0\.1\|\d+\|$/);
  await h.reply("500 Bad EPRT protocol.");
  assert.match((await h.s.line())!, /^PORT 127,0,0,1,\d+,\d+$/);
  await h.reply("200 PORT command successful.");
  assert.equal(await h.c.line(), "200 EPRT command successful");
  await h.send("PORT 127,0,0,1,195,80");
  assert.equal(
    await h.c.line(),
    "500 Illegal PORT command: this control connection is IPv6, use EPRT or passive mode",
  );
  await h.finish();
});

Deno.test("FtpSession: IPv6 PASV toward IPv4 gets a 227 with the server's address, expected for SOCKS", async () => {
  const h = await harness(6, 4);
  const client = { address: parseIp("::1")!, user: null };
  for (const connectTo of ["227", "name", "listener"] as const) {
    await h.send("PASV");
    assert.equal(await h.s.line(), "EPSV");
    const data = dataServer("127.0.0.1", `via ${connectTo}`);
    await h.reply(`229 Entering Extended Passive Mode (|||${data.port}|)`);
    const answer = (await h.c.line())!;
    // The server's own IPv4 address: a SOCKS client CONNECTs to it through the gateway.
    assert.match(answer, /^227 Entering Passive Mode \(127,0,0,1,\d+,\d+\)\.$/);
    const port = portOf227(answer);
    if (connectTo === "listener") {
      // A client that connects to its control peer reaches the gateway's own listener.
      assert.equal(await readAll("::1", port), "via listener");
    } else {
      const address = connectTo === "227"
        ? parseIp("127.0.0.1")!
        : { family: "name" as const, name: TARGET_NAME };
      const expected = h.expectations.take(client, { address, port });
      assert.ok(expected, `expectation for ${connectTo}`);
      const reader = new LineReader(await expected.open(AbortSignal.timeout(2000)));
      assert.equal(await reader.all(), `via ${connectTo}`);
      await reader.close();
    }
    await data.served;
  }
  assert.deepEqual(h.dials, ["server 127.0.0.1", "server 127.0.0.1", "server 127.0.0.1"]);
  await h.finish();
});

Deno.test("FtpSession: IPv6 PASV toward IPv6 (same_family translate) gets the IPv4 dummy address", async () => {
  const h = await harness(6, 6, { same_family: "translate" });
  await h.send("PASV");
  assert.equal(await h.s.line(), "EPSV");
  const data = dataServer("::1", "dummy");
  await h.reply(`229 Entering Extended Passive Mode (|||${data.port}|)`);
  const answer = (await h.c.line())!;
  assert.match(answer, /^227 Entering Passive Mode \(192,0,0,8,\d+,\d+\)\.$/);
  const expected = h.expectations.take({ address: parseIp("::1")!, user: null }, {
    address: parseIp("192.0.0.8")!,
    port: portOf227(answer),
  });
  assert.ok(expected);
  const reader = new LineReader(await expected.open(AbortSignal.timeout(2000)));
  assert.equal(await reader.all(), "dummy");
  await reader.close();
  await data.served;
  await h.finish();
});

Deno.test("FtpSession: ABOR with Telnet Synch bytes reaches the server as ABOR", async () => {
  const h = await harness(4, 6);
  // IAC IP, IAC DM as Deno delivers them (no urgent data), then the verb.
  await h.client.write(
    Uint8Array.of(0xff, 0xf4, 0xff, 0xf2, ...new TextEncoder().encode("ABOR\r\n")),
  );
  assert.equal(await h.s.line(), "ABOR");
  await h.reply("226 Abort successful");
  assert.equal(await h.c.line(), "226 Abort successful");
  await h.finish();
});

Deno.test("FtpSession: a server that goes away during a translated command yields 421", async () => {
  const h = await harness(4, 6);
  await h.send("PASV");
  assert.equal(await h.s.line(), "EPSV");
  h.server.closeWrite();
  assert.match((await h.c.line())!, /^421 /);
  await h.finish();
});

Deno.test("FtpSession: a server that does not answer a translated command yields 421", async () => {
  const h = await harness(4, 6, { reply_timeout: 0.2 });
  await h.send("EPSV");
  assert.equal(await h.s.line(), "EPSV");
  assert.match((await h.c.line())!, /^421 /);
  assert.equal((await h.done).end, "closed");
  await h.finish();
});

Deno.test("FtpSession: an over-long command gets 500 and ends the session", async () => {
  const h = await harness(4, 6);
  await writeText(h.client, "STOR " + "x".repeat(600) + "\r\n");
  assert.equal(await h.c.line(), "500 Command line too long");
  assert.equal((await h.done).end, "line-too-long");
  await h.finish();
});

Deno.test("FtpSession: a new data setup closes the previous listener", async () => {
  const h = await harness(4, 6);
  await h.send("PASV");
  await h.s.line();
  await h.reply("229 x (|||40000|)");
  const first = portOf227((await h.c.line())!);
  await h.send("PASV");
  await h.s.line();
  await h.reply("229 x (|||40001|)");
  await h.c.line();
  await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port: first }));
  assert.equal(h.expectations.size, 1);
  await h.finish();
  assert.equal(h.expectations.size, 0);
});

Deno.test("FtpSession: a passive reply naming a port the rules deny gets 425, recorded, never dialed", async () => {
  const h = await harness(4, 6);
  h.denied.server.add(40022);
  await h.send("PASV");
  assert.equal(await h.s.line(), "EPSV");
  await h.reply("229 Entering Extended Passive Mode (|||40022|)");
  assert.match((await h.c.line())!, /^425 .*rules refuse the server's passive port 40022/);
  assert.deepEqual(h.refusals, [
    "ftp-data server 40022: Cannot connect data channel: denied by rules",
  ]);
  assert.equal(h.expectations.size, 0);
  // The session goes on: the next passive setup to an allowed port works.
  await h.send("EPSV");
  assert.equal(await h.s.line(), "EPSV");
  const data = dataServer("::1", "allowed");
  await h.reply(`229 Entering Extended Passive Mode (|||${data.port}|)`);
  const port = Number(/\(\|\|\|(\d+)\|\)/.exec((await h.c.line())!)![1]);
  assert.equal(await readAll("127.0.0.1", port), "allowed");
  await data.served;
  assert.deepEqual(h.dials, ["server ::1"]);
  await h.finish();
});

Deno.test("FtpSession: a passive reply naming a port below 1024 gets 425 (227, 228 and 229)", async () => {
  for (
    const [verb, reply] of [
      ["PASV", "229 Entering Extended Passive Mode (|||22|)"],
      ["EPSV", "228 Entering Long Passive Mode (6,16,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,1,2,0,25)"],
      ["LPSV", "227 Entering Passive Mode (0,0,0,0,0,25)."],
    ] as const
  ) {
    const h = await harness(4, 6);
    await h.send(verb);
    assert.equal(await h.s.line(), "EPSV");
    await h.reply(reply);
    assert.match((await h.c.line())!, /^425 .*passive port (22|25) is below 1024/, verb);
    assert.equal(h.refusals.length, 1);
    assert.equal(h.expectations.size, 0);
    assert.deepEqual(h.dials, []);
    await h.finish();
  }
});

Deno.test("FtpSession: PORT to a client port the rules deny gets 425 and never reaches the server", async () => {
  const h = await harness(4, 6);
  h.denied.client.add(51000);
  await h.send("PORT 127,0,0,1,199,56");
  assert.match((await h.c.line())!, /^425 .*rules/);
  assert.deepEqual(h.refusals, [
    "ftp-data client 51000: Cannot connect data channel: denied by rules",
  ]);
  await h.send("NOOP");
  assert.equal(await h.s.line(), "NOOP", "nothing was sent to the server before");
  await h.reply("200 NOOP ok");
  assert.equal(await h.c.line(), "200 NOOP ok");
  await h.finish();
});

Deno.test("FtpSession: command lines that could hide a command are refused, lower case is normalised", async () => {
  const h = await harness(4, 6);
  for (
    const line of [
      " PORT 127,0,0,1,0,21",
      "\tEPRT |1|127.0.0.1|21|",
      "NOOP\rPORT 127,0,0,1,0,21",
      "RETR a\0PORT 127,0,0,1,0,21",
      "PO\xff\xf1RT 127,0,0,1,0,21",
    ]
  ) {
    await h.client.write(Uint8Array.from([...line, "\r", "\n"].map((c) => c.charCodeAt(0))));
    assert.match((await h.c.line())!, /^500 /, JSON.stringify(line));
  }
  await h.send("PASV junk");
  assert.match((await h.c.line())!, /^501 /);
  await h.send("SPSV");
  assert.match((await h.c.line())!, /^502 /);
  // Lower case: handled (a bounce PORT is refused) or forwarded in upper case.
  await h.send("port 10,1,2,3,200,1");
  assert.match((await h.c.line())!, /^501 /);
  await h.send("noop");
  assert.equal(await h.s.line(), "NOOP", "the first line the server ever sees");
  await h.reply("200 ok");
  assert.equal(await h.c.line(), "200 ok");
  await h.finish();
});

Deno.test("FtpSession: a last command cut short by the client's EOF is still translated", async () => {
  const h = await harness(4, 6);
  await writeText(h.client, "PORT 10,1,2,3,0,25");
  await h.client.closeWrite();
  assert.match((await h.c.line())!, /^501 /);
  // The server sees the end of the stream, never the PORT.
  assert.equal(await h.s.line(), null);
  await h.finish();
});

Deno.test("FtpSession: server lines that could hide a passive reply are normalised or refused", async () => {
  const h = await harness(4, 6);
  await h.reply("220 ready");
  assert.equal(await h.c.line(), "220 ready");
  // A bare CR inside a line becomes a space; a line outside a reply is dropped.
  await h.send("NOOP");
  assert.equal(await h.s.line(), "NOOP");
  await writeText(h.server, "227\t(127,0,0,1,0,22)\r\n");
  await h.reply("200 ok\r227 Entering Passive Mode (127,0,0,1,0,22)");
  assert.equal(await h.c.line(), "200 ok 227 Entering Passive Mode (127,0,0,1,0,22)");
  // An unsolicited passive reply, one line or several, becomes a 425.
  await h.send("NOOP");
  assert.equal(await h.s.line(), "NOOP");
  await h.reply("227 Entering Passive Mode (127,0,0,1,0,22)");
  assert.match((await h.c.line())!, /^425 /);
  await h.send("HELP");
  assert.equal(await h.s.line(), "HELP");
  await writeText(h.server, "229-x\r\n (|||22|)\r\n229 (|||22|)\r\n");
  assert.match((await h.c.line())!, /^425 /);
  // Inside a multi-line reply, lines that start like a reply are indented.
  await h.send("STAT");
  assert.equal(await h.s.line(), "STAT");
  await writeText(
    h.server,
    "211-status\r\n227 Entering Passive Mode (127,0,0,1,0,22)\r\n211 end\r\n",
  );
  assert.equal(await h.c.line(), "211-status");
  assert.equal(await h.c.line(), " 227 Entering Passive Mode (127,0,0,1,0,22)");
  assert.equal(await h.c.line(), "211 end");
  await h.finish();
});

Deno.test("FtpSession: a passive reply naming the control connection's own port below 1024 is allowed", async () => {
  // The control connection is to port 21 (as the session sees it): port 21 is not refused.
  const h = await harness(4, 6, { control_port: 21 });
  await h.send("EPSV");
  assert.equal(await h.s.line(), "EPSV");
  await h.reply("229 Entering Extended Passive Mode (|||21|)");
  assert.match((await h.c.line())!, /^229 Entering Extended Passive Mode \(\|\|\|\d+\|\)$/);
  assert.deepEqual(h.refusals, []);
  await h.send("EPSV");
  assert.equal(await h.s.line(), "EPSV");
  await h.reply("229 Entering Extended Passive Mode (|||20|)");
  assert.match((await h.c.line())!, /^425 .*port 20 is below 1024/);
  await h.finish();
});
