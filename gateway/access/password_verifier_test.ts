import assert from "node:assert/strict";
import { type DeriveKey, hashPassword, scryptDerive } from "../config/password.ts";
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
    // Each from its own client key: the global cap, not a key's share, is under test.
    (_, i) =>
      verifier.check(i % 2 ? "alice" : "nobody", i === 299 ? "right" : `wrong${i}`, `k${i}`),
  );
  // Beyond 2 running and 5 queued, the other 293 are refused unchecked: each newcomer (its key
  // holding none) may displace one of the single waiters, but the queue never grows. Each is
  // "crowded" (the queue full of other keys), not "busy" (no key was over its own share).
  release.resolve();
  const verdicts = await Promise.all(checks);
  assert.equal(verdicts.filter((verdict) => verdict === "crowded").length, 293);
  // The last newcomer (the only right password) always gets a place.
  assert.equal(verdicts[299], "accepted");
  assert.equal(verdicts.filter((verdict) => verdict === "rejected").length, 6);
  assert.equal(stats.calls, 7);
  assert.equal(stats.peak, 2);
  assert.equal(verifier.peak, 2);
  assert.equal(verifier.slots, 2);
  // Slots are all given back.
  assert.equal(await verifier.check("alice", "wrong"), "rejected");
});

/** A derive hook whose derivations each wait for a `release()` (so a test decides the order). */
function steppedDerive() {
  const held: (() => void)[] = [];
  let calls = 0;
  const derive: DeriveKey = async (password, params, length) => {
    calls++;
    await new Promise<void>((resolve) => held.push(resolve));
    return await scryptDerive(password, params, length);
  };
  const tick = () => new Promise((resolve) => setTimeout(resolve, 1));
  return {
    derive,
    get calls() {
      return calls;
    },
    /** Waits (bounded) until `count` derivations are held. */
    async waitHeld(count: number) {
      for (let i = 0; i < 5000 && held.length < count; i++) await tick();
      assert.equal(held.length, count);
    },
    /** Lets every held derivation finish. */
    release() {
      for (const resolve of held.splice(0)) resolve();
    },
    /** Releases derivations one batch at a time until `done` settles (bounded). */
    async drain(done: Promise<unknown>) {
      let settled = false;
      done.finally(() => settled = true);
      for (let i = 0; i < 5000 && !settled; i++) {
        this.release();
        await tick();
      }
      assert.ok(settled, "every check settled");
    },
  };
}

Deno.test("PasswordVerifier is fair: a flood from one key does not keep another key's login out", async () => {
  const slow = steppedDerive();
  const verifier = new PasswordVerifier([{ name: "alice", passwordHash: HASH }], {
    derive: slow.derive,
    maxConcurrent: 2,
    maxQueued: 32,
  });
  // 200 unknown-user logins from one /64, all at once: 1 runs, 2 wait, the rest are busy.
  const flood = Array.from({ length: 200 }, (_, i) => verifier.check("mallory", `x${i}`, "A"));
  const floodBusy = await Promise.all(flood.slice(3));
  assert.ok(floodBusy.every((verdict) => verdict === "busy"));
  // The legitimate client, another key, is served at once by the free slot.
  const alice = verifier.check("alice", "right", "B");
  await slow.waitHeld(2);
  slow.release();
  assert.equal(await alice, "accepted");
  await slow.drain(Promise.all(flood));
  assert.deepEqual(await Promise.all(flood.slice(0, 3)), ["rejected", "rejected", "rejected"]);
  assert.equal(slow.calls, 4);
});

