/**
 * Hot reload, in process: a config file re-read while hundreds of relays are live and new
 * clients keep coming. No live relay that should live is dropped (data goes through it intact
 * afterwards), no connection that either config accepts is refused, each change is seen by the
 * very next connection, and the exceptions (a removed user, a changed password, `recheck`) are
 * closed and counted. Listeners are added and removed around live relays.
 */
import assert from "node:assert/strict";
import { type IpEndpoint, parseIp } from "../../net/address.ts";
import {
  encodeGreeting,
  encodePasswordAuthRequest,
  encodeRequest,
  readMethodSelection,
  readPasswordAuthReply,
} from "../../socks5/codec.ts";
import type { ExactReader } from "../../socks5/exact_reader.ts";
import type { SocksTarget } from "../../socks5/types.ts";
import { loadConfigFile } from "../../gateway/config/load.ts";
import { type Gateway, startGateway } from "../../gateway/mod.ts";
import { sampleValue } from "../helpers/http_get.ts";
import { startTestGateway } from "./_fixtures.ts";
import {
  connectTo,
  echo,
  randomBytes,
  readerOf,
  readSocksReply,
  startServer,
  writeAll,
} from "./_fixtures.ts";

/** A gateway serving the config in a temp file, reloaded from it. */
async function startReloadable(yaml: string) {
  const dir = await Deno.makeTempDir();
  const file = `${dir}/dualgate.yaml`;
  await Deno.writeTextFile(file, yaml);
  const config = await loadConfigFile(file);
  let loaded = config;
  const gateway = startGateway(config, {
    loadConfig: async () => {
      loaded = await loadConfigFile(file);
      return loaded;
    },
    warnings: false,
  });
  return {
    gateway,
    file,
    write: (text: string) => Deno.writeTextFile(file, text),
    get loaded() {
      return loaded;
    },
    async [Symbol.asyncDispose]() {
      await gateway.stop(0);
      await Deno.remove(dir, { recursive: true });
    },
  };
}

function target(host: string, port: number): SocksTarget {
  return { address: parseIp(host) ?? { family: "name", name: host }, port };
}

interface Opened {
  readonly conn: Deno.TcpConn;
  readonly reader: ExactReader;
  readonly reply: number;
  readonly auth?: number;
}

/** Greeting, login (when `user` is given) and CONNECT; the connection is left open. */
async function socks(
  via: IpEndpoint,
  to: SocksTarget,
  user?: readonly [string, string],
): Promise<Opened> {
  const conn = await connectTo(via);
  const reader = readerOf(conn);
  try {
    await writeAll(conn, encodeGreeting({ methods: [user ? 2 : 0] }));
    const method = await readMethodSelection(reader);
    if (user) {
      assert.equal(method, 2);
      await writeAll(conn, encodePasswordAuthRequest({ username: user[0], password: user[1] }));
      const auth = await readPasswordAuthReply(reader);
      if (auth !== 0) return { conn, reader, reply: -1, auth };
    }
    await writeAll(conn, encodeRequest({ command: 1, target: to }));
    return { conn, reader, reply: (await readSocksReply(reader)).reply };
  } catch (error) {
    conn.close();
    throw error;
  }
}

/** Sends `bytes` through an open relay to the echo server and reads them back. */
async function echoes(opened: Opened, bytes: Uint8Array): Promise<boolean> {
  await writeAll(opened.conn, bytes);
  // The reader holds at most 1 KiB at once: read the echo back in pieces.
  for (let at = 0; at < bytes.length; at += 1000) {
    const back = await opened.reader.readExact(Math.min(1000, bytes.length - at), "echo");
    if (!back.every((byte, i) => byte === bytes[at + i])) return false;
  }
  return true;
}

/** True when the relay was closed by the gateway: the next read ends (EOF or reset). */
async function closedByGateway(opened: Opened): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  // A bound on a hang, not a timing assertion: a closed relay ends the read at once.
  const hung = new Promise<"hung">((resolve) => timer = setTimeout(() => resolve("hung"), 10_000));
  const read = (async () => {
    try {
      return await opened.conn.read(new Uint8Array(16)) === null ? "closed" : "data";
    } catch {
      return "closed";
    }
  })();
  const result = await Promise.race([read, hung]);
  clearTimeout(timer);
  return result === "closed";
}

function close(opened: Opened): void {
  try {
    opened.conn.close();
  } catch { /* closed */ }
}

