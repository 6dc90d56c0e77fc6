import assert from "node:assert/strict";
import { type DeriveKey, hashPassword, scryptDerive } from "./config/password.ts";
import { PasswordVerifier } from "./password_verifier.ts";

const HASH = await hashPassword("right", { N: 1024 });

/** A derive hook that counts calls and derivations running at once. */
function countingDerive(hold?: Promise<void>) {
  const stats = { calls: 0, running: 0, peak: 0 };
  const derive: DeriveKey = async (password, params, length) => {
    stats.calls++;
    stats.peak = Math.max(stats.peak, ++stats.running);
    try {
      await hold;
      return await scryptDerive(password, params, length);
    } finally {
      stats.running--;
    }
  };
  return { stats, derive };
}

Deno.test("PasswordVerifier.check() runs one scrypt derivation for unknown and known users alike", async () => {
  const { stats, derive } = countingDerive();
  const verifier = new PasswordVerifier([{ name: "alice", passwordHash: HASH }], { derive });
  assert.equal(await verifier.check("alice", "right"), "accepted");
  assert.equal(stats.calls, 1);
  assert.equal(await verifier.check("alice", "wrong"), "rejected");
  assert.equal(stats.calls, 2);
  // The unknown user takes the same path: a derivation against the dummy hash.
  assert.equal(await verifier.check("mallory", "right"), "rejected");
  assert.equal(await verifier.check("", "right"), "rejected");
  assert.equal(stats.calls, 4);
  assert.equal(verifier.hashes, 4);
});

Deno.test("PasswordVerifier.check() compares plain passwords, and an unknown user never passes", async () => {
  const { stats, derive } = countingDerive();
  const verifier = new PasswordVerifier([{ name: "alice", password: "right" }], { derive });
  assert.equal(await verifier.check("alice", "right"), "accepted");
  assert.equal(await verifier.check("alice", "righ"), "rejected");
  assert.equal(await verifier.check("bob", "right"), "rejected");
  assert.equal(stats.calls, 0);
  assert.equal(await new PasswordVerifier([]).check("", ""), "rejected");
});

Deno.test("PasswordVerifier caps concurrent scrypt derivations and refuses beyond its queue", async () => {
  const release = Promise.withResolvers<void>();
  const { stats, derive } = countingDerive(release.promise);
  const verifier = new PasswordVerifier([{ name: "alice", passwordHash: HASH }], {
    derive,
    maxConcurrent: 2,
    maxQueued: 5,
  });
  const checks = Array.from(
    { length: 300 },
    (_, i) => verifier.check(i % 2 ? "alice" : "nobody", i === 299 ? "right" : `wrong${i}`),
  );
  // Beyond 2 running and 5 queued, the other 293 are refused at once, unchecked.
  const busy = await Promise.all(checks.slice(7));
  assert.ok(busy.every((verdict) => verdict === "busy"));
  assert.equal(stats.calls, 2);
  release.resolve();
  const verdicts = await Promise.all(checks.slice(0, 7));
  assert.ok(verdicts.every((verdict) => verdict === "rejected"));
  assert.equal(stats.calls, 7);
  assert.equal(stats.peak, 2);
  assert.equal(verifier.peak, 2);
  assert.equal(verifier.slots, 2);
  // Slots are all given back.
  assert.equal(await verifier.check("alice", "right"), "accepted");
});
