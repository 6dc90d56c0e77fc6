import assert from "node:assert/strict";
import {
  type DeriveKey,
  dummyUser,
  hashPassword,
  parsePasswordHash,
  verifyPassword,
} from "./password.ts";

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

Deno.test("verifyPassword() derives through the given derive function", async () => {
  const hash = await hashPassword("pw", { N: 1024 });
  const seen: number[] = [];
  const derive: DeriveKey = (password, params, length) => {
    seen.push(params.N, length);
    return Promise.resolve(new Uint8Array(length).fill(password.length));
  };
  assert.equal(await verifyPassword("pw", { name: "a", passwordHash: hash }, { derive }), false);
  assert.deepEqual(seen, [1024, 32]);
  // A key of the wrong length is a mismatch, not a crash.
  const short: DeriveKey = () => Promise.resolve(new Uint8Array(3));
  assert.equal(
    await verifyPassword("pw", { name: "a", passwordHash: hash }, { derive: short }),
    false,
  );
});

Deno.test("dummyUser() has the kind and cost most users have, and matches no password", async () => {
  const fast = await hashPassword("a", { N: 1024, r: 4, p: 2 });
  const slow = await hashPassword("b", { N: 2048 });
  const dummy = dummyUser([
    { name: "a", passwordHash: fast },
    { name: "b", passwordHash: slow },
    {
      name: "c",
      passwordHash: fast.replace(
        /\$[^$]+\$[^$]+$/,
        "$AAAAAAAAAAAAAAAAAAAAAA==$" + "A".repeat(43) + "=",
      ),
    },
    { name: "d", password: "plain" },
  ]);
  assert.equal(dummy.name, "");
  assert.equal(dummy.password, undefined);
  const parsed = parsePasswordHash(dummy.passwordHash!).hash!;
  assert.deepEqual([parsed.N, parsed.r, parsed.p, parsed.hash.length], [1024, 4, 2, 32]);
  assert.equal(await verifyPassword("a", dummy), false);
  assert.notEqual(dummyUser([{ name: "a", passwordHash: fast }]).passwordHash, dummy.passwordHash);

  const plain = dummyUser([{ name: "a", password: "x" }, { name: "b", password: "y" }]);
  assert.equal(plain.passwordHash, undefined);
  assert.ok(plain.password!.length >= 16);
  assert.equal(await verifyPassword("x", plain), false);
  assert.equal(dummyUser([]).passwordHash, undefined);
});
