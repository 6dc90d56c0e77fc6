import assert from "node:assert/strict";
import type { UserLimitsConfig } from "../config/types.ts";
import { UNLIMITED } from "../config/_user_limits.ts";
import { UserLimiter } from "./user_limits.ts";

const users = [
  { name: "alice", password: "a" },
  { name: "bob", password: "b", limits: { ...UNLIMITED, maxConnections: 1 } },
];

Deno.test("UserLimiter.admit() refuses past max_connections until one is released", () => {
  const perUser: UserLimitsConfig = { ...UNLIMITED, maxConnections: 2 };
  const limiter = new UserLimiter(users, perUser);
  const first = limiter.admit("alice");
  const second = limiter.admit("alice");
  assert.notEqual(typeof first, "string");
  assert.notEqual(typeof second, "string");
  assert.equal(limiter.admit("alice"), "max_connections");
  // bob's own limit (1) replaces the default.
  assert.notEqual(typeof limiter.admit("bob"), "string");
  assert.equal(limiter.admit("bob"), "max_connections");
  if (typeof first !== "string") {
    first.release();
    first.release(); // twice is once
  }
  assert.equal(limiter.active("alice"), 1);
  assert.notEqual(typeof limiter.admit("alice"), "string");
  assert.equal(limiter.admit("alice"), "max_connections");
  // Anonymous clients are not limited per user.
  for (let i = 0; i < 5; i++) assert.notEqual(typeof limiter.admit(undefined), "string");
});

Deno.test("UserLimiter throttles share the user's bucket and quota", () => {
  let now = 0;
  const limiter = new UserLimiter(users, {
    ...UNLIMITED,
    up: 100_000,
    quota: { bytes: 20_000, period: "day" },
  }, { now: () => now, wallClock: () => Date.parse("2026-12-03T12:00:00Z") });
  const a = limiter.admit("alice"), b = limiter.admit("alice");
  assert.ok(typeof a !== "string" && typeof b !== "string");
  assert.equal(a.throttle, b.throttle);
  const up = a.throttle!.up!;
  // The burst (1/20 s at 100 kB/s), taken from the bucket as the read starts.
  assert.equal(up.allowance(1 << 20), 5000);
  assert.equal(up.delay(), 0);
  // A read that got less gives the rest back.
  up.consumed(1000, 5000);
  assert.equal(up.delay(), 0);
  assert.equal(up.allowance(1 << 20), 5000);
  up.consumed(5000, 5000);
  assert.equal(up.delay(), 10); // 1000 bytes of debt at 100 kB/s
  // Every relay of the user sees the debt, a new one too.
  assert.equal(b.throttle!.up!.delay(), 10);
  now += 1000;
  // Down is not rate-capped, but shares the quota: 14000 of 20000 are left.
  assert.equal(a.throttle!.down!.allowance(1 << 20), 14_000);
  a.throttle!.down!.consumed(14_000, 14_000);
  assert.equal(up.allowance(1 << 20), 0);
  assert.equal(limiter.admit("alice"), "quota");
});

Deno.test("UserLimiter gives no throttle to a user limited only in connections", () => {
  const limiter = new UserLimiter(users, UNLIMITED);
  const admitted = limiter.admit("bob");
  assert.ok(typeof admitted !== "string");
  assert.equal(admitted.throttle, undefined);
});
