import assert from "node:assert/strict";
import { formatIp, parseIp } from "../../net/address.ts";
import { clientFamily, standInBound, StandIns } from "./stand_ins.ts";

const A = parseIp("192.0.2.2")!;
const B = parseIp("192.0.2.3")!;
const A6 = parseIp("2001:db8:1::2")!;

Deno.test("StandIns maps a stand-in back to its name, for its client only", () => {
  const standIns = new StandIns();
  const fake = standIns.assign("V6.Dualgate.Example.", 4, A);
  assert.equal(formatIp(fake), "198.18.0.1");
  assert.equal(standIns.nameOf(fake, A), "v6.dualgate.example");
  // The IPv4-mapped form of the client is the same client.
  assert.equal(standIns.nameOf(fake, parseIp("::ffff:192.0.2.2")!), "v6.dualgate.example");
  assert.equal(standIns.nameOf(fake, B), undefined);
  // B's stand-in for the same name is another address: A's can never be made to point elsewhere.
  assert.notEqual(formatIp(standIns.assign("v6.dualgate.example", 4, B)), formatIp(fake));
  assert.equal(standIns.nameOf(fake, A), "v6.dualgate.example");
  assert.equal(formatIp(standIns.assign("v4.dualgate.example", 6, A6)), "100::1");
});

Deno.test("StandIns.lookup(): ATYP 1, ATYP 3 dotted and IPv4-mapped stand-ins map to the name", () => {
  const standIns = new StandIns();
  const fake = standIns.assign("v6.dualgate.example", 4, A);
  const name = { address: { family: "name" as const, name: "v6.dualgate.example" }, port: 80 };
  for (
    const address of [
      fake,
      { family: "name" as const, name: "198.18.0.1" },
      parseIp("::ffff:198.18.0.1")!,
    ]
  ) {
    const found = standIns.lookup({ address, port: 80 }, A);
    assert.equal(found.kind, "name");
    if (found.kind === "name") {
      assert.deepEqual(found.target, name);
      assert.equal(formatIp(found.standIn), "198.18.0.1");
    }
  }
  assert.deepEqual(standIns.lookup({ address: fake, port: 80 }, B).kind, "unknown");
  assert.deepEqual(
    standIns.lookup({ address: parseIp("198.19.255.1")!, port: 80 }, A).kind,
    "unknown",
  );
  assert.deepEqual(standIns.lookup({ address: parseIp("100::9")!, port: 80 }, A6).kind, "unknown");
  // Addresses outside the ranges and names are left alone.
  assert.deepEqual(standIns.lookup({ address: parseIp("198.20.0.1")!, port: 80 }, A).kind, "none");
  assert.deepEqual(standIns.lookup(name, A).kind, "none");
});

Deno.test("StandIns stays bounded under a RESOLVE flood; idle entries expire", () => {
  let now = 0;
  const standIns = new StandIns({ maxEntries: 64, maxEntriesPerClient: 8, now: () => now });
  const victim = standIns.assign("victim.example", 4, B);
  for (let client = 0; client < 4; client++) {
    const from = parseIp(`192.0.2.${100 + client}`)!;
    for (let i = 0; i < 10_000; i++) standIns.assign(`n${i}.example`, 4, from);
  }
  assert.equal(standIns.size(4), 33);
  assert.equal(standIns.nameOf(victim, B), "victim.example");
  // Many clients: the table as a whole stays at its bound.
  for (let client = 0; client < 100; client++) {
    standIns.assign("x.example", 4, parseIp(`203.0.113.${client}`)!);
  }
  assert.equal(standIns.size(4), 64);
  now += 600_001;
  assert.equal(standIns.size(4), 0);
});

Deno.test("StandIns scope by client key and user: one /64 is one client, users apart (review R4/R5)", () => {
  const standIns = new StandIns({ maxEntries: 64, maxEntriesPerClient: 8 });
  const victim = standIns.assign("victim.example", 4, B);
  // 16 addresses of one /64 are one client: together they hold its share, not 16 shares.
  for (let host = 1; host <= 16; host++) {
    const from = parseIp(`2001:db8:5::${host.toString(16)}`)!;
    for (let i = 0; i < 64; i++) standIns.assign(`n${host}-${i}.example`, 6, from);
  }
  assert.equal(standIns.size(6), 8);
  const fake = standIns.assign("n16-63.example", 6, parseIp("2001:db8:5::99")!);
  assert.equal(standIns.nameOf(fake, parseIp("2001:db8:5::1")!), "n16-63.example");
  // Two users behind one address do not see each other's stand-ins.
  const alices = standIns.assign("secret.example", 4, A, "alice");
  assert.equal(standIns.nameOf(alices, A, "alice"), "secret.example");
  assert.equal(standIns.nameOf(alices, A, "bob"), undefined);
  assert.equal(standIns.nameOf(alices, A), undefined);
  assert.equal(standIns.lookup({ address: alices, port: 80 }, A, "bob").kind, "unknown");
  assert.equal(standIns.lookup({ address: alices, port: 80 }, A, "alice").kind, "name");
  assert.equal(standIns.nameOf(victim, B), "victim.example");
});

Deno.test("StandIns: many clients flooding fill the table but evict their own, not a quiet client's", () => {
  const standIns = new StandIns({ maxEntries: 64, maxEntriesPerClient: 8 });
  const victim = standIns.assign("victim.example", 4, B);
  for (let client = 0; client < 32; client++) {
    for (let i = 0; i < 8; i++) {
      standIns.assign(`n${i}.example`, 4, parseIp(`203.0.113.${client}`)!);
    }
  }
  assert.equal(standIns.size(4), 64);
  assert.equal(standIns.nameOf(victim, B), "victim.example");
});

Deno.test("standInBound() answers in the client's family", () => {
  assert.equal(clientFamily(parseIp("::ffff:192.0.2.2")!), 4);
  const local4 = parseIp("192.0.2.1")!;
  assert.deepEqual(standInBound(local4, A, 4242), { address: local4, port: 4242 });
  assert.deepEqual(standInBound(parseIp("::ffff:192.0.2.1")!, A, 1), { address: local4, port: 1 });
  const local6 = parseIp("2001:db8:1::1")!;
  assert.deepEqual(standInBound(local6, A6, 7), { address: local6, port: 7 });
  // A PROXY-protocol client of the other family than the listener: the unspecified address.
  assert.equal(formatIp(standInBound(local6, A, 7).address), "0.0.0.0");
});
