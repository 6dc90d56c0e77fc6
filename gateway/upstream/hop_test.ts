import assert from "node:assert/strict";
import type { HopConfig } from "../config/types.ts";
import { formatEndpoint, parseIp } from "../../net/address.ts";
import { SocksReplyError } from "../../socks5/errors.ts";
import { Reply, type SocksTarget } from "../../socks5/types.ts";
import { forwardedTarget, HopUnavailableError, SocksHopDialer } from "./hop.ts";
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
});
