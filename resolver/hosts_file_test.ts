import assert from "node:assert/strict";
import { formatIp } from "../net/address.ts";
import { parseHostsFile } from "./hosts_file.ts";

const text = [
  "# a comment line",
  "127.0.0.1\tlocalhost localhost.localdomain",
  "::1 localhost ip6-localhost   # trailing comment",
  "",
  "192.0.2.10 Intranet.Example. intranet   ",
  "2001:db8::10 intranet.example",
  "192.0.2.10 intranet.example",
  "fe80::1%eth0 scoped.example",
  "999.0.0.1 bad.example",
  "[2001:db8::1] bracketed.example",
  "192.0.2.11",
  "::ffff:192.0.2.12 mapped.example",
  "192.0.2.13 good.example bad\u0001name",
  "  # indented comment 192.0.2.14 commented.example",
].join("\n");

function show(hosts: ReturnType<typeof parseHostsFile>, name: string): string[] | undefined {
  return hosts.get(name)?.map(formatIp);
}

Deno.test("parseHostsFile() reads names, aliases and both families", () => {
  const hosts = parseHostsFile(text);
  assert.deepEqual(show(hosts, "localhost"), ["127.0.0.1", "::1"]);
  assert.deepEqual(show(hosts, "localhost.localdomain"), ["127.0.0.1"]);
  assert.deepEqual(show(hosts, "ip6-localhost"), ["::1"]);
  assert.deepEqual(show(hosts, "intranet"), ["192.0.2.10"]);
});

Deno.test("parseHostsFile() lower-cases names, strips the trailing dot and merges duplicates", () => {
  const hosts = parseHostsFile(text);
  assert.deepEqual(show(hosts, "intranet.example"), ["192.0.2.10", "2001:db8::10"]);
  assert.equal(hosts.has("Intranet.Example."), false);
});

Deno.test("parseHostsFile() skips invalid lines, zone-scoped addresses and invalid names", () => {
  const hosts = parseHostsFile(text);
  for (const name of ["scoped.example", "bad.example", "bracketed.example", "commented.example"]) {
    assert.equal(hosts.has(name), false, name);
  }
  assert.deepEqual(show(hosts, "good.example"), ["192.0.2.13"]);
  assert.equal([...hosts.keys()].some((name) => name.includes("\u0001")), false);
});

Deno.test("parseHostsFile() stores IPv4-mapped IPv6 as IPv4 and accepts CRLF", () => {
  assert.deepEqual(show(parseHostsFile(text), "mapped.example"), ["192.0.2.12"]);
  assert.deepEqual(show(parseHostsFile("192.0.2.1 a\r\n192.0.2.2 b\r\n"), "a"), ["192.0.2.1"]);
});
