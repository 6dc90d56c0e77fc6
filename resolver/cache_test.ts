import assert from "node:assert/strict";
import type { IpAddress } from "../net/address.ts";
import { NameCache } from "./cache.ts";

const A: IpAddress = { family: 4, bytes: new Uint8Array([192, 0, 2, 1]) };

function makeCache(maxSize = 10) {
  const clock = { now: 1_000_000 };
  const cache = new NameCache({
    maxSize,
    maxTtlSeconds: 300,
    negativeTtlSeconds: 30,
    now: () => clock.now,
  });
  return { cache, clock };
}

Deno.test("NameCache.setPositive() keeps an answer for the record TTL", () => {
  const { cache, clock } = makeCache();
  cache.setPositive("a.example", [A], [], 60);
  clock.now += 59_999;
  assert.deepEqual(cache.get("a.example"), { kind: "positive", v4: [A], v6: [] });
  clock.now += 1;
  assert.equal(cache.get("a.example"), undefined);
  assert.equal(cache.size, 0);
});

Deno.test("NameCache.setPositive() caps the TTL at maxTtlSeconds and defaults to it", () => {
  const { cache, clock } = makeCache();
  cache.setPositive("long.example", [A], [], 86_400);
  cache.setPositive("none.example", [A], []);
  clock.now += 299_000;
  assert.equal(cache.get("long.example")?.kind, "positive");
  assert.equal(cache.get("none.example")?.kind, "positive");
  clock.now += 1_000;
  assert.equal(cache.get("long.example"), undefined);
  assert.equal(cache.get("none.example"), undefined);
});

Deno.test("NameCache.setPositive() stores nothing for a TTL of 0", () => {
  const { cache } = makeCache();
  cache.setPositive("zero.example", [A], [], 0);
  assert.equal(cache.get("zero.example"), undefined);
});

Deno.test("NameCache.setNegative() keeps the reason for negativeTtlSeconds", () => {
  const { cache, clock } = makeCache();
  cache.setNegative("nx.example", "no A or AAAA record");
  clock.now += 29_000;
  assert.deepEqual(cache.get("nx.example"), { kind: "negative", reason: "no A or AAAA record" });
  clock.now += 1_000;
  assert.equal(cache.get("nx.example"), undefined);
});

Deno.test("NameCache evicts the least recently used name beyond maxSize", () => {
  const { cache } = makeCache(2);
  cache.setPositive("one", [A], []);
  cache.setPositive("two", [A], []);
  assert.ok(cache.get("one")); // "two" is now least recently used
  cache.setPositive("three", [A], []);
  assert.equal(cache.size, 2);
  assert.ok(cache.get("one"));
  assert.equal(cache.get("two"), undefined);
  assert.ok(cache.get("three"));
});

Deno.test("NameCache with maxSize 0 caches nothing", () => {
  const { cache } = makeCache(0);
  cache.setPositive("one", [A], []);
  cache.setNegative("two", "no");
  assert.equal(cache.size, 0);
});

Deno.test("NameCache.setPositive() replaces an earlier answer and copies the lists", () => {
  const { cache } = makeCache();
  const list = [A];
  cache.setNegative("x", "no");
  cache.setPositive("x", list, []);
  list.length = 0;
  assert.deepEqual(cache.get("x"), { kind: "positive", v4: [A], v6: [] });
  cache.delete("x");
  assert.equal(cache.get("x"), undefined);
  cache.setPositive("y", [A], []);
  cache.clear();
  assert.equal(cache.size, 0);
});
