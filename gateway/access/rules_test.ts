import assert from "node:assert/strict";
import { type IpAddress, parseIp, sameIp, unmapIpv4 } from "../../net/address.ts";
import { isHostLocal, parseCidr } from "../../net/cidr.ts";
import type { DestinationPattern, RuleConfig } from "../config/types.ts";
import type { HostView } from "./host_local.ts";
import { AccessRules, type RuleSubject } from "./rules.ts";

function ip(text: string): IpAddress {
  const address = parseIp(text);
  assert.ok(address, text);
  return address;
}

const REMOTE = ip("198.51.100.7");

function subject(overrides: Partial<RuleSubject> = {}): RuleSubject {
  return {
    client: REMOTE,
    clientIsLocal: false,
    command: "connect",
    address: ip("203.0.113.10"),
    port: 443,
    ...overrides,
  };
}

Deno.test("AccessRules with null denies remote clients the gateway host's own addresses", () => {
  const rules = new AccessRules(null);
  for (
    const text of [
      "127.0.0.1",
      "127.1.2.3",
      "0.0.0.0",
      "::1",
      "::",
      "::ffff:127.0.0.1",
      "::ffff:0.0.0.0",
      "0.1.2.3",
      "::ffff:0.1.2.3",
    ]
  ) {
    assert.deepEqual(
      rules.evaluate(subject({ address: ip(text) })),
      { allow: false, rule: -1 },
      text,
    );
  }
});

Deno.test("AccessRules with null allows a local client to reach loopback", () => {
  const rules = new AccessRules(null);
  for (const text of ["127.0.0.1", "0.0.0.0", "::1", "::"]) {
    assert.deepEqual(
      rules.evaluate(subject({ client: ip("127.0.0.1"), clientIsLocal: true, address: ip(text) })),
      { allow: true, rule: -1 },
      text,
    );
  }
});

Deno.test("AccessRules with null allows other destinations for everyone", () => {
  const rules = new AccessRules(null);
  for (
    const text of ["203.0.113.10", "10.0.0.1", "128.0.0.1", "1.0.0.0", "2001:db8::1", "::2"]
  ) {
    assert.deepEqual(
      rules.evaluate(subject({ address: ip(text) })),
      { allow: true, rule: -1 },
      text,
    );
  }
  // A name not yet resolved has no address to judge.
  const named: RuleSubject = {
    client: REMOTE,
    clientIsLocal: false,
    command: "connect",
    name: "example.com",
    port: 80,
  };
  assert.deepEqual(rules.evaluate(named), { allow: true, rule: -1 });
});

Deno.test("AccessRules with null applies to every command", () => {
  const rules = new AccessRules(null);
  for (const command of ["connect", "bind", "udp"] as const) {
    assert.equal(rules.evaluate(subject({ command, address: ip("127.0.0.1") })).allow, false);
    assert.equal(rules.evaluate(subject({ command })).allow, true);
  }
});

Deno.test("AccessRules.evaluate() denies when no rule matches", () => {
  assert.deepEqual(new AccessRules([]).evaluate(subject()), { allow: false, rule: -1 });
  const rules = new AccessRules([{ action: "allow", ports: [{ from: 80, to: 80 }] }]);
  assert.deepEqual(rules.evaluate(subject({ port: 443 })), { allow: false, rule: -1 });
});

Deno.test("AccessRules.evaluate() lets the first matching rule win", () => {
  const rules = new AccessRules([
    { action: "deny", ports: [{ from: 25, to: 25 }] },
    { action: "allow", from: [parseCidr("198.51.100.0/24")] },
    { action: "deny" },
    { action: "allow" },
  ]);
  assert.deepEqual(rules.evaluate(subject({ port: 25 })), { allow: false, rule: 0 });
  assert.deepEqual(rules.evaluate(subject({ port: 80 })), { allow: true, rule: 1 });
  assert.deepEqual(rules.evaluate(subject({ client: ip("192.0.2.1") })), { allow: false, rule: 2 });
});

Deno.test("AccessRules.evaluate() matches a rule without matchers against everything", () => {
  const rules = new AccessRules([{ action: "allow" }]);
  assert.deepEqual(rules.evaluate(subject()), { allow: true, rule: 0 });
  assert.deepEqual(rules.evaluate(subject({ address: ip("2001:db8::1") })), {
    allow: true,
    rule: 0,
  });
  // ... except the gateway host, which an allow rule opens only by naming it.
  assert.deepEqual(rules.evaluate(subject({ address: ip("127.0.0.1") })), {
    allow: false,
    rule: -1,
  });
});

