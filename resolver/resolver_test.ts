import assert from "node:assert/strict";
import { testResolverConfig as config } from "../tests/helpers/resolver_config.ts";
import { formatIp, parseIp } from "../net/address.ts";
import { SocksReplyError } from "../socks5/errors.ts";
import { Reply } from "../socks5/types.ts";
import {
  type DnsQuery,
  type DnsQueryOptions,
  type DnsRecord,
  type DnsRecordType,
  NameNotResolvedError,
  type ResolvedName,
  Resolver,
  reverseName,
} from "./resolver.ts";

interface Call {
  readonly name: string;
  readonly type: DnsRecordType;
  readonly options: DnsQueryOptions;
}

/** A fake DNS: answers from a table, records every call. */
function fakeDns(table: Record<string, Partial<Record<DnsRecordType, readonly DnsRecord[]>>>) {
  const calls: Call[] = [];
  const query: DnsQuery = (name, type, options) => {
    calls.push({ name, type, options });
    return Promise.resolve(table[name]?.[type] ?? []);
  };
  return { query, calls };
}

function show(answer: ResolvedName): { v4: string[]; v6: string[]; source: string } {
  return { v4: answer.v4.map(formatIp), v6: answer.v6.map(formatIp), source: answer.source };
}

async function rejection(promise: Promise<unknown>): Promise<NameNotResolvedError> {
  const error = await promise.then(() => assert.fail("should reject"), (e: unknown) => e);
  assert.ok(error instanceof NameNotResolvedError, String(error));
  return error;
}

Deno.test("Resolver.resolve() answers IP literals without any lookup", async () => {
  const { query, calls } = fakeDns({});
  const resolver = new Resolver(config(), { query });
  assert.deepEqual(show(await resolver.resolve("192.0.2.1")), {
    v4: ["192.0.2.1"],
    v6: [],
    source: "literal",
  });
  assert.deepEqual(show(await resolver.resolve("[2001:db8::1]")), {
    v4: [],
    v6: ["2001:db8::1"],
    source: "literal",
  });
  assert.deepEqual(show(await resolver.resolve("::ffff:192.0.2.9")).v4, ["192.0.2.9"]);
  assert.equal(calls.length, 0);
});

Deno.test("Resolver.resolve() rejects invalid names with REP 4", async () => {
  const { query, calls } = fakeDns({});
  const resolver = new Resolver(config(), { query });
  const error = await rejection(resolver.resolve("bad name"));
  assert.ok(error instanceof SocksReplyError);
  assert.equal(error.reply, Reply.HostUnreachable);
  assert.equal(error.message, 'Cannot resolve "bad name": not a valid host name');
  assert.equal(calls.length, 0);
});

Deno.test("Resolver.resolve() asks static hosts, then the hosts file, then the cache, then DNS", async () => {
  const hostsFile = await Deno.makeTempFile({ prefix: "dualgate_hosts_" });
  try {
    await Deno.writeTextFile(
      hostsFile,
      "192.0.2.2 both.example file.example\n2001:db8::2 file.example\n",
    );
    const { query, calls } = fakeDns({
      "both.example": { A: ["192.0.2.3"] },
      "file.example": { A: ["192.0.2.3"] },
      "dns.example": { A: ["192.0.2.3"], AAAA: ["2001:db8::3"] },
    });
    const resolver = new Resolver(
      config({ hosts: { "both.example": ["192.0.2.1"] }, hostsFile }),
      { query },
    );
    assert.deepEqual(show(await resolver.resolve("BOTH.example.")), {
      v4: ["192.0.2.1"],
      v6: [],
      source: "static",
    });
    assert.deepEqual(show(await resolver.resolve("file.example")), {
      v4: ["192.0.2.2"],
      v6: ["2001:db8::2"],
      source: "hosts",
    });
    assert.equal(calls.length, 0);
    assert.deepEqual(show(await resolver.resolve("dns.example")), {
      v4: ["192.0.2.3"],
      v6: ["2001:db8::3"],
      source: "dns",
    });
    assert.equal(calls.length, 2);
    assert.equal(calls[0]!.options.nameServer, undefined);
    assert.deepEqual(show(await resolver.resolve("dns.example")).source, "cache");
    assert.equal(calls.length, 2);
    assert.deepEqual(resolver.stats, { hits: 1, misses: 1, queries: 2 });
  } finally {
    await Deno.remove(hostsFile);
  }
});

