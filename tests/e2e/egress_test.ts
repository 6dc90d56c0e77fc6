/**
 * Egress addresses end to end. The gateway namespace gets the host setup of the README
 * ("Egress addresses"): a local route for 2001:db8:5::/64 and `net.ipv6.ip_nonlocal_bind`,
 * plus a second IPv4 address toward server4. Servers on the other side answer every TCP
 * request and UDP datagram with the peer address they saw (and log it). Real clients go
 * through `main.ts serve`: curl and ncat (CONNECT) and PySocks (UDP ASSOCIATE), as users with
 * per-connection, sticky-user and sticky-destination pools.
 */
import assert from "node:assert/strict";
import { MAIN_TS, REPO_ROOT, startDualgate } from "../helpers/dualgate.ts";
import { createTopology, e2eTest, NAMES, type Topology } from "../helpers/netns.ts";
import { parseIp } from "../../net/address.ts";
import { cidrContains, parseCidr } from "../../net/cidr.ts";

const DEBIAN_PYTHON = "/usr/bin/python3";
const PREFIX = "2001:db8:5::/64";
const SECOND_V4 = "198.51.100.5";
/** pyftpdlib's port on server6. */
const FTP_PORT = 2121;
/** A second name of server6, for sticky_destination. */
const V6_OTHER = "v6b.dualgate.example";

/** Answers `GET` on 8080 and datagrams on 9000 with the peer address; prints each. */
const PEER_SERVER = `
import http.server, socket, sys, threading
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = self.client_address[0].encode()
        print("tcp", self.client_address[0], flush=True)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
class Server(http.server.ThreadingHTTPServer):
    address_family = family
udp = socket.socket(family, socket.SOCK_DGRAM)
udp.bind((sys.argv[1], 9000))
def answer():
    while True:
        data, peer = udp.recvfrom(2048)
        print("udp", peer[0], flush=True)
        udp.sendto(peer[0].encode(), peer)
threading.Thread(target=answer, daemon=True).start()
Server((sys.argv[1], 8080), Handler).serve_forever()
`;

/** PySocks UDP ASSOCIATE: sends one datagram to NAME:9000, prints the answer. */
const PYSOCKS_UDP = `
import socket, socks, sys
gateway, user, name = sys.argv[1], sys.argv[2], sys.argv[3]
s = socks.socksocket(socket.AF_INET, socket.SOCK_DGRAM)
s.set_proxy(socks.SOCKS5, gateway, 1080, rdns=True, username=user, password="pw")
s.settimeout(10)
s.sendto(b"hello", (name, 9000))
data, _ = s.recvfrom(2048)
print(data.decode())
`;

const CONFIG = (topo: Topology) =>
  `listen: ["${topo.addresses.gateway.v4}:1080", "[${topo.addresses.gateway.v6}]:1080"]
auth:
  users:
    - { name: alice, password: pw, egress_prefix: "${PREFIX}", egress_policy: sticky_user }
    - { name: bob, password: pw }
    - { name: carol, password: pw, egress_prefix: "${PREFIX}", egress_policy: sticky_destination }
resolver:
  hosts: { ${V6_OTHER}: ["${topo.addresses.server6.v6}"] }
routes:
  - to: ["*"]
    egress: ["${topo.addresses.gateway.upstreamV4}", "${SECOND_V4}"]
    egress_prefix: "${PREFIX}"
translators:
  - { type: ftp, ports: [${FTP_PORT}], data_timeout: 20 }
`;

const inPrefix = (text: string) => {
  const address = parseIp(text);
  return address !== null && cidrContains(parseCidr(PREFIX), address);
};

/** The peer address server saw for a curl GET through the gateway as `user`. */
async function curlSource(topo: Topology, user: string, name: string) {
  const r = await topo.run("client4", "curl", [
    "-sS",
    "--fail",
    "--max-time",
    "20",
    "-x",
    `socks5h://${user}:pw@${topo.addresses.gateway.v4}:1080`,
    `http://${name}:8080/`,
  ], { timeoutMs: 30_000 });
  return { code: r.code, source: r.stdout.trim(), stderr: r.stderr };
}

