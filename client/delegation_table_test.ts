import assert from "node:assert/strict";
import { formatIp, parseIp } from "../net/address.ts";
import { DelegationTable, normalizeName } from "./delegation_table.ts";

Deno.test("normalizeName() lowercases, strips the trailing dot and applies IDNA", () => {
  assert.equal(normalizeName("WWW.Example.COM."), "www.example.com");
  assert.equal(normalizeName("Bücher.example"), "xn--bcher-kva.example");
  assert.throws(() => normalizeName("192.0.2.1"), TypeError);
  assert.throws(() => normalizeName("a..b"), TypeError);
  assert.throws(() => normalizeName(""), TypeError);
});

Deno.test("DelegationTable.lookup() hands out default-range fakes of the asked family", () => {
  const table = new DelegationTable();
  const v4 = table.lookup("v6.dualgate.example", 4);
  const v6 = table.lookup("v4.dualgate.example", 6);
  assert.equal(formatIp(v4), "198.18.0.1");
  assert.equal(formatIp(v6), "100::1");
  assert.equal(table.resolve(v4), "v6.dualgate.example");
  assert.equal(table.resolve(v6), "v4.dualgate.example");
  assert.ok(table.isFake(parseIp("198.19.255.254")!));
  assert.ok(!table.isFake(parseIp("198.20.0.1")!));
  assert.ok(table.isFake(parseIp("100::ffff")!));
});

Deno.test("DelegationTable.lookup() gives one fake per normalised name", () => {
  const table = new DelegationTable();
  const a = table.lookup("Bücher.Example.", 4);
  const b = table.lookup("xn--bcher-kva.example", 4);
  assert.deepEqual(a, b);
  assert.equal(table.size(4), 1);
  assert.equal(table.resolve(a), "xn--bcher-kva.example");
});

Deno.test("DelegationTable.lookup() skips .0 and .255 addresses", () => {
  const table = new DelegationTable({ ipv4Range: "198.18.0.0/23" });
  const seen = new Set<string>();
  for (let i = 0; i < 300; i++) seen.add(formatIp(table.lookup(`n${i}.example`, 4)));
  assert.ok(!seen.has("198.18.0.255") && !seen.has("198.18.1.0") && !seen.has("198.18.0.0"));
});

Deno.test("DelegationTable stays bounded, evicting the least recently used entry", () => {
  const table = new DelegationTable({ maxEntries: 3 });
  const a = table.lookup("a.example", 4);
  table.lookup("b.example", 4);
  table.lookup("c.example", 4);
  table.resolve(a); // a is now the most recently used
  const d = table.lookup("d.example", 4);
  assert.equal(table.size(4), 3);
  assert.equal(table.resolve(a), "a.example");
  assert.equal(table.lookup("b.example", 4).bytes[3], 5); // b was evicted: a new fake
  assert.equal(table.resolve(d), "d.example");
  // A freed address is not handed out again before the range is used up.
  assert.notEqual(formatIp(table.lookup("e.example", 4)), "198.18.0.2");
});

Deno.test("DelegationTable never reassigns a pinned entry", () => {
  const table = new DelegationTable({ maxEntries: 2 });
  const a = table.lookup("a.example", 4);
  const b = table.lookup("b.example", 4);
  const releaseA = table.pin(a);
  const releaseB = table.pin(b);
  assert.throws(() => table.lookup("c.example", 4), /in use by live connections/);
  assert.equal(table.resolve(a), "a.example");
  releaseB();
  releaseB(); // idempotent
  table.lookup("c.example", 4);
  assert.equal(table.resolve(b), undefined);
  assert.equal(table.resolve(a), "a.example");
  releaseA();
});

Deno.test("DelegationTable expires idle entries but not pinned ones", () => {
  let now = 0;
  const table = new DelegationTable({ idleTtlMs: 1000, now: () => now });
  const a = table.lookup("a.example", 6);
  const b = table.lookup("b.example", 6);
  const release = table.pin(b);
  now = 5000;
  assert.equal(table.resolve(a), undefined);
  assert.equal(table.resolve(b), "b.example");
  assert.equal(table.size(6), 1);
  release();
  now = 7000;
  assert.equal(table.size(6), 0);
  assert.throws(() => table.pin(b), RangeError);
});

Deno.test("DelegationTable honours configured ranges and rejects bad ones", () => {
  const table = new DelegationTable({ ipv4Range: "0.0.0.0/24", ipv6Range: "2001:2::/48" });
  assert.equal(formatIp(table.lookup("x.example", 4)), "0.0.0.1");
  assert.equal(formatIp(table.lookup("x.example", 6)), "2001:2::1");
  assert.throws(() => new DelegationTable({ ipv4Range: "100::/64" }), RangeError);
  assert.throws(() => new DelegationTable({ ipv4Range: "198.18.0.0/31" }), RangeError);
  const tiny = new DelegationTable({ ipv4Range: "198.18.0.0/30" });
  tiny.lookup("one.example", 4);
  tiny.lookup("two.example", 4);
  assert.equal(tiny.size(4), 2);
});

Deno.test("DelegationTable scopes: an entry is seen only in its own scope", () => {
  const table = new DelegationTable();
  const a = table.lookup("v6.dualgate.example", 4, "192.0.2.2");
  const b = table.lookup("v6.dualgate.example", 4, "192.0.2.3");
  // One address is never in two entries, even for the same name.
  assert.notDeepEqual(a, b);
  assert.equal(table.resolve(a, "192.0.2.2"), "v6.dualgate.example");
  assert.equal(table.resolve(a, "192.0.2.3"), undefined);
  assert.equal(table.resolve(a), undefined);
  assert.equal(table.resolve(b, "192.0.2.3"), "v6.dualgate.example");
});

Deno.test("DelegationTable maxEntriesPerScope: a scope that floods evicts only its own entries", () => {
  const table = new DelegationTable({ maxEntries: 100, maxEntriesPerScope: 4 });
  const victim = table.lookup("victim.example", 4, "victim");
  for (let i = 0; i < 1000; i++) table.lookup(`n${i}.example`, 4, "flooder");
  assert.equal(table.size(4), 5);
  assert.equal(table.resolve(victim, "victim"), "victim.example");
  assert.equal(
    table.resolve(table.lookup("n999.example", 4, "flooder"), "flooder"),
    "n999.example",
  );
  assert.throws(() => new DelegationTable({ maxEntriesPerScope: 0 }), RangeError);
});

Deno.test("DelegationTable full: the scope holding the most entries loses one, not the oldest entry (review R4)", () => {
  const table = new DelegationTable({ maxEntries: 16, maxEntriesPerScope: 4 });
  const victim = table.lookup("victim.example", 4, "victim");
  // Many scopes at their share fill the table, then keep asking.
  for (let round = 0; round < 3; round++) {
    for (let scope = 0; scope < 8; scope++) {
      for (let i = 0; i < 4; i++) table.lookup(`n${round}-${i}.example`, 4, `flooder${scope}`);
    }
  }
  assert.equal(table.size(4), 16);
  assert.equal(table.resolve(victim, "victim"), "victim.example");
});
