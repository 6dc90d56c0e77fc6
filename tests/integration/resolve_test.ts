import assert from "node:assert/strict";
import { formatIp, type IpEndpoint, parseIp } from "../../net/address.ts";
import {
  encodeGreeting,
  encodePasswordAuthRequest,
  encodeRequest,
  readMethodSelection,
  readPasswordAuthReply,
} from "../../socks5/codec.ts";
import type { SocksReply, SocksTarget } from "../../socks5/types.ts";
import {
  connectTo,
  echo,
  readAll,
  readerOf,
  readSocksReply,
  startServer,
  startTestGateway,
  type TestGateway,
  writeAll,
} from "./_fixtures.ts";

const RESOLVE = 0xf0;
const RESOLVE_PTR = 0xf1;

const HOSTS = `resolver:
  hosts:
    both.test.example: ["127.0.0.1", "::1"]
    v4.test.example: ["127.0.0.1"]
`;

function nameTarget(name: string, port = 0): SocksTarget {
  return { address: { family: "name", name }, port };
}

function ipTarget(text: string): SocksTarget {
  return { address: parseIp(text)!, port: 0 };
}

/** Sends one request as torsocks does (no-auth greeting, then the request), plus `extra`. */
async function ask(
  gw: TestGateway,
  command: number,
  target: SocksTarget,
  extra = new Uint8Array(0),
): Promise<SocksReply> {
  using conn = await connectTo(gw.endpoint(4));
  const reader = readerOf(conn);
  await writeAll(conn, encodeGreeting({ methods: [0] }));
  assert.equal(await readMethodSelection(reader), 0);
  const request = encodeRequest({ command, target });
  await writeAll(conn, Uint8Array.from([...request, ...extra]));
  const reply = await readSocksReply(reader);
  // One answer, then the gateway closes.
  await conn.closeWrite();
  assert.equal((await readAll(conn)).length, 0);
  return reply;
}

