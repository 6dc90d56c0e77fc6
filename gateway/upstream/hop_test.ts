import assert from "node:assert/strict";
import type { HopConfig } from "../config/types.ts";
import {
  endpointFromNetAddr,
  formatEndpoint,
  formatIp,
  type IpAddress,
  parseIp,
  sameIp,
} from "../../net/address.ts";
import { isHostLocal } from "../../net/cidr.ts";
import {
  encodeMethodSelection,
  encodeReply,
  readGreeting,
  readRequest,
  ZERO_TARGET,
} from "../../socks5/codec.ts";
import { SocksReplyError } from "../../socks5/errors.ts";
import { ExactReader } from "../../socks5/exact_reader.ts";
import { Reply, type SocksTarget } from "../../socks5/types.ts";
import { formatTarget } from "../observe/connection_log.ts";
import { type ProxyHeader, readProxyHeader } from "../listen/proxy_protocol.ts";
import { forwardedTarget, HopUnavailableError, type SameHostGuard, SocksHopDialer } from "./hop.ts";
import type { Dialer, DialRequest } from "./types.ts";

function hop(...hosts: string[]): HopConfig {
  return {
    alternatives: hosts.map((host) => ({ host, port: 1080, label: `socks5://${host}:1080` })),
    strategy: "failover",
    maxFails: 1,
    failTimeoutMs: 30_000,
  };
}

/** A dialer beneath the hop that fails every dial with `error`, recording the targets asked. */
function failing(error: unknown): Dialer & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    dial(request: DialRequest) {
      const a = request.target.address;
      asked.push(a.family === "name" ? a.name : formatEndpoint({ address: a, port: 0 }));
      return Promise.reject(error);
    },
  };
}

const target: SocksTarget = { address: { family: "name", name: "v6.example" }, port: 80 };
const request = (permit: DialRequest["permit"] = () => true): DialRequest => ({
  target,
  signal: new AbortController().signal,
  permit,
});

Deno.test("SocksHopDialer.dial() marks an unreachable alternative and tries the next", async () => {
  const below = failing(new SocksReplyError(Reply.ConnectionRefused, "refused"));
  const dialer = new SocksHopDialer(hop("192.0.2.1", "g.example"), below);
  const error = await dialer.dial(request()).catch((e) => e);
  assert.ok(error instanceof HopUnavailableError);
  assert.equal(error.reply, Reply.ConnectionRefused);
  // The hop's own name goes to the dialer beneath unresolved.
  assert.deepEqual(below.asked, ["192.0.2.1:0", "g.example"]);
  assert.equal(dialer.selector.isDown(0), true);
  assert.equal(dialer.selector.isDown(1), true);
});

Deno.test("SocksHopDialer.dial() passes a lower hop's failure through without marking its own", async () => {
  const lower = new HopUnavailableError(Reply.HostUnreachable, "lower hop down");
  const below = failing(lower);
  const dialer = new SocksHopDialer(hop("192.0.2.1", "192.0.2.2"), below);
  await assert.rejects(dialer.dial(request()), (e) => e === lower);
  assert.equal(below.asked.length, 1);
  assert.equal(dialer.selector.isDown(0), false);
});

Deno.test("SocksHopDialer.dial() applies rules to literals and asks by name for names", async () => {
  const below = failing(new Error("unused"));
  const dialer = new SocksHopDialer(hop("192.0.2.1"), below);
  const loopback: SocksTarget = { address: { family: "name", name: "127.0.0.1" }, port: 80 };
  const asked: (string | undefined)[] = [];
  const permit = (address?: Parameters<DialRequest["permit"]>[0]) => {
    asked.push(address && formatEndpoint({ address, port: 0 }));
    return address === undefined;
  };
  const denied = await dialer.dial({ ...request(permit), target: loopback }).catch((e) => e);
  assert.ok(denied instanceof SocksReplyError);
  assert.equal(denied.reply, Reply.NotAllowedByRuleset);
  assert.equal(below.asked.length, 0, "a denied target never reaches the hop");
  await dialer.dial(request(permit)).catch(() => {});
  assert.deepEqual(asked, ["127.0.0.1:0", undefined]);
});

