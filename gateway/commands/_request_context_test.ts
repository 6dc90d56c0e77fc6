import assert from "node:assert/strict";
import { denialText, targetName } from "./_request_context.ts";

Deno.test("denialText() names the rule, no rule, or the safe defaults (rule -1 without rules)", () => {
  assert.equal(denialText({ allow: false, rule: 2 }, true), "denied by rules[2]");
  assert.equal(denialText({ allow: false, rule: -1 }, true), "denied by rules: no rule allows it");
  assert.equal(
    denialText({ allow: false, rule: -1 }, false),
    "denied by the safe defaults: destination is host-local",
  );
});

Deno.test("targetName() is the normalised name, and nothing for a literal (trailing dot too)", () => {
  const named = (name: string) => ({ address: { family: "name" as const, name }, port: 80 });
  assert.equal(targetName(named("WWW.Example.")), "www.example");
  for (const literal of ["198.51.100.2", "198.51.100.2.", "127.0.0.1.", "[2001:db8::1]"]) {
    assert.equal(targetName(named(literal)), undefined, literal);
  }
});