function sample(gateway: Gateway, name: string): number | undefined {
  return sampleValue(gateway.metrics.render(), name);
}

const ALICE = ["alice", "a-secret"] as const;
const BOB = ["bob", "b-secret"] as const;
const CAROL = ["carol", "c-secret"] as const;

interface Shape {
  users: (readonly [string, string])[];
  denyPorts?: number[];
  hosts?: Record<string, string[]>;
  recheck?: boolean;
  listen?: string[];
  perClient?: number;
  /** Raw YAML appended (routes). */
  extra?: string;
}

function yamlOf(shape: Shape): string {
  const users = shape.users.map(([name, password]) =>
    `    - { name: ${name}, password: ${password} }`
  );
  return [
    `listen: ${JSON.stringify(shape.listen ?? ["127.0.0.1:0"])}`,
    "auth:",
    "  users:",
    ...users,
    `resolver: { hosts: ${JSON.stringify(shape.hosts ?? {})}, hosts_file: "" }`,
    "rules:",
    ...(shape.denyPorts ?? []).map((port) => `  - { action: deny, ports: [${port}] }`),
    "  - { action: allow }",
    `limits: { max_connections: 4000, max_connections_per_client: ${shape.perClient ?? 4000} }`,
    `reload: { recheck: ${shape.recheck ?? false} }`,
    shape.extra ?? "",
    "",
  ].join("\n");
}

