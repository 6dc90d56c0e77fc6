import assert from "node:assert/strict";
import { AuthFailureLimiter } from "./auth_limiter.ts";

Deno.test("AuthFailureLimiter blocks a key at the limit and frees it as failures leave the window", () => {
  let now = 1000;
  const limiter = new AuthFailureLimiter(3, { now: () => now });
  limiter.recordFailure("a");
  now += 10_000;
  limiter.recordFailure("a");
  assert.equal(limiter.isBlocked("a"), false);
  now += 10_000;
  limiter.recordFailure("a");
  assert.equal(limiter.isBlocked("a"), true);
  assert.equal(limiter.isBlocked("b"), false);
  // Sliding: the first failure (t=1000) leaves the window at t=61000, the block ends.
  now = 60_999;
  assert.equal(limiter.isBlocked("a"), true);
  now = 61_000;
  assert.equal(limiter.isBlocked("a"), false);
  // One more failure within the window of the other two blocks again.
  limiter.recordFailure("a");
  assert.equal(limiter.isBlocked("a"), true);
});

Deno.test("AuthFailureLimiter keeps at most maxFailures timestamps and drops expired keys", () => {
  let now = 0;
  const limiter = new AuthFailureLimiter(2, { now: () => now });
  for (let i = 0; i < 100; i++) limiter.recordFailure("a");
  assert.equal(limiter.isBlocked("a"), true);
  now = 60_001;
  assert.equal(limiter.isBlocked("a"), false);
  assert.equal(limiter.size, 0);
});

Deno.test("AuthFailureLimiter evicts the least recently failing keys past maxEntries", () => {
  let now = 0;
  const limiter = new AuthFailureLimiter(1, { now: () => now, maxEntries: 100 });
  for (let i = 0; i < 1000; i++) {
    now++;
    limiter.recordFailure(`k${i}`);
  }
  assert.equal(limiter.size, 100);
  assert.equal(limiter.isBlocked("k999"), true);
  assert.equal(limiter.isBlocked("k900"), true);
  assert.equal(limiter.isBlocked("k899"), false);
  // A key failing again moves to the back and survives the next evictions.
  limiter.recordFailure("k900");
  for (let i = 1000; i < 1099; i++) limiter.recordFailure(`k${i}`);
  assert.equal(limiter.isBlocked("k900"), true);
  assert.equal(limiter.isBlocked("k901"), false);
});

Deno.test("AuthFailureLimiter drops expired keys first when full", () => {
  let now = 0;
  const limiter = new AuthFailureLimiter(5, { now: () => now, maxEntries: 3, windowMs: 100 });
  limiter.recordFailure("old1");
  limiter.recordFailure("old2");
  now = 50;
  limiter.recordFailure("live");
  now = 120;
  limiter.recordFailure("new");
  assert.equal(limiter.size, 2);
});

Deno.test("AuthFailureLimiter rejects a limit that is not a positive integer", () => {
  assert.throws(() => new AuthFailureLimiter(0), RangeError);
  assert.throws(() => new AuthFailureLimiter(1.5), RangeError);
});
