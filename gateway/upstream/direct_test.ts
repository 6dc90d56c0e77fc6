import assert from "node:assert/strict";
import { testResolverConfig as config } from "../../tests/helpers/resolver_config.ts";
import { formatIp, type IpAddress, parseIp } from "../../net/address.ts";
import { type DnsQuery, type DnsRecordType, Resolver } from "../../resolver/mod.ts";
import { SocksReplyError } from "../../socks5/errors.ts";
import { Reply } from "../../socks5/types.ts";
import { DirectDialer } from "./direct.ts";

/** How a fake DNS answers one record type. */
type Answer =
  | { readonly records: readonly string[]; readonly afterMs?: number }
  | { readonly gate: Promise<void>; readonly records: readonly string[] }
  | "hang";

/** A DNS that answers per plan; `hang` waits for the query's signal (the resolver timeout). */
function plannedDns(plan: Record<DnsRecordType, Answer>): DnsQuery {
  return async (_name, type, { signal }) => {
    const answer = plan[type];
    if (answer === "hang") {
      return await new Promise<never>((_resolve, reject) => {
        signal.addEventListener("abort", () => reject(signal.reason), { once: true });
      });
    }
    if ("gate" in answer) await answer.gate;
    else if (answer.afterMs) await new Promise((resolve) => setTimeout(resolve, answer.afterMs));
    return answer.records;
  };
}

/** Loopback listeners on one port: always `::1`, and `127.0.0.1` when `v4` (else refused). */
function listeners(v4: boolean) {
  const six = Deno.listen({ hostname: "::1", port: 0 });
  const port = six.addr.port;
  const all: Deno.TcpListener[] = [six];
  if (v4) all.push(Deno.listen({ hostname: "127.0.0.1", port }));
  const accepted: Deno.TcpConn[] = [];
  const loops = all.map(async (listener) => {
    try {
      for await (const conn of listener) accepted.push(conn);
    } catch {
      // Closed by the test.
    }
  });
  return {
    port,
    async [Symbol.asyncDispose]() {
      for (const listener of all) listener.close();
      await Promise.all(loops);
      for (const conn of accepted) conn.close();
    },
  };
}

interface Attempt {
  readonly hostname: string;
  readonly at: number;
}

/** Deno.connect, recording each attempt and when it started. */
function recordingConnect() {
  const origin = performance.now();
  const attempts: Attempt[] = [];
  const connect = (options: Deno.ConnectOptions & { signal: AbortSignal }) => {
    attempts.push({ hostname: options.hostname ?? "", at: performance.now() - origin });
    return Deno.connect(options);
  };
  return { connect, attempts, elapsed: () => performance.now() - origin };
}

const NAME = "dual.example";
const allow = () => true;

function request(port: number, permit: (address?: IpAddress) => boolean = allow) {
  return {
    target: { address: { family: "name", name: NAME } as const, port },
    signal: new AbortController().signal,
    permit,
  };
}

Deno.test("DirectDialer.dial() connects over IPv6 as soon as AAAA answers, before A", async () => {
  await using server = listeners(true);
  const aGate = Promise.withResolvers<void>();
  const resolver = new Resolver(config(), {
    query: plannedDns({
      A: { gate: aGate.promise, records: ["127.0.0.1"] },
      AAAA: { records: ["::1"] },
    }),
    resolutionDelayMs: 10_000,
  });
  const { connect, attempts } = recordingConnect();
  const dialer = new DirectDialer(resolver, "happy-eyeballs", { connect });
  const dialed = await dialer.dial(request(server.port));
  dialed.conn.close();
  assert.equal(formatIp(dialed.remote.address), "::1");
  assert.equal(dialed.resolvedBy, "dns");
  assert.deepEqual(attempts.map((a) => a.hostname), ["::1"]);
  aGate.resolve();
  // The lookup finishes after the dial; the cache gets the complete answer.
  await resolver.resolve(NAME);
  const cached = await resolver.resolve(NAME);
  assert.equal(cached.source, "cache");
  assert.deepEqual([...cached.v4, ...cached.v6].map(formatIp), ["127.0.0.1", "::1"]);
});

Deno.test("DirectDialer.dial() starts IPv4 after the resolution delay and tries a late AAAA too", async () => {
  // Nothing listens on 127.0.0.1: the IPv4 attempt is refused, the late IPv6 one connects.
  await using server = listeners(false);
  const resolver = new Resolver(config(), {
    query: plannedDns({ A: { records: ["127.0.0.1"] }, AAAA: { records: ["::1"], afterMs: 300 } }),
    resolutionDelayMs: 30,
  });
  const { connect, attempts } = recordingConnect();
  const dialer = new DirectDialer(resolver, "happy-eyeballs", { connect });
  const dialed = await dialer.dial(request(server.port));
  dialed.conn.close();
  assert.equal(formatIp(dialed.remote.address), "::1");
  assert.deepEqual(attempts.map((a) => a.hostname), ["127.0.0.1", "::1"]);
  const [four, six] = attempts;
  assert.ok(four!.at >= 25 && four!.at < 280, `IPv4 attempt started at ${four!.at} ms`);
  assert.ok(six!.at >= 290, `IPv6 attempt started at ${six!.at} ms`);
  const cached = await resolver.resolve(NAME);
  assert.equal(cached.source, "cache");
  assert.equal(cached.v4.length + cached.v6.length, 2);
});