e2eTest(
  "egress: the server sees the configured source; rotation, stickiness and UDP follow the pool",
  async (t) => {
    await using topo = await createTopology();
    const dir = await Deno.makeTempDir({ prefix: "dualgate-egress-" });
    try {
      await Deno.writeTextFile(`${dir}/peer.py`, PEER_SERVER);
      await Deno.writeTextFile(`${dir}/udp.py`, PYSOCKS_UDP);
      await Deno.writeTextFile(`${dir}/dualgate.yaml`, CONFIG(topo));

      await t.step("check warns while the gateway host is not set up", async () => {
        const r = await topo.run(
          "gateway",
          Deno.execPath(),
          ["run", "--allow-all", MAIN_TS, "check", "--config", `${dir}/dualgate.yaml`],
          { cwd: REPO_ROOT, env: { NO_COLOR: "1" } },
        );
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stderr, /routes\[0\]\.egress_prefix: cannot bind .*ip_nonlocal_bind=1/);
        assert.match(r.stderr, /ip -6 route add local 2001:db8:5::\/64 dev lo/);
        assert.match(r.stderr, /routes\[0\]\.egress\[1\]: cannot bind 198\.51\.100\.5/);
      });

      await t.step(
        "check refuses an egress address of the wrong family for the route",
        async () => {
          await Deno.writeTextFile(
            `${dir}/wrong.yaml`,
            `routes: [{ to: ["198.51.100.0/24"], egress: ["2001:db8:5::1"] }]\n`,
          );
          const r = await topo.run(
            "gateway",
            Deno.execPath(),
            ["run", "--allow-all", MAIN_TS, "check", "--config", `${dir}/wrong.yaml`],
            { cwd: REPO_ROOT, env: { NO_COLOR: "1" } },
          );
          assert.notEqual(r.code, 0);
          assert.match(r.stderr, /routes\[0\]\.egress: has no IPv4 source address for destination/);
        },
      );

      // The README's host setup, in the gateway namespace.
      await topo.run("gateway", "ip", ["-6", "route", "add", "local", PREFIX, "dev", "lo"], {
        check: true,
      });
      await topo.run("gateway", "sysctl", ["-w", "net.ipv6.ip_nonlocal_bind=1"], { check: true });
      await topo.run("gateway", "ip", ["addr", "add", `${SECOND_V4}/24`, "dev", "s4"], {
        check: true,
      });

      await t.step("check is quiet once it is", async () => {
        const r = await topo.run(
          "gateway",
          Deno.execPath(),
          ["run", "--allow-all", MAIN_TS, "check", "--config", `${dir}/dualgate.yaml`],
          { cwd: REPO_ROOT, env: { NO_COLOR: "1" } },
        );
        assert.equal(r.code, 0, r.stderr);
        assert.doesNotMatch(r.stderr, /egress/);
      });

      await using server6 = topo.spawn("server6", DEBIAN_PYTHON, [
        `${dir}/peer.py`,
        topo.addresses.server6.v6,
      ]);
      await using server4 = topo.spawn("server4", DEBIAN_PYTHON, [
        `${dir}/peer.py`,
        topo.addresses.server4.v4,
      ]);
      await server6.waitForTcp(topo.addresses.server6.v6, 8080, { timeoutMs: 20_000 });
      await server4.waitForTcp(topo.addresses.server4.v4, 8080, { timeoutMs: 20_000 });
      await Deno.mkdir(`${dir}/ftp`);
      await Deno.writeTextFile(`${dir}/ftp/hello.txt`, "hello over egress\n");
      // pyftpdlib refuses a passive data connection from another address than the control
      // connection's: the data dial must leave from the same egress source.
      await using ftp = topo.spawn("server6", DEBIAN_PYTHON, [
        "-m",
        "pyftpdlib",
        "-i",
        topo.addresses.server6.v6,
        "-p",
        String(FTP_PORT),
        "-d",
        `${dir}/ftp`,
      ]);
      await ftp.waitForTcp(topo.addresses.server6.v6, FTP_PORT, { timeoutMs: 20_000 });
      await using gateway = await startDualgate(topo, CONFIG(topo), { dir });

      await t.step(
        "per_connection: each curl leaves from another address of the prefix",
        async () => {
          const seen = [];
          for (let i = 0; i < 3; i++) {
            const r = await curlSource(topo, "bob", NAMES.v6);
            assert.equal(r.code, 0, `${r.stderr}\n${gateway.stderr}`);
            seen.push(r.source);
          }
          assert.ok(seen.every(inPrefix), seen.join(" "));
          assert.equal(new Set(seen).size, 3, seen.join(" "));
        },
      );

      await t.step("per_connection over the IPv4 list: round robin", async () => {
        const seen = [];
        for (let i = 0; i < 4; i++) {
          const r = await curlSource(topo, "bob", NAMES.v4);
          assert.equal(r.code, 0, `${r.stderr}\n${gateway.stderr}`);
          seen.push(r.source);
        }
        assert.deepEqual(seen, [
          topo.addresses.gateway.upstreamV4,
          SECOND_V4,
          topo.addresses.gateway.upstreamV4,
          SECOND_V4,
        ]);
      });

      let aliceSource = "";
      await t.step(
        "sticky_user: alice always leaves from one address; bob's pool is not hers",
        async () => {
          const seen = new Set<string>();
          for (const name of [NAMES.v6, V6_OTHER, NAMES.v6]) {
            const r = await curlSource(topo, "alice", name);
            assert.equal(r.code, 0, `${r.stderr}\n${gateway.stderr}`);
            seen.add(r.source);
          }
          assert.equal(seen.size, 1, [...seen].join(" "));
          aliceSource = [...seen][0]!;
          assert.ok(inPrefix(aliceSource), aliceSource);
          // Her pool has no IPv4 source: an IPv4-only destination is refused (REP 3), not
          // reached from the host's default address.
          const v4 = await curlSource(topo, "alice", NAMES.v4);
          assert.notEqual(v4.code, 0, `reached ${v4.source}`);
        },
      );

      await t.step("sticky_destination: one address per destination", async () => {
        const first = await curlSource(topo, "carol", NAMES.v6);
        const other = await curlSource(topo, "carol", V6_OTHER);
        const again = await curlSource(topo, "carol", NAMES.v6);
        const otherAgain = await curlSource(topo, "carol", V6_OTHER);
        for (const r of [first, other, again, otherAgain]) assert.equal(r.code, 0, r.stderr);
        assert.equal(again.source, first.source);
        assert.equal(otherAgain.source, other.source);
        assert.notEqual(first.source, other.source);
        assert.ok(inPrefix(first.source) && inPrefix(other.source));
      });

      await t.step("ncat (CONNECT by address) leaves from the prefix too", async () => {
        const r = await topo.run("client4", "ncat", [
          "--proxy",
          `${topo.addresses.gateway.v4}:1080`,
          "--proxy-type",
          "socks5",
          "--proxy-auth",
          "bob:pw",
          topo.addresses.server6.v6,
          "8080",
        ], { stdin: "GET / HTTP/1.0\r\n\r\n", timeoutMs: 20_000 });
        assert.equal(r.code, 0, r.stderr);
        const source = r.stdout.trim().split("\n").at(-1)!.trim();
        assert.ok(inPrefix(source), r.stdout);
      });

      await t.step("UDP ASSOCIATE (PySocks) honours the same pool choice", async () => {
        const udp = (user: string) =>
          topo.run("client4", DEBIAN_PYTHON, [
            `${dir}/udp.py`,
            topo.addresses.gateway.v4,
            user,
            NAMES.v6,
          ], { timeoutMs: 20_000 });
        const alice = await udp("alice");
        assert.equal(alice.code, 0, `${alice.stderr}\n${gateway.stderr}`);
        assert.equal(alice.stdout.trim(), aliceSource);
        const bob = await udp("bob");
        assert.equal(bob.code, 0, bob.stderr);
        assert.ok(inPrefix(bob.stdout.trim()), bob.stdout);
      });

      await t.step(
        "FTP (translated, per_connection): the data channel leaves from the control's source",
        async () => {
          for (const flags of [[], ["--disable-epsv"]]) {
            const r = await topo.run("client4", "curl", [
              "-sS",
              "--fail",
              "--max-time",
              "30",
              ...flags,
              "-x",
              `socks5h://bob:pw@${topo.addresses.gateway.v4}:1080`,
              `ftp://${NAMES.v6}:${FTP_PORT}/hello.txt`,
            ], { timeoutMs: 40_000 });
            assert.equal(r.code, 0, `${r.stderr}\n${ftp.stderr}\n${gateway.stderr}`);
            assert.equal(r.stdout, "hello over egress\n");
          }
          assert.doesNotMatch(ftp.stderr, /foreign address/);
        },
      );

      await t.step("the servers logged the configured sources", () => {
        assert.match(server6.stdout, new RegExp(`udp ${aliceSource.replaceAll(".", "\\.")}`));
        assert.match(server6.stdout, new RegExp(`tcp ${aliceSource}`));
        assert.match(server4.stdout, new RegExp(`tcp ${SECOND_V4.replaceAll(".", "\\.")}`));
        assert.doesNotMatch(server6.stdout, /tcp 2001:db8:2::1\b/);
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  { programs: ["curl", "ncat", "python3", "ip", "sysctl"] },
);
