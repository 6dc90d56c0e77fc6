/**
 * Attack: abusing RESOLVE's stand-in addresses (gateway/commands/stand_ins.ts) on a live gateway.
 *
 * - Another client (client6) uses, or asks the name of, client4's stand-in: REP 4 both.
 * - A client guesses addresses of the stand-in ranges it was never given (ATYP 1 and the dotted
 *   ATYP 3 form): REP 4, never dialed.
 * - A RESOLVE flood of 300 names from client4 evicts client4's own oldest stand-ins only: the
 *   IPv4 stand-in of another IPv4 client (a program on the gateway host) keeps its name.
 * - A host-local name from a remote client is REP 2, never a stand-in.
 *
 * The legitimate use works throughout: client4 CONNECTs to its stand-in and gets the IPv6-only
 * server's page, with an IPv4 BND.ADDR.
 */
import assert from "node:assert/strict";
import { startDualgate } from "../helpers/dualgate.ts";
import { startHttpServer } from "../helpers/http_server.ts";
import { ADDRESSES, createTopology, e2eTest, NAMES } from "../helpers/netns.ts";

const FLOOD = 300;

/**
 * SOCKS5 requests, one connection each: `resolve NAME...`, `ptr ADDR`, `connect HOST PORT
 * [name]` (`name`: DST as ATYP 3). Prints one line per request: `REP BND` (and, for a CONNECT
 * that succeeded, the first line of an HTTP answer).
 */
const SOCKS = String.raw`
import ipaddress, socket, struct, sys

proxy, port, op, args = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]

def recvn(s, n):
    b = b""
    while len(b) < n:
        chunk = s.recv(n - len(b))
        if not chunk: raise SystemExit("closed")
        b += chunk
    return b

def dst(text, as_name=False):
    if as_name:
        return b"\x03" + bytes([len(text)]) + text.encode()
    try:
        a = ipaddress.ip_address(text)
        return (b"\x01" if a.version == 4 else b"\x04") + a.packed
    except ValueError:
        return b"\x03" + bytes([len(text)]) + text.encode()

def request(cmd, target, dport=0):
    s = socket.create_connection((proxy, port), timeout=10)
    s.sendall(b"\x05\x01\x00")
    assert recvn(s, 2) == b"\x05\x00"
    s.sendall(bytes([5, cmd, 0]) + target + struct.pack(">H", dport))
    head = recvn(s, 4)
    if head[3] == 1: bnd = socket.inet_ntop(socket.AF_INET, recvn(s, 4))
    elif head[3] == 4: bnd = socket.inet_ntop(socket.AF_INET6, recvn(s, 16))
    else: bnd = recvn(s, recvn(s, 1)[0]).decode()
    recvn(s, 2)
    return s, head[1], bnd

if op == "resolve":
    for name in args:
        s, rep, bnd = request(0xF0, dst(name, True))
        s.close()
        print(rep, bnd, flush=True)
elif op == "ptr":
    s, rep, bnd = request(0xF1, dst(args[0]))
    s.close()
    print(rep, bnd, flush=True)
elif op == "connect":
    s, rep, bnd = request(1, dst(args[0], len(args) > 2), int(args[1]))
    line = ""
    if rep == 0:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        line = s.makefile("rb").readline().decode().strip()
    s.close()
    print(rep, bnd, line, flush=True)
`;

