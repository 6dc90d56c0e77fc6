/**
 * The FTP translator wired into an in-process gateway: an IPv4 client (127.0.0.1) reaches a
 * scripted IPv6 FTP server (::1) through SOCKS, in passive mode (PASV → EPSV, data CONNECT to
 * the original destination and the advertised port) and active mode (PORT → EPRT).
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  encodeGreeting,
  encodePasswordAuthRequest,
  encodeRequest,
  readMethodSelection,
  readPasswordAuthReply,
} from "../../socks5/codec.ts";
import type { ExactReader } from "../../socks5/exact_reader.ts";
import { Reply, type SocksTarget } from "../../socks5/types.ts";
import { LineReader, writeText } from "../../translators/testing.ts";
import {
  connectTo,
  randomBytes,
  readAll,
  readerOf,
  readSocksReply,
  sha256,
  startTestGateway,
  type TestGateway,
  writeAll,
} from "./_fixtures.ts";

const NAME = "ftp.test.example";
const PAYLOAD = randomBytes(3 * 1024 * 1024 + 17);

/** A scripted IPv6 FTP server: one control connection, its own passive data listener. */
interface ScriptedServer extends AsyncDisposable {
  readonly port: number;
  /** Every command line it received, in order. */
  readonly commands: string[];
  /** What the data connections looked like: remote address and bytes received (STOR). */
  readonly data: { remote: string; received: Uint8Array }[];
}

/** The scripted server's passive ports: the rules allow them, as an operator would. */
const SERVER_DATA_PORTS = { from: 40000, to: 40999 };

function listenInRange(hostname: string, range: { from: number; to: number }): Deno.TcpListener {
  for (let attempt = 0;; attempt++) {
    const port = range.from + Math.floor(Math.random() * (range.to - range.from + 1));
    try {
      return Deno.listen({ hostname, port });
    } catch (error) {
      if (!(error instanceof Deno.errors.AddrInUse) || attempt >= 50) throw error;
    }
  }
}

function startScriptedServer(hostname: "::1" | "127.0.0.1" = "::1"): ScriptedServer {
  const listener = Deno.listen({ hostname, port: 0 });
  const commands: string[] = [];
  const data: { remote: string; received: Uint8Array }[] = [];
  const open = new Set<{ close(): void }>();
  const serve = async (control: Deno.TcpConn) => {
    const lines = new LineReader(control);
    await writeText(control, "220 scripted FTP\r\n");
    let passive: Deno.TcpListener | null = null;
    let active: { hostname: string; port: number } | null = null;
    const dataConn = async (): Promise<Deno.Conn> => {
      if (passive) {
        const conn = await passive.accept();
        passive.close();
        passive = null;
        return conn;
      }
      assert.ok(active, "no data setup");
      return await Deno.connect(active);
    };
    try {
      while (true) {
        const line = await lines.line(10_000);
        if (line === null) return;
        commands.push(line);
        const [verb = "", argument = ""] = line.split(/ (.*)/);
        switch (verb.toUpperCase()) {
          case "EPSV": {
            passive?.close();
            passive = listenInRange(hostname, SERVER_DATA_PORTS);
            open.add(passive);
            await writeText(
              control,
              `229 Entering Extended Passive Mode (|||${passive.addr.port}|)\r\n`,
            );
            break;
          }
          case "EPRT": {
            const [, protocol, host, port] = argument.split("|");
            if (protocol !== "2") {
              await writeText(control, "522 Network protocol not supported, use (2)\r\n");
              break;
            }
            active = { hostname: host!, port: Number(port) };
            await writeText(control, "200 EPRT command successful\r\n");
            break;
          }
          case "RETR": {
            await writeText(control, "150 Opening data connection\r\n");
            const conn = await dataConn();
            data.push({
              remote: (conn.remoteAddr as Deno.NetAddr).hostname,
              received: new Uint8Array(),
            });
            await writeAll(conn, PAYLOAD);
            conn.close();
            await writeText(control, "226 Transfer complete\r\n");
            break;
          }
          case "STOR": {
            await writeText(control, "150 Ok to send data\r\n");
            const conn = await dataConn();
            const received = await readAll(conn);
            data.push({ remote: (conn.remoteAddr as Deno.NetAddr).hostname, received });
            conn.close();
            await writeText(control, "226 Transfer complete\r\n");
            break;
          }
          case "QUIT":
            await writeText(control, "221 Goodbye\r\n");
            return;
          default:
            await writeText(control, `502 ${verb} not implemented\r\n`);
        }
      }
    } finally {
      try {
        (passive as Deno.TcpListener | null)?.close();
      } catch { /* closed */ }
      await lines.close();
    }
  };
  const sessions = new Set<Promise<void>>();
  const loop = (async () => {
    for await (const conn of listener) {
      const session = serve(conn).catch(() => {}).finally(() => sessions.delete(session));
      sessions.add(session);
    }
  })().catch(() => {});
  return {
    port: listener.addr.port,
    commands,
    data,
    async [Symbol.asyncDispose]() {
      listener.close();
      await loop;
      await Promise.all([...sessions]);
      for (const resource of open) {
        try {
          resource.close();
        } catch { /* closed */ }
      }
    },
  };
}

