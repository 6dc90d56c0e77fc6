import assert from "node:assert/strict";
import { parseIp } from "../net/address.ts";
import type { SocksTarget } from "../socks5/types.ts";
import { ExpectationRegistry } from "./expectations.ts";
import type { ExpectOptions } from "./types.ts";

const client = { address: parseIp("192.0.2.1")!, user: null };
const name = (text: string, port: number): SocksTarget => ({
  address: { family: "name", name: text },
  port,
});
const ip = (text: string, port: number): SocksTarget => ({ address: parseIp(text)!, port });

function options(
  targets: SocksTarget[],
  ttlMs = 1000,
  signal = new AbortController().signal,
): ExpectOptions {
  return {
    targets,
    ttlMs,
    signal,
    relaySignal: signal,
    open: () => Promise.reject(new Error("unused")),
  };
}

Deno.test("ExpectationRegistry.take() matches any target once, names case-insensitively", () => {
  const table = new ExpectationRegistry();
  table.register(client, options([name("Ftp.Example.", 50000), ip("198.51.100.1", 50000)]));
  assert.equal(table.take(client, name("ftp.example", 50001)), undefined);
  assert.equal(
    table.take({ address: parseIp("192.0.2.2")!, user: null }, name("ftp.example", 50000)),
    undefined,
  );
  assert.ok(table.take(client, ip("198.51.100.1", 50000)));
  assert.equal(table.take(client, name("ftp.example", 50000)), undefined);
  assert.equal(table.size, 0);
});

Deno.test("ExpectationRegistry.take() treats an address sent as a name as that address", () => {
  const table = new ExpectationRegistry();
  table.register(client, options([ip("2001:db8::1", 40000)]));
  assert.ok(table.take(client, name("[2001:DB8::1]", 40000)));
});

Deno.test("ExpectationRegistry expires entries and removes them on dispose and abort", () => {
  let now = 0;
  const table = new ExpectationRegistry({ now: () => now });
  table.register(client, options([name("a.example", 1)], 100));
  now = 100;
  assert.equal(table.take(client, name("a.example", 1)), undefined);
  const disposable = table.register(client, options([name("b.example", 1)]));
  disposable[Symbol.dispose]();
  assert.equal(table.take(client, name("b.example", 1)), undefined);
  const controller = new AbortController();
  table.register(client, options([name("c.example", 1)], 1000, controller.signal));
  controller.abort();
  assert.equal(table.take(client, name("c.example", 1)), undefined);
  assert.equal(table.size, 0);
});

Deno.test("ExpectationRegistry keeps at most maxPerClient entries per client", () => {
  const table = new ExpectationRegistry({ maxPerClient: 2 });
  for (const port of [1, 2, 3]) table.register(client, options([name("x.example", port)]));
  assert.equal(table.take(client, name("x.example", 1)), undefined);
  assert.ok(table.take(client, name("x.example", 3)));
});

Deno.test("ExpectationRegistry.take() never gives one user's expectation to another user of the same address", () => {
  const table = new ExpectationRegistry();
  const alice = { address: parseIp("::1")!, user: "alice" };
  table.register(alice, options([ip("127.0.0.1", 53346)]));
  // Another user, or no user at all, from the very same address: not the same principal.
  assert.equal(table.take({ ...alice, user: "bob" }, ip("127.0.0.1", 53346)), undefined);
  assert.equal(table.take({ ...alice, user: null }, ip("127.0.0.1", 53346)), undefined);
  // A user name that looks like a key separator forges nothing.
  assert.equal(table.take({ ...alice, user: 'alice"]' }, ip("127.0.0.1", 53346)), undefined);
  // Unaffected by those attempts, the owner still takes it, once.
  assert.ok(table.take(alice, ip("127.0.0.1", 53346)));
  assert.equal(table.take(alice, ip("127.0.0.1", 53346)), undefined);
});
