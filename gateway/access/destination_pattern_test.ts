import assert from "node:assert/strict";
import { parseIp } from "../../net/address.ts";
import { parseCidr } from "../../net/cidr.ts";
import type { DestinationPattern } from "../config/types.ts";
import { compileDestinationPattern, formatDestinationPattern } from "./destination_pattern.ts";

const ip = (text: string) => parseIp(text)!;

const SUBJECTS = {
  name: { name: "www.example" },
  apex: { name: "example" },
  v4: { address: ip("192.0.2.7") },
  v6: { address: ip("2001:db8::7") },
  both: { name: "www.example", address: ip("192.0.2.7") },
  none: {},
} as const;

function matching(pattern: DestinationPattern): string[] {
  const matches = compileDestinationPattern(pattern);
  return Object.entries(SUBJECTS).filter(([, s]) => matches(s)).map(([key]) => key);
}

Deno.test("compileDestinationPattern() `*` matches names, addresses of both families, and nothing known", () => {
  assert.deepEqual(matching({ kind: "any" }), ["name", "apex", "v4", "v6", "both", "none"]);
  assert.equal(formatDestinationPattern({ kind: "any" }), "*");
});

Deno.test("compileDestinationPattern() CIDRs match addresses, names and suffixes match names", () => {
  assert.deepEqual(matching({ kind: "cidr", cidr: parseCidr("192.0.2.0/24") }), ["v4", "both"]);
  assert.deepEqual(matching({ kind: "name", name: "www.example" }), ["name", "both"]);
  assert.deepEqual(matching({ kind: "suffix", suffix: "example" }), ["name", "both"]);
  assert.equal(formatDestinationPattern({ kind: "suffix", suffix: "example" }), "*.example");
});
