/**
 * Attacks on the irc-dcc translator through an in-process gateway: a client on 127.0.0.1
 * reaches a scripted IRC server on `::1` (so the session crosses families and is translated).
 *
 * A malicious peer on the IRC network (the scripted server speaks for it) sends DCC offers that
 * would make the gateway dial loopback, the unspecified address, a privileged port, an address
 * hidden in an overflowing 32-bit integer, or one the rules deny, hides offers from the
 * translator (lower case, blanks, a bare CR, an unknown DCC type), floods offers, and sends an
 * over-long line. A malicious client offers someone else's address, and a process on the
 * gateway host takes a DCC listener meant for a peer on the network.
 *
 * What must hold: no such offer reaches the other side (neither rewritten nor as it was), no
 * listener opens for it (refusals with an address are recorded), open offers are bounded, and a
 * listener never connects a host-local peer through.
 *
 * The last test runs in network namespaces (ngircd, python3-irc clients): there the gateway has
 * addresses besides the two a session uses, and a peer's offer naming one of them (or its SOCKS
 * listener) must meet the rules' host-local guard.
 *
 * @module
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { encodeGreeting, encodeRequest, readMethodSelection } from "../../socks5/codec.ts";
import { LineReader, writeText } from "../../translators/testing.ts";
import { formatEndpoint, parseIp } from "../../net/address.ts";
import {
  connectTo,
  readerOf,
  readSocksReply,
  startTestGateway,
  type TestGateway,
  writeAll,
} from "../integration/_fixtures.ts";
import { startDualgate } from "../helpers/dualgate.ts";
import { createTopology, e2eTest, NAMES, type SpawnedProcess } from "../helpers/netns.ts";
import { IRC_PORT, startNgircd } from "../helpers/ngircd.ts";

const CLIENT_SCRIPT = fileURLToPath(new URL("../e2e/_irc_dcc_client.py", import.meta.url));
const PYTHON = "/usr/bin/python3";

const END = "PING :end";
/** 127.0.0.1 as DCC writes it. */
const LOOPBACK_V4 = "2130706433";

/** A scripted IRC server on ::1 for one session: sends `lines` then `PING :end`. */
function startEvilServer(lines: readonly string[]) {
  const listener = Deno.listen({ hostname: "::1", port: 0 });
  const received = (async () => {
    const conn = await listener.accept();
    listener.close();
    const reader = new LineReader(conn);
    const got: string[] = [];
    try {
      got.push((await reader.line(10_000)) ?? "");
      await writeText(conn, [...lines, END].map((line) => line + "\r\n").join(""));
      while (true) {
        const line = await reader.line(10_000);
        if (line === null) break;
        got.push(line);
      }
    } catch {
      // The gateway closed the session (an over-long line): what arrived is the answer.
    } finally {
      await reader.close();
    }
    return got;
  })();
  return { port: listener.addr.port, received };
}

interface Outcome {
  /** Lines the client got before `PING :end` (or the end of the session). */
  toClient: string[];
  /** Lines the server got from the client (after NICK). */
  toServer: string[];
  /** Whether the client saw `PING :end` (the session was not closed). */
  reachedEnd: boolean;
  gateway: TestGateway;
}

/**
 * One IRC session through the gateway: the server sends `serverLines`, then the client sends
 * `clientLines`; `during` runs while the session is still open (after the client's lines).
 */
async function session(
  serverLines: readonly string[],
  clientLines: readonly string[] = [],
  options: { rules?: string; name?: string } = {},
): Promise<Outcome> {
  const server = startEvilServer(serverLines);
  const hosts = options.name ? `resolver:\n  hosts: { ${options.name}: ["::1"] }\n` : "";
  const gateway = startTestGateway(`${hosts}${options.rules ?? ""}
translators:
  - { type: irc-dcc, ports: [${server.port}], max_offers: 3, offer_timeout: 30 }
`);
  const conn = await connectTo(gateway.endpoint(4));
  const reader = readerOf(conn);
  await writeAll(conn, encodeGreeting({ methods: [0] }));
  assert.equal(await readMethodSelection(reader), 0);
  await writeAll(
    conn,
    encodeRequest({
      command: 1,
      target: {
        address: options.name ? { family: "name", name: options.name } : parseIp("::1")!,
        port: server.port,
      },
    }),
  );
  assert.equal((await readSocksReply(reader)).reply, 0);
  const lines = new LineReader(conn);
  await writeText(conn, "NICK victim\r\n");
  const toClient: string[] = [];
  let reachedEnd = false;
  while (true) {
    const line = await lines.line(10_000);
    if (line === null) break;
    if (line === END) {
      reachedEnd = true;
      break;
    }
    toClient.push(line);
  }
  if (reachedEnd) {
    await writeText(conn, clientLines.map((line) => line + "\r\n").join(""));
    await conn.closeWrite();
    await lines.all(10_000).catch(() => "");
  }
  await lines.close();
  const toServer = (await server.received).slice(1);
  await gateway[Symbol.asyncDispose]();
  return { toClient, toServer, reachedEnd, gateway };
}