Deno.test("PasswordVerifier is fair when many keys flood: another key still gets a queue place", async () => {
  const slow = steppedDerive();
  const verifier = new PasswordVerifier([{ name: "alice", passwordHash: HASH }], {
    derive: slow.derive,
    maxConcurrent: 2,
    maxQueued: 4,
  });
  // Two flooding keys take both slots and fill the queue (2 waiting each).
  const flood = ["A", "B"].flatMap((key) =>
    Array.from({ length: 10 }, (_, i) => verifier.check("mallory", `${key}${i}`, key))
  );
  await slow.waitHeld(2);
  // A third key gets a queue place: a flooder's newest waiter is displaced (refused busy), and
  // the next free slot goes to it (round-robin), before the flooders' other waiters.
  const alice = verifier.check("alice", "right", "C");
  slow.release();
  await slow.waitHeld(2);
  slow.release();
  assert.equal(await alice, "accepted");
  await slow.drain(Promise.all(flood));
  const counted: Record<string, number> = {};
  for (const verdict of await Promise.all(flood)) counted[verdict] = (counted[verdict] ?? 0) + 1;
  assert.deepEqual(counted, { rejected: 5, busy: 15 });
});

Deno.test("PasswordVerifier hands freed slots round-robin over the keys", async () => {
  const slow = steppedDerive();
  const order: string[] = [];
  const verifier = new PasswordVerifier([{ name: "alice", passwordHash: HASH }], {
    derive: slow.derive,
    maxConcurrent: 1,
  });
  const checks = ["A", "A", "A", "B", "C"].map((key, i) =>
    verifier.check("u", `p${i}`, key).then(() => order.push(key))
  );
  await slow.drain(Promise.all(checks));
  assert.deepEqual(order, ["A", "B", "C", "A", "A"]);
});

Deno.test("PasswordVerifier: same credentials at once share one derivation", async () => {
  const slow = steppedDerive();
  const verifier = new PasswordVerifier([{ name: "alice", passwordHash: HASH }], {
    derive: slow.derive,
    maxConcurrent: 1,
    recentTtlMs: 0,
  });
  const logins = Array.from({ length: 20 }, () => verifier.check("alice", "right", "A"));
  const guesses = Array.from({ length: 5 }, () => verifier.check("mallory", "guess", "A"));
  await slow.drain(Promise.all([...logins, ...guesses]));
  assert.ok((await Promise.all(logins)).every((verdict) => verdict === "accepted"));
  assert.ok((await Promise.all(guesses)).every((verdict) => verdict === "rejected"));
  assert.equal(slow.calls, 2);
});
Deno.test("PasswordVerifier remembers recent successes only: a wrong password still costs a derivation", async () => {
  let now = 0;
  const { stats, derive } = countingDerive();
  const verifier = new PasswordVerifier([{ name: "alice", passwordHash: HASH }], {
    derive,
    recentTtlMs: 1000,
    recentMax: 1,
    now: () => now,
  });
  assert.equal(await verifier.check("alice", "right", "A"), "accepted");
  assert.equal(stats.calls, 1);
  // Remembered: another client with the right password skips scrypt, and so the queue.
  assert.equal(await verifier.check("alice", "right", "B"), "accepted");
  assert.equal(stats.calls, 1);
  assert.equal(verifier.recentHits, 1);
  // Wrong passwords, near misses and other names are checked in full, like before.
  for (const [user, password] of [["alice", "wrong"], ["alice", "righ"], ["alice", "right "]]) {
    assert.equal(await verifier.check(user!, password!, "A"), "rejected");
  }
  assert.equal(await verifier.check("mallory", "right", "A"), "rejected");
  assert.equal(stats.calls, 5);
  // The memory expires.
  now = 1001;
  assert.equal(await verifier.check("alice", "right", "A"), "accepted");
  assert.equal(stats.calls, 6);
  assert.equal(verifier.recentHits, 1);
});

Deno.test("PasswordVerifier's recent-success memory is bounded", async () => {
  const { stats, derive } = countingDerive();
  const h2 = await hashPassword("two", { N: 1024 });
  const verifier = new PasswordVerifier(
    [{ name: "alice", passwordHash: HASH }, { name: "bob", passwordHash: h2 }],
    { derive, recentMax: 1 },
  );
  assert.equal(await verifier.check("alice", "right"), "accepted");
  assert.equal(await verifier.check("bob", "two"), "accepted"); // evicts alice
  assert.equal(await verifier.check("bob", "two"), "accepted");
  assert.equal(stats.calls, 2);
  assert.equal(await verifier.check("alice", "right"), "accepted");
  assert.equal(stats.calls, 3);
});

