/**
 * The RFC 1929 failed-login limiter against a live gateway, attacked from client4:
 * - 300 connections opened first, then 300 passwords sent at once (the right one last): once
 *   the limit is reached no password is checked, so the right one does not get in;
 * - an unknown user costs what a known one does: the dummy scrypt check runs (counted by the
 *   gateway's `dualgate_password_hashes_total`, not timed);
 * - with the limit out of the way, 300 concurrent logins against a `password_hash` user run
 *   at most the slots' worth of scrypt derivations at once (`dualgate_password_hashes_peak`),
 *   refuse the overflow quickly, and keep the gateway's peak RSS bounded;
 * - a flood of unknown-user logins from many addresses of one IPv6 /64 (client6's aliases), or
 *   from many IPv4 addresses (client4's aliases), while a legitimate user logs in from another
 *   client with the right password: the legitimate logins succeed (finding F1: the scrypt queue
 *   was global, so the flood got every other client refused as busy), and the /64 gets no more
 *   checks than the limit.
 */
import assert from "node:assert/strict";
import { hashPassword } from "../../gateway/config/password.ts";
import { startDualgate } from "../helpers/dualgate.ts";
import { createTopology, e2eTest, type HostName, type Topology } from "../helpers/netns.ts";
import { attack, scrape } from "./_helpers.ts";

const PROGRAMS = ["curl"];
const RIGHT = "c0rrect-h0rse";
const HASH = await hashPassword(RIGHT);

interface Logins {
  methods: number[];
  replies: number[];
}

function config(
  topo: Topology,
  limit: number,
  users = `    - { name: alice, password_hash: "${HASH}" }`,
): string {
  return `listen: ["${topo.addresses.gateway.v4}:1080", "[${topo.addresses.gateway.v6}]:1080"]
auth:
  users:
${users}
limits: { auth_failures_per_minute: ${limit} }
# Long enough that, without the limiter, all 300 checks finish (and the right one gets in).
timeouts: { handshake: 300 }
admin: { listen: "127.0.0.1:9090" }
`;
}

/** Peak resident set size of a process, in MiB. */
async function peakRssMiB(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(status.match(/VmHWM:\s+(\d+) kB/)?.[1] ?? NaN) / 1024;
}

