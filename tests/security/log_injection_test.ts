/**
 * Attack: forging log lines. A DOMAINNAME or an RFC 1929 user name is whatever bytes the client
 * sends: newlines, terminal escape sequences, C1 controls, U+2028, bidi overrides. A real gateway
 * process with text logs on stderr must write each connection as exactly one line, with those
 * characters as visible escapes and no raw control byte anywhere.
 */
import assert from "node:assert/strict";
import { spawnLocalGateway } from "../helpers/dualgate.ts";
import { ExactReader } from "../../socks5/exact_reader.ts";

const utf8 = new TextEncoder();
const HOSTILE_NAME = "x\nINFO forged-dest line\x1b[2J\r\x9b31m\u2028\u202eevil\x7f";
const HOSTILE_USER = "bob\r\nINFO forged-user line\x1b]0;owned\x07\u2029";
// Anything but the line feed that ends each line.
const RAW_CONTROL =
  // deno-lint-ignore no-control-regex
  /[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

async function exchange(
  hostname: string,
  port: number,
  user: string,
  password: string,
  name?: string,
): Promise<void> {
  using conn = await Deno.connect({ hostname, port });
  const reader = new ExactReader(conn);
  const u = utf8.encode(user), p = utf8.encode(password);
  const bytes = [5, 1, 2, 1, u.length, ...u, p.length, ...p];
  if (name !== undefined) {
    const n = utf8.encode(name);
    bytes.push(5, 1, 0, 3, n.length, ...n, 0, 80);
  }
  await conn.write(Uint8Array.from(bytes));
  assert.deepEqual([...await reader.readExact(2)], [5, 2]);
  const [, status] = await reader.readExact(2);
  if (name === undefined) {
    assert.notEqual(status, 0);
    return;
  }
  assert.equal(status, 0);
  const [version, reply] = await reader.readExact(2);
  assert.equal(version, 5);
  assert.notEqual(reply, 0);
}

Deno.test("a hostile DOMAINNAME or user name cannot forge a log line or reach the terminal raw", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dualgate-log-injection-" });
  try {
    await using gateway = await spawnLocalGateway(
      `listen: ["127.0.0.1:0"]
auth: { users: [{ name: alice, password: change-me }] }
resolver: { servers: ["127.0.0.1:9"], timeout: 1, hosts_file: "" }
log: { level: info, format: text }
`,
      { dir, listeners: 1 },
    );
    const { hostname, port } = gateway.endpoints[0]!;
    await exchange(hostname, port, "alice", "change-me", HOSTILE_NAME);
    await exchange(hostname, port, HOSTILE_USER, "wrong");

    const linesWith = (marker: string) =>
      gateway.stderr().split("\n").filter((line) => line.includes(marker));
    const deadline = performance.now() + 10_000;
    while (
      (linesWith("forged-dest").length < 1 || linesWith("forged-user").length < 1) &&
      performance.now() < deadline
    ) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const log = gateway.stderr();
    for (const marker of ["forged-dest", "forged-user"]) {
      const lines = linesWith(marker);
      assert.equal(lines.length, 1, `one line for ${marker}:\n${log}`);
      assert.match(lines[0]!, /\[(WRN|INF)\] dualgate·conn: rejected 127\.0\.0\.1:\d+ user=/);
    }
    assert.match(linesWith("forged-dest")[0]!, /x\\nINFO forged-dest line\\x1b\[2J\\r\\x9b31m/);
    assert.match(linesWith("forged-user")[0]!, /user=bob\\r\\nINFO forged-user line\\x1b\]0;owned/);
    assert.ok(!RAW_CONTROL.test(log), `raw control characters in the log:\n${JSON.stringify(log)}`);
    assert.ok(!/^INFO forged/m.test(log), log);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