Deno.test("PasswordVerifier's recent-success memory keeps the name and the password apart", async () => {
  const verifier = new PasswordVerifier([
    { name: "alice", passwordHash: await hashPassword("a\0b", { N: 1024 }) },
    { name: "alice\0a", passwordHash: await hashPassword("other", { N: 1024 }) },
  ]);
  assert.equal(await verifier.check("alice", "a\0b"), "accepted");
  // The same characters split elsewhere are another user's login, checked in full.
  assert.equal(await verifier.check("alice\0a", "b"), "rejected");
  assert.equal(verifier.recentHits, 0);
});

Deno.test("PasswordVerifier: many /64s of one /48 with one waiter each do not keep a newcomer out (review R3)", async () => {
  const slow = steppedDerive();
  const verifier = new PasswordVerifier([{ name: "alice", passwordHash: HASH }], {
    derive: slow.derive,
    maxConcurrent: 2,
    maxQueued: 32,
  });
  // 34 keys (34 /64s of 2001:db8::/48), one wrong guess each: 2 run, 32 wait, the queue is full.
  const flood = Array.from(
    { length: 34 },
    (_, k) => verifier.check("alice", `guess${k}`, `2001:db8:0:${k.toString(16)}::/64`),
  );
  await slow.waitHeld(2);
  // The victim's key holds nothing: it gets a place (a waiter of the crowded /48 is displaced).
  const victim = verifier.check("alice", "right", "192.0.2.2");
  // Another /64 of the same /48 does not displace in turn: the /48 holds the most.
  assert.equal(await verifier.check("alice", "again", "2001:db8:0:ff::/64"), "crowded");
  await slow.drain(Promise.all([victim, ...flood]));
  assert.equal(await victim, "accepted");
  const counted: Record<string, number> = {};
  for (const verdict of await Promise.all(flood)) counted[verdict] = (counted[verdict] ?? 0) + 1;
  // The displaced attacker check was not over its own share: "crowded", not "busy".
  assert.deepEqual(counted, { rejected: 33, crowded: 1 });
});

Deno.test("PasswordVerifier: a full queue of single waiters still takes a newcomer holding none", async () => {
  const slow = steppedDerive();
  const verifier = new PasswordVerifier([{ name: "alice", passwordHash: HASH }], {
    derive: slow.derive,
    maxConcurrent: 1,
    maxQueued: 4,
  });
  // Five IPv4 clients, one check each: 1 runs, 4 wait, each key alone in its group.
  const flood = Array.from(
    { length: 5 },
    (_, k) => verifier.check("u", `p${k}`, `198.51.100.${k}`),
  );
  await slow.waitHeld(1);
  const victim = verifier.check("alice", "right", "192.0.2.2");
  await slow.drain(Promise.all([victim, ...flood]));
  assert.equal(await victim, "accepted");
  const verdicts = await Promise.all(flood);
  assert.equal(verdicts.filter((verdict) => verdict === "crowded").length, 1);
  assert.equal(verdicts.filter((verdict) => verdict === "busy").length, 0);
});

Deno.test("PasswordVerifier: a key under its own share facing a full queue is crowded, not busy", async () => {
  const slow = steppedDerive();
  const verifier = new PasswordVerifier([{ name: "alice", passwordHash: HASH }], {
    derive: slow.derive,
    maxConcurrent: 1,
    maxQueued: 1,
  });
  const a = [0, 1, 2, 3].map((i) => verifier.check("u", `a${i}`, "A"));
  await slow.waitHeld(1);
  // A: 1 running + 1 waiting fills the queue; A is under its share (1 + 2), so not busy.
  assert.equal(await a[2], "crowded");
  assert.equal(await a[3], "crowded");
  // B holds nothing, but A's one waiter is not more than B could hold: a tie, displaced.
  const b = verifier.check("u", "b", "B");
  assert.equal(await a[1], "crowded");
  await slow.drain(Promise.all([...a, b]));
  assert.equal(await b, "rejected");
});