Deno.test("AccessRules.evaluate() matches `from` by client CIDR, either family", () => {
  const rules = new AccessRules([
    { action: "allow", from: [parseCidr("10.0.0.0/8"), parseCidr("2001:db8::/32")] },
  ]);
  assert.equal(rules.evaluate(subject({ client: ip("10.1.2.3") })).allow, true);
  assert.equal(rules.evaluate(subject({ client: ip("2001:db8::5") })).allow, true);
  assert.equal(rules.evaluate(subject({ client: ip("11.0.0.1") })).allow, false);
  assert.equal(rules.evaluate(subject({ client: ip("2001:db9::5") })).allow, false);
  // One form: a mapped client address is the IPv4 address it stands for.
  assert.equal(rules.evaluate(subject({ client: ip("::ffff:10.1.2.3") })).allow, true);
  assert.equal(rules.evaluate(subject({ client: ip("::ffff:11.1.2.3") })).allow, false);
});

Deno.test("AccessRules.evaluate() matches `users` only for an authenticated listed user", () => {
  const rules = new AccessRules([{ action: "allow", users: ["alice", "bob"] }]);
  assert.equal(rules.evaluate(subject({ user: "alice" })).allow, true);
  assert.equal(rules.evaluate(subject({ user: "bob" })).allow, true);
  assert.equal(rules.evaluate(subject({ user: "Alice" })).allow, false);
  assert.equal(rules.evaluate(subject({ user: "carol" })).allow, false);
  assert.equal(rules.evaluate(subject()).allow, false);
});

Deno.test("AccessRules.evaluate() matches `commands`", () => {
  const rules = new AccessRules([{ action: "allow", commands: ["connect", "udp"] }]);
  assert.equal(rules.evaluate(subject({ command: "connect" })).allow, true);
  assert.equal(rules.evaluate(subject({ command: "udp" })).allow, true);
  assert.equal(rules.evaluate(subject({ command: "bind" })).allow, false);
});

Deno.test("AccessRules.evaluate() matches `ports` as inclusive ranges", () => {
  const rules = new AccessRules([
    { action: "allow", ports: [{ from: 80, to: 80 }, { from: 8000, to: 8999 }] },
  ]);
  for (const port of [80, 8000, 8500, 8999]) {
    assert.equal(rules.evaluate(subject({ port })).allow, true, String(port));
  }
  for (const port of [0, 79, 81, 7999, 9000, 65535]) {
    assert.equal(rules.evaluate(subject({ port })).allow, false, String(port));
  }
});

Deno.test("AccessRules.evaluate() matches `to` CIDRs against the address used", () => {
  const rules = new AccessRules([
    { action: "allow", to: [{ kind: "cidr", cidr: parseCidr("203.0.113.0/24") }] },
  ]);
  assert.equal(rules.evaluate(subject({ address: ip("203.0.113.200") })).allow, true);
  assert.equal(rules.evaluate(subject({ address: ip("203.0.114.1") })).allow, false);
  // A resolved name is judged by its address.
  assert.equal(
    rules.evaluate(subject({ name: "example.com", address: ip("203.0.113.1") })).allow,
    true,
  );
  // No address yet: a CIDR cannot match.
  const unresolved: RuleSubject = {
    client: REMOTE,
    clientIsLocal: false,
    command: "connect",
    name: "example.com",
    port: 443,
  };
  assert.equal(rules.evaluate(unresolved).allow, false);
});

Deno.test("AccessRules.evaluate() matches `to` exact names only exactly", () => {
  const rules = new AccessRules([{ action: "allow", to: [{ kind: "name", name: "example.com" }] }]);
  assert.equal(rules.evaluate(subject({ name: "example.com" })).allow, true);
  assert.equal(rules.evaluate(subject({ name: "a.example.com" })).allow, false);
  assert.equal(rules.evaluate(subject({ name: "example.com.au" })).allow, false);
  assert.equal(rules.evaluate(subject({ name: "xexample.com" })).allow, false);
  assert.equal(rules.evaluate(subject()).allow, false);
});

Deno.test("AccessRules.evaluate() matches `*.example.com` on subdomains only", () => {
  const rules = new AccessRules([
    { action: "allow", to: [{ kind: "suffix", suffix: "example.com" }] },
  ]);
  assert.equal(rules.evaluate(subject({ name: "a.example.com" })).allow, true);
  assert.equal(rules.evaluate(subject({ name: "a.b.example.com" })).allow, true);
  assert.equal(rules.evaluate(subject({ name: "example.com" })).allow, false);
  assert.equal(rules.evaluate(subject({ name: "badexample.com" })).allow, false);
  assert.equal(rules.evaluate(subject({ name: "example.com.evil" })).allow, false);
  assert.equal(rules.evaluate(subject({ name: ".example.com.x" })).allow, false);
  // IP literal requests carry no name.
  assert.equal(rules.evaluate(subject()).allow, false);
});