Deno.test("Resolver.resolve() re-reads the hosts file when it changes", async () => {
  const hostsFile = await Deno.makeTempFile({ prefix: "dualgate_hosts_" });
  try {
    await Deno.writeTextFile(hostsFile, "192.0.2.2 file.example\n");
    const clock = { now: 0 };
    const { query } = fakeDns({});
    const resolver = new Resolver(config({ hostsFile }), {
      query,
      now: () => clock.now,
      hostsCheckIntervalMs: 1_000,
    });
    assert.deepEqual(show(await resolver.resolve("file.example")).v4, ["192.0.2.2"]);
    await Deno.writeTextFile(hostsFile, "192.0.2.22 file.example\n");
    // Within the check interval the file is not looked at again.
    assert.deepEqual(show(await resolver.resolve("file.example")).v4, ["192.0.2.2"]);
    clock.now += 1_000;
    assert.deepEqual(show(await resolver.resolve("file.example")).v4, ["192.0.2.22"]);
  } finally {
    await Deno.remove(hostsFile);
  }
});

Deno.test("Resolver.resolve() treats a missing hosts file as empty", async () => {
  const { query } = fakeDns({ "x.example": { A: ["192.0.2.5"] } });
  const resolver = new Resolver(config({ hostsFile: "/nonexistent/dualgate/hosts" }), { query });
  assert.equal((await resolver.resolve("x.example")).source, "dns");
});

Deno.test("Resolver.resolve() sends A and AAAA queries in parallel", async () => {
  const started: DnsRecordType[] = [];
  const gate = Promise.withResolvers<void>();
  const query: DnsQuery = async (_name, type) => {
    started.push(type);
    await gate.promise;
    return type === "A" ? ["192.0.2.7"] : ["2001:db8::7"];
  };
  const resolver = new Resolver(config(), { query });
  const pending = resolver.resolve("both.example");
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(started.toSorted(), ["A", "AAAA"]);
  gate.resolve();
  assert.deepEqual(show(await pending), { v4: ["192.0.2.7"], v6: ["2001:db8::7"], source: "dns" });
});

Deno.test("Resolver.resolve() skips AAAA for ipv4-only and A for ipv6-only", async () => {
  const table = { "x.example": { A: ["192.0.2.7"], AAAA: ["2001:db8::7"] } };
  const four = fakeDns(table);
  const v4only = new Resolver(config({ prefer: "ipv4-only" }), { query: four.query });
  assert.deepEqual(show(await v4only.resolve("x.example")).v6, []);
  assert.deepEqual(four.calls.map((c) => c.type), ["A"]);

  const six = fakeDns(table);
  const v6only = new Resolver(config({ prefer: "ipv6-only" }), { query: six.query });
  assert.deepEqual(show(await v6only.resolve("x.example")).v4, []);
  assert.deepEqual(six.calls.map((c) => c.type), ["AAAA"]);

  const error = await rejection(
    new Resolver(config({ prefer: "ipv6-only" }), { query: fakeDns({}).query })
      .resolve("nx.example"),
  );
  assert.equal(error.message, 'Cannot resolve "nx.example": no AAAA record');
});

Deno.test("Resolver.resolve() passes over static names without a family the preference allows", async () => {
  const { query } = fakeDns({ "x.example": { A: ["192.0.2.7"] } });
  const resolver = new Resolver(
    config({ prefer: "ipv4-only", hosts: { "x.example": ["2001:db8::1"] } }),
    { query },
  );
  assert.deepEqual(show(await resolver.resolve("x.example")), {
    v4: ["192.0.2.7"],
    v6: [],
    source: "dns",
  });
});