/** The latest record, once the session has written it (bounded wait). */
async function lastRecord(gw: TestGateway) {
  for (let i = 0; i < 100 && gw.records.length === 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const record = gw.records.at(-1);
  assert.ok(record, "no connection record");
  return record;
}

/** The first record of a CONNECT, once written (bounded wait). */
async function connectRecord(gw: TestGateway) {
  const find = () => gw.records.find((r) => r.command === "connect");
  for (let i = 0; i < 100 && find() === undefined; i++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const record = find();
  assert.ok(record, "no CONNECT record");
  return record;
}

function boundText(reply: SocksReply): string {
  const a = reply.bound.address;
  return a.family === "name" ? a.name : formatIp(a);
}

Deno.test("RESOLVE: a name gets REP 0 and the address CONNECT would try first", async () => {
  // Without stand-ins the answer ignores the client's family (see the stand-in tests below).
  await using gw = startTestGateway(`${HOSTS}  stand_ins: never\n`);
  const reply = await ask(gw, RESOLVE, nameTarget("Both.Test.Example"));
  assert.equal(reply.reply, 0);
  assert.equal(reply.bound.address.family, 6);
  assert.equal(boundText(reply), "::1");
  assert.equal(reply.bound.port, 0);
  const record = await lastRecord(gw);
  assert.equal(record.command, "resolve");
  assert.equal(record.outcome, "resolved");
});

Deno.test("RESOLVE: the family preference picks the address", async () => {
  await using gw = startTestGateway(`${HOSTS}  prefer: ipv4\n`);
  const reply = await ask(gw, RESOLVE, nameTarget("both.test.example"));
  assert.equal(reply.reply, 0);
  assert.equal(boundText(reply), "127.0.0.1");
  await using only6 = startTestGateway(`${HOSTS}  prefer: ipv6-only\n`);
  assert.equal((await ask(only6, RESOLVE, nameTarget("v4.test.example"))).reply, 4);
});

Deno.test("RESOLVE: torsocks' request (arbitrary port, trailing bytes) gets its reply intact", async () => {
  await using gw = startTestGateway(HOSTS);
  const reply = await ask(
    gw,
    RESOLVE,
    nameTarget("v4.test.example", 0x2a),
    new Uint8Array(200).fill(0x41),
  );
  assert.equal(reply.reply, 0);
  assert.equal(boundText(reply), "127.0.0.1");
});

Deno.test("RESOLVE: an unknown name gets REP 4", async () => {
  await using gw = startTestGateway(HOSTS);
  const reply = await ask(gw, RESOLVE, nameTarget("nowhere.test.example"));
  assert.equal(reply.reply, 4);
  assert.equal((await lastRecord(gw)).outcome, "rejected");
});

Deno.test("RESOLVE: the rules apply to each address as for CONNECT; none allowed is REP 2", async () => {
  await using gw = startTestGateway(`${HOSTS}rules:
  - { action: deny, to: ["::1/128"] }
  - { action: deny, to: ["secret.test.example"] }
  - { action: allow }
`);
  // ::1 comes first by preference but is denied: the answer is the next address.
  const reply = await ask(gw, RESOLVE, nameTarget("both.test.example"));
  assert.equal(reply.reply, 0);
  assert.equal(boundText(reply), "127.0.0.1");
  assert.equal((await ask(gw, RESOLVE, ipTarget("::1"))).reply, 2);
  await using named = startTestGateway(`resolver:
  hosts:
    secret.test.example: ["127.0.0.1"]
rules:
  - { action: deny, to: ["secret.test.example"] }
  - { action: allow }
`);
  assert.equal((await ask(named, RESOLVE, nameTarget("secret.test.example"))).reply, 2);
});

Deno.test("RESOLVE: the rule command is `resolve`; rules for connect only do not allow it", async () => {
  await using gw = startTestGateway(`${HOSTS}rules:
  - { action: allow, commands: [connect] }
`);
  assert.equal((await ask(gw, RESOLVE, nameTarget("v4.test.example"))).reply, 2);
  await using allowed = startTestGateway(`${HOSTS}rules:
  - { action: allow, commands: [resolve] }
`);
  assert.equal((await ask(allowed, RESOLVE, nameTarget("v4.test.example"))).reply, 0);
});

Deno.test("RESOLVE: a name on a chained route gets REP 7", async () => {
  await using gw = startTestGateway(`${HOSTS}routes:
  - to: ["*.test.example"]
    chain: ["socks5://127.0.0.1:9"]
`);
  assert.equal((await ask(gw, RESOLVE, nameTarget("v4.test.example"))).reply, 7);
});

Deno.test("RESOLVE_PTR: an address gets its name as ATYP 3; none known is REP 4", async () => {
  await using gw = startTestGateway(`resolver:
  hosts:
    loop.test.example: ["127.0.0.1"]
`);
  const reply = await ask(gw, RESOLVE_PTR, ipTarget("127.0.0.1"));
  assert.equal(reply.reply, 0);
  assert.equal(reply.bound.address.family, "name");
  assert.equal(boundText(reply), "loop.test.example");
  assert.equal((await ask(gw, RESOLVE_PTR, ipTarget("::1"))).reply, 4);
  assert.equal((await ask(gw, RESOLVE_PTR, nameTarget("loop.test.example"))).reply, 8);
});

Deno.test("RESOLVE_PTR: a denied address or a denied name gets REP 2", async () => {
  await using gw = startTestGateway(`resolver:
  hosts:
    hidden.test.example: ["127.0.0.2"]
    open.test.example: ["127.0.0.3"]
rules:
  - { action: deny, to: ["127.0.0.4/32", "hidden.test.example"] }
  - { action: allow }
`);
  assert.equal((await ask(gw, RESOLVE_PTR, ipTarget("127.0.0.2"))).reply, 2);
  assert.equal((await ask(gw, RESOLVE_PTR, ipTarget("127.0.0.4"))).reply, 2);
  assert.equal((await ask(gw, RESOLVE_PTR, ipTarget("127.0.0.3"))).reply, 0);
});

// Stand-ins (resolver.stand_ins: cross-family, the default): a client of one family asking for a
// name with addresses of the other family only gets a stand-in of its own family.

const STAND_IN_HOSTS = `resolver:
  hosts:
    v6only.test.example: ["::1"]
    v4only.test.example: ["127.0.0.1"]
    both.test.example: ["127.0.0.1", "::1"]
`;

const IN_STAND_IN_V4 = /^198\.1[89]\./;
const IN_STAND_IN_V6 = /^100::[0-9a-f]+$/;

/** One request from the gateway's IPv`family` listener, after an optional `prelude` (PROXY). */
async function request(
  gw: TestGateway,
  from: 4 | 6 | IpEndpoint,
  command: number,
  target: SocksTarget,
  prelude: Uint8Array = new Uint8Array(0),
): Promise<{ reply: SocksReply; conn: Deno.TcpConn; reader: ReturnType<typeof readerOf> }> {
  const conn = await connectTo(typeof from === "number" ? gw.endpoint(from) : from);
  const reader = readerOf(conn);
  await writeAll(conn, Uint8Array.from([...prelude, ...encodeGreeting({ methods: [0] })]));
  assert.equal(await readMethodSelection(reader), 0);
  await writeAll(conn, encodeRequest({ command, target }));
  return { reply: await readSocksReply(reader), conn, reader };
}

/** RESOLVE or RESOLVE_PTR from the IPv`family` listener: the reply. */
async function askFrom(
  gw: TestGateway,
  from: 4 | 6 | IpEndpoint,
  command: number,
  target: SocksTarget,
  prelude?: Uint8Array,
): Promise<SocksReply> {
  const { reply, conn } = await request(gw, from, command, target, prelude);
  conn.close();
  return reply;
}

/** CONNECT from the IPv`family` listener; on REP 0 checks that the echo server answers. */
async function connectVia(
  gw: TestGateway,
  family: 4 | 6,
  target: SocksTarget,
): Promise<SocksReply> {
  const { reply, conn, reader } = await request(gw, family, 0x01, target);
  try {
    if (reply.reply === 0) {
      await writeAll(conn, new TextEncoder().encode("stand-in"));
      assert.equal(new TextDecoder().decode(await reader.readExact(8)), "stand-in");
    }
  } finally {
    conn.close();
  }
  return reply;
}

Deno.test("RESOLVE stand-in: an IPv4 client gets an IPv4 stand-in for an IPv6-only name, CONNECT reaches the name", async () => {
  await using server = startServer("::1", echo);
  await using gw = startTestGateway(STAND_IN_HOSTS);
  const answer = await askFrom(gw, 4, RESOLVE, nameTarget("V6only.Test.Example."));
  assert.equal(answer.reply, 0);
  assert.equal(answer.bound.address.family, 4);
  const standIn = boundText(answer);
  assert.match(standIn, IN_STAND_IN_V4);
  const resolved = await lastRecord(gw);
  assert.match(resolved.reason ?? "", /stand-in: no usable IPv4 address/);
  // The same name, asked again, gets the same stand-in.
  assert.equal(
    boundText(await askFrom(gw, 4, RESOLVE, nameTarget("v6only.test.example"))),
    standIn,
  );

  // ATYP 1, as most clients send it.
  gw.records.length = 0;
  const reply = await connectVia(gw, 4, { address: answer.bound.address, port: server.port });
  assert.equal(reply.reply, 0);
  // BND is of the client's family: the gateway address it reached, and the outbound port.
  assert.equal(reply.bound.address.family, 4);
  assert.equal(boundText(reply), "127.0.0.1");
  assert.notEqual(reply.bound.port, 0);
  const record = await connectRecord(gw);
  assert.deepEqual(record.target, nameTarget("v6only.test.example", server.port));
  assert.equal(formatIp(record.used!.address), "::1");
  assert.match(record.reason ?? "", new RegExp(`^stand-in ${standIn.replaceAll(".", "\\.")}, `));

  // ATYP 3 with the dotted address, as torsocks sends it.
  const dotted = await connectVia(gw, 4, nameTarget(standIn, server.port));
  assert.equal(dotted.reply, 0);
  assert.equal(boundText(dotted), "127.0.0.1");
});

Deno.test("RESOLVE stand-in: an IPv6 client gets an IPv6 stand-in for an IPv4-only name", async () => {
  await using server = startServer("127.0.0.1", echo);
  await using gw = startTestGateway(STAND_IN_HOSTS);
  const answer = await askFrom(gw, 6, RESOLVE, nameTarget("v4only.test.example"));
  assert.equal(answer.reply, 0);
  assert.match(boundText(answer), IN_STAND_IN_V6);
  const reply = await connectVia(gw, 6, { address: answer.bound.address, port: server.port });
  assert.equal(reply.reply, 0);
  assert.equal(boundText(reply), "::1");
  // A CONNECT to a real address keeps RFC 1928's BND: the outbound socket's (IPv4) address.
  const plain = await connectVia(gw, 6, { address: parseIp("127.0.0.1")!, port: server.port });
  assert.equal(plain.reply, 0);
  assert.equal(boundText(plain), "127.0.0.1");
});

Deno.test("RESOLVE stand-in: same-family answers stay real, the client's family first", async () => {
  await using gw = startTestGateway(STAND_IN_HOSTS);
  assert.equal(
    boundText(await askFrom(gw, 4, RESOLVE, nameTarget("v4only.test.example"))),
    "127.0.0.1",
  );
  assert.equal(
    boundText(await askFrom(gw, 4, RESOLVE, nameTarget("both.test.example"))),
    "127.0.0.1",
  );
  assert.equal(boundText(await askFrom(gw, 6, RESOLVE, nameTarget("both.test.example"))), "::1");
  // A literal has no name to stand for: it is answered as it is.
  assert.equal(boundText(await askFrom(gw, 4, RESOLVE, nameTarget("::1"))), "::1");
  await using never = startTestGateway(`${STAND_IN_HOSTS}  stand_ins: never\n`);
  assert.equal(
    boundText(await askFrom(never, 4, RESOLVE, nameTarget("v6only.test.example"))),
    "::1",
  );
});

Deno.test("RESOLVE_PTR of a stand-in answers its name, only to the client it was given to", async () => {
  await using gw = startTestGateway(STAND_IN_HOSTS);
  const answer = await askFrom(gw, 4, RESOLVE, nameTarget("v6only.test.example"));
  const ptr = await askFrom(gw, 4, RESOLVE_PTR, { address: answer.bound.address, port: 0 });
  assert.equal(ptr.reply, 0);
  assert.equal(ptr.bound.address.family, "name");
  assert.equal(boundText(ptr), "v6only.test.example");
  // Another client address (::1) neither learns the name nor can use the stand-in.
  assert.equal(
    (await askFrom(gw, 6, RESOLVE_PTR, { address: answer.bound.address, port: 0 })).reply,
    4,
  );
  // An address of the ranges that was never given out: REP 4, no PTR query.
  assert.equal((await askFrom(gw, 4, RESOLVE_PTR, ipTarget("198.19.1.1"))).reply, 4);
});

/** RESOLVE or RESOLVE_PTR from the IPv4 listener, logged in as `user` (password `user`-pass). */
async function askAs(gw: TestGateway, user: string, command: number, target: SocksTarget) {
  using conn = await connectTo(gw.endpoint(4));
  const reader = readerOf(conn);
  await writeAll(conn, encodeGreeting({ methods: [2] }));
  assert.equal(await readMethodSelection(reader), 2);
  await writeAll(conn, encodePasswordAuthRequest({ username: user, password: `${user}-pass` }));
  assert.equal(await readPasswordAuthReply(reader), 0);
  await writeAll(conn, encodeRequest({ command, target }));
  return await readSocksReply(reader);
}

Deno.test("RESOLVE_PTR of a stand-in: another user behind the same address does not learn the name (review R5)", async () => {
  await using gw = startTestGateway(
    `${STAND_IN_HOSTS}auth:\n  users:\n    - { name: alice, password: alice-pass }\n` +
      `    - { name: bob, password: bob-pass }\n`,
  );
  const answer = await askAs(gw, "alice", RESOLVE, nameTarget("v6only.test.example"));
  assert.equal(answer.reply, 0);
  const target = { address: answer.bound.address, port: 0 };
  const ptr = await askAs(gw, "alice", RESOLVE_PTR, target);
  assert.equal(boundText(ptr), "v6only.test.example");
  assert.equal((await askAs(gw, "bob", RESOLVE_PTR, target)).reply, 4);
});

Deno.test("CONNECT to a stand-in address not in the table is REP 4 and never dialed", async () => {
  await using gw = startTestGateway(STAND_IN_HOSTS);
  const given = await askFrom(gw, 4, RESOLVE, nameTarget("v6only.test.example"));
  gw.records.length = 0;
  for (
    const [family, target] of [
      [4, ipTarget("198.18.7.7")],
      [4, nameTarget("198.19.0.1")],
      [6, ipTarget("100::1234")],
      [4, ipTarget("::ffff:198.18.9.9")],
      // Another client's stand-in.
      [6, { address: given.bound.address, port: 0 }],
    ] as const
  ) {
    gw.records.length = 0;
    const reply = await connectVia(gw, family, { ...target, port: 9 });
    assert.equal(reply.reply, 4, `CONNECT ${boundText({ ...reply, bound: target })}`);
    const record = await connectRecord(gw);
    assert.equal(record.used, undefined);
    assert.match(record.reason ?? "", /in the stand-in ranges but not a stand-in of this client/);
  }
});

Deno.test("CONNECT through a stand-in: rules see the name and the resolved address", async () => {
  await using server = startServer("::1", echo);
  await using byName = startTestGateway(`${STAND_IN_HOSTS}rules:
  - { action: deny, to: ["v6only.test.example"], commands: [connect] }
  - { action: allow }
`);
  const a = await askFrom(byName, 4, RESOLVE, nameTarget("v6only.test.example"));
  assert.equal(a.reply, 0);
  assert.equal(
    (await connectVia(byName, 4, { address: a.bound.address, port: server.port })).reply,
    2,
  );
  assert.match((await connectRecord(byName)).reason ?? "", /denied by rules\[0\]/);

  await using byAddress = startTestGateway(`${STAND_IN_HOSTS}rules:
  - { action: deny, to: ["::1/128"], commands: [connect] }
  - { action: allow }
`);
  const b = await askFrom(byAddress, 4, RESOLVE, nameTarget("v6only.test.example"));
  assert.equal(b.reply, 0);
  assert.equal(
    (await connectVia(byAddress, 4, { address: b.bound.address, port: server.port })).reply,
    2,
  );

  // A rule on the stand-in ranges themselves does not stand between a client and the name.
  await using ranges = startTestGateway(`${STAND_IN_HOSTS}rules:
  - { action: deny, to: ["198.18.0.0/15"] }
  - { action: allow }
`);
  const c = await askFrom(ranges, 4, RESOLVE, nameTarget("v6only.test.example"));
  assert.equal(
    (await connectVia(ranges, 4, { address: c.bound.address, port: server.port })).reply,
    0,
  );
});

Deno.test("RESOLVE stand-in: a remote client never gets one for a host-local name (REP 2)", async () => {
  // A PROXY header makes the client remote (192.0.2.9): the safe defaults deny host-local
  // destinations, so ::1 is not usable and no IPv4 stand-in may stand for it.
  await using gw = startTestGateway(`listen:
  - { address: "127.0.0.1:0", proxy_protocol: v1 }
  - "[::1]:0"
${STAND_IN_HOSTS}    localhost: ["127.0.0.1", "::1"]
`);
  const remote = new TextEncoder().encode("PROXY TCP4 192.0.2.9 127.0.0.1 40000 1080\r\n");
  for (const name of ["v6only.test.example", "localhost", "both.test.example"]) {
    const reply = await askFrom(gw, 4, RESOLVE, nameTarget(name), remote);
    assert.equal(reply.reply, 2, `RESOLVE ${name}`);
  }
  assert.equal(gw.records.filter((r) => r.outcome === "resolved").length, 0);
});

Deno.test("RESOLVE stand-in: a client's flood of names evicts its own oldest, not others'", async () => {
  // Two IPv4 clients (the same pool): 127.0.0.1 floods, 192.0.2.9 (by a PROXY header) is the
  // victim. Static names with an IPv6 address only (never dialed here); 300 is past the 256 a
  // client may hold.
  const flood = 300;
  const hosts = Array.from({ length: flood }, (_, i) => `    f${i}.test.example: ["2001:db8::5"]`);
  await using gw = startTestGateway(`listen:
  - "127.0.0.1:0"
  - { address: "127.0.0.2:0", proxy_protocol: v1 }
resolver:
  hosts:
    victim.test.example: ["2001:db8::5"]
${hosts.join("\n")}
`);
  const viaProxy = gw.gateway.endpoints[1]!;
  const victimHeader = new TextEncoder().encode("PROXY TCP4 192.0.2.9 127.0.0.2 40000 1080\r\n");
  const victim = await askFrom(
    gw,
    viaProxy,
    RESOLVE,
    nameTarget("victim.test.example"),
    victimHeader,
  );
  assert.match(boundText(victim), IN_STAND_IN_V4);
  let first: SocksReply | undefined;
  for (let i = 0; i < flood; i++) {
    const reply = await askFrom(gw, 4, RESOLVE, nameTarget(`f${i}.test.example`));
    assert.equal(reply.reply, 0);
    first ??= reply;
  }
  // The victim's stand-in still maps back to its name.
  const ptr = await askFrom(
    gw,
    viaProxy,
    RESOLVE_PTR,
    { address: victim.bound.address, port: 0 },
    new TextEncoder().encode("PROXY TCP4 192.0.2.9 127.0.0.2 40001 1080\r\n"),
  );
  assert.equal(boundText(ptr), "victim.test.example");
  // The flooder's oldest stand-in is gone; its latest maps back.
  assert.equal(
    (await askFrom(gw, 4, RESOLVE_PTR, { address: first!.bound.address, port: 0 })).reply,
    4,
  );
  const last = await askFrom(gw, 4, RESOLVE, nameTarget(`f${flood - 1}.test.example`));
  const lastPtr = await askFrom(gw, 4, RESOLVE_PTR, { address: last.bound.address, port: 0 });
  assert.equal(boundText(lastPtr), `f${flood - 1}.test.example`);
});