Deno.test("AccessRules.evaluate() matches any one of several `to` patterns", () => {
  const rules = new AccessRules([{
    action: "deny",
    to: [
      { kind: "name", name: "blocked.test" },
      { kind: "suffix", suffix: "ads.test" },
      { kind: "cidr", cidr: parseCidr("192.0.2.0/24") },
    ],
  }, { action: "allow" }]);
  assert.deepEqual(rules.evaluate(subject({ name: "blocked.test" })), { allow: false, rule: 0 });
  assert.deepEqual(rules.evaluate(subject({ name: "x.ads.test" })), { allow: false, rule: 0 });
  assert.deepEqual(rules.evaluate(subject({ address: ip("192.0.2.9") })), {
    allow: false,
    rule: 0,
  });
  assert.deepEqual(rules.evaluate(subject({ name: "fine.test" })), { allow: true, rule: 1 });
});

Deno.test("AccessRules.evaluate() requires every matcher of a rule to match", () => {
  const rule: RuleConfig = {
    action: "allow",
    from: [parseCidr("10.0.0.0/8")],
    users: ["alice"],
    commands: ["connect"],
    ports: [{ from: 443, to: 443 }],
    to: [{ kind: "suffix", suffix: "example.com" }],
  };
  const rules = new AccessRules([rule]);
  const ok: RuleSubject = {
    client: ip("10.0.0.1"),
    clientIsLocal: false,
    user: "alice",
    command: "connect",
    name: "www.example.com",
    address: ip("203.0.113.1"),
    port: 443,
  };
  assert.deepEqual(rules.evaluate(ok), { allow: true, rule: 0 });
  const misses: Partial<RuleSubject>[] = [
    { client: ip("11.0.0.1") },
    { user: "bob" },
    { command: "bind" },
    { port: 80 },
    { name: "www.example.org" },
  ];
  for (const miss of misses) {
    assert.deepEqual(
      rules.evaluate({ ...ok, ...miss }),
      { allow: false, rule: -1 },
      JSON.stringify(miss),
    );
  }
});

Deno.test("AccessRules with rules keeps the gateway host closed to remote clients", () => {
  // Configured rules no longer remove the host-local protection.
  const cidr = (text: string) => ({ kind: "cidr" as const, cidr: parseCidr(text) });
  for (
    const config of [
      [{ action: "allow" as const }],
      [{ action: "allow" as const, from: [parseCidr("198.51.100.0/24")] }],
      [{ action: "allow" as const, to: [cidr("0.0.0.0/0"), cidr("::/0")] }],
      [{ action: "allow" as const, to: [cidr("0.0.0.0/1")] }],
      [{ action: "allow" as const, ports: [{ from: 9090, to: 9090 }] }],
    ]
  ) {
    const rules = new AccessRules(config);
    for (
      const text of [
        "127.0.0.1",
        "127.0.0.53",
        "0.0.0.0",
        "0.1.2.3",
        "::1",
        "::",
        "::ffff:127.0.0.1",
        "::ffff:0.0.0.0",
      ]
    ) {
      assert.deepEqual(
        rules.evaluate(subject({ address: ip(text), port: 9090 })),
        { allow: false, rule: -1 },
        `${JSON.stringify(config)} ${text}`,
      );
    }
    const other = subject({ address: ip("10.0.0.1"), port: 9090 });
    assert.equal(rules.evaluate(other).allow, true, "other destinations");
  }
});