Deno.test("Resolver.resolve() shares one lookup between concurrent callers", async () => {
  const gate = Promise.withResolvers<void>();
  let queries = 0;
  const query: DnsQuery = async (_name, type) => {
    queries++;
    await gate.promise;
    return type === "A" ? ["192.0.2.7"] : [];
  };
  const resolver = new Resolver(config(), { query });
  const first = resolver.resolve("x.example");
  const second = resolver.resolve("X.Example.");
  gate.resolve();
  const answers = await Promise.all([first, second]);
  assert.equal(queries, 2);
  assert.deepEqual(answers.map((a) => show(a).v4), [["192.0.2.7"], ["192.0.2.7"]]);
  assert.deepEqual(resolver.stats, { hits: 0, misses: 2, queries: 2 });
  // Each caller gets its own lists.
  answers[0]!.v4.length = 0;
  assert.equal(answers[1]!.v4.length, 1);
});

Deno.test("Resolver.resolve() caches a name without records for negativeTtlSeconds", async () => {
  const clock = { now: 0 };
  let queries = 0;
  const query: DnsQuery = (name, type) => {
    queries++;
    // Deno.resolveDns reports NXDOMAIN/NODATA as NotFound.
    return type === "A"
      ? Promise.reject(new Deno.errors.NotFound(`no records found for ${name}`))
      : Promise.resolve([]);
  };
  const resolver = new Resolver(config(), { query, now: () => clock.now });
  const error = await rejection(resolver.resolve("nx.example"));
  assert.equal(error.reply, Reply.HostUnreachable);
  assert.equal(error.message, 'Cannot resolve "nx.example": no A or AAAA record');
  assert.equal(queries, 2);

  clock.now += 29_000;
  await rejection(resolver.resolve("nx.example"));
  assert.equal(queries, 2);
  assert.equal(resolver.stats.hits, 1);

  clock.now += 1_000;
  await rejection(resolver.resolve("nx.example"));
  assert.equal(queries, 4);
});

Deno.test("Resolver.resolve() caches answers for the record TTL when the query gives one", async () => {
  const clock = { now: 0 };
  let queries = 0;
  const query: DnsQuery = (_name, type) => {
    queries++;
    return Promise.resolve(type === "A" ? [{ data: "192.0.2.7", ttl: 10 }] : []);
  };
  const resolver = new Resolver(config(), { query, now: () => clock.now });
  await resolver.resolve("x.example");
  clock.now += 9_000;
  assert.equal((await resolver.resolve("x.example")).source, "cache");
  clock.now += 1_000;
  assert.equal((await resolver.resolve("x.example")).source, "dns");
  assert.equal(queries, 4);
});

Deno.test("Resolver.resolve() turns a DNS timeout into REP 4 and does not cache it", async () => {
  let queries = 0;
  const query: DnsQuery = (_name, _type, { signal }) => {
    queries++;
    return new Promise((_resolve, reject) => {
      signal.addEventListener("abort", () => reject(signal.reason), { once: true });
    });
  };
  const resolver = new Resolver(config({ timeoutMs: 30 }), { query });
  const error = await rejection(resolver.resolve("slow.example"));
  assert.equal(error.reply, Reply.HostUnreachable);
  assert.equal(error.timedOut, true);
  assert.equal(error.message, 'Cannot resolve "slow.example": DNS query timed out after 30 ms');
  await rejection(resolver.resolve("slow.example"));
  assert.equal(queries, 4);
});

Deno.test("Resolver.resolve() quotes a resolver's own timeout with its error, not our limit", async () => {
  // The system resolver gives up by itself (its own timeout and attempts), long before ours.
  const query: DnsQuery = () => Promise.reject(new Deno.errors.TimedOut("resolver gave up"));
  const resolver = new Resolver(config({ timeoutMs: 5000 }), { query });
  const error = await rejection(resolver.resolve("slow.example"));
  assert.equal(error.reply, Reply.HostUnreachable);
  assert.equal(error.timedOut, true);
  assert.match(
    error.message,
    /^Cannot resolve "slow\.example": DNS query timed out in the resolver after \d+ ms: resolver gave up$/,
  );
  assert.doesNotMatch(error.message, /5000 ms/);
});

