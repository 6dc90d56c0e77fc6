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

Deno.test("AuthFailureLimiter.acquire() counts attempts in flight against the limit", async () => {
  const limiter = new AuthFailureLimiter(3, { now: () => 0 });
  const first = await Promise.all([1, 2, 3].map(() => limiter.acquire("a")));
  assert.equal(limiter.inFlight("a"), 3);
  // A fourth attempt while three are in flight is not checked yet: it waits.
  let fourth: unknown = "pending";
  const waiting = limiter.acquire("a").then((attempt) => fourth = attempt);
  await Promise.resolve();
  assert.equal(fourth, "pending");
  // Another key is not affected.
  assert.notEqual(await limiter.acquire("b"), null);
  // The three fail: the limit is reached, the waiting attempt is refused without a check.
  for (const attempt of first) attempt!.finish(true);
  await waiting;
  assert.equal(fourth, null);
  assert.equal(limiter.inFlight("a"), 0);
  assert.equal(limiter.isBlocked("a"), true);
  assert.equal(await limiter.acquire("a"), null);
});

Deno.test("AuthFailureLimiter.acquire() lets a waiting attempt through when one in flight succeeds", async () => {
  const limiter = new AuthFailureLimiter(2, { now: () => 0 });
  const [a, b] = await Promise.all([limiter.acquire("k"), limiter.acquire("k")]);
  const third = limiter.acquire("k");
  a!.finish(false);
  const attempt = await third;
  assert.notEqual(attempt, null);
  b!.finish(true);
  attempt!.finish(true);
  assert.equal(limiter.isBlocked("k"), true);
  // finish() counts once.
  attempt!.finish(true);
  assert.equal(limiter.inFlight("k"), 0);
});

Deno.test("AuthFailureLimiter.acquire() resolves null when its signal aborts while waiting", async () => {
  const limiter = new AuthFailureLimiter(1, { now: () => 0 });
  const held = await limiter.acquire("k");
  const controller = new AbortController();
  const waiting = limiter.acquire("k", controller.signal);
  controller.abort();
  assert.equal(await waiting, null);
  held!.finish(false);
  assert.equal(limiter.inFlight("k"), 0);
});

Deno.test("AuthFailureLimiter: 300 attempts sent at once get at most maxFailures checks", async () => {
  const limiter = new AuthFailureLimiter(10, { now: () => 0 });
  let checked = 0;
  let rightOneIn = false;
  await Promise.all(Array.from({ length: 300 }, async (_, i) => {
    const attempt = await limiter.acquire("192.0.2.2");
    if (!attempt) return;
    checked++;
    await new Promise((resolve) => setTimeout(resolve, 1));
    const right = i === 299;
    if (right) rightOneIn = true;
    attempt.finish(!right);
  }));
  assert.equal(checked, 10);
  assert.equal(rightOneIn, false);
});