Deno.test("SocksHopDialer.dial() stops at the connect timeout without marking", async () => {
  const controller = new AbortController();
  const reason = new DOMException("timed out", "TimeoutError");
  const below: Dialer = {
    dial: () => {
      controller.abort(reason);
      return Promise.reject(reason);
    },
  };
  const dialer = new SocksHopDialer(hop("192.0.2.1", "192.0.2.2"), below);
  await assert.rejects(
    dialer.dial({ ...request(), signal: controller.signal }),
    (e) => e === reason,
  );
  assert.equal(dialer.selector.isDown(0), false);
});

Deno.test("forwardedTarget() keeps names and turns literals sent as names into addresses", () => {
  assert.equal(forwardedTarget(target), target);
  const literal = forwardedTarget({ address: { family: "name", name: "[2001:db8::1]" }, port: 1 });
  assert.deepEqual(literal.address, parseIp("2001:db8::1"));
  // The trailing dot normalizeName() drops: still a literal, so address rules see it.
  const dotted = forwardedTarget({ address: { family: "name", name: "198.51.100.2." }, port: 1 });
  assert.deepEqual(dotted.address, parseIp("198.51.100.2"));
});

Deno.test("SocksHopDialer.dial() judges a literal with a trailing dot by address rules", async () => {
  await using server = fakeHop(false);
  const dialer = new SocksHopDialer(proxyHop(false), server.below);
  const judged: (IpAddress | undefined)[] = [];
  const error = await dialer.dial({
    ...request((address) => {
      judged.push(address);
      return address === undefined; // a rule denying the address, not the name
    }),
    target: named("198.51.100.2."),
  }).catch((e) => e);
  assert.ok(error instanceof SocksReplyError);
  assert.equal(error.reply, Reply.NotAllowedByRuleset);
  assert.deepEqual(judged, [parseIp("198.51.100.2")]);
  assert.equal(server.asked.length, 0);
});

/** What a fake hop gateway saw of one connection: the PROXY header (if any) and the request. */
interface HopSeen {
  header?: ProxyHeader;
  target?: SocksTarget;
}

/**
 * A fake hop gateway on loopback: reads a PROXY v2 header when `proxy`, then a SOCKS greeting
 * and request, and answers success. The dialer beneath connects to it and reports `remote`.
 */
function fakeHop(proxy: boolean) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const seen: HopSeen[] = [];
  const conns: Deno.Conn[] = [];
  const serving = (async () => {
    for await (const conn of listener) {
      conns.push(conn);
      const entry: HopSeen = {};
      seen.push(entry);
      const reader = new ExactReader(conn);
      try {
        if (proxy) entry.header = await readProxyHeader(reader, "v2");
        await readGreeting(reader);
        await conn.write(encodeMethodSelection(0));
        entry.target = (await readRequest(reader)).target;
        await conn.write(encodeReply({ reply: Reply.Succeeded, bound: ZERO_TARGET }));
      } catch { /* the dialer gave up */ }
    }
  })();
  const asked: DialRequest[] = [];
  const below: Dialer = {
    async dial(request) {
      asked.push(request);
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      return {
        conn,
        remote: { address: parseIp("127.0.0.1")!, port },
        local: endpointFromNetAddr(conn.localAddr),
      };
    },
  };
  return {
    seen,
    asked,
    below,
    async [Symbol.asyncDispose]() {
      listener.close();
      await serving;
      for (const conn of conns) {
        try {
          conn.close();
        } catch { /* closed */ }
      }
    },
  };
}

function proxyHop(proxyProtocol: boolean): HopConfig {
  return {
    ...hop("127.0.0.1"),
    alternatives: [{
      host: "127.0.0.1",
      port: 1090,
      label: "socks5://127.0.0.1:1090",
      ...(proxyProtocol ? { proxyProtocol: "v2" as const } : {}),
    }],
  };
}

const remoteClient = {
  source: { address: parseIp("192.0.2.5")!, port: 40000 },
  destination: { address: parseIp("192.0.2.1")!, port: 1080 },
  isLocal: false,
};