function dccRejections(outcome: Outcome): string[] {
  return outcome.gateway.records.filter((r) => r.command === "irc-dcc" && r.outcome === "rejected")
    .map((r) =>
      r.target && r.target.address.family !== "name"
        ? formatEndpoint({ address: r.target.address, port: r.target.port })
        : "?"
    );
}

const offer = (address: string, port: number, type = "SEND f.bin") =>
  `:mallory!m@h PRIVMSG victim :\x01DCC ${type} ${address} ${port}${
    type.startsWith("SEND") ? " 100" : ""
  }\x01`;

Deno.test("a peer's DCC offer naming loopback, unspecified, a privileged port or a wrapped integer never reaches the client", async () => {
  const attacks = [
    offer(LOOPBACK_V4, 6379),
    offer("::1", 6379),
    offer("127.0.0.2", 6379),
    offer("0", 5000),
    offer("::", 5000),
    offer("::ffff:127.0.0.1", 6379),
    offer("224.0.0.1", 5000),
    // 2^32 + 127.0.0.1: clients that truncate read loopback.
    offer("6442450945", 6379),
    offer("198.51.100.7", 25),
    offer("198.51.100.7", 5000, "CHAT chat").replace("5000", "22"),
  ];
  const outcome = await session(["001 victim :welcome", ...attacks]);
  assert.ok(outcome.reachedEnd);
  assert.deepEqual(outcome.toClient, ["001 victim :welcome"]);
  assert.deepEqual(dccRejections(outcome), [
    "127.0.0.1:6379",
    "[::1]:6379",
    "127.0.0.2:6379",
    "0.0.0.0:5000",
    "[::]:5000",
    "127.0.0.1:6379",
    "224.0.0.1:5000",
    "198.51.100.7:25",
    "198.51.100.7:22",
  ]);
});

Deno.test("DCC offers hidden from the translator are dropped, never passed on as they are", async () => {
  const hidden = [
    `:m PRIVMSG victim :\x01dcc send f.bin ${LOOPBACK_V4} 6379 1\x01`,
    `:m PRIVMSG victim :\x01 DCC SEND f.bin ${LOOPBACK_V4} 6379 1\x01`,
    `:m PRIVMSG victim :\x01\tDCC SEND f.bin ${LOOPBACK_V4} 6379 1\x01`,
    `:m PRIVMSG victim :hi\r\x01DCC SEND f.bin 3325256711 6000 1\x01`,
    `:m PRIVMSG victim :\x01DCC XMIT f.bin ${LOOPBACK_V4} 6379\x01`,
    `:m PRIVMSG victim :\x01DCC SEND f.bin 0x7f000001 6379 1\x01`,
    `:m PRIVMSG victim :\x01DCC SEND f.bin ${LOOPBACK_V4} 6379 1 2 3\x01`,
    `:m TOPIC #c :\x01DCC SEND f.bin ${LOOPBACK_V4} 6379 1\x01`,
    `:m PRIVMSG victim hi :\x01DCC SEND f.bin ${LOOPBACK_V4} 6379 1\x01`,
    // Two offers in one message: one line never opens more than one listener.
    `:m PRIVMSG victim :\x01DCC SEND a.bin 3325256711 6000 1\x01\x01DCC SEND b.bin 3325256711 6001 1\x01`,
    // An unclosed CTCP is read as one by clients.
    `:m NOTICE victim :\x01DCC SEND f.bin ${LOOPBACK_V4} 6379 1`,
  ];
  const outcome = await session([...hidden, ":m PRIVMSG victim :still here"]);
  assert.ok(outcome.reachedEnd);
  assert.deepEqual(outcome.toClient, [":m PRIVMSG victim :still here"]);
});

Deno.test("offers the rules deny are refused before anything listens", async () => {
  const outcome = await session([offer("198.51.100.7", 7000), offer("198.51.100.7", 7001)], [], {
    rules: `rules:
  - { action: deny, to: ["198.51.100.0/24"], ports: [7000] }
  - { action: allow }`,
  });
  assert.equal(outcome.toClient.length, 1, outcome.toClient.join("\n"));
  assert.match(
    outcome.toClient[0]!,
    // deno-lint-ignore no-control-regex
    /^:mallory!m@h PRIVMSG victim :\x01DCC SEND f\.bin 2130706433 \d+ 100\x01$/,
  );
  assert.deepEqual(dccRejections(outcome), ["198.51.100.7:7000"]);
});

