import assert from "node:assert/strict";
import { parseIp } from "../../net/address.ts";
import { connectionLogLevel, type ConnectionRecord } from "./connection_log.ts";

const base: ConnectionRecord = {
  client: { address: parseIp("192.0.2.2")!, port: 40000 },
  outcome: "rejected",
  startedAt: 0,
};

Deno.test("connectionLogLevel() is info for relays and clients that left, warning for refusals", () => {
  assert.equal(connectionLogLevel({ ...base, outcome: "relayed" }), "info");
  assert.equal(
    connectionLogLevel({ ...base, clientClosed: true, reason: "client closed before its request" }),
    "info",
  );
  assert.equal(connectionLogLevel({ ...base, reason: "authentication failed" }), "warning");
  assert.equal(connectionLogLevel({ ...base, reply: 2 }), "warning");
});