Deno.test("Resolver.resolve() tries the configured servers in order until one answers", async () => {
  const asked: string[] = [];
  const query: DnsQuery = (_name, type, { nameServer }) => {
    asked.push(`${type}@${nameServer?.ipAddr}:${nameServer?.port}`);
    if (nameServer?.ipAddr === "192.0.2.53") return Promise.reject(new Error("connection refused"));
    return Promise.resolve(type === "A" ? ["192.0.2.7"] : []);
  };
  const resolver = new Resolver(
    config({
      prefer: "ipv4-only",
      servers: ["192.0.2.53", "[2001:db8::53]:5353", "192.0.2.54:53"],
    }),
    { query },
  );
  assert.deepEqual(show(await resolver.resolve("x.example")).v4, ["192.0.2.7"]);
  assert.deepEqual(asked, ["A@192.0.2.53:53", "A@2001:db8::53:5353"]);
});

Deno.test("Resolver.resolve() reports a failure of every server with REP 4", async () => {
  const query: DnsQuery = () => Promise.reject(new Error("server failure"));
  const resolver = new Resolver(config({ servers: ["192.0.2.53", "192.0.2.54"] }), { query });
  const error = await rejection(resolver.resolve("x.example"));
  assert.equal(error.reply, Reply.HostUnreachable);
  assert.equal(error.timedOut, false);
  assert.equal(error.message, 'Cannot resolve "x.example": DNS query failed: server failure');
  assert.equal(resolver.stats.queries, 4);
});

Deno.test("Resolver.resolve() keeps one family's answer when the other fails", async () => {
  const clock = { now: 0 };
  const query: DnsQuery = (_name, type) =>
    type === "A" ? Promise.resolve(["192.0.2.7"]) : Promise.reject(new Error("server failure"));
  const resolver = new Resolver(config(), { query, now: () => clock.now });
  assert.deepEqual(show(await resolver.resolve("x.example")), {
    v4: ["192.0.2.7"],
    v6: [],
    source: "dns",
  });
  // Cached only for the negative TTL, so the missing family is asked again soon.
  clock.now += 30_000;
  assert.equal((await resolver.resolve("x.example")).source, "dns");
});

Deno.test("Resolver.resolve() rejects with the signal's reason and cancels the queries", async () => {
  const signals: AbortSignal[] = [];
  const query: DnsQuery = (_name, _type, { signal }) => {
    signals.push(signal);
    return new Promise((_resolve, reject) => {
      signal.addEventListener("abort", () => reject(signal.reason), { once: true });
    });
  };
  const resolver = new Resolver(config(), { query });
  const controller = new AbortController();
  const pending = resolver.resolve("x.example", { signal: controller.signal });
  await new Promise((resolve) => setTimeout(resolve, 0));
  controller.abort(new Error("client left"));
  await assert.rejects(pending, { message: "client left" });
  assert.equal(signals.length, 2);
  assert.ok(signals.every((signal) => signal.aborted));
  await assert.rejects(
    resolver.resolve("x.example", { signal: controller.signal }),
    { message: "client left" },
  );
});

Deno.test("Resolver rejects invalid static hosts and servers", () => {
  assert.throws(() => new Resolver(config({ hosts: { "x.example": ["not-an-ip"] } })), RangeError);
  assert.throws(() => new Resolver(config({ servers: ["dns.example:53"] })), RangeError);
  assert.throws(() => new Resolver(config({ servers: ["192.0.2.1:0"] })), RangeError);
});

