/**
 * The relay under a user's throttles (gateway/limits/user_limits.ts): rate caps measured with a
 * tolerance (an accuracy check of the cap, not a performance assertion), data intact through a
 * capped relay, and a spent quota ending the relay with a prefix of the data, never more.
 */
import assert from "node:assert/strict";
import { randomBytes, readAll, sha256, writeAll } from "../../tests/helpers/streams.ts";
import { UNLIMITED } from "../config/_user_limits.ts";
import { UserLimiter } from "../limits/user_limits.ts";
import { relay, type RelayOptions, type RelayResult } from "./relay.ts";

const MiB = 1024 * 1024;

async function tcpPair(): Promise<[Deno.TcpConn, Deno.TcpConn]> {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [connected, accepted] = await Promise.all([
    Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
    listener.accept(),
  ]);
  return [connected, accepted];
}

/** Runs a relay between two fresh pairs; returns the test's ends and the relay's result. */
async function startRelay(options: RelayOptions) {
  const [client, relayClient] = await tcpPair();
  const [relayServer, server] = await tcpPair();
  return { client, server, result: relay(relayClient, relayServer, options) };
}

function throttleOf(limiter: UserLimiter): NonNullable<RelayOptions["throttle"]> {
  const admitted = limiter.admit("alice");
  assert.ok(typeof admitted !== "string" && admitted.throttle);
  return admitted.throttle;
}

const alice = [{ name: "alice", password: "a" }];

Deno.test("relay() capped at 1 MiB/s down carries 2 MiB intact in 1.6 to 3 s", async () => {
  const limiter = new UserLimiter(alice, { ...UNLIMITED, down: MiB });
  const { client, server, result } = await startRelay({ throttle: throttleOf(limiter) });
  const payload = randomBytes(2 * MiB);
  const started = performance.now();
  const [received] = await Promise.all([
    readAll(client),
    writeAll(server, payload).then(() => server.closeWrite()),
    client.closeWrite(),
  ]);
  const seconds = (performance.now() - started) / 1000;
  server.close();
  client.close();
  const outcome: RelayResult = await result;
  assert.equal(outcome.end, "closed");
  assert.equal(await sha256(received), await sha256(payload));
  // 2 MiB less one burst (1/20 s) at 1 MiB/s is 1.95 s; the tolerance is for a loaded machine.
  assert.ok(seconds >= 1.6 && seconds <= 3, `2 MiB at 1 MiB/s took ${seconds.toFixed(2)} s`);
});

Deno.test("relay() capped both ways carries data intact each way at once", async () => {
  const limiter = new UserLimiter(alice, { ...UNLIMITED, up: 4 * MiB, down: 4 * MiB });
  const { client, server, result } = await startRelay({ throttle: throttleOf(limiter) });
  const upload = randomBytes(3 * MiB), download = randomBytes(3 * MiB);
  const [atServer, atClient] = await Promise.all([
    readAll(server),
    readAll(client),
    writeAll(client, upload).then(() => client.closeWrite()),
    writeAll(server, download).then(() => server.closeWrite()),
  ]);
  client.close();
  server.close();
  assert.equal((await result).end, "closed");
  assert.equal(await sha256(atServer), await sha256(upload));
  assert.equal(await sha256(atClient), await sha256(download));
});

Deno.test("relay() ends with `quota` when the user's quota is spent, having sent a prefix", async () => {
  const quota = 300_000;
  const limiter = new UserLimiter(alice, {
    ...UNLIMITED,
    quota: { bytes: quota, period: "day" },
  });
  const { client, server, result } = await startRelay({ throttle: throttleOf(limiter) });
  const payload = randomBytes(MiB);
  // Bounded: without the quota the relay would carry on, and the test must fail, not hang.
  const guard = setTimeout(() => {
    for (const conn of [client, server]) {
      try {
        conn.close();
      } catch { /* closed */ }
    }
  }, 10_000);
  const [received] = await Promise.all([
    readAll(client).catch(() => new Uint8Array(0)),
    writeAll(server, payload).catch(() => {}),
  ]);
  const outcome = await result;
  clearTimeout(guard);
  for (const conn of [client, server]) {
    try {
      conn.close();
    } catch { /* closed by the guard */ }
  }
  assert.equal(outcome.end, "quota");
  assert.equal(outcome.serverToClient, quota);
  assert.ok(received.length <= quota, `${received.length}`);
  assert.deepEqual(received, payload.subarray(0, received.length));
  assert.equal(limiter.admit("alice"), "quota");
});
