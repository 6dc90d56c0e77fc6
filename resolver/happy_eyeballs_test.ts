import assert from "node:assert/strict";
import { formatIp, type IpAddress, parseIp } from "../net/address.ts";
import { AllAttemptsFailedError, connectHappyEyeballs, orderAddresses } from "./happy_eyeballs.ts";

function ip(text: string): IpAddress {
  const address = parseIp(text);
  if (!address) throw new TypeError(`bad test address ${text}`);
  return address;
}

const V6 = [ip("2001:db8::1"), ip("2001:db8::2"), ip("2001:db8::3")];
const V4 = [ip("192.0.2.1"), ip("192.0.2.2")];

function show(addresses: readonly IpAddress[]): string[] {
  return addresses.map(formatIp);
}

Deno.test("orderAddresses() interleaves starting with IPv6 for happy-eyeballs", () => {
  assert.deepEqual(show(orderAddresses({ v4: V4, v6: V6 }, "happy-eyeballs")), [
    "2001:db8::1",
    "192.0.2.1",
    "2001:db8::2",
    "192.0.2.2",
    "2001:db8::3",
  ]);
  assert.deepEqual(show(orderAddresses({ v4: V4, v6: [] }, "happy-eyeballs")), show(V4));
});

Deno.test("orderAddresses() puts the preferred family first for ipv6 and ipv4", () => {
  assert.deepEqual(show(orderAddresses({ v4: V4, v6: V6 }, "ipv6")), show([...V6, ...V4]));
  assert.deepEqual(show(orderAddresses({ v4: V4, v6: V6 }, "ipv4")), show([...V4, ...V6]));
});

Deno.test("orderAddresses() keeps only one family for ipv6-only and ipv4-only", () => {
  assert.deepEqual(show(orderAddresses({ v4: V4, v6: V6 }, "ipv6-only")), show(V6));
  assert.deepEqual(show(orderAddresses({ v4: V4, v6: V6 }, "ipv4-only")), show(V4));
  assert.deepEqual(orderAddresses({ v4: V4, v6: [] }, "ipv6-only"), []);
});

interface Plan {
  /** Milliseconds until the attempt settles. */
  readonly ms: number;
  /** Resolve (true) or reject (false). */
  readonly ok: boolean;
  /** Settle on schedule even when aborted (a connect that completes anyway). */
  readonly ignoreAbort?: boolean;
}

interface Started {
  readonly address: string;
  readonly at: number;
  readonly signal: AbortSignal;
}

/** A fake connector: each address settles after its plan's delay; aborts clear its timer. */
function fakeConnector(plans: Record<string, Plan>) {
  const origin = performance.now();
  const started: Started[] = [];
  const attempt = (address: IpAddress, signal: AbortSignal) => {
    const text = formatIp(address);
    const plan = plans[text];
    if (!plan) throw new Error(`no plan for ${text}`);
    started.push({ address: text, at: performance.now() - origin, signal });
    return new Promise<string>((resolve, reject) => {
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal.reason);
      };
      const timer = setTimeout(() => {
        signal.removeEventListener("abort", onAbort);
        if (plan.ok) resolve(`conn:${text}`);
        else reject(new Error(`refused by ${text}`));
      }, plan.ms);
      if (!plan.ignoreAbort) signal.addEventListener("abort", onAbort, { once: true });
    });
  };
  return { attempt, started };
}

Deno.test("connectHappyEyeballs() returns the first success without starting more", async () => {
  const { attempt, started } = fakeConnector({
    "2001:db8::1": { ms: 1, ok: true },
    "192.0.2.1": { ms: 1, ok: true },
  });
  const result = await connectHappyEyeballs([V6[0]!, V4[0]!], attempt, { attemptDelayMs: 30 });
  assert.equal(result.value, "conn:2001:db8::1");
  assert.equal(formatIp(result.address), "2001:db8::1");
  assert.equal(started.length, 1);
});

Deno.test("connectHappyEyeballs() staggers attempts by attemptDelayMs and aborts the loser", async () => {
  const { attempt, started } = fakeConnector({
    "2001:db8::1": { ms: 10_000, ok: true },
    "192.0.2.1": { ms: 1, ok: true },
  });
  const result = await connectHappyEyeballs([V6[0]!, V4[0]!], attempt, { attemptDelayMs: 30 });
  assert.equal(formatIp(result.address), "192.0.2.1");
  assert.equal(started.length, 2);
  const gap = started[1]!.at - started[0]!.at;
  assert.ok(gap >= 25 && gap < 1000, `second attempt started after ${gap} ms`);
  assert.equal(started[0]!.signal.aborted, true);
  assert.equal(started[1]!.signal.aborted, false);
});

Deno.test("connectHappyEyeballs() starts the next attempt at once when one fails", async () => {
  const { attempt, started } = fakeConnector({
    "2001:db8::1": { ms: 5, ok: false },
    "192.0.2.1": { ms: 1, ok: true },
  });
  const result = await connectHappyEyeballs([V6[0]!, V4[0]!], attempt, { attemptDelayMs: 5_000 });
  assert.equal(formatIp(result.address), "192.0.2.1");
  const gap = started[1]!.at - started[0]!.at;
  assert.ok(gap < 1000, `second attempt started after ${gap} ms`);
});

