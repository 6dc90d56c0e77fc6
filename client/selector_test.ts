import assert from "node:assert/strict";
import { HopSelector } from "./selector.ts";

function fakeClock() {
  let now = 1_000;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
}

Deno.test("HopSelector.order() keeps config order for failover", () => {
  const selector = new HopSelector(3);
  assert.deepEqual(selector.order(), [0, 1, 2]);
  assert.deepEqual(selector.order(), [0, 1, 2]);
});

Deno.test("HopSelector.order() spreads round-robin starts evenly", () => {
  const selector = new HopSelector(3, { strategy: "round-robin" });
  const counts = [0, 0, 0];
  for (let i = 0; i < 300; i++) counts[selector.order()[0]!]!++;
  assert.deepEqual(counts, [100, 100, 100]);
  // Each order still lists every alternative once, as fallbacks.
  assert.deepEqual([...selector.order()].sort(), [0, 1, 2]);
});

Deno.test("HopSelector.order() shuffles with the injected random source", () => {
  const values = [0.99, 0.0];
  const selector = new HopSelector(3, { strategy: "random", random: () => values.shift() ?? 0 });
  // i=2: j=floor(0.99*3)=2 (stays); i=1: j=0 (swap 0 and 1).
  assert.deepEqual(selector.order(), [1, 0, 2]);
  const counts = [0, 0, 0];
  const random = new HopSelector(3, { strategy: "random" });
  for (let i = 0; i < 3000; i++) counts[random.order()[0]!]!++;
  for (const count of counts) assert.ok(count > 800 && count < 1200, `${counts}`);
});

Deno.test("HopSelector.fail() marks after maxFails, skips until failTimeoutMs, then recovers", () => {
  const clock = fakeClock();
  const selector = new HopSelector(3, { maxFails: 2, failTimeoutMs: 5_000, now: clock.now });
  selector.fail(0);
  assert.equal(selector.isDown(0), false);
  assert.deepEqual(selector.order(), [0, 1, 2]);
  selector.fail(0);
  assert.equal(selector.isDown(0), true);
  assert.deepEqual(selector.order(), [1, 2, 0]);
  clock.advance(4_999);
  assert.deepEqual(selector.order(), [1, 2, 0]);
  clock.advance(1);
  assert.equal(selector.isDown(0), false);
  assert.deepEqual(selector.order(), [0, 1, 2]);
});

Deno.test("HopSelector.succeed() clears the failure count and the mark", () => {
  const clock = fakeClock();
  const selector = new HopSelector(2, { maxFails: 2, now: clock.now });
  selector.fail(0);
  selector.succeed(0);
  selector.fail(0);
  assert.equal(selector.isDown(0), false);
  selector.fail(0);
  assert.equal(selector.isDown(0), true);
  selector.succeed(0);
  assert.equal(selector.isDown(0), false);
});

Deno.test("HopSelector.order() still tries marked alternatives last, soonest to recover first", () => {
  const clock = fakeClock();
  const selector = new HopSelector(3, { failTimeoutMs: 1_000, now: clock.now });
  selector.fail(1);
  clock.advance(100);
  selector.fail(0);
  clock.advance(100);
  selector.fail(2);
  assert.deepEqual(selector.order(), [1, 0, 2]);
});

Deno.test("HopSelector.order() round-robin skips marked alternatives", () => {
  const clock = fakeClock();
  const selector = new HopSelector(3, { strategy: "round-robin", now: clock.now });
  selector.fail(1);
  const firsts = Array.from({ length: 6 }, () => selector.order()[0]);
  assert.ok(!firsts.includes(1), `${firsts}`);
  assert.ok(firsts.includes(0) && firsts.includes(2));
});

Deno.test("HopSelector() refuses a hop without alternatives", () => {
  assert.throws(() => new HopSelector(0), RangeError);
});

Deno.test("HopSelector.state() tells marked or up, and for how long by the selector's clock", () => {
  let now = 1000;
  const selector = new HopSelector(2, { failTimeoutMs: 500, now: () => now });
  assert.deepEqual(selector.state(0), { down: false, forMs: null });
  selector.fail(0);
  now = 1200;
  assert.deepEqual(selector.state(0), { down: true, forMs: 200 });
  // The mark runs out at 1500: up since then.
  now = 1700;
  assert.deepEqual(selector.state(0), { down: false, forMs: 200 });
  selector.fail(0);
  now = 1800;
  selector.succeed(0);
  now = 1900;
  assert.deepEqual(selector.state(0), { down: false, forMs: 100 });
  assert.deepEqual(selector.state(1), { down: false, forMs: null });
});