const named = (name: string, port = 9999): SocksTarget => ({
  address: { family: "name", name },
  port,
});

Deno.test("SocksHopDialer.dial() sends a PROXY v2 header naming the client before the greeting", async () => {
  await using server = fakeHop(true);
  const dialer = new SocksHopDialer(proxyHop(true), server.below);
  const dialed = await dialer.dial({
    ...request(),
    target: named("www.example"),
    client: remoteClient,
  });
  dialed.conn.close();
  const dialedUnknown = await dialer.dial({ ...request(), target: named("www.example") });
  dialedUnknown.conn.close();
  assert.equal(server.seen.length, 2);
  const [known, unknown] = server.seen;
  assert.equal(known!.header?.command, "proxy");
  if (known!.header?.command === "proxy") {
    assert.equal(formatEndpoint(known!.header.source), "192.0.2.5:40000");
    assert.equal(formatEndpoint(known!.header.destination), "192.0.2.1:1080");
  }
  assert.deepEqual(known!.target, named("www.example"));
  // No client known (a dial not made for a SOCKS client): LOCAL, which a hop treats as remote.
  assert.deepEqual(unknown!.header, { command: "local", version: 2 });
  // The dialer beneath learns the client and the final destination.
  assert.equal(server.asked[0]!.client, remoteClient);
  assert.deepEqual(server.asked[0]!.destination, named("www.example"));
});

Deno.test("SocksHopDialer.dial() refuses host-local destinations through a same-host hop without PROXY header", async () => {
  await using server = fakeHop(false);
  const own = parseIp("192.0.2.1")!;
  const resolved: Record<string, string> = {
    "lo.example": "127.0.0.1",
    "own.example": "192.0.2.1",
    "www.example": "198.51.100.2",
  };
  const resolves: string[] = [];
  const sameHost: SameHostGuard = {
    isHostLocal: (address) => isHostLocal(address) || sameIp(address, own),
    resolve: (name) => {
      resolves.push(name);
      const address = resolved[name];
      return address
        ? Promise.resolve([parseIp(address)!])
        : Promise.reject(new Error(`Cannot resolve ${name}`));
    },
  };
  const dialer = new SocksHopDialer(proxyHop(false), server.below, { sameHost });
  const outcome = async (target: SocksTarget, client: DialRequest["client"] = remoteClient) => {
    try {
      const dialed = await dialer.dial({ ...request(), target, ...(client ? { client } : {}) });
      dialed.conn.close();
      return 0;
    } catch (error) {
      assert.ok(error instanceof SocksReplyError, String(error));
      return error.reply;
    }
  };
  assert.equal(await outcome(named("localhost")), Reply.NotAllowedByRuleset);
  assert.equal(await outcome(named("Db.LocalHost.")), Reply.NotAllowedByRuleset);
  assert.equal(await outcome(named("lo.example")), Reply.NotAllowedByRuleset);
  assert.equal(await outcome(named("own.example")), Reply.NotAllowedByRuleset);
  // An unknown client counts as remote.
  assert.equal(await outcome(named("localhost"), undefined), Reply.NotAllowedByRuleset);
  // This host by a non-loopback address: a session nested through the hop goes nowhere.
  const nested = { ...remoteClient, source: { address: own, port: 40001 } };
  assert.equal(await outcome(named("www.example"), nested), Reply.NotAllowedByRuleset);
  assert.equal(server.seen.filter((s) => s.target).length, 0, "nothing refused reached the hop");
  // A name the front cannot resolve would be the hop's to resolve, unchecked: refused (REP 4).
  assert.equal(await outcome(named("only-the-hop.example")), Reply.HostUnreachable);
  // A remote name goes on as the checked address.
  assert.equal(await outcome(named("www.example")), 0);
  // A local client is judged by the hop as the gateway's own loopback client anyway.
  assert.equal(await outcome(named("localhost"), { ...remoteClient, isLocal: true }), 0);
  assert.deepEqual(
    server.seen.flatMap((s) => s.target ? [formatTarget(s.target)] : []),
    ["198.51.100.2:9999", "localhost:9999"],
  );
  assert.ok(!resolves.includes("localhost"), "localhost is refused without a lookup");
});