Deno.test("connectHappyEyeballs() closes a loser that succeeds after the winner", async () => {
  const { attempt } = fakeConnector({
    "2001:db8::1": { ms: 60, ok: true, ignoreAbort: true },
    "192.0.2.1": { ms: 1, ok: true },
  });
  const { promise: closedPromise, resolve: closed } = Promise.withResolvers<string>();
  const result = await connectHappyEyeballs([V6[0]!, V4[0]!], attempt, {
    attemptDelayMs: 20,
    close: closed,
  });
  assert.equal(result.value, "conn:192.0.2.1");
  assert.equal(await closedPromise, "conn:2001:db8::1");
});

Deno.test("connectHappyEyeballs() rejects with every error when all attempts fail", async () => {
  const { attempt, started } = fakeConnector({
    "2001:db8::1": { ms: 40, ok: false },
    "192.0.2.1": { ms: 5, ok: false },
  });
  const error = await connectHappyEyeballs([V6[0]!, V4[0]!], attempt, { attemptDelayMs: 10 })
    .then(() => assert.fail("should reject"), (e: unknown) => e);
  assert.ok(error instanceof AllAttemptsFailedError);
  assert.ok(error instanceof AggregateError);
  assert.equal(started.length, 2);
  assert.deepEqual(error.errors.map((e) => (e as Error).message), [
    "refused by 2001:db8::1",
    "refused by 192.0.2.1",
  ]);
  // The IPv6 attempt failed last, though it was started first.
  assert.equal((error.lastError as Error).message, "refused by 2001:db8::1");
  assert.deepEqual(show(error.addresses), ["2001:db8::1", "192.0.2.1"]);
  assert.match(error.message, /^Cannot connect: all 2 attempts failed/);
});

Deno.test("connectHappyEyeballs() runs one attempt at a time when sequential", async () => {
  const { attempt, started } = fakeConnector({
    "2001:db8::1": { ms: 50, ok: false },
    "192.0.2.1": { ms: 1, ok: true },
  });
  const result = await connectHappyEyeballs([V6[0]!, V4[0]!], attempt, {
    attemptDelayMs: 5,
    sequential: true,
  });
  assert.equal(formatIp(result.address), "192.0.2.1");
  const gap = started[1]!.at - started[0]!.at;
  assert.ok(gap >= 45, `second attempt started after ${gap} ms`);
});

Deno.test("connectHappyEyeballs() treats a synchronous throw as a failed attempt", async () => {
  const result = await connectHappyEyeballs(
    [V6[0]!, V4[0]!],
    (address) => {
      if (address.family === 6) throw new Error("no route");
      return Promise.resolve("ok");
    },
    { attemptDelayMs: 5_000 },
  );
  assert.equal(result.address.family, 4);
});

Deno.test("connectHappyEyeballs() rejects with the signal's reason and aborts attempts", async () => {
  const { attempt, started } = fakeConnector({
    "2001:db8::1": { ms: 10_000, ok: true },
    "192.0.2.1": { ms: 10_000, ok: true },
  });
  const controller = new AbortController();
  const racing = connectHappyEyeballs([V6[0]!, V4[0]!], attempt, {
    attemptDelayMs: 5_000,
    signal: controller.signal,
  });
  controller.abort(new Error("client left"));
  await assert.rejects(racing, { message: "client left" });
  assert.equal(started.length, 1);
  assert.equal(started[0]!.signal.aborted, true);
  await assert.rejects(
    connectHappyEyeballs([V4[0]!], attempt, { signal: controller.signal }),
    { message: "client left" },
  );
});

Deno.test("connectHappyEyeballs() rejects an empty address list", async () => {
  const error = await connectHappyEyeballs([], () => Promise.resolve(1))
    .then(() => assert.fail("should reject"), (e: unknown) => e);
  assert.ok(error instanceof AllAttemptsFailedError);
  assert.deepEqual(error.errors, []);
  assert.equal(error.lastError, undefined);
});

/** An address source for `more`: each batch is released by calling `push`; `end` finishes it. */
function lateSource() {
  const batches: (readonly IpAddress[] | null)[] = [];
  let wake: (() => void) | undefined;
  const push = (batch: readonly IpAddress[] | null) => {
    batches.push(batch);
    wake?.();
  };
  async function* source(): AsyncGenerator<readonly IpAddress[]> {
    while (true) {
      while (batches.length === 0) await new Promise<void>((resolve) => wake = resolve);
      const batch = batches.shift()!;
      if (batch === null) return;
      yield batch;
    }
  }
  return { more: source(), push, end: () => push(null) };
}

const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("connectHappyEyeballs() tries addresses from more after the first ones failed", async () => {
  const { attempt, started } = fakeConnector({
    "192.0.2.1": { ms: 1, ok: false },
    "2001:db8::1": { ms: 1, ok: true },
  });
  const { more, push, end } = lateSource();
  const racing = connectHappyEyeballs([V4[0]!], attempt, { attemptDelayMs: 5_000, more });
  await tick(20);
  assert.deepEqual(started.map((s) => s.address), ["192.0.2.1"]);
  push([V6[0]!]);
  const result = await racing;
  assert.equal(formatIp(result.address), "2001:db8::1");
  end();
});

