import assert from "node:assert/strict";
import { formatEndpoint } from "../../net/address.ts";
import { formatCidr } from "../../net/cidr.ts";
import { ConfigError } from "./errors.ts";
import {
  configFromFlags,
  DEFAULT_CONFIG_YAML,
  formatConfigYaml,
  loadConfigFile,
  normalizeConfig,
  parseConfig,
} from "./load.ts";
import { autoWorkerCount } from "./schema.ts";
import type { Config } from "./types.ts";

/** DESIGN.md's short form, verbatim. */
const SHORT_FORM = `listen: ["192.0.2.10:1080", "[2001:db8::10]:1080"]
auth:
  users:
    - { name: alice, password: change-me }     # present => RFC 1929 required
resolver:
  prefer: happy-eyeballs                       # or ipv6 | ipv4 | ipv6-only | ipv4-only
  hosts: { intranet.example: ["192.0.2.20", "2001:db8::20"] }
rules:                                         # absent => allow all but the safe defaults
  - { action: allow, from: ["192.0.2.0/24", "2001:db8::/32"] }
  - { action: deny, to: ["169.254.0.0/16"] }
routes:                                        # first match wins; no match => direct
  - to: ["*.v6.example", "2001:db8:ff::/48"]
    chain:
      - "socks5://relay:secret@198.51.100.20:1080"                        # a hop
      - ["socks5://[2001:db8:200::20]:1080", "socks5://198.51.100.30:1080"]  # a hop with alternatives
translators:
  - { type: ftp, ports: [21] }
`;

const HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A".repeat(43) + "=";

function assertConfigError(yaml: string, path: string, reason?: RegExp): ConfigError {
  let caught: unknown;
  try {
    parseConfig(yaml);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ConfigError, `expected a ConfigError for ${JSON.stringify(yaml)}`);
  assert.equal(caught.path, path, caught.message);
  assert.equal(caught.message, path === "" ? caught.reason : `${path}: ${caught.reason}`);
  if (reason) assert.match(caught.reason, reason);
  return caught;
}

function listenOf(config: Config): string[] {
  return config.listen.map((entry) => formatEndpoint(entry.endpoint));
}

Deno.test("parseConfig() accepts DESIGN.md's short form", () => {
  const config = parseConfig(SHORT_FORM);
  assert.deepEqual(listenOf(config), ["192.0.2.10:1080", "[2001:db8::10]:1080"]);
  assert.deepEqual(config.auth.users, [{ name: "alice", password: "change-me" }]);
  assert.equal(config.resolver.prefer, "happy-eyeballs");
  assert.deepEqual({ ...config.resolver.hosts }, {
    "intranet.example": ["192.0.2.20", "2001:db8::20"],
  });
  const rules = config.rules;
  assert.ok(rules);
  assert.equal(rules.length, 2);
  assert.equal(rules[0]!.action, "allow");
  assert.deepEqual(rules[0]!.from!.map(formatCidr), ["192.0.2.0/24", "2001:db8::/32"]);
  assert.equal(rules[0]!.to, undefined);
  assert.equal(rules[1]!.action, "deny");
  assert.deepEqual(rules[1]!.to!.map((p) => p.kind === "cidr" && formatCidr(p.cidr)), [
    "169.254.0.0/16",
  ]);
});

Deno.test("parseConfig() gives every default for an empty document", () => {
  for (const text of ["", "# only a comment\n", "null", "~"]) {
    const config = parseConfig(text);
    assert.deepEqual(listenOf(config), ["127.0.0.1:1080", "[::1]:1080"]);
    assert.deepEqual(config.auth, { users: [] });
    assert.equal(config.resolver.prefer, "happy-eyeballs");
    assert.deepEqual({ ...config.resolver.hosts }, {});
    assert.equal(config.resolver.hostsFile, "/etc/hosts");
    assert.deepEqual(config.resolver.servers, []);
    assert.equal(config.resolver.timeoutMs, 5000);
    assert.equal(config.resolver.cacheSize, 10000);
    assert.equal(config.resolver.maxTtlSeconds, 300);
    assert.equal(config.resolver.negativeTtlSeconds, 30);
    assert.equal(config.resolver.standIns, "cross-family");
    assert.equal(config.rules, null);
    assert.deepEqual(config.timeouts, {
      handshakeMs: 10000,
      connectMs: 10000,
      idleMs: 300000,
      drainMs: 10000,
    });
    assert.deepEqual(config.limits, {
      maxConnections: 4096,
      maxConnectionsPerClient: 512,
      authFailuresPerMinute: 10,
      ipv6ClientPrefix: 64,
      perUser: { maxConnections: null, up: null, down: null, quota: null },
    });
    assert.deepEqual(config.log, { level: "info", format: "text" });
  }
});

