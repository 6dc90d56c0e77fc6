import assert from "node:assert/strict";
import { formatIp, parseIp } from "../../net/address.ts";
import { encodeGreeting, encodeRequest, readMethodSelection } from "../../socks5/codec.ts";
import type { SocksReply, SocksTarget } from "../../socks5/types.ts";
import {
  connectTo,
  readAll,
  readerOf,
  readSocksReply,
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

function boundText(reply: SocksReply): string {
  const a = reply.bound.address;
  return a.family === "name" ? a.name : formatIp(a);
}

Deno.test("RESOLVE: a name gets REP 0 and the address CONNECT would try first", async () => {
  await using gw = startTestGateway(HOSTS);
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
