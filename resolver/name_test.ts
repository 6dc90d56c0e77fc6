import assert from "node:assert/strict";
import { isLocalhostName, literalAddress, normalizeName } from "./name.ts";
import { parseIp } from "../net/address.ts";

Deno.test("normalizeName() lower-cases and strips one trailing dot", () => {
  assert.equal(normalizeName("WWW.Example.COM."), "www.example.com");
  assert.equal(normalizeName("localhost"), "localhost");
  assert.equal(normalizeName("a.b.."), null);
});

Deno.test("normalizeName() rejects empty, over-long, spaced and control-character names", () => {
  assert.equal(normalizeName(""), null);
  assert.equal(normalizeName("."), null);
  assert.equal(normalizeName("a..b"), null);
  assert.equal(normalizeName("bad name.example"), null);
  assert.equal(normalizeName("tab\there"), null);
  assert.equal(normalizeName("nul\u0000.example"), null);
  assert.equal(normalizeName("del\u007f.example"), null);
  assert.equal(normalizeName(`${"a".repeat(64)}.example`), null);
  assert.equal(normalizeName(`${"a".repeat(63)}.example`), `${"a".repeat(63)}.example`);
  const long = Array.from({ length: 64 }, () => "abc").join("."); // 255 chars
  assert.equal(normalizeName(long), null);
  assert.equal(normalizeName(long.slice(0, 253)), long.slice(0, 253));
});

Deno.test("literalAddress() reads IPv4 and IPv6 literals, bracketed or not", () => {
  assert.deepEqual(literalAddress("192.0.2.1"), {
    family: 4,
    bytes: new Uint8Array([192, 0, 2, 1]),
  });
  const v6 = literalAddress("2001:db8::1");
  assert.equal(v6?.family, 6);
  assert.deepEqual(literalAddress("[2001:db8::1]"), v6);
  assert.deepEqual(literalAddress("[2001:DB8::1]"), v6);
});

Deno.test("literalAddress() unwraps IPv4-mapped IPv6 to IPv4", () => {
  assert.deepEqual(literalAddress("::ffff:192.0.2.1"), {
    family: 4,
    bytes: new Uint8Array([192, 0, 2, 1]),
  });
  assert.deepEqual(literalAddress("[::ffff:c000:201]"), {
    family: 4,
    bytes: new Uint8Array([192, 0, 2, 1]),
  });
});

Deno.test("literalAddress() returns null for names and invalid literals", () => {
  for (
    const text of [
      "example.com",
      "192.0.2.256",
      "192.0.2",
      "01.2.3.4",
      "2001:db8:::1",
      "fe80::1%eth0",
      "[2001:db8::1",
      "1.2.3.4..",
      ".",
      "",
    ]
  ) {
    assert.equal(literalAddress(text), null, text);
  }
});

Deno.test("literalAddress() reads a literal with the trailing dot normalizeName() drops", () => {
  assert.deepEqual(literalAddress("198.51.100.2."), parseIp("198.51.100.2"));
  assert.deepEqual(literalAddress("127.0.0.1."), parseIp("127.0.0.1"));
  assert.deepEqual(literalAddress("::ffff:127.0.0.1."), parseIp("127.0.0.1"));
  assert.deepEqual(literalAddress("2001:db8::1."), parseIp("2001:db8::1"));
});

Deno.test("isLocalhostName() is true for localhost and names under it only", () => {
  assert.equal(isLocalhostName("localhost"), true);
  assert.equal(isLocalhostName("a.b.localhost"), true);
  assert.equal(isLocalhostName("localhost.example"), false);
  assert.equal(isLocalhostName("notlocalhost"), false);
});