Deno.test("parseConfig() treats empty sections as their defaults", () => {
  assert.deepEqual(
    parseConfig("auth:\nresolver:\ntimeouts:\nlimits:\nlog:\n"),
    parseConfig(""),
  );
});

Deno.test("DEFAULT_CONFIG_YAML parses to the defaults", () => {
  assert.deepEqual(parseConfig(DEFAULT_CONFIG_YAML), parseConfig(""));
});

Deno.test("parseConfig() reads every key", () => {
  const config = parseConfig(`
listen: "[::]:1081"
auth:
  users:
    - { name: bob, password_hash: "${HASH}" }
resolver:
  prefer: ipv6-only
  hosts: { "Host.Example.": 192.0.2.1, other: ["2001:DB8:0::1"] }
  hosts_file: /tmp/hosts
  servers: ["192.0.2.53", "192.0.2.54:5353", "[2001:db8::53]:53", "2001:db8::54"]
  timeout: 2.5
  cache_size: 0
  max_ttl: 60
  negative_ttl: 0
rules:
  - action: allow
    from: 10.0.0.0/8
    to: ["*.Example.COM", "host.example.", "2001:db8::/32", "192.0.2.1"]
    ports: [80, "443", "1000-2000"]
    users: bob
    commands: [connect, udp]
  - action: deny
timeouts: { handshake: 1, connect: 2, idle: 3, drain: 0.5 }
limits: { max_connections: 10, max_connections_per_client: 2 }
log: { level: debug, format: json }
`);
  assert.deepEqual(listenOf(config), ["[::]:1081"]);
  assert.deepEqual(config.auth.users, [{ name: "bob", passwordHash: HASH }]);
  assert.deepEqual(config.resolver, {
    prefer: "ipv6-only",
    hosts: Object.assign(Object.create(null), {
      "host.example": ["192.0.2.1"],
      other: ["2001:db8::1"],
    }),
    hostsFile: "/tmp/hosts",
    servers: ["192.0.2.53", "192.0.2.54:5353", "[2001:db8::53]:53", "2001:db8::54"],
    timeoutMs: 2500,
    cacheSize: 0,
    maxTtlSeconds: 60,
    negativeTtlSeconds: 0,
    standIns: "cross-family",
  });
  const [allow, deny] = config.rules!;
  assert.deepEqual(allow!.from!.map(formatCidr), ["10.0.0.0/8"]);
  assert.deepEqual(allow!.to!.map((p) => p.kind === "cidr" ? formatCidr(p.cidr) : p), [
    { kind: "suffix", suffix: "example.com" },
    { kind: "name", name: "host.example" },
    "2001:db8::/32",
    "192.0.2.1/32",
  ]);
  assert.deepEqual(allow!.ports, [{ from: 80, to: 80 }, { from: 443, to: 443 }, {
    from: 1000,
    to: 2000,
  }]);
  assert.deepEqual(allow!.users, ["bob"]);
  assert.deepEqual(allow!.commands, ["connect", "udp"]);
  assert.deepEqual(deny, { action: "deny" });
  assert.deepEqual(config.timeouts, {
    handshakeMs: 1000,
    connectMs: 2000,
    idleMs: 3000,
    drainMs: 500,
  });
  assert.deepEqual(config.limits, {
    maxConnections: 10,
    maxConnectionsPerClient: 2,
    authFailuresPerMinute: 10,
    ipv6ClientPrefix: 64,
    perUser: { maxConnections: null, up: null, down: null, quota: null },
  });
  assert.deepEqual(config.log, { level: "debug", format: "json" });
});

