import assert from "node:assert/strict";
import { ConfigError, formatConfigPath } from "./errors.ts";

Deno.test("ConfigError carries its path and reason", () => {
  const error = new ConfigError("rules[1].from[0]", "bad prefix");
  assert.ok(error instanceof Error);
  assert.equal(error.name, "ConfigError");
  assert.equal(error.path, "rules[1].from[0]");
  assert.equal(error.reason, "bad prefix");
  assert.equal(error.message, "rules[1].from[0]: bad prefix");
  assert.equal(new ConfigError("", "Cannot parse YAML: x").message, "Cannot parse YAML: x");
});

Deno.test("formatConfigPath() writes keys and indexes like the YAML", () => {
  assert.equal(formatConfigPath([]), "");
  assert.equal(formatConfigPath(["rules", 1, "from", 0]), "rules[1].from[0]");
  assert.equal(formatConfigPath(["auth", "users", 0, "password"]), "auth.users[0].password");
  assert.equal(
    formatConfigPath(["resolver", "hosts", "intranet.example", 1]),
    'resolver.hosts["intranet.example"][1]',
  );
});
