import assert from "node:assert/strict";
import { parseConfig } from "../config/load.ts";
import { parseIp } from "../../net/address.ts";
import type { SocksTarget } from "../../socks5/types.ts";
import { createRouter } from "./router.ts";
import type { Dialer } from "./types.ts";

const direct: Dialer = { dial: () => Promise.reject(new Error("not dialed in this test")) };

const routes = parseConfig(`listen: ["127.0.0.1:0"]
routes:
  - to: ["*.v6.example", "exact.example", "2001:db8:ff::/48"]
    chain: ["socks5://198.51.100.20:1080"]
  - to: ["*.example"]
    ports: [443, "8000-8080"]
    chain: [["socks5://[2001:db8:200::20]:1080", "socks5://g.example:1081"], "socks5://198.51.100.30:1080"]
  - to: ["192.0.2.0/24"]
    chain: ["socks5://198.51.100.40:1080"]
`).routes;

const byName = (name: string, port = 80): SocksTarget => ({
  address: { family: "name", name },
  port,
});
const byIp = (text: string, port = 80): SocksTarget => ({ address: parseIp(text)!, port });

Deno.test("createRouter() picks the first matching route, else direct", () => {
  const route = createRouter(routes, direct);
  const index = (t: SocksTarget) => {
    const choice = route(t);
    return choice.chained ? Number(/^routes\[(\d+)\]/.exec(choice.label)![1]) : -1;
  };
  assert.equal(index(byName("a.v6.example")), 0);
  assert.equal(index(byName("A.B.V6.Example.")), 0, "names are normalised");
  assert.equal(index(byName("v6.example")), -1, "a wildcard does not match its apex");
  assert.equal(index(byName("exact.example")), 0);
  assert.equal(index(byIp("2001:db8:ff::1")), 0);
  assert.equal(index(byName("[2001:db8:ff::1]")), 0, "a literal sent as a name is an address");
  assert.equal(index(byName("www.example", 443)), 1);
  assert.equal(index(byName("www.example", 8080)), 1);
  assert.equal(index(byName("www.example", 80)), -1, "ports restrict the route");
  assert.equal(index(byIp("192.0.2.7")), 2);
  assert.equal(index(byName("192.0.2.7")), 2);
  assert.equal(index(byIp("198.51.100.7")), -1);
  assert.equal(index(byName("name.in.192.0.2.example")), -1, "CIDRs never match names");
  assert.equal(route(byName("x.org")).label, "direct");
  assert.equal(route(byName("x.org")).dialer, direct);
});

Deno.test("createRouter() labels chained routes and shares one dialer per route", () => {
  const route = createRouter(routes, direct);
  const a = route(byName("a.v6.example")), b = route(byName("b.v6.example"));
  assert.equal(a.dialer, b.dialer, "alternative marks are shared by the route's connections");
  assert.match(
    route(byName("w.example", 443)).label,
    /^routes\[1\] .* via socks5:\/\/\[2001:db8:200::20\]:1080\|socks5:\/\/g\.example:1081 \+1$/,
  );
});

Deno.test("createRouter() without routes always dials directly", () => {
  const route = createRouter([], direct);
  assert.deepEqual(route(byName("x.example")), { dialer: direct, chained: false, label: "direct" });
});

Deno.test("createRouter() sends every destination through a `*` route or one without `to`", () => {
  for (const to of ['  - to: ["*"]\n', "  -\n"]) {
    const catchAll = parseConfig(`routes:
  - to: ["direct.example"]
    ports: [1]
    chain: ["socks5://198.51.100.40:1080"]
${to}    chain: ["socks5://198.51.100.41:1080"]
`).routes;
    const route = createRouter(catchAll, direct);
    for (
      const target of [
        byName("any.example"),
        byName("UPPER.Example."),
        byIp("192.0.2.7"),
        byIp("2001:db8::7", 443),
        byName("[2001:db8::7]"),
        byName("not a host name"),
      ]
    ) {
      const choice = route(target);
      assert.ok(choice.chained, JSON.stringify(target));
      assert.match(choice.label, /^routes\[1\] \(\*\) via socks5:\/\/198\.51\.100\.41:1080$/);
    }
    assert.match(route(byName("direct.example", 1)).label, /^routes\[0\]/, "first match wins");
  }
});

Deno.test("createRouter() dials the first hop through hopBase, unrouted targets directly", async () => {
  const asked: string[] = [];
  const hopBase: Dialer = {
    dial: (request) => {
      asked.push(JSON.stringify(request.target));
      return Promise.reject(new Error("hop base reached"));
    },
  };
  const route = createRouter(routes, direct, { hopBase });
  assert.equal(route(byName("x.org")).dialer, direct);
  const chained = route(byIp("192.0.2.7"));
  const error = await chained.dialer.dial({
    target: byIp("192.0.2.7"),
    signal: new AbortController().signal,
    permit: () => true,
  }).catch((e: unknown) => e);
  assert.ok(error instanceof Error);
  // The hop gateway itself was asked of hopBase, not of the direct dialer.
  assert.deepEqual(asked.map((t) => JSON.parse(t).port), [1080]);
});

Deno.test("createRouter() lists a chained route's hops for the audit log", () => {
  const route = createRouter(routes, direct);
  assert.deepEqual(route(byName("w.example", 443)).hops, [
    "socks5://[2001:db8:200::20]:1080|socks5://g.example:1081",
    "socks5://198.51.100.30:1080",
  ]);
  assert.equal(route(byName("elsewhere.test")).hops, undefined);
});

Deno.test("createRouter(): a route with egress and no chain dials directly with its pool", () => {
  const route = createRouter(
    parseConfig(`routes:
  - to: ["*.six.example"]
    egress_prefix: 2001:db8:5::/64
    egress_policy: sticky_destination
  - to: ["*.hop.example"]
    chain: ["socks5://198.51.100.20:1080"]
    egress: ["192.0.2.9"]
`).routes,
    direct,
  );
  const six = route(byName("a.six.example"));
  assert.equal(six.dialer, direct);
  assert.equal(six.chained, false);
  assert.equal(six.label, "routes[0] (*.six.example) direct");
  assert.equal(six.egress?.policy, "sticky_destination");
  assert.equal(six.egress?.has(4), false);
  const hop = route(byName("a.hop.example"));
  assert.equal(hop.chained, true);
  assert.equal(hop.egress?.has(4), true);
  assert.equal(route(byName("other.example")).egress, undefined);
});