Deno.test("parseConfig() errors name their path", () => {
  assertConfigError("colour: blue", "colour", /^unknown key$/);
  assertConfigError(
    "auth: { users: [{ name: a, password: b, nick: c }] }",
    "auth.users[0].nick",
    /unknown key/,
  );
  assertConfigError(
    "rules: [{ action: allow, from: [10.0.0.0/8, 10.0.0.0/33] }]",
    "rules[0].from[1]",
    /0\.\.32/,
  );
  assertConfigError(
    "rules: [{ action: allow, from: [10.0.0.0/8, example.com] }]",
    "rules[0].from[1]",
  );
  assertConfigError("resolver: { prefer: fastest }", "resolver.prefer", /one of happy-eyeballs/);
  assertConfigError('listen: ["192.0.2.1:65536"]', "listen[0]", /0\.\.65535/);
  assertConfigError('listen: ["192.0.2.1"]', "listen[0]");
  assertConfigError('listen: ["127.0.0.1:1080", "2001:db8::10:1080"]', "listen[1]", /brackets/);
  assertConfigError('listen: ["example.com:1080"]', "listen[0]", /not an IPv4 address/);
  assertConfigError("listen: []", "listen", /at least one/);
  assertConfigError('listen: ["[::1]:1080", "[0::1]:1080"]', "listen[1]", /duplicate/);
  assertConfigError(
    "auth: { users: [{ name: a, password: b }, { name: a, password: c }] }",
    "auth.users[1].name",
    /duplicate user name "a"/,
  );
  assertConfigError(
    `auth: { users: [{ name: a, password: b, password_hash: "${HASH}" }] }`,
    "auth.users[0]",
    /exactly one of password and password_hash/,
  );
  assertConfigError("auth: { users: [{ name: a }] }", "auth.users[0]", /password/);
  assertConfigError(
    'auth: { users: [{ name: a, password_hash: "md5$abc" }] }',
    "auth.users[0].password_hash",
    /scrypt\$N\$r\$p/,
  );
  assertConfigError(
    'auth: { users: [{ name: a, password_hash: "scrypt$1000$8$1$AAAA$AAAA" }] }',
    "auth.users[0].password_hash",
    /power of two/,
  );
  assertConfigError(
    `auth: { users: [{ name: a, password: "${"é".repeat(128)}" }] }`,
    "auth.users[0].password",
    /1\.\.255 bytes/,
  );
  assertConfigError(
    "auth: { users: [{ name: a, password: 1234 }] }",
    "auth.users[0].password",
    /string/,
  );
  assertConfigError('routes: [{ to: ["*.v6.example"], chain: [] }]', "routes[0].chain");
  assertConfigError(
    'routes: [{ to: ["*.v6.example"], chain: ["http://198.51.100.20:1080"] }]',
    "routes[0].chain[0]",
    /scheme/,
  );
  assertConfigError(
    'routes: [{ to: ["x.example"], chain: [["socks5://198.51.100.20:1080", "socks5://[2001:db8::1]:99999"]] }]',
    "routes[0].chain[0][1]",
  );
  assertConfigError(
    'routes: [{ to: ["x.example"], chain: [{ any: ["socks5://a.example"], strategy: best }] }]',
    "routes[0].chain[0].strategy",
  );
  assertConfigError('routes: [{ to: ["x.example"], chain: [42] }]', "routes[0].chain[0]");
  assertConfigError(
    'listen: [{ address: "127.0.0.1:1080", proxy_protocol: v3 }]',
    "listen[0].proxy_protocol",
  );
  assertConfigError('listen: [{ address: "127.0.0.1:1080", adress: x }]', "listen[0].adress");
  assertConfigError("translators: [{ type: gopher }]", "translators[0].type");
  assertConfigError("admin: { listen: nowhere }", "admin.listen");
  assertConfigError("rules: []", "rules", /^must not be empty; omit it for the defaults$/);
  assertConfigError("rules: [{ from: 10.0.0.0/8 }]", "rules[0].action", /required/);
  assertConfigError("rules: [{ action: allow, users: bob }]", "rules[0].users[0]", /auth\.users/);
  assertConfigError("rules: [{ action: allow, ports: [80, 5-3] }]", "rules[0].ports[1]");
  assertConfigError("rules: [{ action: allow, to: [a*b] }]", "rules[0].to[0]", /wildcard/);
  assertConfigError("rules: [{ action: allow, commands: [ping] }]", "rules[0].commands[0]");
  assertConfigError(
    'resolver: { hosts: { x: ["::1", "nope"] } }',
    "resolver.hosts.x[1]",
    /not an IP address/,
  );
  assertConfigError(
    'resolver: { hosts: { "A.example": 192.0.2.1, "a.example.": 192.0.2.2 } }',
    'resolver.hosts["a.example."]',
    /same name/,
  );
  assertConfigError('resolver: { servers: ["192.0.2.1:0"] }', "resolver.servers[0]");
  assertConfigError("timeouts: { idle: 0 }", "timeouts.idle", /greater than 0/);
  assertConfigError("timeouts: { idle: 30000000 }", "timeouts.idle", /at most/);
  assertConfigError("limits: { max_connections: 1.5 }", "limits.max_connections", /integer/);
  for (const prefix of ["47", "129", "64.5", '"64"']) {
    assertConfigError(
      `limits: { ipv6_client_prefix: ${prefix} }`,
      "limits.ipv6_client_prefix",
      /48 to 128|number/,
    );
  }
  assert.equal(parseConfig("limits: { ipv6_client_prefix: 56 }").limits.ipv6ClientPrefix, 56);
  assertConfigError("log: { level: verbose }", "log.level");
  assertConfigError("- 1", "", /mapping/);
});