Deno.test("reload under load: 300 live relays and a stream of new clients through 4 reloads", async () => {
  await using server = startServer("127.0.0.1", echo);
  await using canary = startServer("127.0.0.1", echo);
  const base: Shape = { users: [ALICE, BOB] };
  await using gw = await startReloadable(yamlOf(base));
  // The address clients were given at start: it must keep serving through every reload.
  const at = gw.gateway.endpoints[0]!;
  const via = () => at;
  const toEcho = target("127.0.0.1", server.port);

  // 200 relays of alice, 100 of bob, each proven with a round trip.
  const live: { opened: Opened; user: string }[] = [];
  for (let batch = 0; batch < 6; batch++) {
    const user = batch < 4 ? ALICE : BOB;
    const opened = await Promise.all(Array.from({ length: 50 }, () => socks(via(), toEcho, user)));
    for (const o of opened) {
      assert.equal(o.reply, 0);
      assert.ok(await echoes(o, randomBytes(100)));
      live.push({ opened: o, user: user[0] });
    }
  }
  assert.equal(live.length, 300);

  // A steady stream of new clients that both configs accept (alice, to the echo server).
  let streaming = true;
  let served = 0;
  const failures: string[] = [];
  const stream = async () => {
    while (streaming && failures.length < 5) {
      try {
        const o = await socks(via(), toEcho, ALICE);
        if (o.reply !== 0) failures.push(`reply ${o.reply}`);
        else if (!(await echoes(o, randomBytes(64)))) failures.push("echo differs");
        else served++;
        close(o);
      } catch (error) {
        failures.push(String(error));
      }
    }
  };
  const reload = async (shape: Shape) => {
    await gw.write(yamlOf(shape));
    const outcome = await gw.gateway.reload();
    assert.equal(outcome.result, "accepted", outcome.message);
    return outcome;
  };
  const servedBefore = () => served;
  const streams = [stream(), stream()];
  try {
    await underLoad();
  } finally {
    streaming = false;
    await Promise.all(streams);
    for (const { opened } of live) close(opened);
  }

  async function underLoad() {
    // 1: the canary's port denied: the very next connection gets REP 2.
    await reload({ ...base, denyPorts: [canary.port] });
    const denied = await socks(via(), target("127.0.0.1", canary.port), ALICE);
    assert.equal(denied.reply, 2);
    close(denied);

    // 2: a new user and a new static host: the next connection uses both.
    const before = await socks(via(), target("new.test", server.port), CAROL);
    assert.equal(before.auth, 1, "carol is not a user yet");
    close(before);
    await reload({ users: [ALICE, BOB, CAROL], hosts: { "new.test": ["127.0.0.1"] } });
    const carol = await socks(via(), target("new.test", server.port), CAROL);
    assert.equal(carol.reply, 0);
    assert.ok(await echoes(carol, randomBytes(100)));
    close(carol);
    // ... and the canary, no longer denied, is reached again.
    const allowed = await socks(via(), target("127.0.0.1", canary.port), ALICE);
    assert.equal(allowed.reply, 0);
    close(allowed);

    // 3: the same file again: a new generation, nothing closed.
    assert.equal((await reload({ users: [ALICE, BOB, CAROL] })).closed, 0);

    // 4: bob removed: his 100 sessions close, alice's 200 stay.
    const outcome = await reload({ users: [ALICE, CAROL] });
    assert.equal(outcome.closed, 100);
    // The stream goes on after the last reload (a bounded wait for 20 more clients).
    const waitFor = servedBefore() + 20;
    for (let i = 0; i < 1000 && served < waitFor && failures.length === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    streaming = false;
    await Promise.all(streams);

    assert.deepEqual(failures, [], "no connection refused that both configs accept");
    assert.ok(served > 0, "the stream was served");

    const bobs = live.filter((l) => l.user === "bob").map((l) => l.opened);
    const closedBobs = await Promise.all(bobs.map(closedByGateway));
    assert.equal(closedBobs.filter(Boolean).length, 100, "bob's relays are closed");
    for (const { opened } of live.filter((l) => l.user === "alice")) {
      assert.ok(await echoes(opened, randomBytes(4096)), "alice's relay carries data intact");
    }
  }
  assert.equal(gw.gateway.generation, 5);
  assert.equal(sample(gw.gateway, "dualgate_config_generation"), 5);
  assert.equal(sample(gw.gateway, 'dualgate_reloads_total{result="accepted"}'), 4);
  assert.equal(sample(gw.gateway, 'dualgate_reload_closed_total{reason="user_removed"}'), 100);
});

Deno.test("reload of an invalid config is refused with check's path-qualified error; the gateway goes on", async () => {
  await using server = startServer("127.0.0.1", echo);
  await using gw = await startReloadable(yamlOf({ users: [ALICE] }));
  await gw.write(
    yamlOf({ users: [ALICE] }).replace("max_connections: 4000", "max_connections: -1"),
  );
  const outcome = await gw.gateway.reload();
  assert.equal(outcome.result, "refused");
  assert.match(outcome.message, /^limits\.max_connections: /m);
  assert.equal(gw.gateway.generation, 1);
  assert.equal(sample(gw.gateway, 'dualgate_reloads_total{result="refused"}'), 1);
  const o = await socks(gw.gateway.endpoints[0]!, target("127.0.0.1", server.port), ALICE);
  assert.equal(o.reply, 0);
  assert.ok(await echoes(o, randomBytes(100)));
  close(o);
});

Deno.test("reload adds and removes listeners; an unchanged one and live relays are untouched", async () => {
  await using server = startServer("127.0.0.1", echo);
  await using gw = await startReloadable(yamlOf({ users: [ALICE] }));
  const [v4] = gw.gateway.endpoints;
  const toEcho = target("127.0.0.1", server.port);
  const relayed = await socks(v4!, toEcho, ALICE);
  assert.equal(relayed.reply, 0);

  await gw.write(yamlOf({ users: [ALICE], listen: ["127.0.0.1:0", "[::1]:0"] }));
  assert.equal((await gw.gateway.reload()).result, "accepted");
  assert.equal(gw.gateway.endpoints.length, 2);
  assert.deepEqual(gw.gateway.endpoints[0], v4, "the unchanged listener kept its socket");
  const v6 = gw.gateway.endpoints[1]!;
  const viaV6 = await socks(v6, toEcho, ALICE);
  assert.equal(viaV6.reply, 0);
  close(viaV6);

  await gw.write(yamlOf({ users: [ALICE], listen: ["[::1]:0"] }));
  assert.equal((await gw.gateway.reload()).result, "accepted");
  assert.deepEqual(gw.gateway.endpoints, [v6]);
  await assert.rejects(() => connectTo(v4!), Deno.errors.ConnectionRefused);
  assert.ok(await echoes(relayed, randomBytes(2000)), "a relay of the removed listener lives on");
  close(relayed);

  // A new address already in use: the reload fails and nothing changes.
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  await gw.write(yamlOf({ users: [ALICE], listen: ["[::1]:0", `127.0.0.1:${taken.addr.port}`] }));
  const failed = await gw.gateway.reload();
  assert.equal(failed.result, "failed");
  assert.deepEqual(gw.gateway.endpoints, [v6]);
  assert.equal(gw.gateway.generation, 3);
});

Deno.test("reload closes a changed password's sessions and, with recheck, those the rules refuse", async () => {
  await using server = startServer("127.0.0.1", echo);
  await using other = startServer("127.0.0.1", echo);
  await using gw = await startReloadable(yamlOf({ users: [ALICE] }));
  const via = gw.gateway.endpoints[0]!;
  const kept = await socks(via, target("127.0.0.1", server.port), ALICE);
  const refused = await socks(via, target("127.0.0.1", other.port), ALICE);
  assert.equal(kept.reply, 0);
  assert.equal(refused.reply, 0);

  // Without recheck, a rule that denies a live relay's port leaves it running.
  await gw.write(yamlOf({ users: [ALICE], denyPorts: [other.port] }));
  assert.equal((await gw.gateway.reload()).closed, 0);
  assert.ok(await echoes(refused, randomBytes(100)));

  await gw.write(yamlOf({ users: [ALICE], denyPorts: [other.port], recheck: true }));
  assert.equal((await gw.gateway.reload()).closed, 1);
  assert.ok(await closedByGateway(refused));
  assert.ok(await echoes(kept, randomBytes(100)));
  assert.equal(sample(gw.gateway, 'dualgate_reload_closed_total{reason="recheck"}'), 1);

  await gw.write(yamlOf({ users: [["alice", "new-secret"]], denyPorts: [other.port] }));
  assert.equal((await gw.gateway.reload()).closed, 1);
  assert.ok(await closedByGateway(kept));
  assert.equal(sample(gw.gateway, 'dualgate_reload_closed_total{reason="password_changed"}'), 1);
  const again = await socks(via, target("127.0.0.1", server.port), ["alice", "new-secret"]);
  assert.equal(again.reply, 0);
  close(again);
  close(kept);
  close(refused);
});

Deno.test("reload: a raised per-client limit admits the very next connection; live relays stay", async () => {
  await using server = startServer("127.0.0.1", echo);
  await using gw = await startReloadable(yamlOf({ users: [ALICE], perClient: 2 }));
  const via = gw.gateway.endpoints[0]!;
  const toEcho = target("127.0.0.1", server.port);
  const first = await Promise.all([socks(via, toEcho, ALICE), socks(via, toEcho, ALICE)]);
  assert.deepEqual(first.map((o) => o.reply), [0, 0]);
  const over = await connectTo(via);
  assert.ok(await closedByGateway({ conn: over, reader: readerOf(over), reply: -1 }));
  over.close();

  await gw.write(yamlOf({ users: [ALICE], perClient: 3 }));
  assert.equal((await gw.gateway.reload()).result, "accepted");
  const third = await socks(via, toEcho, ALICE);
  assert.equal(third.reply, 0);
  assert.equal(sample(gw.gateway, 'dualgate_limit_rejections_total{limit="per_client"}'), 1);
  for (const o of [...first, third]) {
    assert.ok(await echoes(o, randomBytes(500)));
    close(o);
  }
});

Deno.test("reload: a new route sends the very next CONNECT through the hop; the direct relay stays", async () => {
  await using server = startServer("127.0.0.1", echo);
  await using hop = startTestGateway("rules: [{ action: allow }]\n");
  await using gw = await startReloadable(yamlOf({ users: [ALICE] }));
  const via = gw.gateway.endpoints[0]!;
  const toEcho = target("127.0.0.1", server.port);
  const direct = await socks(via, toEcho, ALICE);
  assert.equal(direct.reply, 0);

  const hopUrl = `socks5://127.0.0.1:${hop.endpoint(4).port}`;
  await gw.write(yamlOf({
    users: [ALICE],
    extra: `routes:\n  - { to: ["127.0.0.1/32"], ports: [${server.port}], chain: ["${hopUrl}"] }`,
  }));
  assert.equal((await gw.gateway.reload()).result, "accepted");
  const routed = await socks(via, toEcho, ALICE);
  assert.equal(routed.reply, 0);
  assert.ok(await echoes(routed, randomBytes(300)));
  close(routed);
  assert.ok(await echoes(direct, randomBytes(300)), "the direct relay lives on");
  close(direct);
  // The hop saw exactly the routed connection.
  for (let i = 0; i < 500 && hop.records.length < 1; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.equal(hop.records.length, 1);
  assert.equal(hop.records[0]!.outcome, "relayed");
});
