import assert from "node:assert/strict";
import { formatIp } from "../../net/address.ts";
import { formatCidr } from "../../net/cidr.ts";
import { ConfigError } from "./errors.ts";
import { normalizeConfig, parseConfig } from "./load.ts";

function assertConfigError(yaml: string, path: string, reason: RegExp): void {
  let caught: unknown;
  try {
    parseConfig(yaml);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError for ${yaml}`);
  const problem = caught.problems.find((p) => p.path === path);
  assert.ok(problem, `no problem at ${path}: ${caught.message}`);
  assert.match(problem.reason, reason);
}

Deno.test("routes[].egress/egress_prefix/egress_policy and auth.users[].egress* parse", () => {
  const config = parseConfig(`
auth:
  users:
    - { name: alice, password: pw, egress_prefix: "2001:db8:5::/64", egress_policy: sticky_user }
    - { name: bob, password: pw, egress: ["192.0.2.7"] }
routes:
  - to: ["2001:db8:77::/48"]
    egress_prefix: 2001:db8:6::/64
  - to: ["*"]
    egress: ["192.0.2.1", "2001:db8::1"]
    egress_policy: sticky_destination
  - to: ["*.example"]
    chain: ["socks5://198.51.100.1:1080"]
    egress: 192.0.2.2
`);
  const [alice, bob] = config.auth.users;
  assert.equal(formatCidr(alice!.egress!.prefix!), "2001:db8:5::/64");
  assert.equal(alice!.egress!.policy, "sticky_user");
  assert.deepEqual(bob!.egress!.addresses.map(formatIp), ["192.0.2.7"]);
  assert.equal(bob!.egress!.policy, "per_connection");
  const [r0, r1, r2] = config.routes;
  assert.deepEqual(r0!.chain, []);
  assert.equal(formatCidr(r0!.egress!.prefix!), "2001:db8:6::/64");
  assert.deepEqual(r1!.egress!.addresses.map(formatIp), ["192.0.2.1", "2001:db8::1"]);
  assert.equal(r1!.egress!.policy, "sticky_destination");
  assert.equal(r2!.chain.length, 1);
  assert.deepEqual(r2!.egress!.addresses.map(formatIp), ["192.0.2.2"]);
  const shown = normalizeConfig(config) as { routes: Record<string, unknown>[] };
  assert.deepEqual(shown.routes[0], {
    to: ["2001:db8:77::/48"],
    egress_prefix: "2001:db8:6::/64",
    egress_policy: "per_connection",
  });
});

Deno.test("an egress address of the wrong family for the route is refused at load", () => {
  // IPv4 destinations with only IPv6 sources.
  assertConfigError(
    `routes: [{ to: ["198.51.100.0/24"], egress_prefix: "2001:db8:5::/64" }]`,
    "routes[0].egress_prefix",
    /no IPv4 source address for destination 198\.51\.100\.0\/24/,
  );
  assertConfigError(
    `routes: [{ to: ["2001:db8:9::/48"], egress: ["192.0.2.1"] }]`,
    "routes[0].egress",
    /no IPv6 source address for destination 2001:db8:9::\/48/,
  );
  // A chain's first hop by address: the source must be of its family.
  assertConfigError(
    `routes: [{ chain: ["socks5://[2001:db8::20]:1080"], egress: ["192.0.2.1"] }]`,
    "routes[0].egress",
    /no IPv6 source address for the first hop socks5:\/\/\[2001:db8::20\]:1080/,
  );
});

Deno.test("egress values that make no sense are refused with their path", () => {
  const cases: [string, string, RegExp][] = [
    [`egress: ["not-an-ip"]`, "routes[0].egress[0]", /is not an IP address/],
    [`egress: ["0.0.0.0"]`, "routes[0].egress[0]", /not a unicast address/],
    [`egress: ["ff02::1"]`, "routes[0].egress[0]", /not a unicast address/],
    [`egress: ["fe80::1"]`, "routes[0].egress[0]", /link-local/],
    [`egress: ["::ffff:192.0.2.1"]`, "routes[0].egress[0]", /IPv4-mapped/],
    [`egress: ["192.0.2.1", "192.0.2.1"]`, "routes[0].egress[1]", /duplicate 192\.0\.2\.1/],
    [`egress: []`, "routes[0].egress", /at least one address/],
    [`egress_prefix: "192.0.2.0/24"`, "routes[0].egress_prefix", /must be an IPv6 prefix/],
    [
      `egress_prefix: "2001:db8:5::1/64"`,
      "routes[0].egress_prefix",
      /host bits set: write 2001:db8:5::\/64/,
    ],
    [`egress_prefix: "2000::/3"`, "routes[0].egress_prefix", /prefix length must be 16\.\.128/],
    [
      `egress_prefix: "2001:db8:5::"`,
      "routes[0].egress_prefix",
      /must be an IPv6 prefix ADDRESS\/LENGTH/,
    ],
    [`egress_prefix: "ff05::/16"`, "routes[0].egress_prefix", /not a global or unique-local/],
    [
      `egress_prefix: "2001:db8:5::/64", egress: ["2001:db8::1"]`,
      "routes[0].egress[0]",
      /egress_prefix gives the IPv6 sources/,
    ],
    [
      `egress_policy: sticky_user, chain: ["socks5://192.0.2.1:1080"]`,
      "routes[0].egress_policy",
      /needs egress or egress_prefix/,
    ],
    [`egress: ["192.0.2.1"], egress_policy: sometimes`, "routes[0].egress_policy", /sticky_user/],
  ];
  for (const [keys, path, reason] of cases) {
    assertConfigError(`routes: [{ ${keys} }]`, path, reason);
  }
  assertConfigError(`routes: [{ to: ["*"] }]`, "routes[0].chain", /needs chain .* or egress/);
  assertConfigError(
    `auth: { users: [{ name: a, password: p, egress: ["192.0.2.1", "2001:db8::1"], egress_prefix: "2001:db8:5::/64" }] }`,
    "auth.users[0].egress[1]",
    /egress_prefix gives the IPv6 sources/,
  );
  assertConfigError(
    `auth: { users: [{ name: a, password: p, egress_prefix: "2001:db8:5::/200" }] }`,
    "auth.users[0].egress_prefix",
    /prefix length/,
  );
});