Deno.test("parseConfig() reports a YAML syntax error with its line and column", () => {
  assertConfigError("listen: [1,\n b: }", "", /^Cannot parse YAML: .* at line 2, column \d+$/);
  assertConfigError("log: {}\nlog: {}\n", "", /unique.* at line 2, column 1$/);
});

Deno.test("configFromFlags() uses the default without flags", async () => {
  assert.deepEqual(await configFromFlags({}), parseConfig(""));
});

Deno.test("configFromFlags() lets --listen replace the listen list", async () => {
  const flagged = await configFromFlags({ listen: ["[::]:1080", "0.0.0.0:1081"] });
  assert.deepEqual(listenOf(flagged), ["[::]:1080", "0.0.0.0:1081"]);

  const file = await Deno.makeTempFile({ suffix: ".yaml" });
  try {
    await Deno.writeTextFile(file, SHORT_FORM);
    const fromFile = await configFromFlags({ config: file });
    assert.deepEqual(fromFile, await loadConfigFile(file));
    const both = await configFromFlags({ config: file, listen: ["127.0.0.2:9050"] });
    assert.deepEqual(listenOf(both), ["127.0.0.2:9050"]);
    assert.deepEqual(both.auth, fromFile.auth);
    await assert.rejects(
      configFromFlags({ config: file, listen: ["::1:1080"] }),
      (error: unknown) =>
        error instanceof ConfigError && error.path === "listen[0]" &&
        /brackets.*\(given by --listen\)$/.test(error.reason),
    );
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("parseConfig() reports every problem of a config, each with its path", () => {
  let caught: unknown;
  try {
    parseConfig(`listen: ["192.0.2.10:1080", "192.0.2.10"]
resolver: { prefer: fastest, cache_size: -1 }
colour: blue
rules:
  - { action: allow, from: ["10.0.0.0/33"] }
  - { action: maybe }
`);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ConfigError);
  const paths = caught.problems.map((problem) => problem.path).sort();
  assert.deepEqual(paths, [
    "colour",
    "listen[1]",
    "resolver.cache_size",
    "resolver.prefer",
    "rules[0].from[0]",
    "rules[1].action",
  ]);
  // The first problem is also path/reason; the message has one line per problem.
  assert.deepEqual(caught.problems[0], { path: caught.path, reason: caught.reason });
  assert.deepEqual(
    caught.message.split("\n"),
    caught.problems.map((problem) => `${problem.path}: ${problem.reason}`),
  );
  // A single problem stays a single line.
  assert.equal(assertConfigError("colour: blue", "colour").problems.length, 1);
});

Deno.test("configFromFlags() names the flag on each problem it caused, and reports the file's too", async () => {
  const file = await Deno.makeTempFile({ suffix: ".yaml" });
  try {
    await Deno.writeTextFile(file, 'listen: ["192.0.2.10:1080"]\nlog: { level: loud }\n');
    await assert.rejects(
      configFromFlags({ config: file, listen: ["::1:1080", "127.0.0.1"], workers: "0" }),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        const byPath = new Map(error.problems.map((p) => [p.path, p.reason]));
        assert.deepEqual([...byPath.keys()].sort(), [
          "listen[0]",
          "listen[1]",
          "log.level",
          "workers",
        ]);
        assert.match(byPath.get("listen[0]")!, /\(given by --listen\)$/);
        assert.match(byPath.get("listen[1]")!, /\(given by --listen\)$/);
        assert.match(byPath.get("workers")!, /\(given by --workers\)$/);
        assert.doesNotMatch(byPath.get("log.level")!, /given by/);
        return true;
      },
    );
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("loadConfigFile() reports an unreadable file", async () => {
  await assert.rejects(
    loadConfigFile("/nonexistent/dualgate.yaml"),
    (error: unknown) =>
      error instanceof ConfigError && error.path === "" &&
      error.message === 'Cannot read config file "/nonexistent/dualgate.yaml": no such file',
  );
});

Deno.test("parseConfig() never shows the password of a malformed hop URL in its error", () => {
  const cases: [string, string][] = [
    ['"socks5://relay:s3cret-pw@198.51.100.20:99999"', "routes[0].chain[0]"],
    [
      '["socks5://198.51.100.30:1080", "socks5://relay:s3cret-pw@[2001:db8::1"]',
      "routes[0].chain[0][1]",
    ],
    ['{ any: ["http://relay:s3cret-pw@198.51.100.20:1080"] }', "routes[0].chain[0].any[0]"],
    ['"socks5://relay:s3cret-pw/x@198.51.100.20:1080"', "routes[0].chain[0]"],
    ['"socks5://relay:s3cret-pw@"', "routes[0].chain[0]"],
  ];
  for (const [hop, path] of cases) {
    const error = assertConfigError(`routes: [{ to: ["x.example"], chain: [${hop}] }]`, path);
    assert.ok(!error.message.includes("s3cret"), error.message);
    assert.match(error.message, /relay:<redacted>@/);
  }
});

Deno.test("parseConfig() never shows user info without a ':' in a hop URL error", () => {
  // F6: a lone user, or a password behind an escaped colon, is a secret as much as a password.
  for (
    const hop of [
      '"socks5://relay%3AS3cr3tF@host.example:1080/path"',
      '"socks5://S3cr3tN@host.example:1080/"',
      '"socks5://S3cr3tN@host.example:99999"',
      '"socks5://relay%3AS3cr3tF@"',
    ]
  ) {
    const error = assertConfigError(
      `routes: [{ to: ["x.example"], chain: [${hop}] }]`,
      "routes[0].chain[0]",
    );
    assert.ok(!/S3cr3t/i.test(error.message), error.message);
    assert.match(error.message, /socks5:\/\/<redacted>@/);
  }
});

Deno.test("normalizeConfig() gives the YAML form with secrets redacted", () => {
  const config = parseConfig(
    SHORT_FORM.replace(
      "{ name: alice, password: change-me }",
      `{ name: alice, password: s3cret }\n    - { name: bob, password_hash: "${HASH}" }`,
    ),
  );
  const normal = normalizeConfig(config);
  assert.deepEqual(normal.auth, {
    users: [
      { name: "alice", password: "<redacted>" },
      { name: "bob", password_hash: "scrypt$16384$8$1$<redacted>" },
    ],
  });
  const text = formatConfigYaml(config);
  assert.ok(!text.includes("s3cret"));
  assert.ok(!text.includes("AAAAAAAA"));
  assert.deepEqual(normal.listen, ["192.0.2.10:1080", "[2001:db8::10]:1080"]);
  assert.deepEqual(normal.rules, [
    { action: "allow", from: ["192.0.2.0/24", "2001:db8::/32"] },
    { action: "deny", to: ["169.254.0.0/16"] },
  ]);
});

Deno.test("formatConfigYaml() output parses back to the same config", () => {
  const config = parseConfig(`
listen: ["[::]:1080"]
resolver: { hosts: { a.example: ["::1"] }, servers: ["[2001:db8::53]:53"], timeout: 0.25 }
rules:
  - { action: allow, to: ["*.example.com", "host", "10.0.0.0/8"], ports: [22, "80-81"] }
  - { action: deny, commands: bind }
timeouts: { idle: 60 }
`);
  assert.deepEqual(parseConfig(formatConfigYaml(config)), config);
  assert.equal(normalizeConfig(parseConfig("")).rules, undefined);
  assert.deepEqual(parseConfig(formatConfigYaml(parseConfig(""))), parseConfig(""));
});

Deno.test("parseConfig() reads udp and bind with their defaults", () => {
  const defaults = parseConfig("");
  assert.deepEqual(defaults.udp, {
    publicAddress: {},
    idleMs: 120_000,
    maxDatagram: 65_507,
    rate: 100_000,
    totalRate: 1_000_000,
  });
  assert.deepEqual(defaults.bind, { externalAddress: {}, waitMs: 120_000 });
  const config = parseConfig(`udp:
  public_address: { v4: 203.0.113.5, v6: "2001:db8::5" }
  idle: 30
  max_datagram: 1500
  rate: 100
  total_rate: 500
bind: { external_address: { v6: "2001:db8::6" }, wait: 5 }
`);
  assert.equal(formatEndpoint({ address: config.udp.publicAddress.v4!, port: 0 }), "203.0.113.5:0");
  assert.equal(config.udp.publicAddress.v6?.family, 6);
  assert.equal(config.udp.idleMs, 30_000);
  assert.equal(config.udp.maxDatagram, 1500);
  assert.equal(config.udp.rate, 100);
  assert.equal(config.udp.totalRate, 500);
  assert.equal(config.bind.externalAddress.v4, undefined);
  assert.equal(config.bind.externalAddress.v6?.family, 6);
  assert.equal(config.bind.waitMs, 5000);
  assert.deepEqual(parseConfig(formatConfigYaml(config)), config);
});

Deno.test("parseConfig() refuses bad udp and bind values with their paths", () => {
  assertConfigError(
    "udp: { public_address: { v4: '2001:db8::1' } }",
    "udp.public_address.v4",
    /IPv4/,
  );
  assertConfigError("udp: { public_address: { v6: nowhere } }", "udp.public_address.v6");
  assertConfigError("udp: { public_address: { v5: 192.0.2.1 } }", "udp.public_address.v5");
  assertConfigError("udp: { max_datagram: 70000 }", "udp.max_datagram");
  assertConfigError("udp: { rate: 0 }", "udp.rate");
  assertConfigError("udp: { total_rate: -1 }", "udp.total_rate");
  assertConfigError("bind: { wait: 0 }", "bind.wait");
  assertConfigError("bind: { external_address: { v6: 192.0.2.1 } }", "bind.external_address.v6");
});

Deno.test("parseConfig() reads DESIGN.md's routes, translators and the listener/admin forms", () => {
  const config = parseConfig(`listen:
  - "127.0.0.1:1080"
  - { address: "[::1]:1081", proxy_protocol: v2 }
routes:                                         # first match wins; no match => direct
  - to: ["*.v6.example", "2001:db8:ff::/48"]
    chain:
      - "socks5://relay:secret@198.51.100.20:1080"                        # a hop
      - ["socks5://[2001:db8:200::20]:1080", "socks5://198.51.100.30:1080"]  # a hop with alternatives
  - to: ["db.example"]
    ports: [5432, "6000-6010"]
    chain: [{ any: ["socks5://g1.example", "socks5://g2.example:1081"], strategy: round-robin, max_fails: 2, fail_timeout: 5 }]
translators:
  - { type: ftp, ports: [21] }
admin:
`);
  assert.equal(config.listen[0]!.proxyProtocol, undefined);
  assert.equal(config.listen[1]!.proxyProtocol, "v2");
  assert.equal(config.routes.length, 2);
  const [first, second] = config.routes;
  assert.equal(first!.chain.length, 2);
  assert.deepEqual(first!.chain[0]!.alternatives[0], {
    host: "198.51.100.20",
    port: 1080,
    label: "socks5://198.51.100.20:1080",
    credentials: { username: "relay", password: "secret" },
  });
  assert.deepEqual(first!.chain[1]!.alternatives.map((a) => a.label), [
    "socks5://[2001:db8:200::20]:1080",
    "socks5://198.51.100.30:1080",
  ]);
  assert.equal(first!.chain[1]!.strategy, "failover");
  assert.deepEqual(second!.ports, [{ from: 5432, to: 5432 }, { from: 6000, to: 6010 }]);
  assert.equal(second!.chain[0]!.strategy, "round-robin");
  assert.equal(second!.chain[0]!.maxFails, 2);
  assert.equal(second!.chain[0]!.failTimeoutMs, 5000);
  assert.equal(second!.chain[0]!.alternatives[0]!.port, 1080);
  assert.equal(config.translators[0]!.type, "ftp");
  assert.deepEqual(config.translators[0]!.ports, [21]);
  assert.equal(formatEndpoint(config.admin!.endpoint), "127.0.0.1:9090");
  // The normalised form parses back to the same routes, with the hop password redacted.
  const again = parseConfig(formatConfigYaml(config).replace("<redacted>", "secret"));
  assert.deepEqual(again.routes, config.routes);
  assert.deepEqual(again.listen, config.listen);
  assert.doesNotMatch(formatConfigYaml(config), /secret/);
});

Deno.test("parseConfig() reads workers, 1 by default", () => {
  assert.equal(parseConfig("").workers, 1);
  assert.equal(parseConfig("workers: 4").workers, 4);
  assertConfigError("workers: 0", "workers", /positive integer/);
  assertConfigError("workers: many", "workers", /positive integer/);
});

Deno.test("workers: auto is the cores minus one, at least one", async () => {
  assert.deepEqual([1, 2, 3, 8, 64].map((cores) => autoWorkerCount(cores)), [1, 1, 2, 7, 63]);
  assert.equal(
    parseConfig("workers: auto").workers,
    autoWorkerCount(navigator.hardwareConcurrency),
  );
  assert.equal((await configFromFlags({ workers: "auto" })).workers, autoWorkerCount());
  assertConfigError("workers: 1.5", "workers", /positive integer/);
  assertConfigError('workers: "2"', "workers", /positive integer or auto/);
  assert.equal(parseConfig(formatConfigYaml(parseConfig("workers: 3"))).workers, 3);
});

Deno.test("parseConfig() refuses translators with workers above 1", () => {
  const translators = "translators: [{ type: ftp, ports: [21] }]\n";
  assert.equal(parseConfig(translators + "workers: 1").workers, 1);
  const error = assertConfigError(translators + "workers: 2", "workers", /translators need/);
  assert.equal(
    error.message,
    "workers: translators need workers: 1 — the FTP data-connection table lives in one isolate",
  );
});

Deno.test("parseConfig() refuses a route whose first hop is one of the listeners", () => {
  const route = (listen: string, hop: string) =>
    `listen: ["${listen}"]\nroutes: [{ to: ["*.example"], chain: ["${hop}", "socks5://198.51.100.9:1080"] }]`;
  const error = assertConfigError(
    route("127.0.0.1:1080", "socks5://127.0.0.1:1080"),
    "routes[0].chain[0]",
    /own listener/,
  );
  assert.equal(
    error.message,
    "routes[0].chain[0]: socks5://127.0.0.1:1080 is this gateway's own listener (listen[0]): " +
      "a chain through itself would loop",
  );
  // A wildcard listener takes loopback and "this host"; any listener takes 0.0.0.0 and ::.
  assertConfigError(route("[::]:1080", "socks5://127.0.0.2:1080"), "routes[0].chain[0]");
  assertConfigError(route("0.0.0.0:1080", "socks5://[::1]:1080"), "routes[0].chain[0]");
  assertConfigError(route("192.0.2.10:1080", "socks5://0.0.0.0:1080"), "routes[0].chain[0]");
  assertConfigError(
    route("192.0.2.10:1080", "socks5://[::ffff:192.0.2.10]:1080"),
    "routes[0].chain[0]",
  );
  // Other ports, other addresses, later hops (dialed by the hop before them) and names pass.
  for (
    const yaml of [
      route("127.0.0.1:1080", "socks5://127.0.0.1:1081"),
      route("192.0.2.10:1080", "socks5://192.0.2.11:1080"),
      route("127.0.0.1:1080", "socks5://gw.example:1080"),
      `listen: ["127.0.0.1:1080"]\nroutes: [{ to: ["*.example"], chain: ["socks5://198.51.100.9:1080", "socks5://127.0.0.1:1080"] }]`,
    ]
  ) {
    assert.equal(parseConfig(yaml).routes.length, 1, yaml);
  }
});

Deno.test("parseConfig() reads IPv4-mapped rule prefixes as IPv4", () => {
  const config = parseConfig(
    'rules: [{ action: deny, to: ["::ffff:10.0.0.0/104"], from: ["::ffff:192.0.2.0/120"] }]',
  );
  assert.deepEqual(normalizeConfig(config).rules, [
    { action: "deny", from: ["192.0.2.0/24"], to: ["10.0.0.0/8"] },
  ]);
});

Deno.test("configFromFlags() lets --workers replace workers", async () => {
  assert.equal((await configFromFlags({ workers: "3" })).workers, 3);
  assert.equal((await configFromFlags({ workers: "2", listen: ["[::1]:0"] })).workers, 2);
  await assert.rejects(
    configFromFlags({ workers: "0" }),
    (error: unknown) =>
      error instanceof ConfigError && error.path === "workers" &&
      /positive integer \(given by --workers\)$/.test(error.reason),
  );
  await assert.rejects(
    configFromFlags({ workers: "two" }),
    (error: unknown) => error instanceof ConfigError && /given by --workers/.test(error.reason),
  );
});

Deno.test("parseConfig() reads `*` as every destination, and a route without `to` as `*`", () => {
  const config = parseConfig(`routes:
  - to: ["*"]
    chain: ["socks5://198.51.100.20:1080"]
  - chain: ["socks5://198.51.100.21:1080"]
rules:
  - { action: allow, to: ["*", "*.example"] }
`);
  assert.deepEqual(config.routes.map((route) => route.to), [[{ kind: "any" }], [{ kind: "any" }]]);
  assert.deepEqual(config.rules![0]!.to, [{ kind: "any" }, { kind: "suffix", suffix: "example" }]);
  // The normalised form spells it back.
  const again = parseConfig(formatConfigYaml(config));
  assert.deepEqual(again.routes, config.routes);
  for (const bad of ["**", "*x.example", "a.*.example", "*."]) {
    assertConfigError(
      `routes: [{ to: ["${bad}"], chain: ["socks5://198.51.100.20:1080"] }]`,
      "routes[0].to[0]",
    );
  }
  assertConfigError(
    'routes: [{ to: [], chain: ["socks5://198.51.100.20:1080"] }]',
    "routes[0].to",
    /omit it/,
  );
});

Deno.test("parseConfig() reads listen[].trusted_proxies, and normalizeConfig() writes it back", () => {
  const config = parseConfig(`listen:
  - { address: "192.0.2.10:1080", proxy_protocol: v2, trusted_proxies: ["192.0.2.0/24", "2001:db8::5"] }
  - { address: "127.0.0.1:1081", proxy_protocol: v1 }
`);
  assert.deepEqual(config.listen[0]!.trustedProxies?.map(formatCidr), [
    "192.0.2.0/24",
    "2001:db8::5/128",
  ]);
  assert.equal(config.listen[1]!.trustedProxies, undefined);
  const again = parseConfig(formatConfigYaml(config));
  assert.deepEqual(again.listen, config.listen);
});

Deno.test("parseConfig() reads listen[].protocol, and normalizeConfig() writes it back", () => {
  const config = parseConfig(`listen:
  - { address: "127.0.0.1:3128", protocol: http }
  - { address: "127.0.0.1:1080", protocol: mixed }
  - { address: "127.0.0.1:1081", protocol: socks5 }
`);
  assert.deepEqual(config.listen.map((l) => l.protocol), ["http", "mixed", undefined]);
  assert.deepEqual(parseConfig(formatConfigYaml(config)).listen, config.listen);
  assertConfigError(
    'listen: [{ address: "127.0.0.1:1080", protocol: https }]',
    "listen[0].protocol",
  );
  assertConfigError(
    'listen: [{ address: "127.0.0.1:1080", protocol: http, proxy_protocol: v2 }]',
    "listen[0].proxy_protocol",
    /only in front of SOCKS/,
  );
});

Deno.test("parseConfig() names the path of a bad listen[].trusted_proxies", () => {
  assertConfigError(
    'listen: [{ address: "127.0.0.1:1080", proxy_protocol: v2, trusted_proxies: ["10.0.0.0/8", "10.0.0.0/33"] }]',
    "listen[0].trusted_proxies[1]",
    /prefix length/,
  );
  assertConfigError(
    'listen: ["127.0.0.1:1", { address: "127.0.0.1:1080", proxy_protocol: v2, trusted_proxies: [nope] }]',
    "listen[1].trusted_proxies[0]",
  );
  assertConfigError(
    'listen: [{ address: "127.0.0.1:1080", proxy_protocol: v2, trusted_proxies: [] }]',
    "listen[0].trusted_proxies",
    /at least one/,
  );
  assertConfigError(
    'listen: [{ address: "127.0.0.1:1080", trusted_proxies: ["192.0.2.0/24"] }]',
    "listen[0].trusted_proxies",
    /needs proxy_protocol/,
  );
  assertConfigError(
    'listen: [{ address: "127.0.0.1:1080", proxy_protocol: v2, trusted_proxies: { a: 1 } }]',
    "listen[0].trusted_proxies[0]",
  );
});

Deno.test("parseConfig() resolver.stand_ins: validated, and never by default with workers", () => {
  assertConfigError(
    "resolver: { stand_ins: always }",
    "resolver.stand_ins",
    /cross-family.*never/,
  );
  assertConfigError(
    "workers: 2\nresolver: { stand_ins: cross-family }",
    "resolver.stand_ins",
    /needs workers: 1/,
  );
  assert.equal(parseConfig("workers: 2").resolver.standIns, "never");
  assert.equal(
    parseConfig("workers: 2\nresolver: { stand_ins: never }").resolver.standIns,
    "never",
  );
  assert.equal(parseConfig("resolver: { stand_ins: never }").resolver.standIns, "never");
});

Deno.test("parseConfig() reads a hop's proxy_protocol option, path-qualified errors", () => {
  const config = parseConfig(`routes:
  - { to: ["a.example"], chain: ["socks5://relay:pw@127.0.0.1:1090?proxy_protocol=v2"] }
  - { to: ["b.example"], chain: [{ any: ["socks5://[::1]:1091", "socks5://h.example"], proxy_protocol: v2 }] }
  - { to: ["c.example"], chain: ["socks5://127.0.0.1:1092"] }
`);
  const [a, b, c] = config.routes.map((r) => r.chain[0]!.alternatives);
  assert.deepEqual(a!.map((e) => [e.label, e.proxyProtocol, e.credentials?.username]), [
    ["socks5://127.0.0.1:1090", "v2", "relay"],
  ]);
  assert.deepEqual(b!.map((e) => e.proxyProtocol), ["v2", "v2"]);
  assert.equal(c![0]!.proxyProtocol, undefined);
  assertConfigError(
    'routes: [{ chain: ["socks5://127.0.0.1:1090?proxy_protocol=v1"] }]',
    "routes[0].chain[0]",
    /proxy_protocol must be v2/,
  );
  assertConfigError(
    'routes: [{ chain: [["socks5://198.51.100.1:1080", "socks5://127.0.0.1:1090?via=x"]] }]',
    "routes[0].chain[0][1]",
    /"\?via": unknown option/,
  );
  assertConfigError(
    'routes: [{ chain: ["socks5://127.0.0.1:1090?proxy_protocol=v2&proxy_protocol=v2"] }]',
    "routes[0].chain[0]",
    /given once/,
  );
  assertConfigError(
    'routes: [{ chain: [{ any: ["socks5://127.0.0.1:1090"], proxy_protocol: v1 }] }]',
    "routes[0].chain[0].proxy_protocol",
  );
});