/** A SOCKS CONNECT from 127.0.0.1 (or ::1) through the gateway's listener of that family. */
async function socksConnect(
  gateway: TestGateway,
  target: SocksTarget,
  family: 4 | 6 = 4,
  /** RFC 1929 credentials; none by default. */
  credentials?: { username: string; password: string },
): Promise<{ conn: Deno.TcpConn; reader: ExactReader; reply: number }> {
  const conn = await connectTo(gateway.endpoint(family));
  const reader = readerOf(conn);
  await writeAll(conn, encodeGreeting({ methods: [credentials ? 2 : 0] }));
  assert.equal(await readMethodSelection(reader), credentials ? 2 : 0);
  if (credentials) {
    await writeAll(conn, encodePasswordAuthRequest(credentials));
    assert.equal(await readPasswordAuthReply(reader), 0);
  }
  await writeAll(conn, encodeRequest({ command: 1, target }));
  const { reply } = await readSocksReply(reader);
  return { conn, reader, reply };
}

const name = (port: number): SocksTarget => ({ address: { family: "name", name: NAME }, port });

async function withFtp(
  fn: (ctx: {
    gateway: TestGateway;
    server: ScriptedServer;
    control: LineReader;
    controlConn: Deno.TcpConn;
  }) => Promise<void>,
  /** The client's family and the server's address. @default IPv4 client, IPv6 server */
  families: { client: 4 | 6; server: "::1" | "127.0.0.1" } = { client: 4, server: "::1" },
  /** Ends with QUIT and its 221. @default true */
  quit = true,
): Promise<void> {
  await using server = startScriptedServer(families.server);
  // Only the FTP control port and the server's data ports are allowed (data dials are judged
  // by their own port), and BIND for active data: expected data CONNECTs to the gateway's
  // ports must pass all the same.
  await using gateway = startTestGateway(`resolver:
  hosts: { ${NAME}: ["${families.server}"] }
rules:
  - { action: allow, ports: [${server.port}, "${SERVER_DATA_PORTS.from}-${SERVER_DATA_PORTS.to}"] }
  - { action: allow, commands: [bind] }
translators:
  - { type: ftp, ports: [${server.port}], passive_ports: { from: 50000, to: 50999 }, active_ports: { from: 0, to: 0 }, data_timeout: 5 }
`);
  const { conn, reply } = await socksConnect(gateway, name(server.port), families.client);
  assert.equal(reply, Reply.Succeeded);
  const control = new LineReader(conn);
  try {
    assert.equal(await control.line(), "220 scripted FTP");
    await fn({ gateway, server, control, controlConn: conn });
    if (quit) {
      await writeText(conn, "QUIT\r\n");
      assert.equal(await control.line(), "221 Goodbye");
    }
  } finally {
    await control.close();
  }
}