Deno.test("AccessRules opens the gateway host only to an allow rule that names it", () => {
  const cidr = (text: string) => ({ kind: "cidr" as const, cidr: parseCidr(text) });
  const opens = (to: DestinationPattern[], address: string, name?: string) =>
    new AccessRules([{ action: "allow", to }]).evaluate(
      subject({ address: ip(address), ...(name !== undefined ? { name } : {}) }),
    ).allow;
  assert.equal(opens([cidr("127.0.0.0/8")], "127.0.0.1"), true);
  assert.equal(opens([cidr("127.0.0.1/32")], "127.0.0.1"), true);
  assert.equal(opens([cidr("127.0.0.1/32")], "::ffff:127.0.0.1"), true, "one form");
  assert.equal(opens([cidr("::ffff:127.0.0.0/104")], "127.0.0.9"), true, "mapped CIDR");
  assert.equal(opens([cidr("127.0.0.2/32")], "127.0.0.1"), false);
  assert.equal(opens([cidr("::1/128")], "::1"), true);
  assert.equal(opens([cidr("::1/128")], "127.0.0.1"), false);
  assert.equal(opens([cidr("0.0.0.0/8")], "0.0.0.0"), true);
  // Wide prefixes are not explicit.
  assert.equal(opens([cidr("0.0.0.0/0")], "127.0.0.1"), false);
  assert.equal(opens([cidr("::/0")], "::1"), false);
  assert.equal(opens([cidr("126.0.0.0/7")], "127.0.0.1"), false);
  // Names: only localhost (RFC 6761), asked for by that name.
  assert.equal(opens([{ kind: "name", name: "localhost" }], "127.0.0.1", "localhost"), true);
  assert.equal(opens([{ kind: "suffix", suffix: "localhost" }], "::1", "app.localhost"), true);
  assert.equal(opens([{ kind: "name", name: "evil.example" }], "127.0.0.1", "evil.example"), false);
  assert.equal(opens([{ kind: "suffix", suffix: "example" }], "127.0.0.1", "evil.example"), false);
  assert.equal(opens([{ kind: "name", name: "localhost" }], "127.0.0.1", "evil.example"), false);
});

Deno.test("AccessRules skips an allow rule that does not name the host, and goes on", () => {
  const rules = new AccessRules([
    { action: "allow", from: [parseCidr("198.51.100.0/24")] },
    { action: "allow", to: [{ kind: "cidr", cidr: parseCidr("127.0.0.1/32") }] },
  ]);
  assert.deepEqual(rules.evaluate(subject({ address: ip("127.0.0.1") })), { allow: true, rule: 1 });
  assert.deepEqual(rules.evaluate(subject()), { allow: true, rule: 0 });
  // Deny rules still match the host.
  const denied = new AccessRules([{ action: "deny" }, {
    action: "allow",
    to: [{ kind: "cidr", cidr: parseCidr("127.0.0.0/8") }],
  }]);
  assert.deepEqual(denied.evaluate(subject({ address: ip("127.0.0.1") })), {
    allow: false,
    rule: 0,
  });
});

Deno.test("AccessRules lets a loopback client reach loopback under rules as before", () => {
  const rules = new AccessRules([{ action: "allow" }]);
  assert.equal(
    rules.evaluate(subject({ client: ip("127.0.0.1"), clientIsLocal: true, address: ip("::1") }))
      .allow,
    true,
  );
});

const HOST: HostView = {
  isHostLocal: (address) => isHostLocal(address) || sameIp(unmapIpv4(address), ip("192.0.2.1")),
  isOwnListener: (address, port) =>
    port === 1080 && (isHostLocal(address) || sameIp(unmapIpv4(address), ip("192.0.2.1"))),
};

Deno.test("AccessRules treats the host's own addresses as the gateway host", () => {
  const cidr = (text: string) => ({ kind: "cidr" as const, cidr: parseCidr(text) });
  for (const config of [null, [{ action: "allow" as const, to: [cidr("192.0.2.0/24")] }]]) {
    const rules = new AccessRules(config, HOST);
    assert.equal(rules.evaluate(subject({ address: ip("192.0.2.1"), port: 9090 })).allow, false);
    assert.equal(
      rules.evaluate(subject({ address: ip("::ffff:192.0.2.1"), port: 9090 })).allow,
      false,
    );
    assert.equal(rules.evaluate(subject({ address: ip("192.0.2.2"), port: 9090 })).allow, true);
  }
  // An exact own address opens it.
  const exact = new AccessRules([{ action: "allow", to: [cidr("192.0.2.1/32")] }], HOST);
  assert.equal(exact.evaluate(subject({ address: ip("192.0.2.1"), port: 9090 })).allow, true);
});

