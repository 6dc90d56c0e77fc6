import assert from "node:assert/strict";
import { parseIp } from "../../net/address.ts";
import { auditLine, AuditLog } from "./audit_log.ts";
import type { ConnectionRecord } from "./connection_log.ts";

const record: ConnectionRecord = {
  client: { address: parseIp("192.0.2.7")!, port: 40000 },
  user: "alice",
  command: "connect",
  target: { address: { family: "name", name: "v6.example\u2028x" }, port: 443 },
  used: { address: parseIp("2001:db8::20")!, port: 443 },
  outcome: "relayed",
  reply: 0,
  bytesUp: 10,
  bytesDown: 20,
  startedAt: performance.now() - 1500,
  route: "direct",
  reason: "closed",
};

Deno.test("auditLine() is one JSON object with the requested and the connected destination", () => {
  const line = auditLine(record, new Date("2026-12-03T07:00:00Z"));
  assert.ok(!line.includes("\u2028") && !line.includes("\n"));
  const parsed = JSON.parse(line);
  assert.ok(parsed.durationMs >= 1500);
  delete parsed.durationMs;
  assert.deepEqual(parsed, {
    time: "2026-12-03T07:00:00.000Z",
    user: "alice",
    client: "192.0.2.7:40000",
    command: "connect",
    requested: "v6.example\u2028x:443",
    connected: "[2001:db8::20]:443",
    families: "v4-v6",
    route: "direct",
    hops: [],
    up: 10,
    down: 20,
    reply: 0,
    outcome: "relayed",
    reason: "closed",
  });
});

Deno.test("AuditLog batches lines, close() writes every pending one, reopen() follows a rename", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dualgate-audit-" });
  try {
    const path = `${dir}/audit.log`;
    // A flush interval far beyond the test: only close() and reopen() write.
    const audit = new AuditLog(path, { flushMs: 60_000 });
    audit.write(record);
    audit.write(record);
    assert.equal(await Deno.readTextFile(path), "");
    await Deno.rename(path, `${path}.1`);
    await audit.reopen();
    audit.write({ ...record, user: "bob" });
    await audit.close();
    audit.write(record); // after close: ignored
    const rotated = (await Deno.readTextFile(`${path}.1`)).trimEnd().split("\n");
    const fresh = (await Deno.readTextFile(path)).trimEnd().split("\n");
    assert.deepEqual(rotated.map((l) => JSON.parse(l).user), ["alice", "alice"]);
    assert.deepEqual(fresh.map((l) => JSON.parse(l).user), ["bob"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("AuditLog writes a batch once it holds batchBytes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dualgate-audit-" });
  try {
    const path = `${dir}/audit.log`;
    await using audit = new AuditLog(path, { flushMs: 60_000, batchBytes: 1 });
    audit.write(record);
    let text = "";
    for (let i = 0; i < 100 && text === ""; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      text = await Deno.readTextFile(path);
    }
    assert.equal(JSON.parse(text).user, "alice");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
