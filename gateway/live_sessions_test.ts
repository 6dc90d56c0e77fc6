import assert from "node:assert/strict";
import { parseIp } from "../net/address.ts";
import { parseConfig } from "./config/load.ts";
import { LiveSessions, reloadVerdict } from "./live_sessions.ts";
import { GatewayMetrics } from "./observe/metrics.ts";
import type { RuleSubject } from "./access/rules.ts";
import { type GatewayCore, type Generation, wireServices } from "./wiring.ts";

const core: GatewayCore = {
  metrics: new GatewayMetrics(),
  shutdown: new AbortController().signal,
  record: () => {},
  reserveDescriptors: () => () => {},
};

const USERS = `auth:
  users:
    - { name: alice, password: a-secret }
    - { name: bob, password: b-secret }
`;

function wire(yaml: string, previous?: Generation): Generation {
  return wireServices(parseConfig(`listen: ["127.0.0.1:0"]\n${yaml}`), core, {
    number: previous ? previous.number + 1 : 1,
    ...(previous && { previous }),
  });
}

const toPort = (port: number): RuleSubject => ({
  client: parseIp("127.0.0.1")!,
  clientIsLocal: true,
  command: "connect",
  port,
  address: parseIp("192.0.2.7")!,
});

Deno.test("reloadVerdict() closes a removed user's session and a changed password's, keeps the rest", () => {
  const first = wire(USERS);
  const next = wire(
    `auth:\n  users:\n    - { name: alice, password: a-secret }\n    - { name: carol, password: c }\n`,
    first,
  );
  assert.equal(reloadVerdict(first, { user: "alice" }, next), null);
  assert.equal(reloadVerdict(first, { user: "bob" }, next), "user_removed");
  const changed = wire(
    `auth:\n  users:\n    - { name: alice, password: new-secret }\n    - { name: bob, password: b-secret }\n`,
    first,
  );
  assert.equal(reloadVerdict(first, { user: "alice" }, changed), "password_changed");
  assert.equal(reloadVerdict(first, { user: "bob" }, changed), null);
  // No user: authentication off before, nothing to compare.
  assert.equal(reloadVerdict(first, {}, changed), null);
});

Deno.test("reloadVerdict() applies the new rules to a live relay only with reload.recheck", () => {
  const first = wire("");
  const deny = `rules:\n  - { action: deny, ports: [25] }\n  - { action: allow }\n`;
  const without = wire(deny, first);
  assert.equal(reloadVerdict(first, { subject: toPort(25) }, without), null);
  const recheck = wire(`${deny}reload: { recheck: true }\n`, first);
  assert.equal(reloadVerdict(first, { subject: toPort(25) }, recheck), "recheck");
  assert.equal(reloadVerdict(first, { subject: toPort(80) }, recheck), null);
});

Deno.test("LiveSessions.sweep() closes, once, the sessions the next generation refuses", () => {
  let current = wire(USERS);
  const closedWith: string[] = [];
  const live = new LiveSessions({
    current: () => current,
    onClose: (reason, info) => closedWith.push(`${info.user}:${reason}`),
  });
  const conns = [{}, {}, {}] as Deno.TcpConn[];
  const closes = [0, 0, 0];
  const untrack = conns.map((conn, i) => live.add(conn, current, () => closes[i]!++));
  live.note(conns[0]!, { user: "alice" });
  live.note(conns[1]!, { user: "bob" });
  const next = wire(`auth:\n  users:\n    - { name: alice, password: a-secret }\n`, current);
  current = next;
  assert.equal(live.sweep(next), 1);
  assert.equal(live.sweep(next), 0, "a closed session is not closed twice");
  assert.deepEqual(closes, [0, 1, 0]);
  assert.deepEqual(closedWith, ["bob:user_removed"]);
  untrack.forEach((remove) => remove());
  assert.equal(live.size, 0);
});

Deno.test("LiveSessions.note() judges at once a login that finishes after a reload", () => {
  let current = wire(USERS);
  const live = new LiveSessions({ current: () => current, onClose: () => {} });
  const conn = {} as Deno.TcpConn;
  let closed = 0;
  live.add(conn, current, () => closed++);
  // The reload comes while bob's password check (under the old users) is in flight.
  current = wire(`auth:\n  users:\n    - { name: alice, password: a-secret }\n`, current);
  live.sweep(current);
  assert.equal(closed, 0);
  live.note(conn, { user: "bob" });
  assert.equal(closed, 1);
});

Deno.test("wireServices() keeps the resolver, password checks and limiter when their sections stay", () => {
  const first = wire(`${USERS}resolver: { hosts: { a.test: ["192.0.2.1"] } }\n`);
  const same = wire(
    `${USERS}resolver: { hosts: { a.test: ["192.0.2.1"] } }\nlog: { level: debug }\n`,
    first,
  );
  assert.equal(same.resolver, first.resolver);
  assert.equal(same.passwords, first.passwords);
  assert.equal(same.authFailures, first.authFailures);
  assert.notEqual(same.services, first.services, "a new generation has its own services");
  const changed = wire(
    `auth:\n  users: [{ name: alice, password: other }]\nresolver: { hosts: { a.test: ["192.0.2.2"] } }\n` +
      `limits: { auth_failures_per_minute: 3 }\n`,
    first,
  );
  assert.notEqual(changed.resolver, first.resolver);
  assert.notEqual(changed.passwords, first.passwords);
  assert.notEqual(changed.authFailures, first.authFailures);
  assert.equal(first.services.users.has("bob"), true, "the old generation is left as it was");
  assert.equal(changed.services.users.has("bob"), false);
});

Deno.test("wireServices() keeps the translation service (its announced data connections) when translators stay", () => {
  const first = wire("translators: [{ type: ftp }]\n");
  const same = wire("translators: [{ type: ftp }]\nrules: [{ action: allow }]\n", first);
  assert.equal(same.services.translation, first.services.translation);
  assert.equal(first.translationUses.services, same.services, "data channels use the newest rules");
  const changed = wire("translators: [{ type: ftp, ports: [2121] }]\n", same);
  assert.notEqual(changed.services.translation, same.services.translation);
});