Deno.test("AccessRules refuses a CONNECT to the gateway's own listener, even from loopback", () => {
  const cidr = (text: string) => ({ kind: "cidr" as const, cidr: parseCidr(text) });
  const local = { client: ip("127.0.0.1"), clientIsLocal: true };
  for (const config of [null, [{ action: "allow" as const }]]) {
    const rules = new AccessRules(config, HOST);
    for (const text of ["127.0.0.1", "192.0.2.1", "0.0.0.0", "::ffff:192.0.2.1", "::1"]) {
      assert.equal(
        rules.evaluate(subject({ ...local, address: ip(text), port: 1080 })).allow,
        false,
        text,
      );
      assert.equal(rules.evaluate(subject({ address: ip(text), port: 1080 })).allow, false, text);
    }
    // Other ports of loopback stay open to a loopback client.
    assert.equal(
      rules.evaluate(subject({ ...local, address: ip("127.0.0.1"), port: 9090 })).allow,
      true,
    );
    // UDP and BIND do not reach the TCP listener.
    assert.equal(
      rules.evaluate(subject({ ...local, command: "udp", address: ip("127.0.0.1"), port: 1080 }))
        .allow,
      true,
    );
  }
  // Naming the address is not enough: the port must be named too.
  const address = new AccessRules([{ action: "allow", to: [cidr("127.0.0.0/8")] }], HOST);
  assert.equal(address.evaluate(subject({ address: ip("127.0.0.1"), port: 1080 })).allow, false);
  assert.equal(address.evaluate(subject({ address: ip("127.0.0.1"), port: 9090 })).allow, true);
  const both = new AccessRules([{
    action: "allow",
    to: [cidr("127.0.0.1/32")],
    ports: [{ from: 1080, to: 1080 }],
  }], HOST);
  assert.equal(both.evaluate(subject({ address: ip("127.0.0.1"), port: 1080 })).allow, true);
});

Deno.test("AccessRules: `to: [*]` matches every destination, as an absent `to` does", () => {
  const rules = new AccessRules([
    { action: "deny", to: [{ kind: "any" }], commands: ["udp"] },
    { action: "allow", to: [{ kind: "any" }] },
  ]);
  for (
    const s of [
      subject(),
      subject({ address: ip("2001:db8::1") }),
      subject({ name: "www.example", address: ip("192.0.2.1") }),
      { client: REMOTE, clientIsLocal: false, command: "connect", name: "www.example", port: 80 },
    ] satisfies RuleSubject[]
  ) {
    assert.deepEqual(rules.evaluate(s), { allow: true, rule: 1 });
    assert.deepEqual(rules.evaluate({ ...s, command: "udp" }), { allow: false, rule: 0 });
  }
});

Deno.test("AccessRules: `to: [*]` does not name the gateway host, so it opens no host-local destination", () => {
  const rules = new AccessRules([{ action: "allow", to: [{ kind: "any" }] }], HOST);
  for (const address of ["127.0.0.1", "0.0.0.0", "::1", "::ffff:127.0.0.1"]) {
    assert.deepEqual(rules.evaluate(subject({ address: ip(address) })), {
      allow: false,
      rule: -1,
    });
  }
  assert.equal(rules.evaluate(subject({ address: ip("198.51.100.2") })).allow, true);
});

Deno.test("AccessRules refuses multicast and broadcast unless an allow rule names them", () => {
  const cidr = (text: string) => ({ kind: "cidr" as const, cidr: parseCidr(text) });
  const groups = [
    "224.0.0.251",
    "239.255.255.250",
    "255.255.255.255",
    "::ffff:224.0.0.1",
    "ff02::1",
  ];
  for (const command of ["udp", "connect", "bind"] as const) {
    for (const text of groups) {
      const udp = (rules: RuleConfig[] | null, local = false) =>
        new AccessRules(rules).evaluate(
          subject({ command, address: ip(text), port: 5353, clientIsLocal: local }),
        ).allow;
      assert.equal(udp(null), false, `${command} ${text}: defaults`);
      assert.equal(udp(null, true), false, `${command} ${text}: defaults, loopback client`);
      assert.equal(udp([{ action: "allow" }]), false, `${command} ${text}: allow all`);
      assert.equal(
        udp([{ action: "allow", to: [cidr("0.0.0.0/0"), cidr("::/0")] }]),
        false,
        `${command} ${text}: wide CIDRs`,
      );
      assert.equal(
        udp([{ action: "allow", to: [{ kind: "name", name: "mdns.example" }] }]),
        false,
        `${command} ${text}: a name`,
      );
    }
  }
  const opens = (to: string, address: string) =>
    new AccessRules([{ action: "allow", to: [cidr(to)] }]).evaluate(
      subject({ command: "udp", address: ip(address), port: 5353 }),
    ).allow;
  assert.equal(opens("224.0.0.251/32", "224.0.0.251"), true);
  assert.equal(opens("224.0.0.0/4", "239.1.2.3"), true);
  assert.equal(opens("224.0.0.0/4", "::ffff:239.1.2.3"), true, "one form");
  assert.equal(opens("255.255.255.255/32", "255.255.255.255"), true);
  assert.equal(opens("ff02::/16", "ff02::fb"), true);
  assert.equal(opens("224.0.0.0/4", "255.255.255.255"), false);
  assert.equal(opens("224.0.0.0/3", "224.0.0.1"), false, "wider than the ranges");
  // Ordinary destinations are as before.
  assert.equal(new AccessRules(null).evaluate(subject({ command: "udp" })).allow, true);
});