Deno.test("`createTranslationService()` turns PASV into EPSV and routes the data CONNECT to the advertised port", async () => {
  await withFtp(async ({ gateway, server, control, controlConn }) => {
    await writeText(controlConn, "PASV\r\n");
    const pasv = await control.line();
    const match = /^227 .*\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)/.exec(pasv ?? "");
    assert.ok(match, `227 expected, got ${pasv}`);
    assert.deepEqual(match.slice(1, 5), ["127", "0", "0", "1"]);
    const port = Number(match[5]) * 256 + Number(match[6]);
    assert.equal(server.commands.at(-1), "EPSV", "never PASV toward an IPv6 server");

    // Port-based rules would refuse this port: the translator expected it.
    const data = await socksConnect(gateway, name(port));
    assert.equal(data.reply, Reply.Succeeded);
    await writeText(controlConn, "RETR big.bin\r\n");
    assert.match((await control.line()) ?? "", /^150 /);
    const received = await readAll(data.conn);
    data.conn.close();
    assert.match((await control.line()) ?? "", /^226 /);
    assert.equal(received.length, PAYLOAD.length);
    assert.equal(await sha256(received), await sha256(PAYLOAD));
    assert.equal(server.data[0]?.remote, "::1");

    // An expectation is taken once: a second CONNECT to that port is an ordinary one, refused
    // by the port rule.
    const again = await socksConnect(gateway, name(port));
    assert.equal(again.reply, Reply.NotAllowedByRuleset);
    again.conn.close();

    // STOR through a second passive setup.
    await writeText(controlConn, "EPSV\r\n");
    const epsv = /\(\|\|\|(\d+)\|\)/.exec((await control.line()) ?? "");
    assert.ok(epsv);
    const upload = await socksConnect(gateway, name(Number(epsv[1])));
    assert.equal(upload.reply, Reply.Succeeded);
    await writeText(controlConn, "STOR up.bin\r\n");
    assert.match((await control.line()) ?? "", /^150 /);
    await writeAll(upload.conn, PAYLOAD.subarray(0, 1_000_000));
    await upload.conn.closeWrite();
    assert.equal(await readAll(upload.conn).then((bytes) => bytes.length), 0);
    upload.conn.close();
    assert.match((await control.line()) ?? "", /^226 /);
    assert.equal(
      await sha256(server.data[1]!.received as Uint8Array<ArrayBuffer>),
      await sha256(PAYLOAD.slice(0, 1_000_000)),
    );
  });
});