// A tiny authoritative DNS server on 127.0.0.1 for one name, answers built by hand (RFC 1035).
function dnsAnswer(query: Uint8Array): Uint8Array | null {
  if (query.length < 17) return null;
  let offset = 12;
  const labels: string[] = [];
  for (let steps = 0; steps < 64; steps++) {
    const length = query[offset];
    if (length === undefined || length > 63) return null;
    offset++;
    if (length === 0) break;
    labels.push(new TextDecoder().decode(query.subarray(offset, offset + length)));
    offset += length;
  }
  const qtype = ((query[offset] ?? 0) << 8) | (query[offset + 1] ?? 0);
  const questionEnd = offset + 4;
  if (questionEnd > query.length) return null;
  const name = labels.join(".").toLowerCase();
  const rdata = name !== "dual.test"
    ? null
    : qtype === 1
    ? [192, 0, 2, 80]
    : qtype === 28
    ? [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80]
    : null;
  const header = [
    query[0]!,
    query[1]!,
    0x84, // QR, AA
    name === "dual.test" ? 0x00 : 0x03, // NOERROR or NXDOMAIN
    0,
    1,
    0,
    rdata ? 1 : 0,
    0,
    0,
    0,
    0,
  ];
  const answer = rdata
    ? [0xc0, 12, qtype >> 8, qtype & 0xff, 0, 1, 0, 0, 0, 60, 0, rdata.length, ...rdata]
    : [];
  return new Uint8Array([...header, ...query.subarray(12, questionEnd), ...answer]);
}

Deno.test("Resolver.resolve() queries a configured DNS server with Deno.resolveDns", async () => {
  const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    try {
      for await (const [message, peer] of socket) {
        const answer = dnsAnswer(message);
        if (answer) await socket.send(answer, peer);
      }
    } catch {
      // The socket was closed: the test is over.
    }
  })();
  try {
    const { port } = socket.addr as Deno.NetAddr;
    const resolver = new Resolver(config({ servers: [`127.0.0.1:${port}`], timeoutMs: 3_000 }));
    assert.deepEqual(show(await resolver.resolve("Dual.Test")), {
      v4: ["192.0.2.80"],
      v6: ["2001:db8::80"],
      source: "dns",
    });
    assert.equal(resolver.stats.queries, 2);
    const error = await rejection(resolver.resolve("missing.test"));
    assert.equal(error.message, 'Cannot resolve "missing.test": no A or AAAA record');
  } finally {
    socket.close();
    await serving;
  }
});

Deno.test("Resolver.resolve() gives REP 4 when a real DNS server does not answer in time", async () => {
  const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  try {
    const { port } = socket.addr as Deno.NetAddr;
    const resolver = new Resolver(
      config({ prefer: "ipv4-only", servers: [`127.0.0.1:${port}`], timeoutMs: 100 }),
    );
    const error = await rejection(resolver.resolve("silent.test"));
    assert.equal(error.reply, Reply.HostUnreachable);
    assert.equal(error.timedOut, true);
  } finally {
    socket.close();
  }
});

/** A fake DNS whose every answer waits for the test to release it. */
function gatedDns(answers: Partial<Record<DnsRecordType, readonly DnsRecord[]>>) {
  const gates = {
    A: Promise.withResolvers<void>(),
    AAAA: Promise.withResolvers<void>(),
  };
  let queries = 0;
  const query: DnsQuery = async (_name, type) => {
    queries++;
    await gates[type].promise;
    return answers[type] ?? [];
  };
  const release = (type: DnsRecordType) => gates[type].resolve();
  return { query, release, queries: () => queries };
}

