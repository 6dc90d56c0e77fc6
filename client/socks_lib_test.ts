import assert from "node:assert/strict";
import { formatIp } from "../net/address.ts";
import { SocksPolicy, UnknownFakeAddressError } from "./socks_lib.ts";

Deno.test("SocksPolicy.lookup() answers fakes of the caller's family, null for bypassed names", () => {
  const policy = new SocksPolicy({ nativeFamilies: [6], bypass: ["*.lan", "intranet.example"] });
  assert.equal(formatIp(policy.lookup("v4.dualgate.example", 0)!), "100::1");
  assert.equal(formatIp(policy.lookup("v4.dualgate.example", 4)!), "198.18.0.1");
  assert.equal(policy.lookup("localhost", 0), null);
  assert.equal(policy.lookup("a.localhost", 0), null);
  assert.equal(policy.lookup("printer.LAN.", 0), null);
  assert.equal(policy.lookup("intranet.example", 0), null);
  assert.equal(policy.lookup("::1", 0), null);
});

Deno.test("SocksPolicy.route() delegates names, fakes and foreign literals", () => {
  const policy = new SocksPolicy({ nativeFamilies: [4] });
  const byName = policy.route("V6.Dualgate.Example");
  assert.equal(byName.kind, "delegate");
  if (byName.kind !== "delegate") return;
  assert.deepEqual(byName.target, { family: "name", name: "v6.dualgate.example" });
  assert.equal(formatIp(byName.peer), "198.18.0.1");
  const byFake = policy.route("198.18.0.1");
  assert.equal(byFake.kind === "delegate" && byFake.name, "v6.dualgate.example");
  const mapped = policy.route("::ffff:198.18.0.1");
  assert.equal(mapped.kind === "delegate" && mapped.name, "v6.dualgate.example");
  const literal = policy.route("2001:db8:2::2");
  assert.equal(literal.kind, "delegate");
  assert.equal(literal.kind === "delegate" && literal.target.family, 6);
  assert.equal(policy.route("192.0.2.7").kind, "direct");
  assert.equal(policy.route("::1").kind, "direct");
  assert.equal(policy.route("localhost").kind, "direct");
  assert.throws(() => policy.route("198.18.3.3"), UnknownFakeAddressError);
});

Deno.test("SocksPolicy.hold() pins the fake while a connection lives", () => {
  const policy = new SocksPolicy({ table: { maxEntries: 1 } });
  const route = policy.route("a.example");
  const release = policy.hold(route);
  assert.throws(() => policy.lookup("b.example", 0), /in use/);
  release();
  assert.equal(formatIp(policy.lookup("b.example", 0)!), "198.18.0.2");
});
