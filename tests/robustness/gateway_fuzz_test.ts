/**
 * Fuzzes a live gateway process with random and mutated greetings, RFC 1929 messages and
 * requests: it never crashes, closes every connection, keeps serving valid clients, and its
 * memory returns near its baseline.
 */
import assert from "node:assert/strict";
import { socksHandshake } from "../../socks5/client.ts";
import { encodeGreeting, encodePasswordAuthRequest, encodeRequest } from "../../socks5/codec.ts";
import { spawnLocalGateway } from "../helpers/dualgate.ts";
import { echo, readAll, startServer, writeAll } from "../integration/_fixtures.ts";
import { SeededRandom } from "./_random.ts";

const CONNECTIONS = Number(Deno.env.get("DUALGATE_FUZZ_CONNECTIONS") ?? 3000);
const CONCURRENCY = 64;

async function validRoundTrip(hostname: string, port: number, echoPort: number): Promise<void> {
  using conn = await Deno.connect({ hostname, port });
  // Throws unless the login and the CONNECT succeed.
  await socksHandshake(conn, {
    command: 1,
    target: { address: { family: 4, bytes: Uint8Array.of(127, 0, 0, 1) }, port: echoPort },
  }, { credentials: { username: "alice", password: "change-me" } });
  await writeAll(conn, new TextEncoder().encode("ping"));
  await conn.closeWrite();
  assert.equal(new TextDecoder().decode(await readAll(conn)), "ping");
}

Deno.test("a live gateway survives mutated handshakes and keeps serving", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dualgate-fuzz-" });
  await using echoServer = startServer("127.0.0.1", echo);
  await using gateway = await spawnLocalGateway(
    [
      'listen: ["127.0.0.1:0"]',
      "auth: { users: [{ name: alice, password: change-me }] }",
      "rules: [{ action: allow, to: ['127.0.0.1'] }]",
      "timeouts: { handshake: 2 }",
      "limits: { max_connections: 10000, max_connections_per_client: 10000, auth_failures_per_minute: 1000000 }",
      "log: { level: info }",
    ].join("\n"),
    { dir, listeners: 1 },
  );
  const { hostname, port } = gateway.endpoints[0]!;
  try {
    await validRoundTrip(hostname, port, echoServer.port);
    const baseline = gateway.rss();
    const random = new SeededRandom(7);
    const target = {
      address: { family: 4 as const, bytes: Uint8Array.of(127, 0, 0, 1) },
      port: echoServer.port,
    };
    const seeds = [
      [
        ...encodeGreeting({ methods: [2] }),
        ...encodePasswordAuthRequest({ username: "alice", password: "change-me" }),
        ...encodeRequest({ command: 1, target }),
      ],
      [
        ...encodeGreeting({ methods: [0, 2] }),
        ...encodePasswordAuthRequest({ username: "alice", password: "wrong" }),
      ],
      [
        ...encodeGreeting({ methods: [2] }),
        ...encodePasswordAuthRequest({ username: "alice", password: "change-me" }),
        ...encodeRequest({
          command: 3,
          target: { address: { family: "name", name: "x" }, port: 1 },
        }),
      ],
    ].map((s) => Uint8Array.from(s));
    let next = 0;
    let closedByGateway = 0;
    const worker = async () => {
      while (next < CONNECTIONS) {
        next++;
        const input = random.below(8) === 0
          ? random.bytes(random.below(600))
          : random.mutate(seeds[random.below(seeds.length)]!);
        using conn = await Deno.connect({ hostname, port });
        try {
          await writeAll(conn, input);
          await conn.closeWrite();
        } catch { /* the gateway may already have closed */ }
        // Every connection must end: by the gateway's close, or at the handshake timeout.
        const ended = await Promise.race([
          readAll(conn).then(() => true, () => true),
          new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 10_000)),
        ]);
        assert.ok(ended, `connection with input ${Array.from(input)} was never closed`);
        closedByGateway++;
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    assert.equal(closedByGateway, CONNECTIONS);
    // Still serving, and not leaking: wait for stragglers, then compare memory.
    await validRoundTrip(hostname, port, echoServer.port);
    await new Promise((resolve) => setTimeout(resolve, 2500));
    const after = gateway.rss();
    assert.ok(
      after < baseline + 48 * 1024 * 1024,
      `RSS grew from ${baseline} to ${after} bytes after ${CONNECTIONS} fuzzed connections`,
    );
    assert.doesNotMatch(gateway.stderr(), /session failed|Uncaught|panicked/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