Deno.test("DirectDialer.dial() connects over IPv4 quickly while AAAA hangs until the timeout", async () => {
  await using server = listeners(true);
  const resolver = new Resolver(config({ timeoutMs: 1_500 }), {
    query: plannedDns({ A: { records: ["127.0.0.1"] }, AAAA: "hang" }),
  });
  const { connect, elapsed } = recordingConnect();
  const dialer = new DirectDialer(resolver, "happy-eyeballs", { connect });
  const dialed = await dialer.dial(request(server.port));
  const connectedAt = elapsed();
  dialed.conn.close();
  assert.equal(formatIp(dialed.remote.address), "127.0.0.1");
  assert.ok(connectedAt < 1_000, `connected after ${connectedAt} ms`);
  // The lookup itself ends with the AAAA timeout, keeping the A answer.
  const complete = await resolver.resolve(NAME);
  assert.ok(elapsed() >= 1_400, `lookup ended after ${elapsed()} ms`);
  assert.deepEqual(complete.v4.map(formatIp), ["127.0.0.1"]);
  assert.deepEqual(complete.v6, []);
});

Deno.test("DirectDialer.dial() fails with REP 4 when neither A nor AAAA has records", async () => {
  const resolver = new Resolver(config(), {
    query: plannedDns({ A: { records: [] }, AAAA: { records: [], afterMs: 10 } }),
  });
  const { connect, attempts } = recordingConnect();
  const dialer = new DirectDialer(resolver, "happy-eyeballs", { connect });
  const error = await dialer.dial(request(9)).then(
    () => assert.fail("should reject"),
    (e: unknown) => e,
  );
  assert.ok(error instanceof SocksReplyError);
  assert.equal(error.reply, Reply.HostUnreachable);
  assert.deepEqual(attempts, []);
});

Deno.test("DirectDialer.dial() applies the rules to late addresses too", async () => {
  await using server = listeners(true);
  const query = plannedDns({
    A: { records: ["127.0.0.1"] },
    AAAA: { records: ["::1"], afterMs: 50 },
  });
  const onlyV6 = (address?: IpAddress) => address?.family === 6;

  const resolver = new Resolver(config(), { query, resolutionDelayMs: 10 });
  const { connect, attempts } = recordingConnect();
  const dialer = new DirectDialer(resolver, "happy-eyeballs", { connect });
  const dialed = await dialer.dial(request(server.port, onlyV6));
  dialed.conn.close();
  assert.equal(formatIp(dialed.remote.address), "::1");
  assert.deepEqual(attempts.map((a) => a.hostname), ["::1"]);

  const denyAll = new DirectDialer(
    new Resolver(config(), { query, resolutionDelayMs: 10 }),
    "happy-eyeballs",
    {
      connect,
    },
  );
  const error = await denyAll.dial(request(server.port, () => false)).then(
    () => assert.fail("should reject"),
    (e: unknown) => e,
  );
  assert.ok(error instanceof SocksReplyError);
  assert.equal(error.reply, Reply.NotAllowedByRuleset);
  assert.equal(attempts.length, 1);
});

Deno.test("DirectDialer.dial() with egress: dials from the source, skips a family without one", async () => {
  await using server = listeners(true);
  const resolver = new Resolver(config({ hosts: { [NAME]: ["127.0.0.1", "::1"] } }));
  const { connect, attempts } = recordingConnect();
  const from: string[] = [];
  const dialer = new DirectDialer(resolver, "happy-eyeballs", {
    connect,
    connectFrom: (local, remote, options) => {
      from.push(`${formatIp(local)} -> ${formatIp(remote.address)}`);
      return Deno.connect({ hostname: formatIp(remote.address), port: remote.port, ...options });
    },
  });
  // Only IPv4 has a source: the IPv6 address is never dialed, even though it would be first.
  const egress = (family: 4 | 6) => (family === 4 ? parseIp("127.0.0.2") : null);
  const dialed = await dialer.dial({ ...request(server.port), egress });
  dialed.conn.close();
  assert.deepEqual(from, ["127.0.0.2 -> 127.0.0.1"]);
  assert.deepEqual(attempts, []);
});

Deno.test("DirectDialer.dial() with egress of no family the destination has: REP 3, says why", async () => {
  const resolver = new Resolver(config({ hosts: { [NAME]: ["127.0.0.1"] } }));
  const { connect, attempts } = recordingConnect();
  const dialer = new DirectDialer(resolver, "happy-eyeballs", {
    connect,
    connectFrom: () => Promise.reject(new Error("must not be called")),
  });
  const egress = (family: 4 | 6) => (family === 6 ? parseIp("2001:db8:5::1") : null);
  await assert.rejects(
    dialer.dial({ ...request(1), egress }),
    (error: unknown) =>
      error instanceof SocksReplyError && error.reply === Reply.NetworkUnreachable &&
      /no IPv4 egress address/.test(error.message),
  );
  assert.deepEqual(attempts, []);
});

Deno.test("DirectDialer.dial() with egress: the real node:net dial leaves from the address", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const resolver = new Resolver(config());
  const dialer = new DirectDialer(resolver, "happy-eyeballs");
  const dialed = await dialer.dial({
    target: { address: parseIp("127.0.0.1")!, port: listener.addr.port },
    signal: new AbortController().signal,
    permit: allow,
    egress: () => parseIp("127.0.0.5"),
  });
  const server = await accepted;
  assert.equal((server.remoteAddr as Deno.NetAddr).hostname, "127.0.0.5");
  assert.equal(formatIp(dialed.local.address), "127.0.0.5");
  server.close();
  dialed.conn.close();
});
