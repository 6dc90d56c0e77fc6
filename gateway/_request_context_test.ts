import assert from "node:assert/strict";
import { denialText } from "./_request_context.ts";

Deno.test("denialText() names the rule, no rule, or the safe defaults (rule -1 without rules)", () => {
  assert.equal(denialText({ allow: false, rule: 2 }, true), "denied by rules[2]");
  assert.equal(denialText({ allow: false, rule: -1 }, true), "denied by rules: no rule allows it");
  assert.equal(
    denialText({ allow: false, rule: -1 }, false),
    "denied by the safe defaults: destination is host-local",
  );
});
