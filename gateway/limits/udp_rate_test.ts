import assert from "node:assert/strict";
import { RateLimiter, UdpRateBudget } from "./udp_rate.ts";

Deno.test("RateLimiter allows a second's worth at once, then refills with time", () => {
  let now = 0;
  const limiter = new RateLimiter(3, () => now);
  assert.deepEqual([1, 2, 3, 4].map(() => limiter.allow()), [true, true, true, false]);
  now += 334;
  assert.equal(limiter.allow(), true);
  assert.equal(limiter.allow(), false);
  now += 10_000;
  assert.deepEqual([1, 2, 3, 4].map(() => limiter.allow()), [true, true, true, false]);
});

Deno.test("UdpRateBudget: a client's associations share one bucket per direction", () => {
  const now = 0;
  const budget = new UdpRateBudget({ perClient: 3, total: 100 }, () => now);
  const first = budget.join("192.0.2.7");
  const second = budget.join("192.0.2.7");
  // Opening more associations does not multiply the client's rate.
  assert.deepEqual(
    [first.admit("up"), second.admit("up"), first.admit("up"), second.admit("up")],
    [null, null, null, "client_rate"],
  );
  // The other direction has its own bucket; another client its own share.
  assert.equal(first.admit("down"), null);
  assert.equal(budget.join("2001:db8:1::/64").admit("up"), null);
});

Deno.test("UdpRateBudget: the total caps all clients together", () => {
  const budget = new UdpRateBudget({ perClient: 10, total: 4 }, () => 0);
  const shares = ["192.0.2.1", "192.0.2.2", "192.0.2.3"].map((client) => budget.join(client));
  const verdicts = [0, 1, 2, 0, 1, 2].map((i) => shares[i]!.admit("up"));
  assert.deepEqual(verdicts, [null, null, null, null, "total_rate", "total_rate"]);
});

Deno.test("UdpRateBudget: reopening an association gives no fresh burst; idle buckets go", () => {
  let now = 0;
  const budget = new UdpRateBudget({ perClient: 2, total: 100 }, () => now);
  const a = budget.join("192.0.2.7");
  const b = budget.join("192.0.2.7");
  assert.equal(a.admit("up"), null);
  a.leave();
  a.leave(); // twice is once
  assert.equal(b.admit("up"), null, "the live association still shares the bucket");
  b.leave();
  // The flooder closes and reopens at once: the bucket is the emptied one, not a new one.
  const again = budget.join("192.0.2.7");
  assert.equal(again.admit("up"), "client_rate");
  again.leave();
  assert.equal(budget.clients, 1);
  now += 1000;
  budget.join("192.0.2.8").leave();
  assert.equal(budget.clients, 1, "the resting client's buckets were forgotten");
});
