/**
 * Attack: forging log lines. A DOMAINNAME is whatever bytes the client sends: newlines, terminal
 * escape sequences, C1 controls, U+2028, bidi overrides. A real gateway process with text logs
 * on stderr must write each connection as exactly one line, with those characters as visible
 * escapes and no raw control byte anywhere. A hostile RFC 1929 user name that is no configured
 * user is not logged at all.
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
): Promise<number> {
  using conn = await Deno.connect({ hostname, port });
  const clientPort = conn.localAddr.port;
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
    return clientPort;
  }
  assert.equal(status, 0);
  const [version, reply] = await reader.readExact(2);
  assert.equal(version, 5);
  assert.notEqual(reply, 0);
  return clientPort;
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
    const destPort = await exchange(hostname, port, "alice", "change-me", HOSTILE_NAME);
    const userPort = await exchange(hostname, port, HOSTILE_USER, "wrong");

    // Each connection's line, found by the client port it names.
    const linesOf = (clientPort: number) =>
      gateway.stderr().split("\n").filter((line) => line.includes(`127.0.0.1:${clientPort} `));
    const deadline = performance.now() + 10_000;
    while (
      (linesOf(destPort).length < 1 || linesOf(userPort).length < 1) &&
      performance.now() < deadline
    ) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const log = gateway.stderr();
    for (const clientPort of [destPort, userPort]) {
      const lines = linesOf(clientPort);
      assert.equal(lines.length, 1, `one line for the client on port ${clientPort}:\n${log}`);
      assert.match(
        lines[0]!,
        /^\S+ \S+ \S+ \[WRN\] dualgate·conn: rejected 127\.0\.0\.1:\d+ user=/,
      );
    }
    // The name is written with visible escapes, on its connection's line only.
    assert.match(linesOf(destPort)[0]!, /x\\nINFO forged-dest line\\x1b\[2J\\r\\x9b31m/);
    assert.equal(log.split("\n").filter((line) => line.includes("forged-dest")).length, 1, log);
    // An unknown user name is not logged at all (it may be a password typed in the user field).
    assert.match(linesOf(userPort)[0]!, /user=- .*\(authentication failed: unknown user\)$/);
    assert.ok(!log.includes("forged-user"), log);
    assert.ok(!RAW_CONTROL.test(log), `raw control characters in the log:\n${JSON.stringify(log)}`);
    assert.ok(!/^INFO forged/m.test(log), log);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
