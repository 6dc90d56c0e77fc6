/**
 * BIND on a multi-homed gateway: the client on one link, the expected peer behind another (a
 * routed prefix beyond server4 or server6, which have no route back to the client's link). The
 * first reply must announce the gateway address that the route towards the peer uses (the
 * address the client reached is unreachable for the peer), and for DST.ADDR all zeros the
 * source towards the default route. The peer connects to BND.ADDR from its routed address and
 * data flows both ways. A raw SOCKS5 client in Python on the IPv4-only client.
 */
import assert from "node:assert/strict";
import { startDualgate } from "../helpers/dualgate.ts";
import { createTopology, e2eTest, type SpawnedProcess } from "../helpers/netns.ts";

const PROGRAMS = ["python3"];

/** BIND for argv[2] (an address or a name); prints the first reply, then the relayed line. */
const CLIENT = `
import ipaddress, socket, struct, sys
gateway, dest = sys.argv[1], sys.argv[2]
c = socket.create_connection((gateway, 1080), timeout=30)
c.sendall(b"\\x05\\x01\\x00")
assert c.recv(2) == b"\\x05\\x00"
try:
    packed = ipaddress.ip_address(dest).packed
    atyp = b"\\x01" if len(packed) == 4 else b"\\x04"
    c.sendall(b"\\x05\\x02\\x00" + atyp + packed + b"\\x00\\x00")
except ValueError:
    c.sendall(b"\\x05\\x02\\x00\\x03" + bytes([len(dest)]) + dest.encode() + b"\\x00\\x00")
def reply():
    head = c.recv(4, socket.MSG_WAITALL)
    assert head[1] == 0, head
    size = 4 if head[3] == 1 else 16
    rest = c.recv(size + 2, socket.MSG_WAITALL)
    return str(ipaddress.ip_address(rest[:size])), struct.unpack("!H", rest[size:])[0]
print("bound %s %d" % reply(), flush=True)
print("peer %s %d" % reply(), flush=True)
c.sendall(b"from client\\n")
data = b""
while not data.endswith(b"\\n"):
    chunk = c.recv(100)
    if not chunk: break
    data += chunk
print("got " + data.decode().strip(), flush=True)
`;

/** Connects from argv[1] to argv[2]:argv[3], exchanges a line each way. */
const PEER = `
import socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
c = socket.socket(family, socket.SOCK_STREAM)
c.settimeout(10)
c.bind((sys.argv[1], 0))
c.connect((sys.argv[2], int(sys.argv[3])))
c.sendall(b"from peer\\n")
data = b""
while not data.endswith(b"\\n"):
    chunk = c.recv(100)
    if not chunk: break
    data += chunk
print(data.decode().strip(), flush=True)
`;

async function waitFor(process: SpawnedProcess, pattern: RegExp): Promise<RegExpExecArray> {
  for (let i = 0; i < 300; i++) {
    const match = pattern.exec(process.stdout);
    if (match) return match;
    if (process.exited) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no ${pattern} from ${process.host}: ${process.stdout}\n${process.stderr}`);
}

e2eTest(
  "BIND announces the gateway address routed towards the peer, on another link than the client",
  async (t) => {
    await using topo = await createTopology();
    const a = topo.addresses;
    const ipIn = (host: "gateway" | "server4" | "server6", args: string[]) =>
      topo.run(host, "ip", args, { check: true });
    // Routed peers behind the servers; the servers lose their way back to the client's link.
    await ipIn("server4", ["addr", "add", "203.0.113.5/32", "dev", "lo"]);
    await ipIn("server6", ["-6", "addr", "add", "2001:db8:3::5/128", "dev", "lo", "nodad"]);
    await ipIn("server4", ["route", "del", "default"]);
    await ipIn("server6", ["-6", "route", "del", "default"]);
    await ipIn("gateway", ["route", "add", "203.0.113.0/24", "via", a.server4.v4]);
    await ipIn("gateway", ["-6", "route", "add", "2001:db8:3::/64", "via", a.server6.v6]);
    await ipIn("gateway", ["route", "add", "default", "via", a.server4.v4]);

    const dir = await Deno.makeTempDir({ prefix: "dualgate-bind-routes-" });
    try {
      await using gateway = await startDualgate(
        topo,
        [
          `listen: ["${a.gateway.v4}:1080", "[${a.gateway.v6}]:1080"]`,
          "bind: { wait: 20 }",
          'resolver: { hosts: { "routed.dualgate.example": ["2001:db8:3::5"] } }',
          "",
        ].join("\n"),
        { dir },
      );
      const CASES = [
        {
          dest: "203.0.113.5",
          peerHost: "server4",
          from: "203.0.113.5",
          bound: a.gateway.upstreamV4,
        },
        {
          dest: "2001:db8:3::5",
          peerHost: "server6",
          from: "2001:db8:3::5",
          bound: a.gateway.upstreamV6,
        },
        {
          dest: "routed.dualgate.example",
          peerHost: "server6",
          from: "2001:db8:3::5",
          bound: a.gateway.upstreamV6,
        },
        { dest: "0.0.0.0", peerHost: "server4", from: a.server4.v4, bound: a.gateway.upstreamV4 },
      ] as const;
      for (const c of CASES) {
        await t.step(
          `client4 BIND for ${c.dest}: BND.ADDR ${c.bound}, the peer's data flows`,
          async () => {
            await using client = topo.spawn("client4", "python3", [
              "-c",
              CLIENT,
              a.gateway.v4,
              c.dest,
            ]);
            const [, bound, port] = await waitFor(client, /^bound (\S+) (\d+)$/m);
            assert.equal(bound, c.bound, `dualgate: ${gateway.stderr}`);
            const peer = await topo.run(
              c.peerHost,
              "python3",
              ["-c", PEER, c.from, bound!, port!],
              {
                timeoutMs: 20_000,
              },
            );
            assert.equal(peer.code, 0, `peer: ${peer.stderr}\ndualgate: ${gateway.stderr}`);
            assert.equal(peer.stdout.trim(), "from client");
            const [, peerAddress] = await waitFor(client, /^peer (\S+) (\d+)$/m);
            assert.equal(peerAddress, c.from);
            await waitFor(client, /^got from peer$/m);
          },
        );
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
  { programs: PROGRAMS },
);