/** Whether `promise` settled within `ms`. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  try {
    return await Promise.race([promise.then(() => true, () => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

const BOTH = { A: ["192.0.2.7"], AAAA: ["2001:db8::7"] };

Deno.test("Resolver.resolveStaged() gives the AAAA answer at once, before A answers", async () => {
  const dns = gatedDns(BOTH);
  const resolver = new Resolver(config(), { query: dns.query, resolutionDelayMs: 10_000 });
  const { first, complete } = resolver.resolveStaged("x.example");
  dns.release("AAAA");
  assert.deepEqual(show(await first), { v4: [], v6: ["2001:db8::7"], source: "dns" });
  assert.equal(await settlesWithin(complete, 20), false);
  dns.release("A");
  assert.deepEqual(show(await complete), {
    v4: ["192.0.2.7"],
    v6: ["2001:db8::7"],
    source: "dns",
  });
  // The cache holds the complete answer, not the early one.
  assert.deepEqual(show(await resolver.resolve("x.example")), {
    v4: ["192.0.2.7"],
    v6: ["2001:db8::7"],
    source: "cache",
  });
  assert.deepEqual(resolver.stats, { hits: 1, misses: 1, queries: 2 });
});

Deno.test("Resolver.resolveStaged() waits the resolution delay for AAAA after A answers", async () => {
  const dns = gatedDns(BOTH);
  const resolver = new Resolver(config(), { query: dns.query, resolutionDelayMs: 60 });
  const startedAt = performance.now();
  const { first, complete } = resolver.resolveStaged("x.example");
  dns.release("A");
  assert.equal(await settlesWithin(first, 20), false);
  assert.deepEqual(show(await first), { v4: ["192.0.2.7"], v6: [], source: "dns" });
  const waited = performance.now() - startedAt;
  assert.ok(waited >= 50 && waited < 1_000, `first answer after ${waited} ms`);
  dns.release("AAAA");
  assert.deepEqual(show(await complete).v6, ["2001:db8::7"]);
  assert.equal((await resolver.resolve("x.example")).v6.length, 1);
});

Deno.test("Resolver.resolveStaged() gives both families when AAAA comes within the delay", async () => {
  const dns = gatedDns(BOTH);
  const resolver = new Resolver(config(), { query: dns.query, resolutionDelayMs: 10_000 });
  const { first, complete } = resolver.resolveStaged("x.example");
  dns.release("A");
  setTimeout(() => dns.release("AAAA"), 10);
  assert.deepEqual(show(await first), { v4: ["192.0.2.7"], v6: ["2001:db8::7"], source: "dns" });
  await complete;
});

Deno.test("Resolver.resolveStaged() does not wait for the other family when the preferred is ipv4", async () => {
  const dns = gatedDns(BOTH);
  const resolver = new Resolver(config({ prefer: "ipv4" }), {
    query: dns.query,
    resolutionDelayMs: 10_000,
  });
  const { first, complete } = resolver.resolveStaged("x.example");
  dns.release("A");
  assert.deepEqual(show(await first).v4, ["192.0.2.7"]);
  dns.release("AAAA");
  await complete;
});

Deno.test("Resolver.resolveStaged() starts with A while AAAA hangs, then records the timeout", async () => {
  const clock = { now: 0 };
  const query: DnsQuery = (_name, type, { signal }) =>
    type === "A" ? Promise.resolve(["192.0.2.7"]) : new Promise((_resolve, reject) => {
      signal.addEventListener("abort", () => reject(signal.reason), { once: true });
    });
  const resolver = new Resolver(config({ timeoutMs: 500 }), {
    query,
    now: () => clock.now,
    resolutionDelayMs: 20,
  });
  const { first, complete } = resolver.resolveStaged("x.example");
  assert.ok(await settlesWithin(first, 350), "first answer should not wait for the timeout");
  assert.deepEqual(show(await first).v4, ["192.0.2.7"]);
  assert.equal(await settlesWithin(complete, 0), false);
  // The complete answer keeps A once AAAA times out, cached only for the negative TTL.
  assert.deepEqual(show(await complete), { v4: ["192.0.2.7"], v6: [], source: "dns" });
  assert.equal((await resolver.resolve("x.example")).source, "cache");
  clock.now += 30_000;
  const again = resolver.resolveStaged("x.example");
  assert.equal((await again.first).source, "dns");
  await again.complete;
});

Deno.test("Resolver.resolveStaged() rejects both stages with REP 4 when neither family has records", async () => {
  const dns = gatedDns({});
  const resolver = new Resolver(config(), { query: dns.query, resolutionDelayMs: 10 });
  const { first, complete } = resolver.resolveStaged("nx.example");
  dns.release("A");
  dns.release("AAAA");
  const error = await rejection(first);
  assert.equal(error.reply, Reply.HostUnreachable);
  assert.equal(error.message, 'Cannot resolve "nx.example": no A or AAAA record');
  assert.equal((await rejection(complete)).message, error.message);
});

Deno.test("Resolver.resolveStaged() rejects both stages with REP 4 when every query times out", async () => {
  const query: DnsQuery = (_name, _type, { signal }) =>
    new Promise((_resolve, reject) => {
      signal.addEventListener("abort", () => reject(signal.reason), { once: true });
    });
  const resolver = new Resolver(config({ timeoutMs: 30 }), { query });
  const { first, complete } = resolver.resolveStaged("slow.example");
  const error = await rejection(first);
  assert.equal(error.reply, Reply.HostUnreachable);
  assert.equal(error.timedOut, true);
  assert.equal((await rejection(complete)).timedOut, true);
});

Deno.test("Resolver.resolveStaged() answers instant sources in both stages alike", async () => {
  const { query, calls } = fakeDns({ "x.example": BOTH });
  const resolver = new Resolver(config({ hosts: { "static.example": ["192.0.2.1"] } }), {
    query,
  });
  const literal = resolver.resolveStaged("2001:db8::1");
  assert.deepEqual(show(await literal.first), show(await literal.complete));
  const fromStatic = resolver.resolveStaged("static.example");
  assert.equal((await fromStatic.first).source, "static");
  assert.equal((await fromStatic.complete).source, "static");
  await resolver.resolve("x.example");
  const cached = resolver.resolveStaged("x.example");
  assert.deepEqual(show(await cached.first), {
    v4: ["192.0.2.7"],
    v6: ["2001:db8::7"],
    source: "cache",
  });
  await cached.complete;
  assert.equal(calls.length, 2);
});

Deno.test("Resolver.resolveStaged() shares the lookup with a caller that joins late", async () => {
  const dns = gatedDns(BOTH);
  const resolver = new Resolver(config(), { query: dns.query, resolutionDelayMs: 10_000 });
  const one = resolver.resolveStaged("x.example");
  dns.release("AAAA");
  await one.first;
  const two = resolver.resolveStaged("x.example");
  assert.deepEqual(show(await two.first).v6, ["2001:db8::7"]);
  dns.release("A");
  await Promise.all([one.complete, two.complete]);
  assert.equal(dns.queries(), 2);
  assert.deepEqual(resolver.stats, { hits: 0, misses: 2, queries: 2 });
});

Deno.test("Resolver.resolveStaged() cancels the queries when its only caller leaves", async () => {
  const signals: AbortSignal[] = [];
  const query: DnsQuery = (_name, type, { signal }) => {
    signals.push(signal);
    if (type === "AAAA") return Promise.resolve(["2001:db8::7"]);
    return new Promise((_resolve, reject) => {
      signal.addEventListener("abort", () => reject(signal.reason), { once: true });
    });
  };
  const resolver = new Resolver(config(), { query });
  const controller = new AbortController();
  const { first, complete } = resolver.resolveStaged("x.example", { signal: controller.signal });
  await first;
  controller.abort(new Error("client left"));
  await assert.rejects(complete, { message: "client left" });
  assert.ok(signals.every((signal) => signal.aborted));
});

Deno.test("reverseName() spells in-addr.arpa and ip6.arpa names", () => {
  assert.equal(reverseName(parseIp("192.0.2.10")!), "10.2.0.192.in-addr.arpa");
  assert.equal(
    reverseName(parseIp("2001:db8::1")!),
    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
  );
});

Deno.test("Resolver.reverse() answers from static hosts, then the hosts file, then DNS PTR", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const hostsFile = `${dir}/hosts`;
    await Deno.writeTextFile(hostsFile, "192.0.2.7 file.example alias.example\n");
    const asked: string[] = [];
    const resolver = new Resolver(
      config({ hosts: { "Static.Example.": ["2001:db8::5", "192.0.2.5"] }, hostsFile }),
      {
        query: () => Promise.resolve([]),
        queryPtr: (name) => {
          asked.push(name);
          return Promise.resolve(name.startsWith("9.") ? ["Dns.Example."] : []);
        },
      },
    );
    assert.deepEqual(await resolver.reverse(parseIp("192.0.2.5")!), {
      name: "static.example",
      source: "static",
    });
    assert.deepEqual(await resolver.reverse(parseIp("::ffff:192.0.2.7")!), {
      name: "file.example",
      source: "hosts",
    });
    assert.deepEqual(await resolver.reverse(parseIp("192.0.2.9")!), {
      name: "dns.example",
      source: "dns",
    });
    await assert.rejects(
      resolver.reverse(parseIp("192.0.2.8")!),
      (error) => error instanceof NameNotResolvedError && error.reply === Reply.HostUnreachable,
    );
    assert.deepEqual(asked, ["9.2.0.192.in-addr.arpa", "8.2.0.192.in-addr.arpa"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Resolver.reverse() tries the next server after a failure and reports REP 4 when all fail", async () => {
  const servers: string[] = [];
  const resolver = new Resolver(config({ servers: ["192.0.2.53", "192.0.2.54:5353"] }), {
    queryPtr: (_name, options) => {
      servers.push(`${options.nameServer?.ipAddr}:${options.nameServer?.port}`);
      return Promise.reject(new Error("server failure"));
    },
  });
  await assert.rejects(
    resolver.reverse(parseIp("2001:db8::1")!),
    (error) =>
      error instanceof NameNotResolvedError &&
      /PTR query failed: server failure/.test(error.message),
  );
  assert.deepEqual(servers, ["192.0.2.53:53", "192.0.2.54:5353"]);
});

Deno.test("Resolver.resolve() returns an IPv4-mapped AAAA answer as IPv4", async () => {
  const { query } = fakeDns({
    "mapped.example": { AAAA: ["::ffff:127.0.0.1", "2001:db8::1"] },
    "zero.example": { AAAA: ["::ffff:0.0.0.0"] },
  });
  const resolver = new Resolver(config(), { query });
  assert.deepEqual(show(await resolver.resolve("mapped.example")), {
    v4: ["127.0.0.1"],
    v6: ["2001:db8::1"],
    source: "dns",
  });
  assert.deepEqual(show(await resolver.resolve("zero.example")).v4, ["0.0.0.0"]);
  // The first stage (AAAA before A) gives the same one form.
  const staged = resolver.resolveStaged("mapped.example");
  assert.deepEqual(show(await staged.first).v4, ["127.0.0.1"]);
  await staged.complete;
});

Deno.test("Resolver.resolve() with ipv6-only drops an IPv4-mapped AAAA answer", async () => {
  const { query } = fakeDns({ "mapped.example": { AAAA: ["::ffff:192.0.2.1"] } });
  const resolver = new Resolver(config({ prefer: "ipv6-only" }), { query });
  await rejection(resolver.resolve("mapped.example"));
});

Deno.test("Resolver.resolve() returns IPv4-mapped static hosts and literals as IPv4", async () => {
  const { query, calls } = fakeDns({});
  const resolver = new Resolver(
    config({ hosts: { "mapped.example": ["::ffff:127.0.0.1", "::ffff:0.0.0.0"] } }),
    { query },
  );
  assert.deepEqual(show(await resolver.resolve("mapped.example")), {
    v4: ["127.0.0.1", "0.0.0.0"],
    v6: [],
    source: "static",
  });
  assert.deepEqual(show(await resolver.resolve("::ffff:0.0.0.0")).v4, ["0.0.0.0"]);
  assert.deepEqual(show(await resolver.resolve("[::ffff:7f00:1]")).v4, ["127.0.0.1"]);
  assert.equal(calls.length, 0);
});
