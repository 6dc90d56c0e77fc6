import assert from "node:assert/strict";
import { hashPassword, parsePasswordHash, verifyPassword } from "./password.ts";

Deno.test("hashPassword() and verifyPassword() round-trip", async () => {
  const hash = await hashPassword("change-me", { N: 1024 });
  assert.match(hash, /^scrypt\$1024\$8\$1\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=$/);
  assert.equal(await verifyPassword("change-me", { name: "a", passwordHash: hash }), true);
  assert.equal(await verifyPassword("change-mE", { name: "a", passwordHash: hash }), false);
  assert.equal(await verifyPassword("", { name: "a", passwordHash: hash }), false);
});

Deno.test("hashPassword() uses N=16384 r=8 p=1 and a fresh salt by default", async () => {
  const [a, b] = await Promise.all([hashPassword("pw"), hashPassword("pw")]);
  assert.ok(a.startsWith("scrypt$16384$8$1$"));
  assert.notEqual(a, b);
  assert.equal(await verifyPassword("pw", { name: "a", passwordHash: b }), true);
});

Deno.test("hashPassword() refuses bad parameters", async () => {
  await assert.rejects(hashPassword("pw", { N: 1000 }), RangeError);
  await assert.rejects(hashPassword("pw", { r: 0 }), RangeError);
});

Deno.test("verifyPassword() compares plain passwords", async () => {
  const user = { name: "alice", password: "change-me" };
  assert.equal(await verifyPassword("change-me", user), true);
  assert.equal(await verifyPassword("change-m", user), false);
  assert.equal(await verifyPassword("change-me!", user), false);
  assert.equal(await verifyPassword("change-me", { name: "nobody" }), false);
});

Deno.test("verifyPassword() rejects a malformed hash", async () => {
  await assert.rejects(verifyPassword("x", { name: "a", passwordHash: "scrypt$x" }), TypeError);
});

Deno.test("parsePasswordHash() reads the parts and names what is wrong", () => {
  const parsed = parsePasswordHash("scrypt$1024$8$2$AAECAw==$" + "A".repeat(22) + "==");
  assert.equal(parsed.error, null);
  assert.deepEqual(
    parsed.hash && { ...parsed.hash, salt: [...parsed.hash.salt], hash: parsed.hash.hash.length },
    { N: 1024, r: 8, p: 2, salt: [0, 1, 2, 3], hash: 16 },
  );
  assert.match(parsePasswordHash("bcrypt$1$2$3$4$5").error!, /scrypt\$N/);
  assert.match(parsePasswordHash("scrypt$1048576$8$1$AAAA$AAAA").error!, /MiB/);
  assert.match(parsePasswordHash("scrypt$1024$8$1$AA!A$" + "A".repeat(24)).error!, /salt/);
  assert.match(parsePasswordHash("scrypt$1024$8$1$AAAA$AAAA").error!, /16\.\.64 bytes/);
});