Deno.test("a rule that allows the IRC server by name does not allow DCC dials to other addresses", async () => {
  // The client reached the server by name; an offer naming another host and the server's own
  // port must be judged by its address, not by the control connection's name.
  const outcome = await session([offer("198.51.100.7", 6667)], [], {
    name: "irc.test.example",
    rules: `rules:
  - { action: allow, to: ["irc.test.example"] }`,
  });
  assert.ok(outcome.reachedEnd);
  assert.deepEqual(outcome.toClient, []);
  assert.deepEqual(dccRejections(outcome), ["198.51.100.7:6667"]);
});

Deno.test("a flood of offers opens at most max_offers listeners", async () => {
  const flood = Array.from({ length: 10 }, (_, i) => offer("198.51.100.7", 6000 + i));
  const outcome = await session(flood);
  assert.equal(outcome.toClient.length, 3, outcome.toClient.join("\n"));
  assert.equal(dccRejections(outcome).length, 7);
});

Deno.test("an over-long line ends the session and nothing of it reaches the client", async () => {
  // Longer than irc-dcc's default cap (8703 bytes: IRCv3 message tags and a message).
  const long = `:m PRIVMSG victim :${"A".repeat(9000)}\x01DCC SEND f.bin ${LOOPBACK_V4} 6379 1\x01`;
  const outcome = await session(["001 victim :welcome", long, offer(LOOPBACK_V4, 6379)]);
  assert.equal(outcome.reachedEnd, false);
  assert.deepEqual(outcome.toClient, ["001 victim :welcome"]);
});

Deno.test("a line with IRCv3 message tags longer than 4096 bytes is relayed (irc-dcc's default cap)", async () => {
  const tagged = `@+example/blob=${"a".repeat(6000)} :bob!b@h PRIVMSG victim :hello`;
  const outcome = await session(["001 victim :welcome", tagged]);
  assert.equal(outcome.reachedEnd, true);
  assert.deepEqual(outcome.toClient, ["001 victim :welcome", tagged]);
  // The session's record names its translator (a typed field).
  const control = outcome.gateway.records.find((r) => r.command === "connect");
  assert.equal(control?.translator, "irc-dcc");
});

Deno.test("a client's offer naming another host or a privileged port never reaches the server", async () => {
  const outcome = await session([], [
    "PRIVMSG bob :\x01DCC SEND f.bin 3325256711 6000 1\x01", // 198.51.100.7: not the client
    "PRIVMSG bob :\x01DCC CHAT chat ::1 6000\x01", // the client is 127.0.0.1
    `PRIVMSG bob :\x01DCC SEND f.bin ${LOOPBACK_V4} 139 1\x01`,
    `PRIVMSG bob :x\r\x01DCC SEND f.bin ${LOOPBACK_V4} 6000 1\x01`,
    "PRIVMSG bob :plain",
  ]);
  assert.deepEqual(outcome.toServer, ["PRIVMSG bob :plain"]);
  assert.deepEqual(dccRejections(outcome), ["198.51.100.7:6000", "[::1]:6000", "127.0.0.1:139"]);
});

Deno.test("a listener for the client's offer never connects a host-local peer through, and closes after 8 refusals", async () => {
  // The client's own DCC listener: it answers anyone with CANARY.
  const canary = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let hits = 0;
  const serving = (async () => {
    for await (const conn of canary) {
      hits++;
      await writeText(conn, "CANARY\n").catch(() => {});
      conn.close();
    }
  })();
  // The IRC server, read line by line while the session stays open.
  const ircd = Deno.listen({ hostname: "::1", port: 0 });
  const gateway = startTestGateway(`translators:
  - { type: irc-dcc, ports: [${ircd.addr.port}], offer_timeout: 30 }
`);
  try {
    const conn = await connectTo(gateway.endpoint(4));
    const reader = readerOf(conn);
    await writeAll(conn, encodeGreeting({ methods: [0] }));
    assert.equal(await readMethodSelection(reader), 0);
    await writeAll(
      conn,
      encodeRequest({ command: 1, target: { address: parseIp("::1")!, port: ircd.addr.port } }),
    );
    const serverConn = await ircd.accept();
    assert.equal((await readSocksReply(reader)).reply, 0);
    const server = new LineReader(serverConn);
    await writeText(
      conn,
      `PRIVMSG bob :\x01DCC SEND f.bin ${LOOPBACK_V4} ${canary.addr.port} 1\x01\r\n`,
    );
    // The server's view of the offer names the gateway's listener facing it ([::1] here).
    const rewritten = await server.line();
    // deno-lint-ignore no-control-regex
    const match = /^PRIVMSG bob :\x01DCC SEND f\.bin ::1 (\d+) 1\x01$/.exec(rewritten ?? "");
    assert.ok(match, rewritten ?? "no line");
    // A process on the gateway host (loopback) takes the listener: closed at once, no CANARY.
    const attacker = await Deno.connect({ hostname: "::1", port: Number(match[1]) });
    const attackerLines = new LineReader(attacker);
    const got = await attackerLines.all(10_000).catch((error) => `error: ${error}`);
    await attackerLines.close();
    assert.equal(got, "");
    // More knocks: after 8 refused peers the listener closes instead of waiting out the offer.
    for (let knock = 1; knock < 8; knock++) {
      const again: Deno.TcpConn = await Deno.connect({ hostname: "::1", port: Number(match[1]) });
      assert.equal(await again.read(new Uint8Array(1)), null);
      again.close();
    }
    await assert.rejects(Deno.connect({ hostname: "::1", port: Number(match[1]) }));
    assert.equal(hits, 0);
    conn.close();
    await server.close();
  } finally {
    await gateway[Symbol.asyncDispose]();
    ircd.close();
    canary.close();
    await serving;
  }
});