Deno.test("`createTranslationService()` turns PORT into EPRT, refuses a bounce PORT and records the data relay", async () => {
  await withFtp(async ({ gateway, server, control, controlConn }) => {
    // RFC 2577: another address, or a port below 1024, never reaches the server.
    await writeText(controlConn, "PORT 127,0,0,2,200,10\r\n");
    assert.match((await control.line()) ?? "", /^501 /);
    await writeText(controlConn, "PORT 127,0,0,1,0,25\r\n");
    assert.match((await control.line()) ?? "", /^504 /);
    assert.deepEqual(server.commands, []);

    using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = listener.addr.port;
    await writeText(controlConn, `PORT 127,0,0,1,${port >> 8},${port & 255}\r\n`);
    assert.match((await control.line()) ?? "", /^200 /);
    const eprt = server.commands.at(-1) ?? "";
    assert.match(eprt, /^EPRT \|2\|::1\|\d+\|$/);

    await writeText(controlConn, "RETR big.bin\r\n");
    const dataConn = await listener.accept();
    assert.equal(dataConn.remoteAddr.hostname, "127.0.0.1");
    const received = await readAll(dataConn);
    dataConn.close();
    assert.match((await control.line()) ?? "", /^150 /);
    assert.match((await control.line()) ?? "", /^226 /);
    assert.equal(await sha256(received), await sha256(PAYLOAD));
    // The data relay leaves one record line of its own.
    for (let i = 0; i < 50 && !gateway.records.some((r) => r.command === "ftp-data"); i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const record = gateway.records.find((r) => r.command === "ftp-data");
    assert.ok(record, "ftp-data record");
    assert.equal(record.bytesDown, PAYLOAD.length);
  });
});

Deno.test("`createTranslationService()` answers an IPv6 client's PASV with the IPv4 server address and expects the CONNECT to it", async () => {
  await withFtp(async ({ gateway, server, control, controlConn }) => {
    for (const via of ["227 address", "name"] as const) {
      await writeText(controlConn, "PASV\r\n");
      const pasv = await control.line();
      const match = /^227 .*\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)/.exec(pasv ?? "");
      assert.ok(match, `227 expected, got ${pasv}`);
      // The server's own IPv4 address: the client CONNECTs to it through SOCKS, never directly.
      assert.deepEqual(match.slice(1, 5), ["127", "0", "0", "1"]);
      const port = Number(match[5]) * 256 + Number(match[6]);
      assert.equal(server.commands.at(-1), "EPSV");
      const target: SocksTarget = via === "name"
        ? name(port)
        : { address: { family: 4, bytes: Uint8Array.of(127, 0, 0, 1) }, port };
      // The port rule would refuse this CONNECT: the translator expected it.
      const data = await socksConnect(gateway, target, 6);
      assert.equal(data.reply, Reply.Succeeded, via);
      await writeText(controlConn, "RETR big.bin\r\n");
      assert.match((await control.line()) ?? "", /^150 /);
      const received = await readAll(data.conn);
      data.conn.close();
      assert.match((await control.line()) ?? "", /^226 /);
      assert.equal(await sha256(received), await sha256(PAYLOAD));
    }
    assert.equal(server.data.length, 2);
    // PORT stays refused on an IPv6 control connection (see the FTP translator's README).
    await writeText(controlConn, "PORT 127,0,0,1,200,10\r\n");
    assert.match((await control.line()) ?? "", /^500 .*IPv6/);
    assert.equal(server.commands.filter((c) => c.startsWith("PORT")).length, 0);
  }, { client: 6, server: "127.0.0.1" });
});

