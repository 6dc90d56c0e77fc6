import assert from "node:assert/strict";
import type { IpAddress } from "../../net/address.ts";
import { formatCidr, parseCidr } from "../../net/cidr.ts";
import { parseConfig } from "../config/load.ts";
import { type EgressHostProbe, egressHostWarnings, parseLocalRoutes } from "./egress_host.ts";

const CONFIG = parseConfig(`auth:
  users:
    - { name: alice, password: pw, egress: ["192.0.2.9"] }
routes:
  - to: ["*"]
    egress_prefix: 2001:db8:5::/64
`);

function probe(
  bindable: (address: IpAddress) => boolean,
  routes: string[] | null,
): EgressHostProbe {
  return {
    bindError: (address) => (bindable(address) ? null : "Cannot assign requested address"),
    localRoutes: () => routes?.map(parseCidr) ?? null,
  };
}

Deno.test("egressHostWarnings(): a host set up for the pools gives none", () => {
  assert.deepEqual(egressHostWarnings(CONFIG, probe(() => true, ["2001:db8:5::/48"])), []);
});

Deno.test("egressHostWarnings(): no nonlocal bind, no local route, a missing address: each said", () => {
  const warnings = egressHostWarnings(
    CONFIG,
    probe(() => false, ["2001:db8:6::/64"]),
  );
  assert.deepEqual(warnings.map((w) => w.path), [
    "routes[0].egress_prefix",
    "routes[0].egress_prefix",
    "auth.users[0].egress[0]",
  ]);
  assert.match(warnings[0]!.message, /sysctl net\.ipv6\.ip_nonlocal_bind=1/);
  assert.match(warnings[1]!.message, /ip -6 route add local 2001:db8:5::\/64 dev lo/);
  assert.match(warnings[2]!.message, /cannot bind 192\.0\.2\.9/);
  // Routes unknown (not Linux): only the bind is judged.
  assert.equal(egressHostWarnings(CONFIG, probe(() => true, null)).length, 0);
});

Deno.test("parseLocalRoutes() keeps RTF_LOCAL routes of /proc/net/ipv6_route", () => {
  const text = [
    "00000000000000000000000000000001 80 00000000000000000000000000000000 00 00000000000000000000000000000000 00000000 00000003 00000000 80200001       lo",
    "20010db8000500000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000400 00000001 00000000 80000001       lo",
    "20010db8000600000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0",
    "",
  ].join("\n");
  assert.deepEqual(parseLocalRoutes(text).map(formatCidr), ["::1/128", "2001:db8:5::/64"]);
});

Deno.test("the host probe binds what the host has and refuses what it has not", () => {
  const fromHost = egressHostWarnings(
    parseConfig(`routes: [{ to: ["*"], egress: ["127.0.0.2", "192.0.2.123"] }]`),
  );
  assert.deepEqual(fromHost.map((w) => w.path), ["routes[0].egress[1]"]);
});
