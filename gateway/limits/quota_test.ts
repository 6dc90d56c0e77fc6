import assert from "node:assert/strict";
import { ByteQuota, periodStart } from "./quota.ts";

const at = (iso: string) => Date.parse(iso);

Deno.test("periodStart() gives the UTC hour, day, ISO week and month boundaries", () => {
  const now = at("2026-12-03T07:42:10.500Z"); // a Thursday
  assert.equal(periodStart("hour", now), at("2026-12-03T07:00:00Z"));
  assert.equal(periodStart("day", now), at("2026-12-03T00:00:00Z"));
  assert.equal(periodStart("week", now), at("2026-11-30T00:00:00Z"));
  assert.equal(periodStart("month", now), at("2026-12-01T00:00:00Z"));
  assert.equal(periodStart("week", at("2026-12-06T23:59:59Z")), at("2026-11-30T00:00:00Z"));
});

Deno.test("ByteQuota counts bytes and starts afresh at the next period", () => {
  let now = at("2026-12-03T23:59:00Z");
  const quota = new ByteQuota({ bytes: 1000, period: "day" }, { now: () => now });
  quota.consume(600);
  assert.equal(quota.remaining, 400);
  quota.consume(600);
  assert.equal(quota.remaining, 0);
  assert.equal(quota.used, 1200);
  now = at("2026-12-04T00:00:01Z");
  assert.equal(quota.remaining, 1000);
});