async function recordOf(
  gateway: TestGateway,
  matches: (record: TestGateway["records"][number]) => boolean,
) {
  for (let i = 0; i < 250 && !gateway.records.some(matches); i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const record = gateway.records.find(matches);
  assert.ok(record, `no such record in ${JSON.stringify(gateway.records)}`);
  return record;
}

Deno.test("`createTranslationService()` records complete transfers as closed when QUIT ends their relays", async () => {
  await withFtp(
    async ({ gateway, control, controlConn }) => {
      // Passive, through the expected CONNECT.
      await writeText(controlConn, "EPSV\r\n");
      const epsv = /\(\|\|\|(\d+)\|\)/.exec((await control.line()) ?? "");
      assert.ok(epsv);
      const passive = await socksConnect(gateway, name(Number(epsv[1])));
      assert.equal(passive.reply, Reply.Succeeded);
      await writeText(controlConn, "RETR big.bin\r\n");
      assert.match((await control.line()) ?? "", /^150 /);
      assert.equal((await readAll(passive.conn)).length, PAYLOAD.length);
      assert.match((await control.line()) ?? "", /^226 /);

      // Active, through the gateway's own listener.
      using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = listener.addr.port;
      await writeText(controlConn, `PORT 127,0,0,1,${port >> 8},${port & 255}\r\n`);
      assert.match((await control.line()) ?? "", /^200 /);
      await writeText(controlConn, "RETR big.bin\r\n");
      const active = await listener.accept();
      assert.equal((await readAll(active)).length, PAYLOAD.length);
      assert.match((await control.line()) ?? "", /^150 /);
      assert.match((await control.line()) ?? "", /^226 /);

      // Both clients got every byte and the end of the stream, but keep their sockets open
      // until after QUIT, which tears the data relays down.
      await writeText(controlConn, "QUIT\r\n");
      assert.equal(await control.line(), "221 Goodbye");
      const expected = await recordOf(
        gateway,
        (r) => /expected by translator/.test(r.reason ?? ""),
      );
      assert.equal(expected.bytesDown, PAYLOAD.length);
      assert.equal(expected.reason, "expected by translator, closed");
      const data = await recordOf(gateway, (r) => r.command === "ftp-data");
      assert.equal(data.bytesDown, PAYLOAD.length);
      assert.equal(data.reason, "closed");
      passive.conn.close();
      active.close();
    },
    undefined,
    false,
  );
});

Deno.test("`createTranslationService()` closes an idle translated session after the relay idle timeout and records its bytes", async () => {
  await using server = startScriptedServer("::1");
  await using gateway = startTestGateway(`resolver:
  hosts: { ${NAME}: ["::1"] }
timeouts: { idle: 0.2 }
rules:
  - { action: allow, ports: [${server.port}] }
translators:
  - { type: ftp, ports: [${server.port}] }
`);
  const { conn, reply } = await socksConnect(gateway, name(server.port));
  assert.equal(reply, Reply.Succeeded);
  const control = new LineReader(conn);
  try {
    const greeting = await control.line();
    assert.equal(greeting, "220 scripted FTP");
    await writeText(conn, "NOOP\r\n");
    const noop = await control.line();
    // Then silence: the gateway ends the session like an idle relay.
    assert.equal(await control.line(10_000), null);
    const record = await recordOf(gateway, (r) => r.translator === "ftp");
    assert.equal(record.reason, "idle");
    assert.equal(record.bytesUp, "NOOP\r\n".length);
    assert.equal(record.bytesDown, `${greeting}\r\n${noop}\r\n`.length);
  } finally {
    await control.close();
  }
});

Deno.test("`createTranslationService()` never gives one user's data channel to another user of the same address", async () => {
  // F4: alice and bob share ::1; only alice may reach the FTP server (control and data ports).
  await using server = startScriptedServer("127.0.0.1");
  await using gateway = startTestGateway(`auth:
  users: [{ name: alice, password: alice-pw }, { name: bob, password: bob-pw }]
rules:
  - { action: allow, users: [alice], to: ["127.0.0.1/32"] }
translators:
  - { type: ftp, ports: [${server.port}], data_timeout: 5 }
`);
  const alice = { username: "alice", password: "alice-pw" };
  const bob = { username: "bob", password: "bob-pw" };
  const ftp = {
    address: { family: 4, bytes: Uint8Array.of(127, 0, 0, 1) },
    port: server.port,
  } as const;
  const denied = await socksConnect(gateway, ftp, 6, bob);
  assert.equal(denied.reply, Reply.NotAllowedByRuleset, "bob may not reach the server");
  denied.conn.close();

  const { conn, reply } = await socksConnect(gateway, ftp, 6, alice);
  assert.equal(reply, Reply.Succeeded);
  const control = new LineReader(conn);
  try {
    assert.equal(await control.line(), "220 scripted FTP");
    await writeText(conn, "PASV\r\n");
    const pasv = await control.line();
    const match = /^227 .*\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)/.exec(pasv ?? "");
    assert.ok(match, `227 expected, got ${pasv}`);
    const data = { ...ftp, port: Number(match[5]) * 256 + Number(match[6]) };

    // Bob, from alice's very address, CONNECTs to the advertised port: an ordinary CONNECT,
    // which the rules refuse; alice's expectation stays hers.
    const stolen = await socksConnect(gateway, data, 6, bob);
    assert.equal(stolen.reply, Reply.NotAllowedByRuleset, "bob took alice's data channel");
    stolen.conn.close();

    const mine = await socksConnect(gateway, data, 6, alice);
    assert.equal(mine.reply, Reply.Succeeded);
    await writeText(conn, "RETR big.bin\r\n");
    assert.match((await control.line()) ?? "", /^150 /);
    const received = await readAll(mine.conn);
    mine.conn.close();
    assert.match((await control.line()) ?? "", /^226 /);
    assert.equal(await sha256(received), await sha256(PAYLOAD));
    await writeText(conn, "QUIT\r\n");
    assert.equal(await control.line(), "221 Goodbye");
  } finally {
    await control.close();
  }
});