e2eTest(
  "attack: stand-in addresses cannot be used, read or redirected by another client, guessed, or flooded away",
  async (t) => {
    const flood: Record<string, string[]> = {};
    for (let i = 0; i < FLOOD; i++) flood[`f${i}.dualgate.example`] = [ADDRESSES.server6.v6];
    await using topo = await createTopology({ hosts: { gateway: flood } });
    const a = topo.addresses;
    const dir = await Deno.makeTempDir({ prefix: "dualgate-stand-ins-" });
    try {
      await Deno.writeTextFile(`${dir}/page.html`, "stand-in page\n");
      await using _http6 = await startHttpServer(topo, "server6", { directory: dir });
      await using gateway = await startDualgate(
        topo,
        `listen: ["${a.gateway.v4}:1080", "[${a.gateway.v6}]:1080"]\n`,
        { dir },
      );
      const socks = async (
        client: "client4" | "client6" | "gateway",
        op: string,
        ...args: string[]
      ) => {
        const proxy = client === "client6" ? a.gateway.v6 : a.gateway.v4;
        const r = await topo.run(client, "python3", ["-c", SOCKS, proxy, "1080", op, ...args], {
          timeoutMs: 60_000,
        });
        assert.equal(r.code, 0, `${op} ${args.join(" ")}: ${r.stderr}\n${gateway.stderr}`);
        return r.stdout.trim().split("\n").map((line) => line.split(" "));
      };

      let standIn = "";
      await t.step(
        "client4 gets an IPv4 stand-in for the IPv6-only name and reaches it",
        async () => {
          const [[rep, bnd]] = await socks("client4", "resolve", NAMES.v6) as [string[]];
          assert.equal(rep, "0");
          assert.match(bnd!, /^198\.1[89]\.\d+\.\d+$/);
          standIn = bnd!;
          const [[ok, bound, status]] = await socks("client4", "connect", standIn, "8080") as [
            string[],
          ];
          assert.equal(ok, "0");
          assert.equal(bound, a.gateway.v4);
          assert.match(status ?? "", /^HTTP\/1\.[01]$/);
        },
      );

      await t.step("client6 can neither use client4's stand-in nor learn its name", async () => {
        const [[rep]] = await socks("client6", "connect", standIn, "8080") as [string[]];
        assert.equal(rep, "4");
        const [[ptr]] = await socks("client6", "ptr", standIn) as [string[]];
        assert.equal(ptr, "4");
        const [[own, name]] = await socks("client4", "ptr", standIn) as [string[]];
        assert.equal(own, "0");
        assert.equal(name, NAMES.v6);
      });

      await t.step("guessed stand-ins are REP 4 and never dialed", async () => {
        for (const args of [["198.18.200.200", "8080"], ["198.19.0.7", "8080", "name"]]) {
          const [[rep]] = await socks("client4", "connect", ...args) as [string[]];
          assert.equal(rep, "4", args.join(" "));
        }
        const [[rep6]] = await socks("client6", "connect", "100::4242", "8080") as [string[]];
        assert.equal(rep6, "4");
        assert.match(
          await gateway.waitForStderr(/198\.19\.0\.7:8080 .*not a stand-in of this client/),
          /198\.19\.0\.7:8080 .*not a stand-in of this client/,
        );
      });

      await t.step(
        "a RESOLVE flood evicts the flooder's own stand-ins, not another's",
        async () => {
          // Another IPv4 client, of the same pool: a program on the gateway host.
          const [[rep, mine]] = await socks("gateway", "resolve", NAMES.v6) as [string[]];
          assert.equal(rep, "0");
          assert.match(mine!, /^198\.1[89]\.\d+\.\d+$/);
          const answers = await socks("client4", "resolve", ...Object.keys(flood));
          assert.equal(answers.length, FLOOD);
          assert.ok(answers.every(([r]) => r === "0"));
          const [[ptr, name]] = await socks("gateway", "ptr", mine!) as [string[]];
          assert.equal(`${ptr} ${name}`, `0 ${NAMES.v6}`);
          // client4's first stand-in went with its own flood: it maps to nothing now.
          const [[gone]] = await socks("client4", "connect", standIn, "8080") as [string[]];
          assert.equal(gone, "4");
        },
      );

      await t.step("a host-local name from a remote client is REP 2, not a stand-in", async () => {
        for (const [rep] of await socks("client4", "resolve", "ip6-localhost", "localhost")) {
          assert.equal(rep, "2");
        }
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  { programs: ["python3"] },
);