Deno.test("SocksHopDialer.dial() leaves the judging to a same-host hop that gets the PROXY header", async () => {
  await using server = fakeHop(true);
  const sameHost: SameHostGuard = {
    isHostLocal,
    resolve: () => Promise.resolve([parseIp("127.0.0.1")!]),
  };
  const dialer = new SocksHopDialer(proxyHop(true), server.below, { sameHost });
  const dialed = await dialer.dial({
    ...request(),
    target: named("localhost"),
    client: remoteClient,
  });
  dialed.conn.close();
  assert.deepEqual(server.seen[0]!.target, named("localhost"));
});

Deno.test("SocksHopDialer.dial() forwards names normalised and refuses invalid ones with REP 4", async () => {
  await using server = fakeHop(false);
  const dialer = new SocksHopDialer(proxyHop(false), server.below);
  const subjects: (string | undefined)[] = [];
  const permit = () => {
    subjects.push("asked");
    return true;
  };
  const dialed = await dialer.dial({ ...request(permit), target: named("WWW.Example.") });
  dialed.conn.close();
  assert.deepEqual(server.seen[0]!.target, named("www.example"));
  for (const invalid of ["secret.example..", "a..example", ".", "bad name.example"]) {
    const error = await dialer.dial({ ...request(permit), target: named(invalid) }).catch((e) => e);
    assert.ok(error instanceof SocksReplyError, invalid);
    assert.equal(error.reply, Reply.HostUnreachable, invalid);
  }
  assert.equal(subjects.length, 1, "an invalid name never reaches the rules");
  assert.equal(server.asked.length, 1, "nor the hop");
});

Deno.test("SocksHopDialer.dial() forwards the checked address, not the name, to a same-host hop without PROXY header (DNS rebinding)", async () => {
  await using server = fakeHop(false);
  // A rebinding name: a remote address for the front's check, loopback for any later lookup.
  let lookups = 0;
  const sameHost: SameHostGuard = {
    isHostLocal,
    resolve: () => Promise.resolve([parseIp(lookups++ === 0 ? "198.51.100.2" : "127.0.0.1")!]),
  };
  const dialer = new SocksHopDialer(proxyHop(false), server.below, { sameHost });
  const judged: string[] = [];
  const permit = (address?: IpAddress) => {
    judged.push(address ? formatIp(address) : "-");
    return true;
  };
  const dialed = await dialer.dial({
    ...request(permit),
    target: named("Rebind.Example."),
    client: remoteClient,
  });
  dialed.conn.close();
  assert.equal(lookups, 1);
  assert.deepEqual(server.seen[0]!.target, {
    address: parseIp("198.51.100.2")!,
    port: 9999,
  });
  // The rules judged the name, then the address the hop gets.
  assert.deepEqual(judged, ["-", "198.51.100.2"]);
  // Rules that deny the checked address refuse before the hop.
  const denied = await dialer.dial({
    ...request((address) => address === undefined),
    target: named("www.example"),
    client: remoteClient,
  }).catch((e) => e);
  assert.ok(denied instanceof SocksReplyError);
  assert.equal(denied.reply, Reply.NotAllowedByRuleset);
  assert.equal(server.seen.filter((s) => s.target).length, 1);
});

Deno.test("SocksHopDialer.dial() passes the egress pick down to the dial of the hop", async () => {
  const seen: (DialRequest["egress"] | undefined)[] = [];
  const below: Dialer = {
    dial(request) {
      seen.push(request.egress);
      return Promise.reject(new SocksReplyError(Reply.ConnectionRefused, "refused"));
    },
  };
  const egress = (family: 4 | 6) => (family === 4 ? parseIp("192.0.2.9") : null);
  await new SocksHopDialer(hop("192.0.2.1"), below).dial({ ...request(), egress }).catch(() => {});
  assert.deepEqual(seen, [egress]);
});
