import assert from "node:assert/strict";
import { HttpError } from "./errors.ts";
import { parseAbsoluteTarget, parseConnectTarget } from "./target.ts";

function statusOf(f: () => unknown): number {
  try {
    f();
  } catch (error) {
    if (error instanceof HttpError) return error.status;
    throw error;
  }
  return 0;
}

Deno.test("parseConnectTarget reads names, IPv4 and bracketed IPv6 with a port", () => {
  assert.deepEqual(parseConnectTarget("a.example:443"), {
    address: { family: "name", name: "a.example" },
    port: 443,
  });
  assert.deepEqual(parseConnectTarget("192.0.2.1:80").address.family, 4);
  assert.deepEqual(parseConnectTarget("[2001:db8::1]:8080").port, 8080);
  assert.deepEqual(parseConnectTarget("[2001:db8::1]:8080").address.family, 6);
  for (const bad of ["a.example", "a.example:0", "a.example:65536", "[zz]:1", ":80", "a b:1"]) {
    assert.equal(statusOf(() => parseConnectTarget(bad)), 400, bad);
  }
});

Deno.test("parseAbsoluteTarget splits http:// targets into destination, path and Host", () => {
  assert.deepEqual(parseAbsoluteTarget("http://a.example:8080/x/../y?q=1"), {
    target: { address: { family: "name", name: "a.example" }, port: 8080 },
    path: "/x/../y?q=1",
    host: "a.example:8080",
  });
  assert.equal(parseAbsoluteTarget("HTTP://a.example").path, "/");
  assert.equal(parseAbsoluteTarget("http://a.example?x").path, "/?x");
  assert.equal(parseAbsoluteTarget("http://[2001:db8::1]/").target.port, 80);
  for (const bad of ["/x", "https://a.example/", "http://u:p@a.example/", "http:///x"]) {
    assert.equal(statusOf(() => parseAbsoluteTarget(bad)), 400, bad);
  }
});
