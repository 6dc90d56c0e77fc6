import assert from "node:assert/strict";
import { ConfigError } from "./errors.ts";
import { formatConfigYaml, parseConfig } from "./load.ts";
import { parseBytes } from "./_user_limits.ts";

function problemsOf(yaml: string): string[] {
  try {
    parseConfig(yaml);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.problems.map((p) => `${p.path}: ${p.reason}`);
  }
  assert.fail(`expected a ConfigError for ${JSON.stringify(yaml)}`);
}

Deno.test("parseBytes() reads integers and sizes with decimal and binary units", () => {
  assert.equal(parseBytes(1024), 1024);
  assert.equal(parseBytes("512KiB"), 512 * 1024);
  assert.equal(parseBytes("1.5 MB"), 1_500_000);
  assert.equal(parseBytes("10GiB"), 10 * 2 ** 30);
  assert.equal(parseBytes("1MiB/s", { rate: true }), 2 ** 20);
  assert.equal(parseBytes("1MiB/s"), null);
  assert.equal(parseBytes("1 parsec"), null);
  assert.equal(parseBytes(-1), null);
  assert.equal(parseBytes(1.5), null);
});

Deno.test("parseConfig() merges auth.users[].limits over limits.per_user, key by key", () => {
  const config = parseConfig(`
auth:
  users:
    - { name: alice, password: a, limits: { bandwidth: { up: 1MiB/s }, max_connections: unlimited } }
    - { name: bob, password: b }
limits:
  per_user:
    max_connections: 8
    bandwidth: { down: 2MiB }
    quota: { bytes: 10GiB, period: day }
`);
  assert.deepEqual(config.limits.perUser, {
    maxConnections: 8,
    up: null,
    down: 2 * 2 ** 20,
    quota: { bytes: 10 * 2 ** 30, period: "day" },
  });
  assert.deepEqual(config.auth.users[0]!.limits, {
    maxConnections: null,
    up: 2 ** 20,
    down: 2 * 2 ** 20,
    quota: { bytes: 10 * 2 ** 30, period: "day" },
  });
  assert.equal(config.auth.users[1]!.limits, undefined);
  // check prints them back, with every key.
  assert.match(formatConfigYaml(config), /limits:\n {8}max_connections: unlimited\n/);
});

Deno.test("parseConfig() names the path of a bad per-user limit", () => {
  assert.deepEqual(problemsOf("limits: { per_user: { max_connections: 0 } }"), [
    'limits.per_user.max_connections: must be a positive integer or "unlimited"',
  ]);
  assert.match(
    problemsOf("limits: { per_user: { bandwidth: { up: 1 parsec } } }")[0]!,
    /^limits\.per_user\.bandwidth\.up: must be a rate above 0/,
  );
  assert.match(
    problemsOf(
      "auth: { users: [{ name: a, password: b, limits: { quota: { bytes: 1GB, period: year } } }] }",
    )[0]!,
    /^auth\.users\[0\]\.limits\.quota\.period: /,
  );
  assert.deepEqual(problemsOf("limits: { per_user: { speed: 1 } }"), [
    "limits.per_user.speed: unknown key",
  ]);
  assert.match(problemsOf("log: { audit: { file: '' } }")[0]!, /^log\.audit\.file: /);
});

Deno.test("parseConfig() refuses per-user limits and the audit log with workers above 1", () => {
  assert.deepEqual(
    problemsOf(`
workers: 2
auth: { users: [{ name: a, password: b, limits: { max_connections: 2 } }] }
limits: { per_user: { bandwidth: { down: 1MiB } } }
log: { audit: { file: /tmp/audit.log } }
`).map((p) => p.split(":")[0]),
    ["limits.per_user", "auth.users[0].limits", "log.audit.file"],
  );
  // Unlimited written out is no limit.
  parseConfig("workers: 2\nlimits: { per_user: { max_connections: unlimited } }");
});
