import assert from "node:assert/strict";
import { parseConfig } from "./load.ts";
import { configWarnings, formatConfigWarning } from "./warnings.ts";

const paths = (yaml: string) => configWarnings(parseConfig(yaml)).map((w) => w.path);

Deno.test("configWarnings() is silent for loopback listeners, hashed passwords and a loopback admin", () => {
  assert.deepEqual(paths(""), []);
  assert.deepEqual(
    paths(`listen: ["127.0.0.1:1080", "[::1]:1080", "127.0.0.2:1081"]
auth: { users: [{ name: alice, password: change-me }] }
admin: { listen: "[::1]:9090" }`),
    [],
  );
  assert.deepEqual(
    paths(`listen: ["192.0.2.10:1080"]
auth: { users: [{ name: alice, password_hash: "scrypt$1024$8$1$c2FsdHNhbHRzYWx0c2FsdA==$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g=" }] }`),
    [],
  );
});

Deno.test("configWarnings() names plain-text passwords on a non-loopback listener", () => {
  const warnings = configWarnings(parseConfig(`listen: ["127.0.0.1:1080", "[2001:db8::10]:1080"]
auth:
  users:
    - { name: alice, password: change-me }
    - { name: bob, password_hash: "scrypt$1024$8$1$c2FsdHNhbHRzYWx0c2FsdA==$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g=" }
    - { name: carol, password: other-secret }`));
  assert.deepEqual(warnings.map((w) => w.path), [
    "auth.users[0].password",
    "auth.users[2].password",
  ]);
  const text = formatConfigWarning(warnings[0]!);
  assert.match(text, /^auth\.users\[0\]\.password: user "alice" has a plain-text password/);
  assert.match(text, /\[2001:db8::10\]:1080 is not loopback: prefer password_hash/);
  assert.doesNotMatch(warnings.map(formatConfigWarning).join("\n"), /change-me|other-secret/);
  // A wildcard listener is not loopback either.
  assert.deepEqual(
    paths(`listen: ["0.0.0.0:1080"]\nauth: { users: [{ name: a, password: b }] }`),
    ["auth.users[0].password"],
  );
});

Deno.test("configWarnings() names an admin listener off loopback and an open proxy", () => {
  const auth = `auth: { token_sha256: "${"ab".repeat(32)}" }`;
  assert.deepEqual(paths(`admin: { listen: "0.0.0.0:9090", ${auth} }`), ["admin.listen"]);
  assert.match(
    formatConfigWarning(
      configWarnings(parseConfig(`admin: { listen: "[::]:9090", ${auth} }`))[0]!,
    ),
    /^admin\.listen: \[::\]:9090 is not a loopback address/,
  );
  assert.deepEqual(paths(`listen: ["192.0.2.10:1080", "127.0.0.1:1080", "[::]:1080"]`), [
    "listen[0]",
    "listen[2]",
  ]);
  assert.deepEqual(
    paths(`listen: ["192.0.2.10:1080"]\nrules: [{ action: allow, from: ["192.0.2.0/24"] }]`),
    [],
  );
});

Deno.test("configWarnings() warns about a non-loopback PROXY listener without trusted_proxies", () => {
  const config = parseConfig(`listen:
  - "192.0.2.10:1080"
  - { address: "192.0.2.10:1081", proxy_protocol: v2 }
  - { address: "127.0.0.1:1082", proxy_protocol: v2 }
  - { address: "[::]:1083", proxy_protocol: any }
  - { address: "[2001:db8::10]:1084", proxy_protocol: v1, trusted_proxies: ["2001:db8::/32"] }
`);
  const warnings = configWarnings(config).filter((w) => /PROXY headers/.test(w.message));
  assert.equal(warnings.length, 2);
  assert.equal(warnings[0]!.path, "listen[1]");
  assert.match(warnings[0]!.message, /^192\.0\.2\.10:1081 .*trusted_proxies/);
  assert.equal(warnings[1]!.path, "listen[3]");
  assert.match(warnings[1]!.message, /^\[::\]:1083 /);
});

Deno.test("configWarnings() names a first hop on this host that gets no PROXY header", () => {
  const config = parseConfig(`listen: ["192.0.2.10:1080"]
rules: [{ action: allow }]
routes:
  - { to: ["a.example"], chain: ["socks5://127.0.0.1:1090"] }
  - { to: ["b.example"], chain: ["socks5://127.0.0.1:1090?proxy_protocol=v2"] }
  - { to: ["c.example"], chain: [["socks5://198.51.100.20:1080", "socks5://localhost:1091"]] }
  - { to: ["d.example"], chain: ["socks5://192.0.2.10:1092", "socks5://127.0.0.1:1093"] }
  - { to: ["e.example"], chain: [{ any: ["socks5://[::1]:1094"], proxy_protocol: v2 }] }
  - { to: ["f.example"], chain: ["socks5://198.51.100.20:1080", "socks5://gw.example:1080"] }
`);
  const warnings = configWarnings(config).filter((w) => /PROXY header/.test(w.message));
  assert.deepEqual(warnings.map((w) => w.path), [
    "routes[0].chain[0]",
    "routes[2].chain[0]",
    "routes[3].chain[0]",
  ]);
  assert.match(warnings[0]!.message, /^socks5:\/\/127\.0\.0\.1:1090 is on this host/);
  assert.match(warnings[1]!.message, /^socks5:\/\/localhost:1091 /);
  assert.match(warnings[2]!.message, /^socks5:\/\/192\.0\.2\.10:1092 .*\?proxy_protocol=v2/);
});
