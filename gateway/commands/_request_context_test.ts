import assert from "node:assert/strict";
import { parseIp } from "../../net/address.ts";
import { AccessRules } from "../access/rules.ts";
import { denialText, rulePermit, targetName } from "./_request_context.ts";

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

Deno.test("rulePermit() keeps the last denial and the subject last allowed", () => {
  const judged = rulePermit({ rules: new AccessRules(null) }, (address) => ({
    client: parseIp("192.0.2.1")!,
    clientIsLocal: false,
    command: "connect",
    port: 80,
    ...(address !== undefined ? { address } : {}),
  }));
  assert.equal(judged.permit(parseIp("198.51.100.7")!), true);
  assert.equal(judged.permit(parseIp("127.0.0.1")!), false);
  assert.deepEqual(judged.denial, { allow: false, rule: -1 });
  assert.deepEqual(judged.allowed?.address, parseIp("198.51.100.7"));
});
