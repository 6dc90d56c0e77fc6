import assert from "node:assert/strict";
import { formatGatewayUrl, parseGatewayUrl, redactUserInfo } from "./gateway_url.ts";

Deno.test("parseGatewayUrl() reads host, port and credentials", () => {
  const v4 = parseGatewayUrl("socks5://192.0.2.1:1081");
  assert.equal(v4.hostname, "192.0.2.1");
  assert.equal(v4.address?.family, 4);
  assert.equal(v4.port, 1081);
  assert.equal(v4.credentials, undefined);
  const v6 = parseGatewayUrl("socks5h://bob:p%3Aw@[2001:DB8:1::1]");
  assert.equal(v6.hostname, "2001:db8:1::1");
  assert.equal(v6.port, 1080);
  assert.deepEqual(v6.credentials, { username: "bob", password: "p:w" });
  assert.equal(formatGatewayUrl(v6, "socks5h"), "socks5h://bob:p%3Aw@[2001:db8:1::1]:1080");
  assert.equal(parseGatewayUrl("socks5://GW.example:9").hostname, "gw.example");
});

Deno.test("parseGatewayUrl() rejects what is not a socks5 gateway", () => {
  for (
    const bad of [
      "http://a:1",
      "socks5://",
      "a:1080",
      "socks5://1.2.3:1",
      "socks5://a:b@h:0",
      "socks5://u@h:1",
    ]
  ) {
    assert.throws(() => parseGatewayUrl(bad), TypeError, bad);
  }
});

Deno.test("parseGatewayUrl() errors never show the user info", () => {
  for (
    const bad of [
      "socks5://alice:S3cr3tP@h:0",
      "socks5://alice:S3cr3tP@h/path",
      "http://alice:S3cr3tP@h:1080",
      "socks5://S3cr3tN@h:1080",
      "socks5://relay%3AS3cr3tF@h:1080/path",
      "socks5://alice:S3cr3t%zz@h:1080",
      "socks5://alice:S3cr3tP@[2001:db8::1:1080",
      "socks5://alice:S3cr3tP@1.2.3:1",
    ]
  ) {
    assert.throws(
      () => parseGatewayUrl(bad),
      (error: unknown) =>
        error instanceof TypeError && !/S3cr3t/i.test(error.message) &&
        error.message.includes("<redacted>@"),
      bad,
    );
  }
});

Deno.test("redactUserInfo() hides everything up to the last '@'", () => {
  assert.equal(redactUserInfo("socks5://a:b@c@h:1"), "socks5://a:<redacted>@h:1");
  assert.equal(redactUserInfo("socks5://s3cret@h:1"), "socks5://<redacted>@h:1");
  assert.equal(redactUserInfo("s3cret@h:1"), "<redacted>@h:1");
  assert.equal(redactUserInfo("socks5://h:1"), "socks5://h:1");
});
