import assert from "node:assert/strict";
import { endToEndFields, serializeHead, wantsKeepAlive, withVia } from "./headers.ts";
import type { Field } from "./message.ts";

Deno.test("endToEndFields drops hop-by-hop fields and those Connection names (RFC 9110 §7.6.1)", () => {
  const fields: Field[] = [
    ["Host", "a"],
    ["Connection", "keep-alive, X-Secret"],
    ["Proxy-Connection", "keep-alive"],
    ["Keep-Alive", "timeout=5"],
    ["TE", "trailers"],
    ["Upgrade", "websocket"],
    ["Proxy-Authorization", "Basic eA=="],
    ["x-secret", "1"],
    ["Transfer-Encoding", "chunked"],
    ["Content-Length", "4"],
    ["Accept", "*/*"],
  ];
  assert.deepEqual(endToEndFields(fields), [["Host", "a"], ["Content-Length", "4"], [
    "Accept",
    "*/*",
  ]]);
  assert.deepEqual(endToEndFields(fields, true), [["Host", "a"], ["Accept", "*/*"]]);
});

Deno.test("withVia appends the proxy's entry with the received version", () => {
  assert.deepEqual(withVia([["Via", "1.1 other"]], 0), [["Via", "1.1 other"], [
    "Via",
    "1.0 dualgate",
  ]]);
});

Deno.test("wantsKeepAlive follows the version and Connection", () => {
  assert.equal(wantsKeepAlive([], 1), true);
  assert.equal(wantsKeepAlive([["Connection", "Close"]], 1), false);
  assert.equal(wantsKeepAlive([], 0), false);
  assert.equal(wantsKeepAlive([["Connection", "keep-alive"]], 0), true);
});

Deno.test("serializeHead writes CRLF lines and an empty line", () => {
  assert.equal(
    new TextDecoder().decode(serializeHead("GET / HTTP/1.1", [["Host", "a"]])),
    "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
  );
});