Deno.test("connectHappyEyeballs() waits for more when the list starts empty", async () => {
  const { attempt } = fakeConnector({ "2001:db8::1": { ms: 1, ok: true } });
  const { more, push, end } = lateSource();
  const racing = connectHappyEyeballs([], attempt, { more });
  await tick(5);
  push([V6[0]!]);
  assert.equal(formatIp((await racing).address), "2001:db8::1");
  end();
});

Deno.test("connectHappyEyeballs() fails only once more ends, with every attempt's error", async () => {
  const { attempt } = fakeConnector({
    "192.0.2.1": { ms: 1, ok: false },
    "2001:db8::1": { ms: 1, ok: false },
  });
  const { more, push, end } = lateSource();
  let done = false;
  const racing = connectHappyEyeballs([V4[0]!], attempt, { more }).finally(() => done = true);
  racing.catch(() => {});
  await tick(20);
  assert.equal(done, false);
  push([V6[0]!, V4[0]!]);
  await tick(20);
  assert.equal(done, false);
  end();
  const error = await racing.then(() => assert.fail("should reject"), (e: unknown) => e);
  assert.ok(error instanceof AllAttemptsFailedError);
  assert.deepEqual(show(error.addresses), ["192.0.2.1", "2001:db8::1"]);
  assert.equal(error.errors.length, 2);
});

Deno.test("connectHappyEyeballs() ends with the attempts' errors when more throws", async () => {
  const { attempt } = fakeConnector({ "192.0.2.1": { ms: 1, ok: false } });
  async function* failing(): AsyncGenerator<readonly IpAddress[]> {
    await tick(10);
    yield [];
    throw new Error("lookup failed");
  }
  const error = await connectHappyEyeballs([V4[0]!], attempt, { more: failing() })
    .then(() => assert.fail("should reject"), (e: unknown) => e);
  assert.ok(error instanceof AllAttemptsFailedError);
  assert.equal((error.lastError as Error).message, "refused by 192.0.2.1");
});

Deno.test("connectHappyEyeballs() sorts late addresses into the untried ones, other family first", async () => {
  const { attempt, started } = fakeConnector({
    "192.0.2.1": { ms: 10_000, ok: true },
    "192.0.2.2": { ms: 10_000, ok: true },
    "2001:db8::1": { ms: 10_000, ok: true },
    "2001:db8::2": { ms: 1, ok: true },
  });
  const { more, push, end } = lateSource();
  const racing = connectHappyEyeballs([V4[0]!, V4[1]!], attempt, { attemptDelayMs: 40, more });
  push([V6[0]!, V6[1]!, V4[0]!]);
  const result = await racing;
  end();
  assert.equal(formatIp(result.address), "2001:db8::2");
  // IPv4 was tried last, so IPv6 comes next; then interleaved; the repeat of 192.0.2.1 is dropped.
  assert.deepEqual(started.map((s) => s.address), [
    "192.0.2.1",
    "2001:db8::1",
    "192.0.2.2",
    "2001:db8::2",
  ]);
  assert.ok(started.slice(0, 3).every((s) => s.signal.aborted));
});

Deno.test("connectHappyEyeballs() keeps the attempt delay for addresses that arrive while one runs", async () => {
  const { attempt, started } = fakeConnector({
    "2001:db8::1": { ms: 10_000, ok: true },
    "192.0.2.1": { ms: 1, ok: true },
  });
  const { more, push, end } = lateSource();
  const racing = connectHappyEyeballs([V6[0]!], attempt, { attemptDelayMs: 60, more });
  push([V4[0]!]);
  const result = await racing;
  end();
  assert.equal(formatIp(result.address), "192.0.2.1");
  const gap = started[1]!.at - started[0]!.at;
  assert.ok(gap >= 50 && gap < 1000, `second attempt started after ${gap} ms`);
});

Deno.test("connectHappyEyeballs() drops late addresses of a family prefer excludes", async () => {
  const { attempt, started } = fakeConnector({ "192.0.2.1": { ms: 1, ok: false } });
  const { more, push, end } = lateSource();
  const racing = connectHappyEyeballs([V4[0]!], attempt, { more, prefer: "ipv4-only" });
  racing.catch(() => {});
  push([V6[0]!]);
  end();
  await assert.rejects(racing, AllAttemptsFailedError);
  assert.deepEqual(started.map((s) => s.address), ["192.0.2.1"]);
});

Deno.test("connectHappyEyeballs() ignores addresses that arrive after the race is won", async () => {
  const { attempt, started } = fakeConnector({ "192.0.2.1": { ms: 1, ok: true } });
  const { more, push, end } = lateSource();
  const result = await connectHappyEyeballs([V4[0]!], attempt, { more });
  push([V6[0]!]);
  await tick(10);
  end();
  assert.equal(formatIp(result.address), "192.0.2.1");
  assert.equal(started.length, 1);
});