e2eTest(
  "irc-dcc in namespaces: a peer's offers naming the gateway's other addresses and listeners never reach the client",
  async () => {
    await using topo = await createTopology();
    const dir = await Deno.makeTempDir({ prefix: "dualgate-dcc-attack-" });
    await Deno.chmod(dir, 0o755);
    try {
      const server6 = topo.addresses.server6.v6;
      await using _ircd = await startNgircd(topo, "server6", server6, dir);
      const { gateway: gw } = topo.addresses;
      await using gateway = await startDualgate(
        topo,
        `listen: ["${gw.v4}:1080", "[${gw.v6}]:1080"]
translators:
  - { type: irc-dcc, ports: [${IRC_PORT}], offer_timeout: 30 }
`,
        { dir },
      );
      const script = (
        host: "client4" | "client6",
        nick: string,
        role: string,
        ...args: string[]
      ) => [
        CLIENT_SCRIPT,
        host === "client4" ? gw.v4 : gw.v6,
        "1080",
        NAMES.v6,
        String(IRC_PORT),
        nick,
        role,
        ...args,
      ];
      // The victim's session (IPv4 client, IPv6 server) is translated; the attacker's is not.
      await using victim = topo.spawn("client4", PYTHON, script("client4", "victim", "receive"));
      const show = () =>
        `--- victim:\n${victim.stdout}\n${victim.stderr.slice(-2000)}\n--- gateway:\n${
          gateway.stderr.slice(-5000)
        }`;
      await waitForEvent(victim, "ready", show);
      const attacks = [
        `SEND evil.bin ${gw.v6} 1080 100`, // the gateway's SOCKS listener, on its other side
        `SEND evil.bin ${gw.upstreamV4} 5000 100`, // the gateway's own, not this session's
        `SEND evil.bin ${gw.upstreamV6} 1080 100`, // the gateway's address facing the server
        `SEND evil.bin 3325256705 2222 100`, // 198.51.100.1, as an integer
        `SEND evil.bin ${LOOPBACK_V4} 6379 100`,
      ];
      const attacker = await topo.run(
        "client6",
        PYTHON,
        script("client6", "mallory", "attack", "victim", ...attacks),
        { timeoutMs: 90_000 },
      );
      assert.equal(attacker.code, 0, `${attacker.stdout}\n${attacker.stderr}\n${show()}`);
      const done = await waitForEvent(victim, "done", show);
      // Only the closing CHAT reached the victim, and it worked.
      assert.equal(done.chat, "hello from mallory", show());
      const offers = victimEvents(victim).filter((e) => e.event === "offer").map((e) => e.offer);
      assert.equal(offers.length, 1, show());
      assert.match(String(offers[0]), /^CHAT chat 3221225985 \d+$/, show());
      for (
        const target of [
          `[${gw.v6}]:1080`,
          `${gw.upstreamV4}:5000`,
          `[${gw.upstreamV6}]:1080`,
          `${gw.upstreamV4}:2222`,
          "127.0.0.1:6379",
        ]
      ) {
        const pattern = new RegExp(
          `rejected \\S+ user=- irc-dcc ${target.replace(/[[\].]/g, "\\$&")} `,
        );
        assert.match(gateway.stderr, pattern, show());
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  { programs: ["ngircd"] },
);

interface ClientEvent {
  event: string;
  [key: string]: unknown;
}

function victimEvents(process: { stdout: string }): ClientEvent[] {
  return process.stdout.split("\n").filter((line) => line.startsWith("{")).map((line) =>
    JSON.parse(line) as ClientEvent
  );
}

/** Waits (bounded) until the spawned client reports `event`. */
async function waitForEvent(
  process: SpawnedProcess,
  event: string,
  show: () => string,
): Promise<ClientEvent> {
  for (let i = 0; i < 600; i++) {
    const found = victimEvents(process).find((e) => e.event === event);
    if (found) return found;
    if (process.exited) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no ${event} event from ${process.host}\n${show()}`);
}