e2eTest("RFC 1929 limiter: passwords sent at once are checked only up to the limit", async (t) => {
  await using topo = await createTopology();
  const a = topo.addresses;
  const dir = await Deno.makeTempDir({ prefix: "dualgate-auth-limiter-" });
  try {
    await using gateway = await startDualgate(topo, config(topo, 10), {
      dir,
      waitFor: [[a.gateway.v4, 1080], [a.gateway.v6, 1080], ["127.0.0.1", 9090]],
    });

    await t.step(
      "300 connections first, then 300 passwords: the right one last stays out",
      async () => {
        const result = await attack<Logins>(topo, "client4", {
          plan: "logins",
          host: a.gateway.v4,
          port: 1080,
          count: 300,
          username: "alice",
          right: RIGHT,
        }, 400_000);
        assert.ok(result.methods.every((method) => method === 2), "every greeting was answered");
        assert.equal(result.replies.filter((reply) => reply === 0).length, 0);
        assert.equal(result.replies[299], 1);
        const metric = await scrape(topo);
        // 10 attempts got past the limiter: the client's scrypt share (1 running, 2 waiting)
        // was checked, the others refused as busy, and both count as failed logins.
        const busy = metric('dualgate_limit_rejections_total{limit="auth_busy"}');
        assert.equal(metric("dualgate_auth_failures_total") + busy, 10);
        assert.equal(metric("dualgate_password_hashes_total") + busy, 10);
        assert.ok(busy <= 7, `${busy} busy`);
        assert.equal(metric('dualgate_limit_rejections_total{limit="auth_failures"}'), 290);
        // Failed logins name the configured user they tried (`user=alice - - via -`); a login
        // that got in would be followed by its command.
        assert.doesNotMatch(gateway.stderr, /relayed|user=alice (?!- - via -)/);
      },
    );

    await t.step(
      "an unknown user's login runs the same scrypt check as a known user's",
      async () => {
        const earlier = await scrape(topo);
        const before = earlier("dualgate_password_hashes_total");
        for (const username of ["alice", "mallory", "alice", "mallory"]) {
          const result = await attack<Logins>(topo, "client6", {
            plan: "logins",
            host: a.gateway.v6,
            port: 1080,
            count: 1,
            username,
            right: "wrong",
          });
          assert.deepEqual(result.replies, [1]);
        }
        const metric = await scrape(topo);
        assert.equal(metric("dualgate_password_hashes_total") - before, 4);
        assert.equal(
          metric("dualgate_auth_failures_total") - earlier("dualgate_auth_failures_total"),
          4,
        );
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}, { programs: PROGRAMS });

e2eTest(
  "RFC 1929 limiter: concurrent scrypt checks are capped and memory stays bounded",
  async () => {
    await using topo = await createTopology();
    const a = topo.addresses;
    const dir = await Deno.makeTempDir({ prefix: "dualgate-auth-memory-" });
    try {
      await using gateway = await startDualgate(topo, config(topo, 100_000), {
        dir,
        waitFor: [[a.gateway.v4, 1080], [a.gateway.v6, 1080], ["127.0.0.1", 9090]],
      });
      const result = await attack<Logins>(topo, "client4", {
        plan: "logins",
        host: a.gateway.v4,
        port: 1080,
        count: 300,
        username: "alice",
        right: "not-it-either",
      }, 400_000);
      assert.ok(result.replies.every((reply) => reply === 1), "every login failed");
      const metric = await scrape(topo);
      const slots = metric("dualgate_password_hash_slots");
      assert.ok(slots >= 1 && slots <= 8, `slots ${slots}`);
      const peak = metric("dualgate_password_hashes_peak");
      assert.ok(peak >= 1 && peak <= slots, `peak ${peak} of ${slots} slots`);
      // Every login was either checked or refused as busy, none queued without bound.
      const checked = metric("dualgate_password_hashes_total");
      const busy = metric('dualgate_limit_rejections_total{limit="auth_busy"}');
      assert.equal(checked + busy, 300);
      // One client gets one scrypt slot and two queue places: the rest of its flood is busy
      // (the global cap under many clients is checked by the flood test below).
      assert.ok(checked <= 300 && checked >= 1);
      // scrypt at N=16384 takes 16 MiB a check: 300 at once took the gateway to ~740 MiB.
      const rss = await peakRssMiB(gateway.pid);
      assert.ok(rss < 400, `peak RSS ${rss.toFixed(0)} MiB`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  { programs: PROGRAMS },
);

/**
 * Run with python3 in a client host. `flood GW PORT GO ADDR...`: from each source address opens
 * PER connections with a username/password greeting; once all are answered sends an unknown
 * user's credentials on all at once, then creates the file GO; prints the RFC 1929 replies
 * (-1: closed). `login GW PORT GO USER PASSWORD COUNT`: opens COUNT connections, greets, waits
 * (bounded) for GO, sends the credentials on all, prints the replies.
 */
const LOGIN_CLIENT = String.raw`
import json, os, socket, sys, time
mode, gw, port, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
family = socket.AF_INET6 if ":" in gw else socket.AF_INET
def read(c, n):
    out = b""
    while len(out) < n:
        try:
            got = c.recv(n - len(out))
        except OSError:
            break
        if not got:
            break
        out += got
    return out
def greet(source):
    c = socket.socket(family, socket.SOCK_STREAM)
    c.settimeout(120)
    if source:
        c.bind((source, 0))
    c.connect((gw, port))
    c.sendall(b"\x05\x01\x02")
    return c, read(c, 2) == b"\x05\x02"
def creds(user, password):
    u, p = user.encode(), password.encode()
    return bytes([1, len(u)]) + u + bytes([len(p)]) + p
def replies(conns):
    out = []
    for c, ok in conns:
        r = read(c, 2) if ok else b""
        out.append(r[1] if len(r) == 2 else -1)
        c.close()
    return out
if mode == "flood":
    per, sources = int(sys.argv[5]), sys.argv[6:]
    conns = [greet(source) for source in sources for _ in range(per)]
    for i, (c, ok) in enumerate(conns):
        if ok:
            try:
                c.sendall(creds("mallory", "guess-%d" % i))
            except OSError:
                pass
    open(go, "w").close()
    print(json.dumps({"greeted": sum(ok for _, ok in conns), "replies": replies(conns)}))
else:
    user, password, count = sys.argv[5], sys.argv[6], int(sys.argv[7])
    conns = [greet(None) for _ in range(count)]
    for _ in range(12000):
        if os.path.exists(go):
            break
        time.sleep(0.005)
    for c, ok in conns:
        if ok:
            c.sendall(creds(user, password))
    print(json.dumps({"greeted": sum(ok for _, ok in conns), "replies": replies(conns)}))
`;

interface LoginReplies {
  greeted: number;
  replies: number[];
}

async function runClient(
  topo: Topology,
  host: "client4" | "client6",
  args: string[],
): Promise<LoginReplies> {
  const r = await topo.run(host, "python3", ["-c", LOGIN_CLIENT, ...args], { timeoutMs: 300_000 });
  const line = r.stdout.trim().split("\n").at(-1) ?? "";
  try {
    return JSON.parse(line) as LoginReplies;
  } catch {
    throw new Error(`login client printed no result (code ${r.code}): ${r.stdout}\n${r.stderr}`);
  }
}

/** Adds `addresses` to the interface of `host` that holds `existing`. */
async function addAliases(topo: Topology, host: HostName, existing: string, addresses: string[]) {
  const shown = await topo.run(host, "ip", ["-o", "addr", "show"]);
  const dev = shown.stdout.split("\n").find((line) => line.includes(` ${existing}/`))
    ?.split(/\s+/)[1];
  assert.ok(dev, `no interface holds ${existing} in ${host}: ${shown.stdout}`);
  for (const address of addresses) {
    const family = address.includes(":") ? ["nodad"] : [];
    const r = await topo.run(host, "ip", ["addr", "add", address, "dev", dev, ...family]);
    assert.equal(r.code, 0, `ip addr add ${address}: ${r.stderr}`);
  }
}

const BOB = "b0b-s3cret";
const SOURCES = 20;
const PER_SOURCE = 10;

e2eTest(
  "RFC 1929 limiter: a login flood from one /64 or many IPv4 addresses does not lock others out",
  async (t) => {
    await using topo = await createTopology();
    const a = topo.addresses;
    const dir = await Deno.makeTempDir({ prefix: "dualgate-auth-fair-" });
    try {
      const v4Sources = Array.from({ length: SOURCES }, (_, i) => `192.0.2.${3 + i}`);
      const v6Sources = Array.from({ length: SOURCES }, (_, i) => `2001:db8:1::1:${i + 1}`);
      await addAliases(topo, "client4", a.client4.v4, v4Sources.map((ip) => `${ip}/24`));
      await addAliases(topo, "client6", a.client6.v6, v6Sources.map((ip) => `${ip}/64`));
      const users = `    - { name: alice, password_hash: "${HASH}" }
    - { name: bob, password_hash: "${await hashPassword(BOB)}" }`;
      const yaml = config(topo, 10, users);
      await using _gateway = await startDualgate(topo, yaml, {
        dir,
        waitFor: [[a.gateway.v4, 1080], [a.gateway.v6, 1080], ["127.0.0.1", 9090]],
      });

      /** The flood from `flooder`'s `sources`, and `user`'s logins from `victim` once it is sent. */
      const floodAndLogin = async (
        flooder: "client4" | "client6",
        sources: string[],
        victim: "client4" | "client6",
        user: string,
        password: string,
      ) => {
        const go = `${dir}/go-${flooder}`;
        const victimGateway = victim === "client4" ? a.gateway.v4 : a.gateway.v6;
        const floodGateway = flooder === "client4" ? a.gateway.v4 : a.gateway.v6;
        const [flood, login] = await Promise.all([
          runClient(topo, flooder, [
            "flood",
            floodGateway,
            "1080",
            go,
            String(PER_SOURCE),
            ...sources,
          ]),
          runClient(topo, victim, ["login", victimGateway, "1080", go, user, password, "3"]),
        ]);
        assert.equal(login.greeted, 3);
        assert.equal(flood.greeted, SOURCES * PER_SOURCE, "every flood connection was greeted");
        assert.ok(flood.replies.every((reply) => reply !== 0), "no flood login got in");
        return login.replies;
      };

      await t.step("20 IPv4 addresses flood; alice logs in from the IPv6 client", async () => {
        const replies = await floodAndLogin("client4", v4Sources, "client6", "alice", RIGHT);
        assert.deepEqual(replies, [0, 0, 0], "alice's logins with the right password succeed");
        // Many clients at once: scrypt still runs at most the slots' worth at a time.
        const metric = await scrape(topo);
        const slots = metric("dualgate_password_hash_slots");
        const peak = metric("dualgate_password_hashes_peak");
        assert.ok(peak >= 1 && peak <= slots, `peak ${peak} of ${slots} slots`);
      });

      await t.step("20 addresses of one /64 flood; bob logs in from the IPv4 client", async () => {
        const before = await scrape(topo);
        const replies = await floodAndLogin("client6", v6Sources, "client4", "bob", BOB);
        assert.deepEqual(replies, [0, 0, 0], "bob's logins with the right password succeed");
        const metric = await scrape(topo);
        // The /64 is one client: at most the limit (10) of its guesses were checked (bob's
        // three logins share one check), every other attempt was refused.
        const hashes = metric("dualgate_password_hashes_total") -
          before("dualgate_password_hashes_total");
        assert.ok(hashes >= 1 && hashes <= 10 + 1, `${hashes} scrypt checks`);
        const refused = metric('dualgate_limit_rejections_total{limit="auth_failures"}') -
          before('dualgate_limit_rejections_total{limit="auth_failures"}');
        assert.ok(refused >= SOURCES * PER_SOURCE - 10, `${refused} refused by the limit`);
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  { programs: ["python3"] },
);
