import assert from "node:assert/strict";
import { formatIp, parseIp } from "../../net/address.ts";
import { cidrContains, parseCidr } from "../../net/cidr.ts";
import type { EgressConfig } from "../config/types.ts";
import { addressInPrefix, egressKeyOf, EgressPool, egressPoolFor } from "./egress.ts";

const ip = (text: string) => parseIp(text)!;
const PREFIX = parseCidr("2001:db8:5::/64");

function pool(config: Partial<EgressConfig>): EgressPool {
  return new EgressPool({ addresses: [], policy: "per_connection", ...config });
}

const key = (user: string | undefined, destination: string) => ({
  ...(user !== undefined && { user }),
  client: "192.0.2.1",
  destination,
});

Deno.test("per_connection over a list: round robin per family, the other family untouched", () => {
  const p = pool({ addresses: ["192.0.2.1", "2001:db8::1", "192.0.2.2", "192.0.2.3"].map(ip) });
  const v4 = Array.from({ length: 6 }, () => formatIp(p.source(4, key("a", "x"))!));
  assert.deepEqual(v4, [
    "192.0.2.1",
    "192.0.2.2",
    "192.0.2.3",
    "192.0.2.1",
    "192.0.2.2",
    "192.0.2.3",
  ]);
  assert.equal(formatIp(p.source(6, key("a", "x"))!), "2001:db8::1");
  assert.equal(formatIp(p.source(6, key("a", "x"))!), "2001:db8::1");
});

Deno.test("per_connection over a prefix: random addresses inside it, all different", () => {
  const p = pool({ prefix: PREFIX });
  const seen = new Set<string>();
  for (let i = 0; i < 50; i++) {
    const a = p.source(6, key(undefined, "x"))!;
    assert.ok(cidrContains(PREFIX, a), formatIp(a));
    seen.add(formatIp(a));
  }
  assert.equal(seen.size, 50);
  assert.equal(p.source(4, key(undefined, "x")), null);
  assert.equal(p.has(4), false);
  assert.equal(p.has(6), true);
});

Deno.test("sticky_user: one user, one address; other users spread; no user keys on the client", () => {
  const p = pool({ prefix: PREFIX, policy: "sticky_user" });
  const alice = formatIp(p.source(6, key("alice", "a.example"))!);
  assert.equal(formatIp(p.source(6, key("alice", "b.example"))!), alice);
  assert.notEqual(formatIp(p.source(6, key("bob", "a.example"))!), alice);
  const anonymous = (client: string) =>
    formatIp(p.source(6, { client, destination: "a.example" })!);
  assert.equal(anonymous("192.0.2.1"), anonymous("192.0.2.1"));
  assert.notEqual(anonymous("192.0.2.1"), anonymous("192.0.2.2"));
  // Over a list: the same user always gets the same entry.
  const list = pool({
    addresses: ["192.0.2.1", "192.0.2.2", "192.0.2.3"].map(ip),
    policy: "sticky_user",
  });
  const first = formatIp(list.source(4, key("alice", "x"))!);
  for (let i = 0; i < 5; i++) assert.equal(formatIp(list.source(4, key("alice", `d${i}`))!), first);
  const users = new Set(
    Array.from({ length: 40 }, (_, i) => formatIp(list.source(4, key(`user${i}`, "x"))!)),
  );
  assert.equal(users.size, 3);
});

Deno.test("sticky_destination: one destination, one address, whoever asks", () => {
  const p = pool({ prefix: PREFIX, policy: "sticky_destination" });
  const a = formatIp(p.source(6, key("alice", "a.example"))!);
  assert.equal(formatIp(p.source(6, key("bob", "a.example"))!), a);
  assert.notEqual(formatIp(p.source(6, key("alice", "b.example"))!), a);
});

Deno.test("selection() picks each family once per dial, even per_connection", () => {
  const p = pool({ addresses: ["192.0.2.1", "192.0.2.2"].map(ip) });
  const pick = p.selection(key(undefined, "x"));
  assert.equal(formatIp(pick(4)!), "192.0.2.1");
  assert.equal(formatIp(pick(4)!), "192.0.2.1");
  assert.equal(pick(6), null);
  assert.equal(formatIp(p.selection(key(undefined, "x"))(4)!), "192.0.2.2");
});

Deno.test("addressInPrefix() keeps the network bits and never gives the all-zero host", () => {
  const ones = new Uint8Array(16).fill(0xff);
  assert.equal(
    formatIp(addressInPrefix(parseCidr("2001:db8:5::/64"), ones)),
    "2001:db8:5:0:ffff:ffff:ffff:ffff",
  );
  assert.equal(
    formatIp(addressInPrefix(parseCidr("2001:db8:5::/68"), ones)),
    "2001:db8:5:0:fff:ffff:ffff:ffff",
  );
  assert.equal(
    formatIp(addressInPrefix(parseCidr("2001:db8:5::/64"), new Uint8Array(16))),
    "2001:db8:5::1",
  );
  assert.equal(formatIp(addressInPrefix(parseCidr("2001:db8:5::7/128"), ones)), "2001:db8:5::7");
});

Deno.test("egressKeyOf() keys names normalised and literals formatted; the user's pool wins", () => {
  const client = ip("192.0.2.9");
  assert.equal(
    egressKeyOf({ address: { family: "name", name: "WWW.Example." }, port: 80 }, {
      user: "u",
      client,
    })
      .destination,
    "www.example",
  );
  assert.equal(
    egressKeyOf({ address: { family: "name", name: "2001:DB8::1" }, port: 80 }, { client })
      .destination,
    "2001:db8::1",
  );
  assert.equal(
    egressKeyOf({ address: ip("198.51.100.1"), port: 80 }, { client }).destination,
    "198.51.100.1",
  );
  const route = pool({ prefix: PREFIX });
  const alice = pool({ addresses: [ip("192.0.2.1")] });
  const users = new Map([["alice", alice]]);
  assert.equal(egressPoolFor(route, { name: "alice", pools: users }), alice);
  assert.equal(egressPoolFor(route, { name: "bob", pools: users }), route);
  assert.equal(egressPoolFor(undefined, { pools: users }), undefined);
});
