import assert from "node:assert/strict";
import { TokenBucket } from "./token_bucket.ts";

function clock() {
  let now = 0;
  return { now: () => now, advance: (ms: number) => now += ms };
}

Deno.test("TokenBucket() starts full and lets a burst through without waiting", () => {
  const time = clock();
  const bucket = new TokenBucket(100_000, { burst: 10_000, now: time.now });
  assert.equal(bucket.tokens, 10_000);
  assert.equal(bucket.take(10_000), 0);
  assert.equal(bucket.tokens, 0);
});

Deno.test("TokenBucket.take() returns the wait that pays back the debt at the rate", () => {
  const time = clock();
  const bucket = new TokenBucket(1000, { burst: 4096, now: time.now });
  assert.equal(bucket.take(4096), 0);
  // 500 bytes of debt at 1000 bytes/s: half a second.
  assert.equal(bucket.take(500), 500);
  time.advance(500);
  assert.equal(bucket.tokens, 0);
  time.advance(250);
  assert.equal(bucket.tokens, 250);
});

Deno.test("TokenBucket refills up to its burst, never more", () => {
  const time = clock();
  const bucket = new TokenBucket(1_000_000, { burst: 50_000, now: time.now });
  bucket.take(50_000);
  time.advance(60_000);
  assert.equal(bucket.tokens, 50_000);
});

Deno.test("TokenBucket shared by several takers keeps their sum to the rate", () => {
  // Two readers alternate on one bucket for 10 simulated seconds, each waiting as told: the
  // bytes that pass are the rate times the time, plus one burst.
  const time = clock();
  const rate = 100_000;
  const bucket = new TokenBucket(rate, { now: time.now });
  const readyAt = [0, 0];
  let passed = 0;
  while (time.now() < 10_000) {
    const reader = readyAt[0]! <= readyAt[1]! ? 0 : 1;
    time.advance(Math.max(0, readyAt[reader]! - time.now()));
    const chunk = bucket.burst;
    passed += chunk;
    readyAt[reader] = time.now() + bucket.take(chunk);
  }
  assert.ok(passed <= rate * 10 + 3 * bucket.burst, `${passed}`);
  assert.ok(passed >= rate * 10 - bucket.burst, `${passed}`);
});

Deno.test("TokenBucket() default burst is a twentieth of a second, at least 4096 bytes", () => {
  assert.equal(new TokenBucket(1_000_000).burst, 50_000);
  assert.equal(new TokenBucket(1000).burst, 4096);
  assert.throws(() => new TokenBucket(0), RangeError);
  assert.throws(() => new TokenBucket(Infinity), RangeError);
});
