import assert from "node:assert/strict";
import { AuthFailureLimiter } from "../limits/auth_limiter.ts";
import { clientKey } from "./client_key.ts";
import { checkLogin, type LoginGate } from "./login_gate.ts";
import type { PasswordVerdict } from "./password_verifier.ts";
import { parseIp } from "../../net/address.ts";

function gate(verdicts: (username: string) => PasswordVerdict) {
  const counted = { auth_failures: 0, auth_busy: 0, failures: 0, checks: 0 };
  const limiter = new AuthFailureLimiter(3, { now: () => 0 });
  const value: LoginGate = {
    limiter,
    check: (username) => {
      counted.checks++;
      return Promise.resolve(verdicts(username));
    },
    countRejection: (limit) => counted[limit]++,
    countFailure: () => counted.failures++,
  };
  return { gate: value, limiter, counted };
}

Deno.test("checkLogin() counts a busy refusal as a failed login, so a flooder gets blocked", async () => {
  const { gate: g, limiter, counted } = gate((user) => user === "alice" ? "accepted" : "busy");
  const signal = new AbortController().signal;
  const verdicts = [];
  for (let i = 0; i < 5; i++) verdicts.push(await checkLogin(g, "A", "mallory", "x", signal));
  assert.deepEqual(verdicts, ["busy", "busy", "busy", "blocked", "blocked"]);
  assert.equal(counted.checks, 3);
  assert.deepEqual([counted.auth_busy, counted.auth_failures, counted.failures], [3, 2, 0]);
  assert.ok(limiter.isBlocked("A"));
  // Another key is not affected; a success is not a failure.
  assert.equal(await checkLogin(g, "B", "alice", "right", signal), "accepted");
  assert.ok(!limiter.isBlocked("B"));
});

Deno.test("checkLogin() does not count a crowded refusal (the queue full of other keys) as a failed login", async () => {
  const { gate: g, limiter, counted } = gate((user) => user === "alice" ? "accepted" : "crowded");
  const signal = new AbortController().signal;
  const verdicts = [];
  for (let i = 0; i < 5; i++) verdicts.push(await checkLogin(g, "V", "victim", "right", signal));
  assert.deepEqual(verdicts, ["busy", "busy", "busy", "busy", "busy"]);
  assert.deepEqual([counted.auth_busy, counted.auth_failures, counted.failures], [5, 0, 0]);
  assert.ok(!limiter.isBlocked("V"));
  assert.equal(await checkLogin(g, "V", "alice", "right", signal), "accepted");
});

Deno.test("checkLogin() keyed by /64: an IPv6 client's other addresses share its limit", async () => {
  const { gate: g, limiter } = gate(() => "rejected");
  const signal = new AbortController().signal;
  for (let i = 1; i <= 3; i++) {
    const key = clientKey(parseIp(`2001:db8:1::1:${i}`)!);
    assert.equal(await checkLogin(g, key, "mallory", "x", signal), "rejected");
  }
  const fourth = clientKey(parseIp("2001:db8:1::99")!);
  assert.equal(await checkLogin(g, fourth, "mallory", "x", signal), "blocked");
  assert.ok(limiter.isBlocked(clientKey(parseIp("2001:db8:1::2")!)));
  assert.ok(!limiter.isBlocked(clientKey(parseIp("2001:db8:1:1::2")!)));
});
